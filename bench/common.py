"""Shared helpers for the benchmarks: timing, tables, JSON output, argument errors."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Sequence

import torch


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], device: torch.device | str = "cpu", repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` (dicts) in ``columns`` order."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path: str, payload: Any) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2)


def die(message: str) -> "None":
    """End a command-line run with a clear message and exit code 2 (never a traceback)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_out_dir(path: str) -> str:
    """Create ``path`` if needed and make sure it is writable, or die with a message."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as fh:
            fh.write("ok")
        os.remove(probe)
    except OSError as exc:
        die(f"--out {path!r} is not a writable folder ({exc.strerror or exc})")
    return path

"""Shared helpers for the benchmarks: timing, tables, JSON output, argument types and errors."""
from __future__ import annotations

import argparse
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


def prepare_run(args: argparse.Namespace) -> None:
    """What every sampling benchmark does first: ``--threads`` (when given and > 0) sets torch's CPU
    threads, ``--out`` must be a writable folder (else exit 2 with a message), autograd goes off."""
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    check_out_dir(args.out)
    torch.set_grad_enabled(False)


# argparse types: a bad value ends the run through argparse, with the option named in its message
# ("argument --steps: must be a whole number >= 2, got '-3'") and exit code 2, never a traceback.

def whole(minimum: int) -> Callable[[str], int]:
    """argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return v
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def zero_or_whole(minimum: int) -> Callable[[str], int]:
    """argparse type: 0 (skip) or a whole number >= ``minimum``."""
    inner = whole(minimum)

    def parse(text: str) -> int:
        try:
            return 0 if int(text) == 0 else inner(text)
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"must be 0 (skip) or a whole number >= {minimum}, got {text!r}") from None
    return parse


def fraction(text: str) -> float:
    """argparse type: a number in the open interval (0, 1) (a delta, a flow time)."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return v


def fractions(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated numbers in (0, 1), at least one."""
    parts = [v for v in text.split(",") if v.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in (0, 1), got {text!r}")
    try:
        return tuple(fraction(v) for v in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in (0, 1), got {text!r}") from None


def wholes(minimum: int) -> Callable[[str], tuple[int, ...]]:
    """argparse type: comma-separated whole numbers >= ``minimum``, at least one."""
    one = whole(minimum)

    def parse(text: str) -> tuple[int, ...]:
        try:
            out = tuple(one(v) for v in text.split(","))
        except argparse.ArgumentTypeError:
            out = ()
        if not out:
            raise argparse.ArgumentTypeError(f"must be comma-separated whole numbers >= {minimum}, got {text!r}")
        return out
    return parse


def existing_file(text: str) -> str:
    """argparse type: the path of an existing file."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return text

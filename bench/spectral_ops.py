"""Benchmark: time of each spectral op (transform, expand, contract) per latent size.

    python -m spectral_progressive.bench.spectral_ops [--device cpu|cuda] [--out bench/results/spectral_ops.json]

Prints a Markdown table and writes JSON.  With ``--model-call-ms`` (or the embedded model, timed at
the same spatial size when it is installed) it also reports the ops' share of a 50-step run: one
contraction, one expansion per switch and one preview upsample per low-stage step.
"""
from __future__ import annotations

import argparse

import torch

from ..spectral_core import contract, expand, transforms
from .common import check_out_dir, die, table, time_call, whole, write_json

SHAPES = [(1, 4, 64, 64), (1, 16, 64, 64), (1, 4, 128, 128), (1, 16, 128, 128), (1, 4, 256, 256),
          (1, 16, 256, 256), (1, 16, 21, 60, 104)]


def embedded_call_ms(device: str, repeats: int) -> float:
    """One call of the embedded model on a (1, 3, 64, 64) input, in ms."""
    from .embedded_setup import load_embedded
    emb = load_embedded(device)
    x = torch.randn(1, 3, emb.size, emb.size, device=device)
    s = torch.full((1,), 0.5, device=device)
    return 1e3 * time_call(lambda: emb.model(x, s), device, repeats)


def run(device: str, repeats: int, model_call_ms: float | None, embedded: bool = False) -> list[dict]:
    rows = []
    shapes = list(SHAPES)
    emb_ms = None
    if embedded:
        emb_ms = embedded_call_ms(device, repeats)
        shapes = [(1, 3, 64, 64)] + shapes
    for shape in shapes:
        x = torch.randn(shape, device=device)
        H, W = shape[-2:]
        small = (H // 2, W // 2)
        lo = torch.randn(*shape[:-2], *small, device=device)
        noise = torch.randn(shape, device=device)
        row = {"shape": "x".join(map(str, shape))}
        for name in transforms.TRANSFORMS:
            row[f"{name} fwd ms"] = 1e3 * time_call(lambda: transforms.forward(x, name), device, repeats)
        row["expand ms"] = 1e3 * time_call(lambda: expand(lo, (H, W), 0.85, noise=noise, validate=False), device, repeats)
        row["contract ms"] = 1e3 * time_call(lambda: contract(x, small, 0.9, validate=False), device, repeats)
        call = emb_ms if (emb_ms is not None and shape == (1, 3, 64, 64)) else model_call_ms
        if call is not None:
            per_run = row["expand ms"] + row["contract ms"]
            row["model call ms"] = call
            row["share of 50-step run %"] = 100.0 * per_run / (50 * call)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=whole(1), default=5)
    ap.add_argument("--model-call-ms", type=float, default=None,
                    help="cost of one model call at these sizes, to report the ops' share of a 50-step run")
    ap.add_argument("--embedded", action="store_true",
                    help="also time the embedded model at 1x3x64x64 and report the ops' share of a 50-step run")
    ap.add_argument("--threads", type=whole(0), default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default="bench/results/spectral_ops.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        die("--device cuda requested but CUDA is not available")
    import os
    check_out_dir(os.path.dirname(os.path.abspath(args.out)))
    torch.set_grad_enabled(False)
    rows = run(args.device, args.repeats, args.model_call_ms, args.embedded)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print(table(rows, cols))
    write_json(args.out, {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "rows": rows})


if __name__ == "__main__":
    main()

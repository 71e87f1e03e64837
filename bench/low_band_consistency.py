"""Does the low stage predict what the full-size model predicts of the low band?

    python -m spectral_progressive.bench.low_band_consistency [--samples 32] [--weights W] [--threads 1]

For held-out x_0, unit noise eps and full-size time t (flow frame, CONST: sigma = t):

    x_t = (1 - t) x_0 + t eps                              (the full-size state)
    x_t', t' = C_t(x_t),  t' = t / (g (1 - t) + t)         (the stage's input: the exact contraction and
                                                            timestep alignment inference uses, DESIGN.md)
    lo   = D(x_t', t')  at the stage size                  (the low-resolution model)
    full = C_0 D(x_t, t) = T_low D(x_t, t) / g             (the full-size prediction, contracted)
    true = C_0 x_0

and the same for the velocity, v = (x_t' - x_0-hat) / t' for each of the three (for the truth this is
T_low eps - C_0 x_0, exactly).  Reported as relative errors ||a - b||^2 / ||b||^2 pooled over the
images: lo against C(full) (consistency: 0 for an exact model, see tests/unit/test_low_band_oracle.py),
and each against the contracted truth.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

import torch

from ..spectral_core import contract
from .common import fractions, prepare_run, table, whole, wholes, write_json

Denoiser = Callable[..., torch.Tensor]
TIMES = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)
GROWTHS = (2, 4)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b||^2 / ||b||^2 over the whole batch."""
    a, b = a.double(), b.double()
    return float(((a - b) ** 2).sum() / (b ** 2).sum().clamp_min(1e-300))


def low_band_errors(full_model: Denoiser, low_model: Denoiser, x0: torch.Tensor, eps: torch.Tensor, t: float,
                    size: tuple[int, int], transform: str = "dct") -> dict[str, float]:
    """Relative errors of the stage model against the contracted full-size prediction and the truth
    at full-size time t (CONST frame models returning x_0)."""
    xt = (1.0 - t) * x0 + t * eps
    full = contract(full_model(xt, torch.full((x0.shape[0],), t, dtype=x0.dtype)), size, 0.0, transform=transform)[0]
    x_lo, tp = contract(xt, size, t, transform=transform)
    lo = low_model(x_lo, torch.full((x0.shape[0],), tp, dtype=x0.dtype))
    true = contract(x0, size, 0.0, transform=transform)[0]
    v = {k: (x_lo - d) / tp for k, d in (("lo", lo), ("full", full), ("true", true))}
    return {"t' (stage)": tp,
            "x0: lo vs C(full)": relative(lo, full), "x0: lo vs truth": relative(lo, true),
            "x0: C(full) vs truth": relative(full, true),
            "v: lo vs C(full)": relative(v["lo"], v["full"]), "v: lo vs truth": relative(v["lo"], v["true"]),
            "v: C(full) vs truth": relative(v["full"], v["true"])}


def consistency_rows(full_model: Denoiser, low_model: Denoiser, x0: torch.Tensor, eps: torch.Tensor,
                     times=TIMES, growths=GROWTHS, transform: str = "dct") -> list[dict]:
    """One row per (stage size, t); the same x_0 and eps in every row."""
    H, W = x0.shape[-2:]
    rows = []
    for g in growths:
        size = (H // g, W // g)
        for t in times:
            rows.append({"stage": f"{size[0]}x{size[1]} (g={g})", "t": t,
                         **low_band_errors(full_model, low_model, x0, eps, t, size, transform)})
    return rows


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Low-band consistency of the embedded model across sizes.")
    ap.add_argument("--samples", type=whole(1), default=32)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--times", type=fractions, default=",".join(str(t) for t in TIMES),
                    help="full-size flow times, comma-separated")
    ap.add_argument("--growths", type=wholes(2), default="2,4", help="stage sizes as 64/g, comma-separated g")
    ap.add_argument("--weights", default=None, help="safetensors weights of the embedded architecture (default: shipped)")
    ap.add_argument("--threads", type=whole(1), default=None)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    if any(g not in (2, 4, 8) for g in args.growths):
        ap.error(f"argument --growths: must be among 2, 4, 8 (stage sizes 32, 16, 8), got {args.growths}")
    return args


COLUMNS = ["stage", "t", "t' (stage)", "x0: lo vs C(full)", "x0: lo vs truth", "x0: C(full) vs truth",
           "v: lo vs C(full)", "v: lo vs truth", "v: C(full) vs truth"]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    prepare_run(args)
    from .embedded_setup import heldout_data, load_embedded
    emb = load_embedded(weights=args.weights)
    x0 = heldout_data(args.samples, seed=args.seed)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed + 1))
    rows = consistency_rows(emb.model, emb.model, x0, eps, args.times, args.growths)
    command = "python -m spectral_progressive.bench.low_band_consistency " + " ".join(argv)
    payload = {"command": command, "weights": args.weights or "shipped", "samples": args.samples,
               "seed": args.seed, "rows": rows}
    md = ["# Low-band consistency of the embedded model", "", f"Command: `{command}`", "",
          f"{args.samples} held-out images (seed {args.seed}), one noise draw shared by all rows; relative errors "
          "||a - b||^2 / ||b||^2 pooled over the images; lo = the model at the stage size on the contracted "
          "state, C(full) = the contracted 64x64 prediction, truth = the contracted data.", "",
          table(rows, COLUMNS), ""]
    print(table(rows, COLUMNS))
    write_json(os.path.join(args.out, "low_band_consistency.json"), payload)
    with open(os.path.join(args.out, "low_band_consistency.md"), "w") as fh:
        fh.write("\n".join(md))


if __name__ == "__main__":
    main()

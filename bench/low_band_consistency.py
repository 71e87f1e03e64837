"""Does the low stage predict what the full-size model predicts of the low band?

    python -m spectral_progressive.bench.low_band_consistency [--samples 32] [--out bench/results]

For held-out crops x_0 and times t: x_t at full size; the full model's prediction of x_0 contracted
to the stage size (C D / g) against the stage model's prediction on the contracted input, both
scored by MSE to the contracted data C x_0 / g, and their difference.
"""
from __future__ import annotations

import argparse
import os

import torch

from ..spectral_core import contract
from .common import check_out_dir, die, table, write_json
from .embedded_setup import load_embedded


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Low-band consistency of the embedded model across sizes.")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    if args.samples < 1:
        die("--samples must be at least 1")
    check_out_dir(args.out)
    torch.set_grad_enabled(False)
    from .embedded_setup import heldout_data
    emb = load_embedded()
    x0 = heldout_data(args.samples, seed=args.seed)
    size = (emb.size // 2, emb.size // 2)
    g = torch.Generator().manual_seed(0)
    rows = []
    low_true = contract(x0, size, 0.0)[0]
    for t in (0.95, 0.8, 0.6, 0.4, 0.2):
        eps = torch.randn(x0.shape, generator=g)
        xt = (1 - t) * x0 + t * eps
        full = contract(emb.model(xt, torch.full((x0.shape[0],), t)), size, 0.0)[0]
        x_lo, s = contract(xt, size, t)
        lo = emb.model(x_lo, torch.full((x0.shape[0],), s))
        rows.append({"t (full size)": t, "s (stage)": s,
                     "MSE full model, low band": float(((full - low_true) ** 2).mean()),
                     "MSE stage model": float(((lo - low_true) ** 2).mean()),
                     "MSE between them": float(((full - lo) ** 2).mean())})
    print(table(rows, list(rows[0].keys())))
    write_json(os.path.join(args.out, "low_band_consistency.json"),
               {"command": "python -m spectral_progressive.bench.low_band_consistency " + " ".join(argv or []),
                "rows": rows})



if __name__ == "__main__":
    main()

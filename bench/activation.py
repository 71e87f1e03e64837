"""Seed 001 App. B reproduced on the embedded model: per-frequency activation times measured from
the model's own velocity predictions against Prop. 1.

    python -m spectral_progressive.bench.activation [--samples 64] [--out bench/results]

For held-out crops x_0 and t on a grid, x_t = (1 - t) x_0 + t eps; the per-coefficient error
E|V(x_t) - E|^2 (DCT of v - eps, averaged over samples and channels) is binned by radial frequency.
The measured activation time of a bin for a tolerance delta is the smallest grid t above which the
error stays <= delta; Prop. 1 predicts t_w = 1 / (1 + sqrt(delta / (P_w (1 + P_w - delta)))) from the
fitted spectrum (and from the bin's measured power).
"""
from __future__ import annotations

import argparse
import os

import torch

from ..nodes.plot import spectrum_plot
from ..schedules.switching import switch_time
from ..spectral_core import transforms
from ..spectral_core.spectra import radial_power
from .common import check_out_dir, table, whole, write_json
from .embedded_setup import load_embedded

DELTAS = (0.001, 0.01, 0.1)


def measure(samples: int, points: int, seed: int, weights: str | None = None) -> dict:
    from .embedded_setup import heldout_data
    emb = load_embedded(weights=weights)
    x0 = heldout_data(samples, seed=seed)
    H, W = x0.shape[-2:]
    w = transforms.radial_frequency(H, W)
    bins = w.round().to(torch.int64)
    nb = int(bins.max()) + 1
    counts = torch.zeros(nb, dtype=torch.float64).index_add_(0, bins.flatten(), torch.ones(bins.numel(), dtype=torch.float64))
    ts = torch.linspace(0.02, 0.98, points)
    g = torch.Generator().manual_seed(seed + 1)
    err = torch.zeros(points, nb, dtype=torch.float64)
    with torch.no_grad():
        for i, t in enumerate(ts):
            eps = torch.randn(x0.shape, generator=g)
            xt = (1 - t) * x0 + t * eps
            v = emb.model.velocity(xt, torch.full((x0.shape[0],), float(t)))
            e = (transforms.forward((v - eps).double()) ** 2).mean(dim=(0, 1))
            err[i] = torch.zeros(nb, dtype=torch.float64).index_add_(0, bins.flatten(), e.flatten()) / counts.clamp_min(1)
    freqs, power, _ = radial_power(x0.double())
    pooled = power.mean(0)
    rows = []
    for b in range(1, nb):
        if counts[b] == 0:
            continue
        row = {"w (cycles/image)": b}
        for d in DELTAS:
            ok = err[:, b] <= d
            measured = None
            for i in range(points - 1, -1, -1):  # from t = 0.98 down: the last t where every t' >= t is within delta
                if not bool(ok[i:].all()):
                    break
                measured = float(ts[i])
            row[f"measured t_w d={d}"] = measured if measured is not None else float("nan")
            row[f"Prop.1 (fit) d={d}"] = switch_time(d, emb.law.A, emb.law.beta, float(b))
            pb = float(pooled[b]) if b < len(pooled) else float("nan")
            row[f"Prop.1 (P_w) d={d}"] = switch_time(d, pb, 0.0, 1.0) if pb > 0 else float("nan")
        rows.append(row)
    return {"rows": rows, "ts": ts.tolist(), "err": err.tolist(), "spectrum": {"A": emb.law.A, "beta": emb.law.beta}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Per-frequency activation times vs Prop. 1 (seed 001 App. B).")
    ap.add_argument("--samples", type=whole(1), default=64)
    ap.add_argument("--points", type=whole(3), default=49, help="t grid points in [0.02, 0.98]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default=None, help="model weights (default: the shipped embedded model)")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    check_out_dir(args.out)
    res = measure(args.samples, args.points, args.seed, args.weights)
    rows = res["rows"]
    sel = [r for r in rows if r["w (cycles/image)"] in (1, 2, 4, 8, 16, 24, 32, 40)]
    print(table(sel, list(rows[0].keys())))
    curves = [(f"measured d={d}", [r[f"measured t_w d={d}"] for r in rows]) for d in DELTAS]
    curves += [(f"Prop.1 d={d}", [r[f"Prop.1 (fit) d={d}"] for r in rows]) for d in DELTAS]
    f = [r["w (cycles/image)"] for r in rows]
    spectrum_plot(f, curves, None, size=(760, 420), title="activation time t_w vs frequency (log-log)").save(
        os.path.join(args.out, "activation.png"))
    write_json(os.path.join(args.out, "activation.json"),
               dict(res, command="python -m spectral_progressive.bench.activation " + " ".join(argv or [])))


if __name__ == "__main__":
    main()

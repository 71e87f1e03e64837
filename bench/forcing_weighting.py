"""Spectral forcing (seed 004) and spectrum-aware loss weighting (seed 003) on the embedded model.

    python -m spectral_progressive.bench.forcing_weighting NAME=RUN_DIR [NAME=RUN_DIR ...]
        [--samples 64] [--steps 50] [--delta 0.01] [--lowband-samples 32] [--threads 1] [--out bench/results]

Each RUN_DIR holds the weights.safetensors (+ train_log.json) of one continuation run of
``embedded.train`` from the shipped weights (same seed and step budget; a run trained with
``--spectral-forcing`` carries it in its metadata and samples with it). Measured for the shipped model,
the shipped model with the forcing put on at inference only (the diagnostic of ``SpectralForcingPatch``)
and every run:

* primary metric (``bench.primary``): patch Frechet and patch sliced-W1 distance of the model's
  ``--samples`` 50-step Euler samples to the SHIPPED model's own 50-step samples on disjoint seeds, with
  seed-bootstrap intervals; the shipped model's own row is the floor (reference against reference);
* the same distance to held-out data of the exact dead-leaves generator (its floor: data against data);
* progressive S=2 (delta, the model's spectrum, affine respacing; ``sample_progressive``): same-seed
  PSNR against the model's own 50-step run (mean +- standard error over the seeds, and the paired
  difference to the ``--baseline`` run on the same seeds), and the primary metric of the progressive samples;
* the low stage's high-noise predictions (``bench.low_band_consistency.consistency_rows`` at 32 x 32):
  relative errors of x0 and v against the contracted truth at full-size t = 0.9 ... 0.99.

Also writes forcing_weighting.png: the first 8 full-size samples of every model (one row each, same seeds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from ..embedded.model import EmbeddedDenoiser, load_default_model
from ..embedded.source import heldout_data
from ..embedded.train import make_forcing
from ..spectral_core import sample_euler, sample_progressive
from .common import check_out_dir, die, fraction, table, whole, write_json
from .embedded_setup import Embedded, linear_sigmas, load_spectrum
from .low_band_consistency import consistency_rows
from .matched_cost import seeded_noise
from .metrics import psnr
from .primary import distribution_distance

METHOD_SEED, REFERENCE_SEED, DATA_SEED = 11, 22, 33  # disjoint noise / data draws
HIGH_T = (0.9, 0.95, 0.97, 0.99)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m spectral_progressive.bench.forcing_weighting",
                                 description="Forcing / loss-weighting continuation runs against the shipped model.")
    ap.add_argument("runs", nargs="+", help="NAME=RUN_DIR (a directory with weights.safetensors)")
    ap.add_argument("--samples", type=whole(2), default=64, help="samples per model and for the reference (>= 2)")
    ap.add_argument("--steps", type=whole(2), default=50, help="Euler steps of the full-size runs")
    ap.add_argument("--delta", type=fraction, default=0.01, help="delta of the progressive S=2 plan")
    ap.add_argument("--lowband-samples", type=whole(1), default=32, help="held-out images of the low-band errors")
    ap.add_argument("--bootstrap", type=whole(0), default=200)
    ap.add_argument("--baseline", default="control", help="run the paired PSNR differences are taken against")
    ap.add_argument("--threads", type=whole(1), default=1)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        weights = Path(path) / "weights.safetensors"
        if not sep or not name or not weights.is_file():
            die(f"run {item!r}: expected NAME=DIR with DIR/weights.safetensors")
        runs[name] = Path(path)
    args.runs = runs
    return args


def _score(samples: torch.Tensor, ref: torch.Tensor, bootstrap: int) -> dict:
    d = distribution_distance(samples, ref, bootstrap=bootstrap)
    return {k: d[k] for k in ("frechet", "frechet_ci", "swd", "swd_ci")}


def _run_info(run_dir: Path | None) -> dict:
    """Steps, wall time, options and the held-out 64x64 velocity MSE of a run's train log."""
    if run_dir is None or not (run_dir / "train_log.json").is_file():
        return {}
    log = json.loads((run_dir / "train_log.json").read_text())
    ev = (log.get("eval_velocity_mse") or {}).get("heldout_dead_leaves_64x64", {})
    cfg = log.get("config", {})
    return {"steps": log.get("steps"), "wall_time_s": log.get("wall_time_s"), "command": cfg.get("command"),
            "spectral_forcing": bool(cfg.get("spectral_forcing")), "loss_weighting": cfg.get("loss_weighting"),
            "heldout_velocity_mse_64": ev.get("mean")}


def measure(model, args, ctx: dict) -> dict:
    """Every metric of one model (module docstring)."""
    sig, noise, ref, data = ctx["sigmas"], ctx["noise"], ctx["reference"], ctx["data"]
    full = sample_euler(model, noise.clone(), sig)
    prog = sample_progressive(model, noise.clone(), sig, plan=ctx["plan"])
    rows = consistency_rows(model, model, ctx["lb_x0"], ctx["lb_eps"], HIGH_T, (2,))
    return {"samples": full,
            "primary": _score(full, ref, args.bootstrap),
            "vs_data": _score(full, data, args.bootstrap),
            "progressive_psnr_per_seed": [float(v) for v in psnr(prog, full)],
            "progressive_primary": _score(prog, ref, args.bootstrap),
            "low_band": [{k: r[k] for k in ("t", "t' (stage)", "x0: lo vs truth", "v: lo vs truth",
                                             "x0: lo vs C(full)")} for r in rows]}


def context(args) -> dict:
    """Sigmas, the S=2 plan, noise, the shipped model's reference samples, held-out data."""
    law = load_spectrum()
    sig = linear_sigmas(args.steps)
    shipped = load_default_model()
    plan = Embedded(shipped, law).plan(sig, (0.5, 1.0), args.delta, respace="affine")
    print("reference: the shipped model's 50-step samples on disjoint seeds ...", flush=True)
    ref = sample_euler(shipped, seeded_noise(args.samples, 64, REFERENCE_SEED), sig)
    lb_x0 = heldout_data(args.lowband_samples, seed=3)
    return {"sigmas": sig, "plan": plan, "noise": seeded_noise(args.samples, 64, METHOD_SEED), "reference": ref,
            "data": heldout_data(args.samples, seed=DATA_SEED), "shipped": shipped, "lb_x0": lb_x0,
            "lb_eps": torch.randn(lb_x0.shape, generator=torch.Generator().manual_seed(4))}


def _mean_se(vals: list[float]) -> tuple[float, float]:
    v = torch.tensor(vals, dtype=torch.float64)
    return float(v.mean()), float(v.std() / len(vals) ** 0.5) if len(vals) > 1 else 0.0


def summarise_psnr(results: dict, baseline: str) -> None:
    """Mean +- SE of the same-seed progressive PSNR, and the paired difference to ``baseline``."""
    base = results.get(baseline, {}).get("progressive_psnr_per_seed")
    for r in results.values():
        r["progressive_psnr_db"], r["progressive_psnr_se"] = _mean_se(r["progressive_psnr_per_seed"])
        if base is not None:
            r["progressive_psnr_vs_baseline"] = _mean_se([a - b for a, b in zip(r["progressive_psnr_per_seed"], base)])


def save_grid(results: dict, path: str, n: int = 8) -> None:
    """One row of the first ``n`` samples per model, [-1, 1] -> RGB."""
    from PIL import Image
    rows = [torch.cat(list(r["samples"][:n]), dim=-1) for r in results.values()]
    img = ((torch.cat(rows, dim=-2).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0)
    Image.fromarray(img.numpy()).save(path)


def _fmt(s: dict, key: str) -> str:
    lo, hi = s[f"{key}_ci"]
    return f"{s[key]:.4g} [{lo:.3g}, {hi:.3g}]"


def report(results: dict, args, command: str, data_floor: dict) -> str:
    rows, lows = [], []
    for name, r in results.items():
        rows.append({"model": name, "train steps": r["info"].get("steps", "-"),
                     "Frechet vs reference": _fmt(r["primary"], "frechet"),
                     "SWD vs reference": _fmt(r["primary"], "swd"),
                     "Frechet vs data": _fmt(r["vs_data"], "frechet"),
                     "progressive S=2 PSNR vs own full run dB": f"{r['progressive_psnr_db']:.2f} ± "
                                                                  f"{r['progressive_psnr_se']:.2f}",
                     f"paired vs {args.baseline} dB": "-" if "progressive_psnr_vs_baseline" not in r else
                     "{:+.2f} ± {:.2f}".format(*r["progressive_psnr_vs_baseline"]),
                     "progressive Frechet vs reference": _fmt(r["progressive_primary"], "frechet")})
        for lb in r["low_band"]:
            lows.append({"model": name, "t": lb["t"], "t' (32x32)": lb["t' (stage)"],
                         "x0 rel. error": lb["x0: lo vs truth"], "v rel. error": lb["v: lo vs truth"],
                         "x0 lo vs C(full)": lb["x0: lo vs C(full)"]})
    return "\n".join([
        "# Spectral forcing and spectrum-aware loss weighting on the embedded model", "", f"Command: `{command}`", "",
        f"{args.samples} samples per model, {args.steps}-step Euler; reference = the shipped model's own "
        f"{args.steps}-step samples on disjoint seeds (the shipped row is the floor); 95% seed-bootstrap intervals. "
        f"Data floor (held-out data vs held-out data): Frechet {_fmt(data_floor, 'frechet')}. Progressive PSNR: "
        f"mean ± standard error over the seeds; paired: the per-seed difference to {args.baseline}.", "",
        f"Samples (rows in table order, same seeds): forcing_weighting.png", "",
        table(rows, list(rows[0].keys())), "",
        "Low stage (32x32) at high noise: relative errors ||a - b||^2 / ||b||^2 against the contracted truth "
        f"({args.lowband_samples} held-out images).", "", table(lows, list(lows[0].keys())), ""])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    check_out_dir(args.out)
    start = time.monotonic()
    ctx = context(args)
    models = {"shipped": (ctx["shipped"], None),
              "shipped + forcing at inference only": (EmbeddedDenoiser(ctx["shipped"].net, make_forcing()), None)}
    for name, d in args.runs.items():
        models[name] = (load_default_model(path=d / "weights.safetensors"), d)
    results = {}
    for name, (model, d) in models.items():
        print(f"measuring {name} ...", flush=True)
        results[name] = {**measure(model, args, ctx), "info": _run_info(d),
                         "forcing_at_inference": model.forcing is not None}
    data_floor = _score(heldout_data(args.samples, seed=DATA_SEED + 1), ctx["data"], args.bootstrap)
    summarise_psnr(results, args.baseline)
    save_grid(results, os.path.join(args.out, "forcing_weighting.png"))
    command = "python -m spectral_progressive.bench.forcing_weighting " + " ".join(argv)
    md = report(results, args, command, data_floor)
    print(md)
    payload = {"command": command, "wall_time_s": round(time.monotonic() - start, 1), "samples": args.samples,
               "steps": args.steps, "delta": args.delta, "plan": ctx["plan"].summary(), "data_floor": data_floor,
               "models": {k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in results.items()}}
    write_json(os.path.join(args.out, "forcing_weighting.json"), payload)
    with open(os.path.join(args.out, "forcing_weighting.md"), "w") as fh:
        fh.write(md)


if __name__ == "__main__":
    main()

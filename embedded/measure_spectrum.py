"""Measure the data spectrum of the embedded model's image distribution and write spectrum.json.

    python -m spectral_progressive.embedded.measure_spectrum [--data dead_leaves|photos] [--n 1024]
        [--seed 0] [--out PATH]

The spectrum is measured with the pack's own probe (``spectral_core.spectra.measure_spectrum``:
orthonormal DCT, per-crop centring, radial average, weighted power-law fit P(w) = A w^-beta) on
held-out data the model never saw in training: with ``--data dead_leaves`` (default, the data of
the current default model) 64 x 64 dead-leaves images from the held-out generator seeds
(``dead_leaves.heldout_batch``), with ``--data photos`` 64 x 64 crops of the held-out photo(s).
The fit on training data (the training stream's seed, or training crops) is recorded alongside. spectrum.json is what a user (or the demo) feeds to
the switching-time formula for this model, like the presets of DESIGN.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..spectral_core.spectra import measure_spectrum
from . import data, dead_leaves
from .source import SOURCES, heldout_data, training_data

DEFAULT_OUT = Path(__file__).resolve().parent / "spectrum.json"


def spectrum_record(x: torch.Tensor) -> dict:
    """Fit of the pooled radial DCT spectrum of crops ``x`` (N, 3, H, W) as a JSON-ready dict."""
    m = measure_spectrum(x)
    return {
        "A": m.fit.law.A,
        "beta": m.fit.law.beta,
        "r2": m.fit.r2,
        "rms_log_error": m.fit.rms_log_error,
        "n_crops": int(x.shape[0]),
        "size": [int(x.shape[-2]), int(x.shape[-1])],
        "channel_fits": [{"A": f.law.A, "beta": f.law.beta, "r2": f.r2} for f in m.channel_fits],
        "radial": {"freqs": [float(f) for f in m.freqs], "power": [float(p) for p in m.pooled]},
    }


def build_spectrum(n: int, seed: int, source: str = "dead_leaves") -> dict:
    """spectrum.json content: the held-out fit at the top level, the training-data fit under
    ``training_data`` (dead leaves) or ``training_crops`` (photos)."""
    if source not in SOURCES:
        raise ValueError(f"source must be 'dead_leaves' or 'photos', got {source!r}")
    held = spectrum_record(heldout_data(n, seed, source))
    train = spectrum_record(training_data(n, seed, source))
    train.pop("radial")
    if source == "dead_leaves":
        about = {"description": "power spectrum of 64x64 RGB dead-leaves images in [-1,1] (the embedded model's "
                                "data), orthonormal DCT, per-image mean removed, radial bins round(w) in cycles per "
                                "image, pooled over channels; fit P(w) = A w^-beta by least squares in log-log, DC "
                                "excluded",
                 "data": "dead_leaves", "heldout_seed": dead_leaves.HELDOUT_SEED_OFFSET + seed}
        training = {"training_data": {"seed": seed, **train}}
    else:
        about = {"description": "power spectrum of 64x64 RGB crops in [-1,1] (the embedded model's data), orthonormal "
                                "DCT, per-crop mean removed, radial bins round(w) in cycles per image, pooled over "
                                "channels; fit P(w) = A w^-beta by weighted least squares in log-log, DC excluded",
                 "data": "photos", "images": list(data.HELDOUT_IMAGES)}
        training = {"training_crops": {"images": list(data.TRAIN_IMAGES), **train}}
    return {**about, "seed": seed, **held, **training}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, write the JSON and print a summary."""
    p = argparse.ArgumentParser(prog="python -m spectral_progressive.embedded.measure_spectrum",
                                description="Measure the embedded model's data spectrum (held-out data).")
    p.add_argument("--data", choices=("dead_leaves", "photos"), default="dead_leaves",
                   help="which data: the dead-leaves generator (held-out seeds) or the held-out photo crops")
    p.add_argument("--n", type=int, default=1024, help="number of crops (>= 2)")
    p.add_argument("--seed", type=int, default=0, help="crop seed (>= 0)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output JSON path")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error(f"--n must be >= 2, got {args.n}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0, got {args.seed}")
    rec = build_spectrum(args.n, args.seed, args.data)
    try:
        Path(args.out).write_text(json.dumps(rec, indent=2) + "\n")
    except OSError as e:
        p.error(f"cannot write --out {args.out!r} ({e.strerror or e})")
    if args.data == "dead_leaves":
        print(f"held-out dead leaves (seed {rec['heldout_seed']}): A={rec['A']:.3f} beta={rec['beta']:.4f} "
              f"r2={rec['r2']:.4f} rms_log_error={rec['rms_log_error']:.4f} ({rec['n_crops']} images)")
        t = rec["training_data"]
        print(f"training stream (seed {t['seed']}): A={t['A']:.3f} beta={t['beta']:.4f} r2={t['r2']:.4f}")
    else:
        print(f"held-out {rec['images']}: A={rec['A']:.3f} beta={rec['beta']:.4f} r2={rec['r2']:.4f} "
              f"rms_log_error={rec['rms_log_error']:.4f} ({rec['n_crops']} crops)")
        t = rec["training_crops"]
        print(f"training {t['images']}: A={t['A']:.3f} beta={t['beta']:.4f} r2={t['r2']:.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

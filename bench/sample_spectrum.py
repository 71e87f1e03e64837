"""Where an embedded model's own samples leave the data spectrum, band by band.

    python -m spectral_progressive.bench.sample_spectrum [--weights W [W ...]] [--samples 128]
        [--steps 50] [--seed 0] [--threads 1] [--out bench/results]

For each set of weights (default: the shipped model), ``--samples`` full-size Euler samples on the
demo's method seeds (``matched_cost.seeded_noise(n, 64, seed)``, ``--steps`` linear flow steps) are
compared with 256 held-out images of the model's data law (``heldout_data(256, seed=1)``, as in the
demo). With P_s(w), P_d(w) the radially averaged DCT power of the two sets (per-image centred,
pooled over images and channels; ``spectral_core.spectra.radial_power``), each octave band
B = [w_lo, w_hi) of radial frequency (cycles per image) gets

    ratio_B = mean over bins w in B of 10 log10(P_s(w) / P_d(w))   [dB; < 0: samples too smooth there]

and the row also carries the demo's log-spectrum error, mean over non-DC bins of |ln P_s - ln P_d|
(``bench.metrics.log_spectrum_error``; the demo's "log-spectrum error" of its 50-step baseline row
on the same seeds). The first row is the floor: ``--samples`` other held-out images
(``heldout_data(n, seed=2)``) against the same 256, i.e. what finite sets of real data score.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from .common import existing_file, prepare_run, table, whole, write_json
from .metrics import log_spectrum_error
from ..spectral_core.spectra import radial_power

BANDS = ((1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 32.0), (32.0, float("inf")))
REFERENCE_IMAGES = 256


def band_name(lo: float, hi: float) -> str:
    return f"w {lo:g}-{hi:g}" if hi != float("inf") else f"w >= {lo:g}"


def band_log_ratios(samples: torch.Tensor, data: torch.Tensor,
                    bands: tuple[tuple[float, float], ...] = BANDS) -> dict[str, float]:
    """Per band, the mean over its radial bins of 10 log10(P_samples(w) / P_data(w)) in dB (pooled
    power, channels averaged). Both sets must have the same spatial size."""
    if samples.shape[-2:] != data.shape[-2:]:
        raise ValueError(f"samples and data must share a spatial size, got {tuple(samples.shape[-2:])} "
                         f"and {tuple(data.shape[-2:])}")
    f, ps, _ = radial_power(samples.double())
    _, pd, _ = radial_power(data.double())
    ratio = 10.0 * torch.log10(ps.mean(0).clamp_min(1e-30) / pd.mean(0).clamp_min(1e-30))
    out = {}
    for lo, hi in bands:
        sel = (f >= lo) & (f < hi)
        out[band_name(lo, hi)] = float(ratio[sel].mean()) if bool(sel.any()) else float("nan")
    return out


def spectrum_row(label: str, samples: torch.Tensor, data: torch.Tensor) -> dict:
    """One table row: the set's label, its log-spectrum error against ``data`` and its band ratios."""
    return {"samples": label, "log-spectrum error": log_spectrum_error(samples, data),
            **band_log_ratios(samples, data)}


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m spectral_progressive.bench.sample_spectrum",
                                 description="Band-by-band power of an embedded model's own samples "
                                             "against held-out data.")
    ap.add_argument("--weights", nargs="+", type=existing_file, default=None,
                    help="safetensors weights of the embedded architecture, one or more (default: shipped)")
    ap.add_argument("--samples", type=whole(2), default=128, help="samples per model (and floor images)")
    ap.add_argument("--steps", type=whole(2), default=50, help="Euler steps of the samples")
    ap.add_argument("--seed", type=whole(0), default=0, help="method seed of the demo (noise of the samples)")
    ap.add_argument("--threads", type=whole(1), default=None, help="torch CPU threads")
    ap.add_argument("--out", default="bench/results", help="folder for sample_spectrum.{json,md}")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    prepare_run(args)
    from .embedded_setup import heldout_data, load_embedded
    from .matched_cost import full_size, run_batched, seeded_noise
    data = heldout_data(REFERENCE_IMAGES, seed=1)
    rows = [spectrum_row(f"held-out data, {args.samples} other images (floor)",
                         heldout_data(args.samples, seed=2), data)]
    noise = seeded_noise(args.samples, data.shape[-1], args.seed)
    for w in args.weights or [None]:
        emb = load_embedded(weights=w)
        out = run_batched(full_size(emb.model, args.steps), noise)
        rows.append(spectrum_row(f"{w or 'shipped'}, {args.steps} steps", out, data))
        print(table(rows[-1:], list(rows[0])), flush=True)
    columns = list(rows[0])
    command = "python -m spectral_progressive.bench.sample_spectrum " + " ".join(argv)
    payload = {"command": command, "samples": args.samples, "steps": args.steps, "seed": args.seed,
               "reference": f"heldout_data({REFERENCE_IMAGES}, seed=1)", "bands_dB": "10 log10(P_samples / P_data)",
               "rows": rows}
    md = ["# The embedded model's own samples against the data spectrum, by band", "", f"Command: `{command}`", "",
          f"{args.samples} samples per model ({args.steps} Euler steps, method seed {args.seed}) against "
          f"{REFERENCE_IMAGES} held-out images; band columns: mean over the band's radial bins of "
          "10 log10(P_samples / P_data) in dB (negative: less power than the data, i.e. smoother); "
          "w in cycles per image.", "", table(rows, columns), ""]
    print(table(rows, columns))
    write_json(os.path.join(args.out, "sample_spectrum.json"), payload)
    with open(os.path.join(args.out, "sample_spectrum.md"), "w") as fh:
        fh.write("\n".join(md))
    return payload


if __name__ == "__main__":
    main()

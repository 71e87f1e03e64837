"""Seed 001 App. B on the embedded model: the spectral noise passthrough sweep, measured.

    python -m spectral_progressive.bench.passthrough --threads 1 [--samples 64] [--steps 20]
        [--deltas 0.001,0.01,0.05,0.1,0.3] [--out bench/results]

Per delta, the same seeds are sampled with Euler at full size, with every frequency held at t T(eps) until its
Prop. 1 activation time (``spectral_core.passthrough``, the embedded model's fitted spectrum, DCT), against the
plain run on the same seeds and steps:

* change: ||x_delta - x_plain|| / ||x_plain|| (the node's number), and what Gaussian data with the same
  spectrum would give in closed form (``gaussian_change``);
* same-seed PSNR / SSIM against the plain run (``metrics``);
* the primary metric (``primary.distribution_distance``: patch Frechet and sliced-W to the model's own 50-step
  samples on disjoint seeds, seed-bootstrap 95% intervals); the plain run's score is the row to compare with;
* t_w at the Nyquist band edge (the latest-activating frequency: everything is noise-held before it).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from ..spectral_core import sample_euler, transforms
from ..spectral_core.passthrough import PassthroughDenoiser, activation_times, gaussian_change, relative_change
from .common import check_out_dir, fractions, table, whole, write_json
from .embedded_setup import linear_sigmas, load_embedded
from .matched_cost import Method, reference_samples, run_batched, seeded_noise
from .metrics import psnr, ssim
from .primary import distribution_distance

DELTAS = (0.001, 0.01, 0.05, 0.1, 0.3)
COLUMNS = ["delta", "t_w at Nyquist", "change", "Gaussian closed form", "PSNR dB", "SSIM", "patch Frechet",
           "Frechet 95% CI", "patch SW", "SW 95% CI"]


def _ci(ci) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _row(delta, samples, plain, reference, bootstrap: int, extra: dict) -> dict:
    d = distribution_distance(samples, reference, bootstrap=bootstrap)
    row = {"delta": delta, **extra, "patch Frechet": d["frechet"], "Frechet 95% CI": _ci(d["frechet_ci"]),
           "patch SW": d["swd"], "SW 95% CI": _ci(d["swd_ci"])}
    if samples is not plain:
        row.update({"change": relative_change(samples, plain), "PSNR dB": float(psnr(samples, plain).mean()),
                    "SSIM": float(ssim(samples, plain).mean())})
    return row


def measure(samples: int, steps: int, deltas, seed: int, bootstrap: int) -> list[dict]:
    emb = load_embedded()
    size = emb.size
    sig = linear_sigmas(steps)
    noise = seeded_noise(samples, size, seed)
    print(f"reference: {samples} samples, 50 steps, disjoint seeds", flush=True)
    reference = reference_samples(emb.model, samples, size, seed, 50)
    print(f"plain: {steps} steps", flush=True)
    plain = run_batched(Method("plain", "plain", steps, lambda n: sample_euler(emb.model, n, sig)), noise)
    rows = [_row("plain", plain, plain, reference, bootstrap, {"t_w at Nyquist": "-"})]
    power = emb.law.coefficient_power(size, size)
    w_edge = transforms.radial_frequency(size, size)[size - 1, 0]  # min(H, W) / 2 along an axis
    for delta in deltas:
        act = activation_times(emb.law, (size, size), delta)
        t_edge = float(act[size - 1, 0])
        print(f"delta {delta}: t_w(w={float(w_edge):.1f}) = {t_edge:.3f}", flush=True)

        def run(n: torch.Tensor, act=act) -> torch.Tensor:
            return sample_euler(PassthroughDenoiser(emb.model, n, act, sig), n, sig)

        out = run_batched(Method(f"delta {delta}", "passthrough", steps, run), noise)
        rows.append(_row(delta, out, plain, reference, bootstrap,
                         {"t_w at Nyquist": t_edge, "Gaussian closed form": gaussian_change(power, act, sig)}))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Spectral noise passthrough sweep on the embedded model (seed 001 App. B).")
    ap.add_argument("--samples", type=whole(2), default=64)
    ap.add_argument("--steps", type=whole(1), default=20, help="Euler steps of the plain and passthrough runs")
    ap.add_argument("--deltas", type=fractions, default=",".join(str(d) for d in DELTAS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=whole(0), default=200)
    ap.add_argument("--threads", type=whole(0), default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    deltas = args.deltas
    check_out_dir(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = measure(args.samples, args.steps, deltas, args.seed, args.bootstrap)
    md = table(rows, COLUMNS)
    print(md)
    command = "python -m spectral_progressive.bench.passthrough " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(os.path.join(args.out, "passthrough.json"), {"rows": rows, "command": command, "samples": args.samples,
                                                            "steps": args.steps, "seed": args.seed})
    with open(os.path.join(args.out, "passthrough.md"), "w") as fh:
        fh.write(f"`{command}`\n\n{md}\n")


if __name__ == "__main__":
    main()

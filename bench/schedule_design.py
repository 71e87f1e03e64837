"""Spectrum-designed noise schedules (seed 002) against simple, karras, beta and the model's default.

    python -m spectral_progressive.bench.schedule_design --out bench/results --threads 1
        [--testbed gaussian|embedded|both] [--steps 8,20,50] [--samples 64] [--reference 64]

gaussian: bench/quality.py's testbed (DCT coefficients N(0, A w^-beta) on 32x32, FLUX's switch times,
its exact denoiser); the output law of every run is Gaussian and its KL to the data law is exact
(closed form, spectral_core.spectral_transfer / progressive_transfer).  Default schedule: FLUX's shifted one.
embedded: the shipped model, the primary metric (bench/primary.py: patch Frechet and patch sliced-W of
``--samples`` samples against ``--reference`` 50-step full-size Euler samples on disjoint seeds, with
seed-bootstrap intervals, and the reference-vs-reference floor).  Its default schedule is simple.

Every schedule runs alone and under progressive S=2 (plan_stages on the schedule itself, delta 0.01,
respace "affine" as DeltaSchedule does); "designed for plan" is the design refined for that plan
(schedule_design.design_for_plan, never more model compute than planning on the plain design).
Baselines on the table of a 1000-step flow model with the testbed's shift (1 for the embedded model):
simple = linear in t, karras (rho 7) from the table's smallest sigma to 1, beta (0.6, 0.6) as ComfyUI
indexes the table.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from ..schedules import plan_stages
from ..spectral_core import sample_ab2, sample_euler, sample_progressive
from ..spectral_core.progressive_transfer import progressive_kl
from ..spectral_core.schedule_design import design_for_plan, design_sigmas
from ..spectral_core.spectra import PowerLaw
from ..spectral_core.spectral_transfer import spectral_kl
from .common import check_out_dir, table, whole, wholes, write_json
from .quality import FLUX_SHIFT, GAUSS_LAW, GAUSS_SIZE

SAMPLERS = {"euler": sample_euler, "ab2": sample_ab2}
BASELINES = ("simple", "karras", "beta")
REFERENCE_STEPS = 50  # the embedded reference: 50-step full-size Euler


def flow_table(shift: float = 1.0, n: int = 1000) -> torch.Tensor:
    """sigma_j = shift(j / n), j = 1 .. n: the sigma table of a discrete flow model (ComfyUI's
    ModelSamplingDiscreteFlow), time-shifted by ``shift``."""
    t = torch.arange(1, n + 1, dtype=torch.float64) / n
    return shift * t / (1.0 + (shift - 1.0) * t)


def simple_sigmas(steps: int, shift: float = 1.0) -> torch.Tensor:
    """Equally spaced flow times 1 -> 0, time-shifted (shift 1: linear in t)."""
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return shift * t / (1.0 + (shift - 1.0) * t)


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float = 1.0, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022): sigma_i^(1/rho) equally spaced from sigma_max to sigma_min, then 0."""
    r = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + r * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)])


def beta_sigmas(steps: int, table_: torch.Tensor, alpha: float = 0.6, beta: float = 0.6) -> torch.Tensor:
    """The table indexed at rint(Beta(alpha, beta) quantiles of 1 - k/N), repeats dropped, then 0
    (ComfyUI's beta scheduler; so it may have fewer than ``steps`` steps, as there)."""
    import numpy as np
    from scipy.stats import beta as beta_dist
    q = np.rint(beta_dist.ppf(1.0 - np.linspace(0.0, 1.0, steps, endpoint=False), alpha, beta) * (len(table_) - 1))
    idx = [int(v) for i, v in enumerate(q) if i == 0 or v != q[i - 1]]
    return torch.cat([table_[idx], torch.zeros(1, dtype=torch.float64)])


def baseline_sigmas(name: str, steps: int, shift: float = 1.0) -> torch.Tensor:
    """simple (linear t), karras, beta or default (the time-shifted simple) on a flow table with ``shift``."""
    tab = flow_table(shift)
    if name == "simple":
        return simple_sigmas(steps)
    if name == "karras":
        return karras_sigmas(steps, float(tab[0]))
    if name == "beta":
        return beta_sigmas(steps, tab)
    if name == "default":
        return simple_sigmas(steps, shift)
    raise ValueError(f"schedule: expected one of {BASELINES + ('default',)}, got {name!r}")


def plan_s2(sigmas: torch.Tensor, size: int, law: PowerLaw, multiple: int = 1):
    """Progressive S=2 on ``sigmas`` as DeltaSchedule plans it (delta 0.01, DCT, respace affine)."""
    return plan_stages(sigmas, (size, size), delta=0.01, scales=(0.5, 1.0), spectrum=law,
                       spatial_multiple=multiple, respace="affine")


def schedules_for(steps: int, law: PowerLaw, size: int, sampler: str, shift: float) -> dict:
    """name -> (sigmas, design or None): the design for ``sampler``, the baselines, the default if it
    differs from simple."""
    design = design_sigmas(law, (size, size), steps, sampler=sampler, sigma_min=float(flow_table(shift)[0]))
    out = {"designed": (design.sigmas, design)}
    names = BASELINES + (("default",) if shift != 1.0 else ())
    out.update({n: (baseline_sigmas(n, steps, shift), None) for n in names})
    return out


# ---------------------------------------------------------------- Gaussian testbed (exact KL)

def gaussian_rows(steps_list: tuple[int, ...]) -> list[dict]:
    """Exact KL (nats per channel) of every schedule, alone and under progressive S=2, Euler and AB2."""
    size, law, rows = GAUSS_SIZE, GAUSS_LAW, []
    for steps in steps_list:
        for sampler in SAMPLERS:
            for name, (sig, design) in schedules_for(steps, law, size, sampler, FLUX_SHIFT).items():
                plan = plan_s2(sig, size, law)
                rows.append({"steps": steps, "sampler": sampler, "schedule": name, "actual steps": len(sig) - 1,
                             "KL": spectral_kl(sig, law, (size, size), sampler=sampler),
                             "KL progressive S=2": progressive_kl(plan, law, sampler),
                             "speed-up S=2 (tokens)": plan.compute_ratio("tokens")})
                if design is not None:
                    pd = design_for_plan(design, lambda s: plan_s2(s, size, law))
                    rows.append({"steps": steps, "sampler": sampler, "schedule": "designed for plan",
                                 "actual steps": steps,
                                 "KL": spectral_kl(pd.sigmas, law, (size, size), sampler=sampler),
                                 "KL progressive S=2": pd.kl,
                                 "speed-up S=2 (tokens)": pd.plan.compute_ratio("tokens")})
            print(f"  gaussian {steps} steps {sampler}: done", flush=True)
    return rows


# ---------------------------------------------------------------- embedded model (primary metric)

def _euler_samples(model, noise: torch.Tensor, sigmas: torch.Tensor, plan=None) -> torch.Tensor:
    x = noise * float(sigmas[0])
    with torch.no_grad():
        if plan is None:
            return sample_euler(model, x, sigmas.float())
        return sample_progressive(model, x, sigmas.float(), plan=plan)


def _distance_cols(prefix: str, d: dict) -> dict:
    return {f"{prefix}Frechet": d["frechet"], f"{prefix}Frechet CI": tuple(d["frechet_ci"]),
            f"{prefix}SW": d["swd"], f"{prefix}SW CI": tuple(d["swd_ci"])}


def embedded_rows(steps_list: tuple[int, ...], samples: int, n_ref: int, seed: int) -> tuple[list[dict], dict]:
    """Primary metric of every schedule (Euler), alone and under progressive S=2; returns (rows, floor)."""
    from .embedded_setup import load_embedded
    from .matched_cost import seeded_noise
    from .primary import distribution_distance, reference_floor
    emb = load_embedded()
    size = emb.size

    ref_sig = simple_sigmas(REFERENCE_STEPS)
    reference = _euler_samples(emb.model, seeded_noise(n_ref, size, seed + 1), ref_sig).clamp(-1, 1)
    floor = reference_floor(reference, _euler_samples(emb.model, seeded_noise(n_ref, size, seed + 2), ref_sig).clamp(-1, 1))
    base_noise, rows = seeded_noise(samples, size, seed), []
    for steps in steps_list:
        for name, (sig, design) in schedules_for(steps, emb.law, size, "euler", 1.0).items():
            runs = [("plain", None), ("S=2", plan_s2(sig, size, emb.law, emb.multiple))]
            if design is not None:
                pd = design_for_plan(design, lambda s: plan_s2(s, size, emb.law, emb.multiple))
                runs.append(("S=2, designed for plan", pd.plan))
            for mode, plan in runs:
                t0 = time.perf_counter()
                out = _euler_samples(emb.model, base_noise, plan.user_sigmas if plan is not None else sig, plan)
                dist = distribution_distance(out.clamp(-1, 1), reference)
                kl = spectral_kl(sig, emb.law, (size, size)) if plan is None else progressive_kl(plan, emb.law)
                rows.append({"steps": steps, "schedule": name, "run": mode,
                             "speed-up (tokens)": 1.0 if plan is None else plan.compute_ratio("tokens"),
                             "Gaussian-model KL": kl, **_distance_cols("", dist), "wall s": time.perf_counter() - t0})
                print(f"  embedded {steps} steps {name} {mode}: Frechet {dist['frechet']:.4g}", flush=True)
    return rows, _distance_cols("floor ", floor)


def _shown(row: dict) -> dict:
    """A row for the Markdown table: intervals as [lo, hi] with 3 significant digits."""
    return {k: f"[{v[0]:.3g}, {v[1]:.3g}]" if isinstance(v, (tuple, list)) else v for k, v in row.items()}


def markdown(payload: dict) -> str:
    """The Markdown report of a results payload (``schedule_design.json``)."""
    md = [f"# Spectrum-designed schedules (seed 002)\n\n`{payload['command']}`\n"]
    if "gaussian" in payload:
        rows = payload["gaussian"]
        md += ["## Gaussian testbed: exact KL (nats per channel)\n", table(rows, list(rows[0])), ""]
    if "embedded" in payload:
        rows = [_shown(r) for r in payload["embedded"]]
        floor = _shown(payload["floor"])
        md += ["## Embedded model: primary metric (lower is better)\n", table(rows, list(rows[0])), "",
               "Reference vs reference floor: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                            for k, v in floor.items()), ""]
    return "\n".join(md)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Spectrum-designed schedules against simple/karras/beta/default.")
    ap.add_argument("--testbed", choices=["gaussian", "embedded", "both"], default="both")
    ap.add_argument("--steps", type=wholes(2), default="8,20,50", help="comma-separated step counts")
    ap.add_argument("--samples", type=whole(64), default=64,
                    help="embedded: samples per method (>= 64, the primary metric's minimum)")
    ap.add_argument("--reference", type=whole(64), default=64, help="embedded: 50-step reference samples (>= 64)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=whole(0), default=0)
    ap.add_argument("--out", default="bench/results")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    check_out_dir(args.out)
    torch.set_grad_enabled(False)
    cmd = (f"python -m spectral_progressive.bench.schedule_design --out {args.out} --threads {args.threads or 'auto'} "
           f"--testbed {args.testbed} --steps {','.join(map(str, args.steps))} --samples {args.samples} "
           f"--reference {args.reference}")
    payload: dict = {"command": cmd, "torch": torch.__version__}
    if args.testbed in ("gaussian", "both"):
        payload["gaussian"] = gaussian_rows(args.steps)
    if args.testbed in ("embedded", "both"):
        payload["embedded"], payload["floor"] = embedded_rows(args.steps, args.samples, args.reference, args.seed)
    md = markdown(payload)
    print(md)
    write_json(os.path.join(args.out, "schedule_design.json"), payload)
    with open(os.path.join(args.out, "schedule_design.md"), "w") as fh:
        fh.write(md + "\n")


if __name__ == "__main__":
    main()

"""Quality at matched compute, ablations and design choices (issue 5; seed 001 Sec. 5.4).

    python -m spectral_progressive.bench.quality --testbed gaussian|embedded [--steps 50] [--samples 64]
                                                 [--bootstrap 100] [--adapter FILE] [--out bench/results]

gaussian: data with independent DCT coefficients of variance A w^-beta on a 32x32 grid (A, beta
scaled so the switch times equal FLUX's at 128x128), its exact denoiser and FLUX's shifted schedule
shape (shift e^1.15).  Every method is linear
in its noise, so the output law is N(0, C) with C obtained exactly from impulse responses, and the
KL to the data law is exact.
embedded: the shipped model (and its Sec. 4.3 adapter when one ships), every method at its token
cost against full size at fewer steps (``matched_cost``): the primary metric (patch Frechet and
patch sliced-W to the model's own 50-step samples on disjoint seeds, seed-bootstrap intervals and
the floor), same-seed PSNR/SSIM against the 50-step run, and held-out data as a sanity check; the
quality-versus-cost plots quality_vs_cost.png (Frechet) and quality_vs_cost_sw.png.

Gaussian rows have their FLOP-ideal speed-up (tokens) and, for progressive rows, the fewer-step
baseline at the same cost alongside.
"""
from __future__ import annotations

import argparse
import math
import os

import torch

from ..schedules import plan_stages
from ..spectral_core import progressive_denoiser, sample_ab2, sample_euler, sample_progressive, transforms
from ..spectral_core.gaussian import GaussianSpectrumModel
from ..spectral_core.spectra import PowerLaw
from .common import existing_file, prepare_run, table, whole, write_json
from .embedded_setup import ADAPTER_PATH, linear_sigmas
from .matched_cost import (Method, add_equal_cost_gaps, cost_plot, evaluate, full_size, public_rows, reference_samples,
                           seeded_noise)
from ..spectral_core.plan import call_cost
from .variants import naive_progressive, no_alignment, plan_cost

GAUSS_SIZE = 32
GAUSS_LAW = PowerLaw(203.62 * 4 ** -1.9155, 1.9155)  # FLUX at 128x128, frequencies scaled to a 32x32 grid


def methods(sig: torch.Tensor, size: int, law: PowerLaw, multiple: int, steps: int):
    """(name, group, kind, plan or None, extra) rows of the benchmark."""
    def plan(scales=(0.5, 1.0), delta=0.01, **kw):
        return plan_stages(sig, (size, size), delta=delta, scales=scales, spectrum=law, spatial_multiple=multiple,
                           respace=kw.pop("respace", "affine"), **kw)
    rows = [("baseline", "reference", "baseline", None, {})]
    for S, scales in ((2, (0.5, 1.0)), (3, (0.25, 0.5, 1.0))):
        for d in (0.001, 0.01, 0.05, 0.1, 0.2):
            rows.append((f"progressive S={S} delta={d}", "delta/S sweep", "progressive", plan(scales, d), {}))
    p2, p3 = plan(), plan((0.25, 0.5, 1.0))
    for label, p in (("S=2", p2), ("S=3", p3)):
        rows.append((f"naive upscale+renoise {label}", "baselines", "naive", p, {}))
        rows.append((f"no timestep alignment {label}", "baselines", "noalign", p, {}))
    for tr in ("dwt", "fft"):
        rows.append((f"transform {tr} S=2", "transform", "progressive", plan(transform=tr), {}))
    rows.append(("refill matched S=2", "refill", "progressive", plan(refill="matched"), {}))
    rows.append(("refill fresh noise S=2", "refill", "progressive", p2, {"fresh_refill": True}))
    rows.append(("respace keep S=2", "respace", "progressive", plan(respace="keep"), {}))
    rows.append(("patch zero, user sigmas S=2", "formulation", "patch", p2, {"high": "zero", "grid": "user"}))
    rows.append(("patch zero, mapped sigmas S=2", "formulation", "patch", p2, {"high": "zero", "grid": "mapped"}))
    rows.append(("patch wiener, user sigmas S=2", "formulation", "patch", p2, {"high": "wiener", "grid": "user"}))
    rows.append(("patch wiener, mapped sigmas S=2", "formulation", "patch", p2, {"high": "wiener", "grid": "mapped"}))
    t_star = p2.stages[0].switch_time
    for shift in (-0.1, 0.1):  # the step split: the same plan with the switch moved off Prop. 2's time
        t_sw = min(0.98, max(0.02, t_star + shift))
        rows.append((f"switch at t={t_sw:.2f} (Prop. 2: {t_star:.2f}) S=2", "step split", "progressive",
                     plan(switch_at=[t_sw]), {}))
    rows.append(("AB2 multistep, progressive S=2", "sampler", "progressive", p2, {"sampler": sample_ab2}))
    rows.append(("AB2 multistep, patch zero mapped S=2", "sampler", "patch", p2,
                 {"high": "zero", "grid": "mapped", "sampler": sample_ab2}))
    return rows


FLUX_SHIFT = math.exp(1.15)  # FLUX's time shift at 1024^2 (mu = 1.15)


def _shifted_sigmas(steps: int, shift: float = FLUX_SHIFT) -> torch.Tensor:
    """sigma = s t / (1 + (s - 1) t) on equally spaced t: FLUX's schedule shape."""
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return shift * t / (1.0 + (shift - 1.0) * t)


def run_method(model, noise, fresh, sig, kind, plan, extra, law):
    """One method on a batch of noise; returns (output, cost in full-size steps)."""
    sampler = extra.get("sampler", sample_euler)
    if kind == "baseline":
        return sampler(model, noise, sig.to(noise.dtype)), len(sig) - 1
    if kind == "progressive":
        refill = fresh if extra.get("fresh_refill") else None
        x = noise * float(sig[0])
        if refill is not None:  # fresh noise for the new bands: pass it with the start's own low band
            refill = refill - transforms.project_low(refill, plan.stages[0].size) + transforms.project_low(noise, plan.stages[0].size)
        return sample_progressive(model, x, sig.to(noise.dtype), plan=plan, sampler=sampler, noise=refill), plan_cost(plan)
    if kind == "naive":
        return naive_progressive(model, noise, plan, fresh, sampler), plan_cost(plan, extra_low_calls=1)
    if kind == "noalign":
        return no_alignment(model, noise, plan, sampler), plan_cost(plan)
    if kind == "patch":
        grid = plan.full_sigmas() if extra["grid"] == "mapped" else sig
        den = progressive_denoiser(model, plan, high=extra["high"], spectrum=law)
        calls = []
        counted = lambda x, s, **k: (calls.append(plan.stage_index(float(s.reshape(-1)[0]))), den(x, s, **k))[1]  # noqa: E731
        out = sampler(counted, noise * float(grid[0]), grid.to(noise.dtype))
        return out, call_cost([plan.stages[i].size for i in calls], plan.full_size)
    raise ValueError(kind)


# ---------------------------------------------------------------- Gaussian testbed (exact KL)

def gaussian_kl_of_linear_map(model: GaussianSpectrumModel, m_noise: torch.Tensor, m_fresh: torch.Tensor | None) -> float:
    """KL(N(0, C) || N(0, diag P)), C = M1^T M1 + M2^T M2 in DCT coefficients."""
    p = model.power.flatten()
    c = m_noise.T @ m_noise
    if m_fresh is not None:
        c = c + m_fresh.T @ m_fresh
    d = p.numel()
    sign, logdet = torch.linalg.slogdet(c)
    if sign <= 0:
        return float("inf")
    return float(0.5 * ((torch.diagonal(c) / p).sum() - d + torch.log(p).sum() - logdet))


def gaussian_bench(steps: int) -> list[dict]:
    """Every method with Euler and with AB2 (a second-order solver whose own discretisation error
    is small, so its KL isolates the method's approximation)."""
    size = GAUSS_SIZE
    model = GaussianSpectrumModel.power_law(GAUSS_LAW, (size, size))
    sig = _shifted_sigmas(steps)
    d = size * size
    basis = transforms.inverse(torch.eye(d, dtype=torch.float64).reshape(d, 1, size, size), "dct")
    zeros = torch.zeros_like(basis)

    def kl(kind, plan, extra, grid) -> tuple[float, float]:
        out_n, cost = run_method(model, basis, zeros, grid, kind, plan, extra, GAUSS_LAW)
        m2 = None
        if kind == "naive" or extra.get("fresh_refill"):
            out_f, _ = run_method(model, zeros, basis, grid, kind, plan, extra, GAUSS_LAW)
            m2 = transforms.forward(out_f, "dct").reshape(d, d)
        return gaussian_kl_of_linear_map(model, transforms.forward(out_n, "dct").reshape(d, d), m2), cost

    rows = []
    for name, group, kind, plan, extra in methods(sig, size, GAUSS_LAW, 1, steps):
        if group == "sampler":
            continue  # both samplers are run for every row below
        row = {"method": name, "group": group}
        for label, smp in (("Euler", sample_euler), ("AB2", sample_ab2)):
            value, cost = kl(kind, plan, dict(extra, sampler=smp), sig)
            row["speed-up (tokens)"] = steps / cost
            row[f"KL {label}"] = value
            if kind != "baseline":
                eq = max(1, round(cost))
                row["equal-cost steps"] = eq
                row[f"equal-cost KL {label}"] = kl("baseline", None, {"sampler": smp}, _shifted_sigmas(eq))[0]
        rows.append(row)
    return rows


# ---------------------------------------------------------------- embedded model

EMBEDDED_FEWER_STEPS = (5, 8, 12, 20, 30, 40)


def embedded_methods(emb, steps: int, adapter: str | None) -> list[Method]:
    """The quality-versus-cost sweep on the embedded model: full size at fewer steps, training-free
    progressive (delta sweep, S=2 and 3, formulation 1 = the sampler, formulation 2 = the model patch
    on the mapped grid), the Sec. 4.3 fine-tuned model, naive upscale and re-noise."""
    sig = linear_sigmas(steps)
    model = emb.model
    out = [full_size(model, steps)] + [full_size(model, n) for n in EMBEDDED_FEWER_STEPS if n < steps]

    def plan(S: int, delta: float):
        return emb.plan(sig.double(), (0.5, 1.0) if S == 2 else (0.25, 0.5, 1.0), delta, respace="affine")

    def sampler(m, p, name, family):
        return Method(name, family, plan_cost(p), lambda noise: sample_progressive(m, noise, sig, plan=p))

    for S, deltas in ((2, (0.01, 0.05, 0.2, 0.5)), (3, (0.01, 0.2))):
        for dl in deltas:
            out.append(sampler(model, plan(S, dl), f"progressive S={S} delta={dl}", f"progressive S={S} (sampler)"))
    for S in (2,):
        p = plan(S, 0.01)
        grid = p.full_sigmas().float()
        den = progressive_denoiser(model, p, high="zero")
        out.append(Method(f"model patch S={S} delta=0.01", "progressive (model patch, mapped grid)",
                          plan_cost(p, grid=grid), lambda noise, den=den, grid=grid: sample_euler(den, noise, grid)))
    fresh_gen = torch.Generator().manual_seed(12345)
    for S in (2, 3):
        p = plan(S, 0.01 if S == 2 else 0.2)
        out.append(Method(f"naive upscale+renoise S={S} delta={0.01 if S == 2 else 0.2}", "naive upscale + re-noise", plan_cost(p, extra_low_calls=1),
                          lambda noise, p=p: naive_progressive(model, noise, p, torch.randn(noise.shape, generator=fresh_gen))))
    if adapter:  # the plan the adapter was trained for, and S=2 plans on either side of it
        from .embedded_setup import adapter_plan, load_finetuned
        tuned, own = load_finetuned(adapter), adapter_plan(emb, sig.double(), adapter)
        out.append(sampler(model, own, "progressive, the fine-tuned plan, training-free", f"progressive S={len(own.stages)} (sampler)"))
        out.append(sampler(tuned, own, "fine-tuned progressive, its own plan", "fine-tuned progressive (Sec. 4.3)"))
        out.append(sampler(tuned, plan(2, 0.5), "fine-tuned progressive S=2 delta=0.5", "fine-tuned progressive (Sec. 4.3)"))
    return out


def embedded_bench(steps: int, samples: int, seed: int, adapter: str | None, bootstrap: int, out_dir: str) -> list[dict]:
    from .embedded_setup import heldout_data, load_embedded
    emb = load_embedded()
    noise = seeded_noise(samples, emb.size, seed)
    print(f"reference: {samples} samples, {steps} steps, disjoint seeds", flush=True)
    reference = reference_samples(emb.model, samples, emb.size, seed, steps)
    rows, outs = evaluate(embedded_methods(emb, steps, adapter), noise, reference, high_step_name=f"full size {steps} steps",
                          heldout=heldout_data(max(256, samples), seed=1), bootstrap=bootstrap, full_steps=steps)
    add_equal_cost_gaps(rows, outs, reference, bootstrap=bootstrap)
    cost_plot(rows).save(os.path.join(out_dir, "quality_vs_cost.png"))
    cost_plot(rows, key="patch SW", title="patch sliced-W to the model's own 50-step samples (lower is better)").save(
        os.path.join(out_dir, "quality_vs_cost_sw.png"))
    return public_rows(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Quality at matched compute, ablations and design choices.")
    ap.add_argument("--testbed", choices=["gaussian", "embedded"], default="gaussian")
    ap.add_argument("--steps", type=whole(2), default=50)
    ap.add_argument("--samples", type=whole(2), default=64, help="embedded testbed: samples per method (and reference)")
    ap.add_argument("--bootstrap", type=whole(0), default=100, help="embedded testbed: seed-bootstrap draws")
    ap.add_argument("--adapter", type=existing_file, default=None,
                    help="embedded testbed: a fine-tuning adapter (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=whole(0), default=0)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    prepare_run(args)
    adapter = args.adapter or (str(ADAPTER_PATH) if ADAPTER_PATH.is_file() else None)
    rows = gaussian_bench(args.steps) if args.testbed == "gaussian" else embedded_bench(
        args.steps, args.samples, args.seed, adapter, args.bootstrap, args.out)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print(table(rows, cols))
    write_json(os.path.join(args.out, f"quality_{args.testbed}.json"),
               {"command": f"python -m spectral_progressive.bench.quality --testbed {args.testbed} --steps {args.steps}"
                           + (f" --samples {args.samples} --bootstrap {args.bootstrap}" + (f" --adapter {args.adapter}" if args.adapter else "")
                              if args.testbed == "embedded" else ""),
                "adapter": adapter if args.testbed == "embedded" else None,
                "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()

"""Oracle low stage: how much of progressive sampling's error is the pipeline's, how much the model's?

    python -m spectral_progressive.bench.oracle [--seeds 32] [--steps 50] [--delta 0.01] [--threads 1]

The oracle is a low-stage denoiser with the signature of the real one (``model(x_lo, sigma_lo)``, a
stage-size prediction of x_0).  It asks the full-size model instead, on the state the run would have
if it were expanded now, and contracts the answer (``spectral_core.cross_size``:
D_lo = C_0 D(E_s(x_lo; eps'), t~)).  eps' is the run's own full-size unit noise ("own": what the
progressive run will use at its switch), another fixed draw ("independent"), or a new draw at every
call ("fresh").

Every progressive run below is ``sample_progressive`` with the plan's own sigmas; only the low-stage
denoiser changes.  Scored by same-seed PSNR / SSIM against the full-size run on all the steps:

* model:                the shipped model at the stage size (what the pack does);
* oracle:               the oracle in every low-stage call (the pipeline's own error);
* oracle t>a / model t>a: the oracle only above / only below full-size time a, the model elsewhere;
* oracle, independent / fresh noise: the oracle expanded with noise that is not the run's own
  (the part of the error that comes from not seeing the run's own high band);
* full size, same steps: the full-size model on the plan's full-size grid (``StagePlan.full_sigmas``,
  the same step allocation with no contraction at all).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

import torch

from ..spectral_core import get_frame, sample_euler, sample_progressive
from ..spectral_core.cross_size import contracted_full_prediction
from .common import fraction, fractions, prepare_run, table, whole, write_json, zero_or_whole

Denoiser = Callable[..., torch.Tensor]
NOISES = ("own", "independent", "fresh")


class OracleDenoiser:
    """Low-stage denoiser that answers with the full-size model's contracted prediction.

    ``model``: the full-size denoiser ``model(x, sigma) -> x_0`` (model frame ``frame``).
    ``plan``: the StagePlan of the run (full size, transform, refill and spectrum of its expansion).
    ``noise``: full-size unit noise for the new band (None: a fresh draw from ``generator`` per call).
    ``use_oracle(t_full)``: whether a call at full-size time t~ goes to the oracle (default: always);
    the others go to ``fallback`` (default ``model``) at the stage size.  Full-size calls pass through.
    ``calls`` counts "oracle", "fallback" and "full" calls.
    """

    def __init__(self, model: Denoiser, plan: Any, *, noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, frame: str = "const",
                 use_oracle: Callable[[float], bool] | None = None, fallback: Denoiser | None = None) -> None:
        self.model, self.plan, self.noise, self.generator = model, plan, noise, generator
        self.frame = get_frame(frame)
        self.full = tuple(plan.full_size)
        self.use_oracle = use_oracle if use_oracle is not None else (lambda t: True)
        self.fallback = fallback if fallback is not None else model
        self.calls = {"oracle": 0, "fallback": 0, "full": 0}

    def full_time(self, x: torch.Tensor, sigma: torch.Tensor | float) -> tuple[float, float]:
        """(s, t~): the stage's own flow time of this call and the full-size time it maps to."""
        s = float(self.frame.t_of_sigma(float(torch.as_tensor(sigma).reshape(-1)[0])))
        g = ((self.full[0] * self.full[1]) / (x.shape[-2] * x.shape[-1])) ** 0.5
        return s, g * s / (1.0 + (g - 1.0) * s)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if tuple(x.shape[-2:]) == self.full:
            self.calls["full"] += 1
            return self.model(x, sigma, **kwargs)
        s, t_full = self.full_time(x, sigma)
        if not self.use_oracle(t_full):
            self.calls["fallback"] += 1
            return self.fallback(x, sigma, **kwargs)
        self.calls["oracle"] += 1
        return self.predict(x, sigma, s, **kwargs)

    def predict(self, x: torch.Tensor, sigma: torch.Tensor, s: float, **kwargs: Any) -> torch.Tensor:
        """C_0 D(E_s(x; eps'), t~) at the stage size (one sigma for the whole batch;
        ``spectral_core.cross_size``)."""
        sig = torch.as_tensor(sigma)
        x_flow = self.frame.to_flow(x, float(sig.reshape(-1)[0]))
        noise = self.noise
        if noise is not None and noise.shape[0] != x.shape[0]:
            noise = noise[: x.shape[0]]

        def flow_model(big: torch.Tensor, t_big: torch.Tensor) -> torch.Tensor:
            sig_full = float(self.frame.sigma_of_t(float(t_big[0])))
            return self.model(self.frame.from_flow(big, sig_full), torch.full_like(sig, sig_full), **kwargs)

        spectrum = self.plan.spectrum if self.plan.refill == "matched" else None
        return contracted_full_prediction(flow_model, x_flow, s, self.full, transform=self.plan.transform,
                                          noise=noise, refill=self.plan.refill, spectrum=spectrum,
                                          generator=self.generator)


def own_noise_rules(splits: tuple[float, ...] = (0.9,)) -> dict[str, Callable[[float], bool] | None]:
    """The benchmark's low stages that refill with the run's own noise, by name: when each one asks the
    oracle (``use_oracle(t~)``; None: always) instead of the model."""
    rules: dict[str, Callable[[float], bool] | None] = {"model (the pack)": lambda t: False,
                                                        "oracle, own noise": None}
    for a in splits:
        rules[f"oracle at t>{a}, model after"] = lambda t, a=a: t > a
        rules[f"model at t>{a}, oracle after"] = lambda t, a=a: t <= a
    return rules


def oracle_methods(model: Denoiser, plan: Any, noise: torch.Tensor, splits: tuple[float, ...] = (0.9,), *,
                   seed: int = 0, frame: str = "const") -> dict[str, OracleDenoiser]:
    """The low-stage denoisers of the benchmark, by name (see the module docstring)."""
    other = torch.randn(noise.shape, generator=torch.Generator().manual_seed(seed + 7919), dtype=noise.dtype)
    out = {name: OracleDenoiser(model, plan, noise=noise, frame=frame, use_oracle=rule)
           for name, rule in own_noise_rules(splits).items()}
    out["oracle, independent noise"] = OracleDenoiser(model, plan, noise=other, frame=frame)
    out["oracle, fresh noise each call"] = OracleDenoiser(model, plan, frame=frame,
                                                          generator=torch.Generator().manual_seed(seed + 104729))
    return out


def _score(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    from .metrics import psnr, ssim
    p, s = psnr(out, ref), ssim(out, ref)
    n = max(out.shape[0], 1)
    se = lambda v: float(v.std(unbiased=True) / n ** 0.5) if n > 1 else float("nan")  # noqa: E731
    return {"PSNR dB": float(p.mean()), "PSNR s.e.": se(p), "SSIM": float(s.mean()), "SSIM s.e.": se(s)}


def run_plan(model: Denoiser, plan: Any, sigmas: torch.Tensor, noise: torch.Tensor, ref: torch.Tensor,
             splits: tuple[float, ...] = (0.9,), seed: int = 0) -> list[dict]:
    """Rows (method, low-stage calls, PSNR / SSIM against ``ref``) for one plan."""
    rows = []
    for name, den in oracle_methods(model, plan, noise, splits, seed=seed).items():
        out = sample_progressive(den, noise * float(sigmas[0]), sigmas, plan=plan, noise=noise)
        rows.append({"method": name, "low-stage calls: oracle / model": f"{den.calls['oracle']} / {den.calls['fallback']}",
                     **_score(out, ref)})
    grid = plan.full_sigmas().to(noise.dtype)
    out = sample_euler(model, noise * float(grid[0]), grid)
    rows.append({"method": f"full size, same steps ({len(grid) - 1})", "low-stage calls: oracle / model": "0 / 0",
                 **_score(out, ref)})
    return rows


COLUMNS = ["plan", "method", "low-stage calls: oracle / model", "PSNR dB", "PSNR s.e.", "SSIM", "SSIM s.e."]
PRIMARY_COLUMNS = ["method", "patch Frechet", "Frechet 95% CI", "within floor", "patch SW", "same-seed PSNR dB",
                   "Frechet minus full size at the S=2 cost [95% CI]", "SW minus it [95% CI]"]


def primary_methods(model: Denoiser, plan: Any, sigmas: torch.Tensor, splits: tuple[float, ...]) -> list:
    """The S=2 rows of the primary metric (``matched_cost.Method``): the 50-step run (the floor), the
    pack, the oracle in every low-stage call and each split, all with the run's own noise for the
    new band, and full size at the pack's cost."""
    from ..spectral_core.plan import plan_cost
    from .matched_cost import Method, full_size

    def progressive(use_oracle: Callable[[float], bool] | None):
        def run(noise: torch.Tensor) -> torch.Tensor:
            den = OracleDenoiser(model, plan, noise=noise, use_oracle=use_oracle)
            return sample_progressive(den, noise * float(sigmas[0]), sigmas, plan=plan, noise=noise)
        return run

    cost = plan_cost(plan)
    methods = [full_size(model, len(sigmas) - 1, "floor")]
    methods += [Method(name, "diagnostic", cost, progressive(rule)) for name, rule in own_noise_rules(splits).items()]
    return methods + [full_size(model, max(1, round(cost)))]


def primary_rows(model: Denoiser, plan: Any, sigmas: torch.Tensor, n: int, seed: int, splits: tuple[float, ...],
                 bootstrap: int) -> list[dict]:
    """The primary metric (DESIGN.md: patch Frechet / SW to the model's own 50-step samples on ``n``
    disjoint seeds, seed-bootstrap intervals) of ``primary_methods``, each with its paired difference
    to full size at the pack's cost."""
    from .matched_cost import evaluate, paired_gap, public_rows, reference_samples, seeded_noise

    methods = primary_methods(model, plan, sigmas, splits)
    size = int(plan.full_size[-1])
    reference = reference_samples(model, n, size, seed, len(sigmas) - 1)
    rows, outs = evaluate(methods, seeded_noise(n, size, seed), reference, high_step_name=methods[0].name,
                          bootstrap=bootstrap, full_steps=len(sigmas) - 1)
    equal = methods[-1].name
    for r in rows:
        if r["family"] == "diagnostic":
            g = paired_gap(outs, reference, r["method"], equal, bootstrap=bootstrap)
            r["Frechet minus full size at the S=2 cost [95% CI]"] = (f"{g['Frechet difference']:+.3f} "
                                                                    f"{g['Frechet difference 95% CI']}")
            r["SW minus it [95% CI]"] = f"{g['SW difference']:+.4f} {g['SW difference 95% CI']}"
    return public_rows(rows)


def _markdown(payload: dict) -> str:
    lines = ["# Oracle low stage on the embedded model", "", f"Command: `{payload['command']}`", "",
             f"{payload['seeds']} seeds, {payload['steps']} Euler steps (linear t), delta {payload['delta']}, "
             f"respace affine; PSNR / SSIM of each run against the same-seed {payload['steps']}-step full-size run "
             "(mean and standard error over seeds).", ""]
    for key, summary in payload["plans"].items():
        lines += [f"Plan {key}:", "", "```", summary, "```", ""]
    lines += [table(payload["rows"], COLUMNS), ""]
    if payload.get("primary_rows"):
        lines += [f"Primary metric, plan S=2 ({payload['primary_samples']} seeds against as many 50-step samples on "
                  f"disjoint seeds, {payload['bootstrap']} seed-bootstrap draws; paired differences on the same seeds; "
                  "the oracle rows cost full-size calls, so their cost is not the plan's):", "",
                  table(payload["primary_rows"], PRIMARY_COLUMNS), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Progressive sampling with an oracle low stage (full-size model, contracted).")
    ap.add_argument("--seeds", type=whole(1), default=32)
    ap.add_argument("--steps", type=whole(2), default=50)
    ap.add_argument("--delta", type=fraction, default=0.01)
    ap.add_argument("--splits", type=fractions, default="0.9,0.95",
                    help="full-size times a of the oracle/model splits, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default=None, help="safetensors weights of the embedded architecture")
    ap.add_argument("--threads", type=whole(1), default=None)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--primary", type=zero_or_whole(2), default=0,
                    help="also score the S=2 rows on the primary metric with this many seeds (0: skip)")
    ap.add_argument("--bootstrap", type=whole(0), default=100, help="seed-bootstrap draws of the primary metric")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    prepare_run(args)
    from .embedded_setup import linear_sigmas, load_embedded
    emb = load_embedded(weights=args.weights)
    sig = linear_sigmas(args.steps)
    noise = torch.randn(args.seeds, 3, emb.size, emb.size, generator=torch.Generator().manual_seed(args.seed))
    ref = sample_euler(emb.model, noise.clone(), sig)
    plans = {"S=2": emb.plan(sig, (0.5, 1.0), args.delta, respace="affine"),
             "S=3": emb.plan(sig, (0.25, 0.5, 1.0), args.delta, respace="affine")}
    rows = []
    for key, plan in plans.items():
        rows += [{"plan": key, **r} for r in run_plan(emb.model, plan, sig, noise, ref, args.splits, args.seed)]
    payload = {"command": "python -m spectral_progressive.bench.oracle " + " ".join(argv),
               "weights": args.weights or "shipped", "seeds": args.seeds, "steps": args.steps, "delta": args.delta,
               "splits": list(args.splits), "plans": {k: p.summary() for k, p in plans.items()}, "rows": rows}
    print(table(rows, COLUMNS))
    if args.primary:
        payload.update(primary_samples=args.primary, bootstrap=args.bootstrap,
                       primary_rows=primary_rows(emb.model, plans["S=2"], sig, args.primary, args.seed, args.splits,
                                                 args.bootstrap))
        print(table(payload["primary_rows"], PRIMARY_COLUMNS))
    write_json(os.path.join(args.out, "oracle.json"), payload)
    with open(os.path.join(args.out, "oracle.md"), "w") as fh:
        fh.write(_markdown(payload))


if __name__ == "__main__":
    main()

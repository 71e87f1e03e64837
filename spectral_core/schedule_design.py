"""Spectrum-designed noise schedules (seed 002: Benita, Elad, Keshet, "Designing Scheduling for Diffusion
Models via Spectral Analysis", arXiv 2502.00180).

Under Gaussian data with power spectrum P_w, the sampler's output law per coefficient is N(0, G_w^2 v_in)
with G_w the closed-form transfer function of ``spectral_transfer``.  The designed schedule of N steps is

    sigma* = argmin_sigma  sum_w m_w KL(N(0, G_w(sigma)^2 v_in) || N(0, P_w))

over schedules from the start sigma_0 down to 0 (m_w: multiplicity of the radial frequency on the DCT grid).
Parametrisation (flow frame, t = the frame's time of sigma): N logits z, u = (1 - m) softmax(z) + m / N
(m = 1e-6, so no two times ever coincide),

    t_k = t_max - (t_max - t_min) (u_0 + ... + u_{k-1}),  k = 1 .. N-1,   t_N = 0,

so the schedule is strictly decreasing, starts at t_max, and its last non-zero time stays above t_min
(the model's smallest sigma).  z = 0 is the schedule linear in t.  The objective KL / KL(z = 0) is
minimised in float64 with L-BFGS (strong Wolfe line search) from z = 0: deterministic, and each accepted
step decreases it.
Sigmas are returned in the model's frame (sigma = t for CONST, t / (1 - t) for EPS models).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .frames import Frame, get_frame
from .spectra import PowerLaw
from .spectral_transfer import (SAMPLERS, STARTS, binned_weights, frequency_weights, gaussian_kl, spectral_kl,
                                start_variance, transfer_gain)
from .validation import check_size, fail

MAX_STEPS = 1000
_MIX = 1e-6  # share of the span spread evenly over the steps, so no two times ever coincide


@dataclass(frozen=True)
class ScheduleDesign:
    """A designed schedule: model-frame ``sigmas`` (float64, N + 1 values, last 0), its flow ``times``,
    the spectral KL it reaches and the KL of the linear-in-t schedule it started from (nats per channel)."""

    sigmas: torch.Tensor
    times: torch.Tensor
    kl: float
    kl_linear: float
    iterations: int
    frame: str
    sampler: str
    start: str
    size: tuple[int, int]
    law: PowerLaw
    t_min: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1

    def summary(self) -> str:
        return (f"spectrum-designed schedule ({self.sampler}, {self.steps} steps, {self.size[0]}x{self.size[1]} grid, "
                f"P(w) = {self.law.A:.5g} w^-{self.law.beta:.4g}): spectral KL {self.kl:.4g} nats/channel "
                f"(linear-in-t schedule: {self.kl_linear:.4g})")


def times_from_logits(z: torch.Tensor, t_max: float, t_min: float) -> torch.Tensor:
    """Flow times t_0 = t_max > t_1 > ... > t_{N-1} > t_min, t_N = 0 from N logits (module doc)."""
    u = (1.0 - _MIX) * torch.softmax(z, dim=0) + _MIX / z.numel()  # every step keeps a sliver of the span
    inner = t_max - (t_max - t_min) * torch.cumsum(u, dim=0)[:-1]
    return torch.cat([z.new_full((1,), t_max), inner, z.new_zeros(1)])


def sigmas_of_times(times: torch.Tensor, frame: Frame) -> torch.Tensor:
    """Model-frame sigmas of flow times below 1 (differentiable)."""
    return times if frame.name == "const" else times / (1.0 - times)


def _check_design_args(law: object, steps: object, frame: Frame, sampler: str, start: str, sigma_max: float,
                       sigma_min: float) -> tuple[float, float]:
    """Validates the arguments; returns (t_max, t_min)."""
    if not isinstance(law, PowerLaw):
        fail("spectrum", "a PowerLaw", type(law).__name__)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        fail("steps", f"a whole number of steps in [1, {MAX_STEPS}]", steps)
    if sampler not in SAMPLERS:
        fail("sampler", f"one of {SAMPLERS}", sampler)
    if start not in STARTS:
        fail("start", f"one of {STARTS}", start)
    for name, v in (("sigma_max", sigma_max), ("sigma_min", sigma_min)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v == v or v <= 0 or v == float("inf"):
            fail(name, "a positive finite number", v)
    t_max, t_min = float(frame.t_of_sigma(float(sigma_max))), float(frame.t_of_sigma(float(sigma_min)))
    if frame.name == "const" and sigma_max > 1.0:
        fail("sigma_max", "at most 1 for a CONST (flow) model", sigma_max)
    if not t_min < t_max:
        fail("sigma_min", f"a value below sigma_max={sigma_max}", sigma_min)
    return t_max, t_min


def design_sigmas(law: PowerLaw, size: tuple[int, int], steps: int, *, frame: str | Frame = "const",
                  sampler: str = "euler", start: str = "noise", sigma_max: float = 1.0, sigma_min: float = 1e-3,
                  max_iter: int = 200, bins: int = 512) -> ScheduleDesign:
    """The N-step schedule from ``sigma_max`` to 0 minimising the spectral KL (module doc) of ``sampler``
    on a ``size`` latent grid for data with spectrum ``law``; ``start`` is the sampler's input law
    (``spectral_transfer.start_variance``).  The optimiser sees the frequencies in at most ``bins``
    groups (``spectral_transfer.binned_weights``); the reported KLs are exact.  Raises ValueError naming
    the argument on bad input."""
    fr = get_frame(frame)
    size = check_size(size, "size")
    t_max, t_min = _check_design_args(law, steps, fr, sampler, start, sigma_max, sigma_min)
    # ComfyUI runs nodes in inference mode: the design's own autograd graph needs it off (and fresh tensors)
    with torch.inference_mode(False), torch.enable_grad():
        power, weights = binned_weights(*frequency_weights(law, size), bins)
        v_in = start_variance(start, torch.tensor(float(sigma_max), dtype=torch.float64), power, fr)

        def kl_of(z: torch.Tensor) -> torch.Tensor:
            sig = sigmas_of_times(times_from_logits(z, t_max, t_min), fr)
            return gaussian_kl(transfer_gain(sig, power, fr, sampler) ** 2 * v_in, power, weights)

        z = torch.zeros(steps, dtype=torch.float64, requires_grad=True)
        kl_linear = float(kl_of(z.detach()))
        iterations = 0
        if steps > 1 and math.isfinite(kl_linear) and kl_linear > 0:
            iterations = _minimise(lambda: kl_of(z) / kl_linear, z, max_iter)
        z = z.detach().clone()
    times = times_from_logits(z.detach(), t_max, t_min)
    linear = times_from_logits(torch.zeros_like(z.detach()), t_max, t_min)
    exact = {name: spectral_kl(sigmas_of_times(t, fr), law, size, frame=fr, sampler=sampler, start=start)
             for name, t in (("designed", times), ("linear", linear))}
    if not exact["designed"] <= exact["linear"]:  # only possible through the binning, or a NaN
        times, exact["designed"] = linear, exact["linear"]
    return ScheduleDesign(sigmas_of_times(times, fr), times, exact["designed"], exact["linear"], iterations, fr.name,
                          sampler, start, size, law, t_min)


def _minimise(objective, z: torch.Tensor, max_iter: int) -> int:
    """L-BFGS with strong Wolfe line search on ``objective()`` over ``z``; returns the iterations run."""
    opt = torch.optim.LBFGS([z], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, history_size=30,
                            tolerance_grad=1e-9, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = objective()
        value.backward()
        return value

    opt.step(closure)
    return int(opt.state[opt._params[0]].get("n_iter", 0))


@dataclass(frozen=True)
class PlanDesign:
    """A schedule refined for a progressive plan: the user ``sigmas`` to plan on, the plan made from them,
    its exact progressive KL, the KL and FLOP-ideal speed-up of the plan of the starting design."""

    sigmas: torch.Tensor
    plan: Any
    kl: float
    kl_start: float
    ratio_start: float
    evaluations: int


def logits_of_times(times: torch.Tensor, t_min: float) -> torch.Tensor:
    """Inverse of ``times_from_logits`` (up to the softmax's free constant)."""
    inc = torch.cat([times[:-2] - times[1:-1], (times[-2] - t_min).reshape(1)])
    soft = (inc / inc.sum() - _MIX / inc.numel()) / (1.0 - _MIX)
    return torch.log(soft.clamp_min(1e-300))


def design_for_plan(design: ScheduleDesign, plan_of: Callable[[torch.Tensor], Any], *,
                    max_evals: int = 2000) -> PlanDesign:
    """Refines ``design`` for progressive sampling: the sigmas a planner (``plan_of(sigmas) -> StagePlan``,
    e.g. ``plan_stages`` with the run's settings) then plans on, scored by the plan's exact KL
    (``progressive_transfer.progressive_kl``).  Coordinate search on the logits with halving steps
    (0.5 .. 1e-3); a move is kept only if the KL falls and the plan's FLOP-ideal speed-up does not drop
    below the starting plan's, so the result never costs more than planning on ``design.sigmas``."""
    from .progressive_transfer import progressive_kl
    if design.start == "marginal":
        fail("start", "a pure-noise start ('noise' or 'unit_marginal') for a progressive plan", design.start)
    fr = get_frame(design.frame)
    t_max = float(design.times[0])
    std = t_max if design.start == "noise" else ((1.0 - t_max) ** 2 + t_max ** 2) ** 0.5

    def score(z: torch.Tensor) -> tuple[float, float, Any, torch.Tensor]:
        sig = sigmas_of_times(times_from_logits(z, t_max, design.t_min), fr)
        plan = plan_of(sig)
        return progressive_kl(plan, design.law, design.sampler, std), plan.compute_ratio("tokens"), plan, sig

    z = logits_of_times(design.times, design.t_min)
    best, ratio0, plan, sig = score(z)
    kl0, evals, step = best, 1, 0.5
    while step > 1e-3 and evals < max_evals and design.steps > 1:
        improved = False
        for i in range(len(z)):
            for move in (step, -step):
                trial = z.clone()
                trial[i] += move
                kl, ratio, p, s = score(trial)
                evals += 1
                if kl < best and ratio >= ratio0 - 1e-9:
                    best, z, plan, sig, improved = kl, trial, p, s, True
                    break
        if not improved:
            step /= 2.0
    return PlanDesign(sig, plan, best, kl0, ratio0, evals)

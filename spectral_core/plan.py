"""The stage plan as plain typed data, its stage sizes and cost, and the only sigma rework
(seed 001 Sec. 4.1-4.2, DESIGN.md "Stages and sigmas").

A plan says which latent size runs which flow times.  Stage i runs on an (h_i, w_i) latent over its
own times, from its entry time down to its switch time t_i*; the next stage enters at the aligned
time t~_i = g t_i* / (1 + (g - 1) t_i*) (g = size ratio).  Formulation 2 (the model patch) leaves
stage i where the full-size time falls below T_i = aligned_time(t_i*, g_i), g_i = full / stage i.

Sigma rework (the one copy the planner, the nodes and the benchmarks use), on decreasing flow times:

* ``restart_below(start, times)``:  [start] + the times below start ("keep": the user's own grid);
* ``affine_respace(times, start)``: the same count of times mapped affinely so that the first lands
  on ``start`` and the last stays ("affine": the paper's allocation, seed 001 Sec. 4.1).

Cost (one model call per step; tokens p = 1 for linear layers, p = 2 for attention): a call at
(h, w) costs (h w / (H W))^p full-size calls; ``plan_cost`` sums that over the calls of a plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from .expansion import aligned_time
from .frames import Frame
from .spectra import PowerLaw
from .validation import fail

RESPACE = ("keep", "affine")
DEFAULT_RESPACE = "affine"  # the planner's, the schedule's and every node's default
ENTRIES = ("noise", "signal")
TOL = 1e-7  # flow times closer than this are the same grid point


@dataclass(frozen=True)
class Stage:
    size: tuple[int, int]  # spatial latent size of this stage
    times: tuple[float, ...]  # the stage's own flow times, entry first, switch (or final) last
    sigmas: torch.Tensor  # the same grid in model sigmas (float64, CPU): exactly what the loop runs
    growth: float  # g_i = sqrt(H W / (h_i w_i)) to the full size
    switch_time: float | None  # own-frame t_i* at which it expands; None for the last stage

    @property
    def steps(self) -> int:
        return len(self.times) - 1

    @property
    def full_switch_time(self) -> float | None:
        """T_i: the full-size time at which formulation 2 leaves this stage."""
        return None if self.switch_time is None else aligned_time(self.switch_time, self.growth)


@dataclass(frozen=True)
class RunSettings:
    """How the stages are run: the transform, what refills new bands at a switch (with the spectrum
    prior for "matched"), and whether the start is pure noise or carries an image."""

    transform: str = "dct"
    refill: str = "paper"
    spectrum: PowerLaw | None = None
    entry: str = "noise"


@dataclass(frozen=True)
class PlanOrigin:
    """What the plan was made from (reported, never used to run it)."""

    delta: float
    scales: tuple[float, ...]
    respace: str


@dataclass(frozen=True)
class StagePlan:
    """The schedule (stages over the user's sigmas) and, apart, how to run it (``run``)."""

    stages: tuple[Stage, ...]
    full_size: tuple[int, int]
    frame: Frame
    user_sigmas: torch.Tensor
    run: RunSettings
    origin: PlanOrigin
    notes: tuple[str, ...] = field(default=())
    full_from: float = 0.0  # full-size times at or below this always run at full size (min_full_steps)

    transform = property(lambda self: self.run.transform)
    refill = property(lambda self: self.run.refill)
    spectrum = property(lambda self: self.run.spectrum)
    entry = property(lambda self: self.run.entry)
    delta = property(lambda self: self.origin.delta)
    scales = property(lambda self: self.origin.scales)
    respace = property(lambda self: self.origin.respace)

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @property
    def full_switch_times(self) -> list[float]:
        return [s.full_switch_time for s in self.stages[:-1]]  # type: ignore[misc]

    def stage_index(self, t_full: float) -> int:
        """Formulation 2: the stage active at full-size time t (stage i while t > T_i); the last
        ``min_full_steps`` steps of the planned grid (t <= ``full_from``) always run at full size."""
        if t_full <= self.full_from + 1e-6:
            return len(self.stages) - 1
        for i, s in enumerate(self.stages[:-1]):
            if t_full > s.full_switch_time + 1e-6:  # type: ignore[operator]
                return i
        return len(self.stages) - 1

    def full_sigmas(self) -> torch.Tensor:
        """The full-size grid on which formulation 2 gives this plan's step allocation."""
        pts: list[float] = []
        for s in self.stages:
            mapped = [aligned_time(t, s.growth) for t in s.times]
            if pts and abs(mapped[0] - pts[-1]) < 1e-9:
                mapped = mapped[1:]
            pts.extend(mapped)
        return times_to_sigmas(pts, self.frame)

    def compute_ratio(self, cost: str = "tokens", grid: torch.Tensor | None = None) -> float:
        """FLOP-ideal speed-up (``speedup``); cost "tokens" (linear layers) or "tokens2" (attention)."""
        if cost not in COSTS:
            fail("cost", f"one of {tuple(COSTS)}", cost)
        return speedup(self, power=COSTS[cost], grid=grid)

    def summary(self) -> str:
        lines = []
        for i, s in enumerate(self.stages):
            end = "end" if s.switch_time is None else f"t*={s.switch_time:.4f}"
            lines.append(f"stage {i + 1}: {s.size[0]}x{s.size[1]}, {s.steps} steps, t {s.times[0]:.4f} -> "
                         f"{s.times[-1]:.4f} ({end})")
        lines.append(f"FLOP-ideal speed-up: {speedup(self, power=1):.3f}x (tokens), "
                     f"{speedup(self, power=2):.3f}x (tokens^2)")
        return "\n".join(lines + list(self.notes))


def refill_spectrum(refill: str, spectrum: PowerLaw | None, growth: float) -> PowerLaw | None:
    """The spectrum prior as seen on a stage's grid (P / g^2: P scales with the number of pixels) for
    refill "matched"; None for "paper" (the refill needs no prior)."""
    if refill != "matched" or spectrum is None:
        return None
    return PowerLaw(spectrum.A / growth ** 2, spectrum.beta, spectrum.w_min)


# ------------------------------------------------------------------------------------------------
# stage sizes

def snap(value: float, multiple: int, limit: int) -> int:
    """Round to the nearest multiple (at least one multiple, at most ``limit``)."""
    return int(min(max(multiple, multiple * round(value / multiple)), limit))


def stage_sizes(latent_size: Sequence[int], scales: Sequence[float], multiple: int = 1) -> list[tuple[int, int]]:
    """(h_i, w_i) = s_i (H, W) snapped to the spatial multiple; the last is exactly (H, W), whatever
    its divisibility (models pad odd sizes themselves)."""
    H, W = int(latent_size[0]), int(latent_size[1])
    sizes = [(snap(s * H, multiple, H), snap(s * W, multiple, W)) for s in scales[:-1]]
    return sizes + [(H, W)]


def stage_scale(size: Sequence[int], full_size: Sequence[int]) -> float:
    """The scale s of a stage as Prop. 2 uses it: min(h / H, w / W) of the actual (snapped) sizes."""
    return min(size[0] / full_size[0], size[1] / full_size[1])


# ------------------------------------------------------------------------------------------------
# sigma rework

def times_to_sigmas(times: Iterable[float], frame: Frame) -> torch.Tensor:
    """Flow times -> model sigmas (float64, CPU); t = 1 is sigma = inf outside the CONST frame."""
    return torch.tensor([float(frame.sigma_of_t(t)) if t < 1.0 or frame.name == "const" else float("inf")
                         for t in times], dtype=torch.float64)


def restart_below(start: float, times: Iterable[float], tol: float = TOL) -> list[float]:
    """[start] followed by the grid ``times`` strictly below it (by more than ``tol``)."""
    return [start] + [t for t in times if t < start - tol]


def affine_respace(times: Sequence[float], start: float) -> list[float]:
    """The decreasing ``times`` mapped affinely so that the first becomes ``start`` and the last stays:
    t -> t_n + (t - t_n) (start - t_n) / (t_0 - t_n); a single point gives [start, t_n]."""
    t0, tn = times[0], times[-1]
    if not t0 > tn:
        return [start, tn]
    return [tn + (t - tn) * (start - tn) / (t0 - tn) for t in times]


def restart_sigmas(sigmas: Iterable[float], t_start: float, frame: Frame, tol: float = TOL) -> torch.Tensor:
    """Model sigmas restarting at flow time ``t_start``: sigma(t_start), then the given sigmas whose
    time is below it (the user's own values, untouched).  float32, as ComfyUI's SIGMAS."""
    vals = [float(v) for v in sigmas]
    t_of = [float(frame.t_of_sigma(v)) for v in vals]
    below = [v for v, t in zip(vals, t_of) if t < t_start - tol]
    return torch.tensor([float(frame.sigma_of_t(t_start))] + below, dtype=torch.float32)


def respace_sigmas(sigmas: Sequence[float], t_start: float, frame: Frame, respace: str) -> torch.Tensor:
    """The rest of a run after a switch to flow time ``t_start``; ``sigmas[0]`` is where the latent was.
    "keep": ``restart_sigmas`` over sigmas[1:]; "affine": all of them re-spaced from ``t_start``."""
    vals = [float(v) for v in sigmas]
    if respace == "keep" or len(vals) < 2:
        return restart_sigmas(vals[1:], t_start, frame, tol=0.0)
    times = affine_respace([float(frame.t_of_sigma(v)) for v in vals], t_start)
    return torch.tensor([float(frame.sigma_of_t(t)) for t in times], dtype=torch.float32)


# ------------------------------------------------------------------------------------------------
# cost

COSTS = {"tokens": 1, "tokens2": 2}


def _tokens(sizes: Iterable[Sequence[int]], power: int) -> int:
    return sum((int(h) * int(w)) ** power for h, w in sizes)


def call_cost(sizes: Iterable[Sequence[int]], full_size: Sequence[int], power: int = 1) -> float:
    """sum_k (h_k w_k / (H W))^p: model calls at these spatial sizes, in full-size calls."""
    return _tokens(sizes, power) / _tokens([full_size], power)


def call_sizes(plan: StagePlan, grid: torch.Tensor | None = None) -> list[tuple[int, int]]:
    """The latent size of every model call of ``plan``: formulation 1 (the sampler, ``grid`` None), or
    formulation 2 (the model patch) run on the full-size model sigmas ``grid``."""
    if grid is None:
        return [tuple(s.size) for s in plan.stages for _ in range(s.steps)]  # type: ignore[misc]
    return [tuple(plan.stages[plan.stage_index(float(plan.frame.t_of_sigma(float(v))))].size)  # type: ignore[misc]
            for v in grid[:-1]]


def plan_cost(plan: StagePlan, *, power: int = 1, grid: torch.Tensor | None = None,
              extra_low_calls: int = 0) -> float:
    """Model compute of a plan in full-size calls (one call per step; see ``call_sizes``), plus
    ``extra_low_calls`` calls at the end of every low stage (e.g. a baseline's extra x_0 prediction)."""
    sizes = call_sizes(plan, grid) + [tuple(s.size) for s in plan.stages[:-1] for _ in range(extra_low_calls)]
    return call_cost(sizes, plan.full_size, power)


def speedup(plan: StagePlan, *, power: int = 1, grid: torch.Tensor | None = None) -> float:
    """FLOP-ideal speed-up: the user's steps at full size over ``plan_cost`` (exact integer token counts,
    one division)."""
    return (len(plan.user_sigmas) - 1) * _tokens([plan.full_size], power) / _tokens(call_sizes(plan, grid), power)

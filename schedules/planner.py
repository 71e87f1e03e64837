"""The stage planner: which latent size runs which sigmas (seed 001 Sec. 4.1-4.2, DESIGN.md).

Formulation 1 (the paper's loop) runs stage i on an (h_i, w_i) latent over its own flow times,
from its entry time down to t_i*; the user's grid values are used as the stage's own times, which
is the paper's step allocation.  At t_i* the latent is expanded (g = size ratio) and the next stage
starts at t~_i = g t_i* / (1 + (g - 1) t_i*).  How the next stage continues:

* ``respace="keep"``:   [t~_i] followed by the user's remaining grid values below t~_i;
* ``respace="affine"``: the user's remaining grid values below t_i* (as many steps as the user had
  left) mapped affinely so that the first lands on t~_i and the last stays where it was.

Formulation 2 (the model patch) keeps the latent full size: stage i is active while the full-size
time is above T_i = g_i t_i* / (1 + (g_i - 1) t_i*), g_i = full / stage i.  ``full_sigmas`` is the
full-size grid on which it reproduces formulation 1 exactly (each stage's times mapped by g_i).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from ..spectral_core import transforms
from ..spectral_core.expansion import REFILLS, aligned_time, contracted_time, growth
from ..spectral_core.frames import Frame, get_frame
from ..spectral_core.spectra import PowerLaw
from ..spectral_core.validation import check_open_unit, check_scales, check_size, fail
from .presets import resolve_spectrum
from .switching import stage_switch_times

RESPACE = ("keep", "affine")
ENTRIES = ("noise", "signal")
COSTS = ("tokens", "tokens2")
_TOL = 1e-7


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
class StagePlan:
    stages: tuple[Stage, ...]
    full_size: tuple[int, int]
    frame: Frame
    transform: str
    refill: str
    spectrum: PowerLaw
    entry: str
    user_sigmas: torch.Tensor
    delta: float
    scales: tuple[float, ...]
    respace: str
    notes: tuple[str, ...] = field(default=())
    full_from: float = 0.0  # full-size times at or below this always run at full size (min_full_steps)

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
        return _sigmas(pts, self.frame)

    def compute_ratio(self, cost: str = "tokens", grid: torch.Tensor | None = None) -> float:
        """FLOP-ideal speed-up: baseline cost / plan cost, one model call per step.

        cost "tokens" (linear layers) or "tokens2" (attention).  Baseline: the user's steps at full
        size.  With ``grid`` (full-size model sigmas), the cost of formulation 2 run on that grid.
        """
        if cost not in COSTS:
            fail("cost", f"one of {COSTS}", cost)
        power = 1 if cost == "tokens" else 2
        full = float(self.full_size[0] * self.full_size[1]) ** power
        base = (len(self.user_sigmas) - 1) * full
        if grid is None:
            ours = sum(s.steps * float(s.size[0] * s.size[1]) ** power for s in self.stages)
        else:
            sizes = [self.stages[self.stage_index(float(self.frame.t_of_sigma(float(v))))].size for v in grid[:-1]]
            ours = sum(float(h * w) ** power for h, w in sizes)
        return base / ours

    def summary(self) -> str:
        lines = []
        for i, s in enumerate(self.stages):
            end = "end" if s.switch_time is None else f"t*={s.switch_time:.4f}"
            lines.append(f"stage {i + 1}: {s.size[0]}x{s.size[1]}, {s.steps} steps, t {s.times[0]:.4f} -> "
                         f"{s.times[-1]:.4f} ({end})")
        lines.append(f"FLOP-ideal speed-up: {self.compute_ratio('tokens'):.3f}x (tokens), "
                     f"{self.compute_ratio('tokens2'):.3f}x (tokens^2)")
        return "\n".join(lines + list(self.notes))


def _sigmas(times: Sequence[float], frame: Frame) -> torch.Tensor:
    return torch.tensor([float(frame.sigma_of_t(t)) if t < 1.0 or frame.name == "const" else float("inf")
                         for t in times], dtype=torch.float64)


def snap(value: float, multiple: int, limit: int) -> int:
    """Round to the nearest multiple (at least one multiple, at most ``limit``)."""
    return int(min(max(multiple, multiple * round(value / multiple)), limit))


def stage_sizes(latent_size: tuple[int, int], scales: Sequence[float], multiple: int) -> list[tuple[int, int]]:
    """(h_i, w_i) = s_i (H, W) snapped to the spatial multiple; the last is exactly (H, W), whatever
    its divisibility (models pad odd sizes themselves)."""
    H, W = latent_size
    sizes = [(snap(s * H, multiple, H), snap(s * W, multiple, W)) for s in scales[:-1]]
    return sizes + [(H, W)]


def plan_stages(sigmas: torch.Tensor | Sequence[float], latent_size: Sequence[int], *, delta: float = 0.01,
                scales: Sequence[float] = (0.5, 1.0), spectrum: object = "flux", frame: str | Frame = "const",
                spatial_multiple: int = 1, respace: str = "keep", switch_at: Sequence[float] | None = None,
                entry: str = "noise", transform: str = "dct", refill: str = "paper",
                min_full_steps: int = 1) -> StagePlan:
    """Plan progressive sampling of a ``latent_size`` latent over the user's ``sigmas``.

    Switch times: Prop. 2 (``stage_switch_times``) from ``delta`` and ``spectrum``, or ``switch_at``
    (own-frame flow times, one per stage but the last, decreasing).  ``entry="noise"``: the run starts
    from pure noise and the first stage takes the low band at the same sigma; ``"signal"``: the start
    carries an image (img2img) and is contracted exactly, entering each stage at its contracted time;
    stages whose work is already done at entry are skipped.

    Never more compute, never without the full size (issue 13): the last ``min_full_steps`` steps of
    ``sigmas`` always run at full size (a low stage ends at the latest where they begin; a run with no
    more steps than that runs plainly), and a plan whose model compute (tokens) is not below the plain
    run's is replaced by the plain one-stage plan, with the reason in its notes.
    """
    fr = get_frame(frame)
    H, W = check_size(tuple(int(v) for v in latent_size) if isinstance(latent_size, (tuple, list, torch.Size))
                      else latent_size, "latent_size")
    delta = check_open_unit(delta, "delta")
    scales = check_scales(scales, "scales")
    law = resolve_spectrum(spectrum)
    tr = transforms.get_transform(transform)
    if not isinstance(spatial_multiple, int) or spatial_multiple < 1:
        fail("spatial_multiple", "a positive int", spatial_multiple)
    if min(H, W) < spatial_multiple:
        fail("latent_size", f"a latent at least one patch ({spatial_multiple}) on each side", (H, W))
    if scales[0] * min(H, W) < spatial_multiple:
        fail("scales", f"a first stage of at least one patch ({spatial_multiple} latent pixels); scale "
             f"{scales[0]} of {(H, W)} is smaller", scales)
    if respace not in RESPACE:
        fail("respace", f"one of {RESPACE}", respace)
    if entry not in ENTRIES:
        fail("entry", f"one of {ENTRIES}", entry)
    if refill not in REFILLS:
        fail("refill", f"one of {REFILLS}", refill)
    if isinstance(min_full_steps, bool) or not isinstance(min_full_steps, int) or min_full_steps < 1:
        fail("min_full_steps", "an int >= 1 (full-size steps at the end of every run)", min_full_steps)

    sig = torch.as_tensor(sigmas, dtype=torch.float64).flatten().cpu()
    if sig.numel() < 2:
        fail("sigmas", "at least two sigmas (one step)", tuple(sig.tolist()))
    if not bool(torch.isfinite(sig[1:]).all()) or bool(torch.isnan(sig).any()) or bool((sig < 0).any()):
        fail("sigmas", "finite non-negative sigmas", "NaN, inf or negative values")
    if bool((sig[1:] >= sig[:-1]).any()):
        fail("sigmas", "a strictly decreasing schedule", tuple(round(v, 5) for v in sig.tolist()))
    user_t = [float(fr.t_of_sigma(v)) if math.isfinite(v) else 1.0 for v in sig.tolist()]
    if fr.name == "const" and user_t[0] > 1.0 + 1e-6:
        fail("sigmas", "sigmas in [0, 1] for a CONST (flow) model", sig[0].item())
    user_t = [min(t, 1.0) for t in user_t]

    sizes = stage_sizes((H, W), scales, spatial_multiple)
    for sz in sizes[:-1]:
        tr.check_sizes(sz, (H, W), "scales")
    if switch_at is None:
        switches = stage_switch_times(delta, law, (H, W), [min(h / H, w / W) for h, w in sizes[:-1]] + [1.0])
    else:
        try:
            switches = [float(v) for v in switch_at]
        except (TypeError, ValueError):
            fail("switch_at", "a sequence of flow times", switch_at)
        if (len(switches) != len(scales) - 1 or any(not 0.0 < v < 1.0 for v in switches)
                or any(b >= a for a, b in zip(switches, switches[1:]))):
            fail("switch_at", f"{len(scales) - 1} decreasing flow times in (0, 1), one per stage but the last", switch_at)
    notes: list[str] = []
    # merge stages whose snapped size equals the next one (nothing to gain); keep the later switch
    merged_sizes, merged_sw = [], []
    for i, sz in enumerate(sizes):
        if i + 1 < len(sizes) and sizes[i + 1] == sz:
            notes.append(f"scale {scales[i]} snaps to the same size as the next stage; merged")
            continue
        merged_sizes.append(sz)
        if i < len(switches):
            merged_sw.append(switches[i])
    sizes, switches = merged_sizes, merged_sw

    gs = [growth(sz, (H, W)) for sz in sizes]
    t0, t_last = user_t[0], user_t[-1]
    # the last min_full_steps steps run at full size: no low stage's full-size switch time T_i is below
    # where they begin (own frame: contracted_time), and formulation 1 keeps that many steps after it
    full_from = user_t[-1 - min_full_steps] if len(user_t) > min_full_steps else 1.0
    floors = [contracted_time(full_from, g) for g in gs]
    # which stage the run enters, and at what own-frame time
    first = len(sizes) - 1
    for i in range(len(sizes) - 1):
        entry_t = t0 if entry == "noise" else contracted_time(t0, gs[i])
        if entry_t > max(switches[i], floors[i]) + _TOL:
            first = i
            break
        if entry_t > switches[i] + _TOL:
            notes.append(f"stage {i + 1} skipped: the last {min_full_steps} step(s) run at full size")
        else:
            notes.append(f"stage {i + 1} skipped: the run enters below its switch time {switches[i]:.4f}")
    start = t0 if entry == "noise" else contracted_time(t0, gs[first])

    future = [start] + [t for t in user_t if t < start - _TOL]
    stages: list[Stage] = []
    for i in range(first, len(sizes)):
        if i == len(sizes) - 1:
            stages.append(Stage(sizes[i], tuple(future), _sigmas(future, fr), gs[i], None))
            break
        end = max(switches[i], t_last, floors[i])
        head = [t for t in future if t > end + _TOL] + [end]
        tail = [t for t in future if t <= end + _TOL]  # a switch on a grid point keeps its step
        if respace == "affine" and i + 2 == len(sizes) and len(tail) < min_full_steps + 1:
            tail = future[-1 - min_full_steps:]  # spacing of the last full-size steps, mapped below t~
        stages.append(Stage(sizes[i], tuple(head), _sigmas(head, fr), gs[i], end))
        g_step = growth(sizes[i], sizes[i + 1])
        t_next = aligned_time(end, g_step)
        if respace == "keep" or not tail:
            future = [t_next] + [t for t in future if t < t_next - _TOL]
            if len(future) == 1:
                future.append(t_last)
        else:
            r0 = tail[0]
            span = r0 - t_last
            future = [t_last + (t - t_last) * (t_next - t_last) / span for t in tail] if span > 0 else [t_next, t_last]
    plan = StagePlan(tuple(stages), (H, W), fr, tr.name, refill, law, entry, sig, delta, scales, respace,
                     tuple(notes), full_from if len(stages) > 1 else 0.0)
    if len(stages) > 1 and plan.compute_ratio("tokens") <= 1.0 + 1e-9:
        cost = 1.0 / plan.compute_ratio("tokens")
        return _plain(plan, user_t, f"progressive stages dropped: they would cost {cost:.2f}x the plain run's model "
                            f"compute on {len(user_t) - 1} step(s)")
    return plan


def _plain(plan: StagePlan, user_t: list[float], why: str) -> StagePlan:
    """The one-stage (plain, full-size) plan over the user's own flow times ``user_t``, noting ``why``
    (a full-size stage enters at the user's own start, whatever the entry)."""
    times = list(user_t)
    stage = Stage(plan.full_size, tuple(times), _sigmas(times, plan.frame), 1.0, None)
    return replace(plan, stages=(stage,), notes=plan.notes + (why,), full_from=0.0)

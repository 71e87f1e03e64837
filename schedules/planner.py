"""The stage planner: which latent size runs which sigmas (seed 001 Sec. 4.1-4.2, DESIGN.md).

Formulation 1 (the paper's loop) runs stage i on an (h_i, w_i) latent over its own flow times,
from its entry time down to t_i*; the user's grid values are used as the stage's own times, which
is the paper's step allocation.  At t_i* the latent is expanded (g = size ratio) and the next stage
starts at t~_i = g t_i* / (1 + (g - 1) t_i*).  How the next stage continues (``spectral_core.plan``):

* ``respace="keep"``:   [t~_i] followed by the user's remaining grid values below t~_i
  (``restart_below``);
* ``respace="affine"`` (the default): the user's remaining grid values below t_i* (as many steps as
  the user had left) mapped affinely so that the first lands on t~_i and the last stays where it was
  (``affine_respace``).

Formulation 2 (the model patch) keeps the latent full size: stage i is active while the full-size
time is above T_i = g_i t_i* / (1 + (g_i - 1) t_i*), g_i = full / stage i.  ``full_sigmas`` is the
full-size grid on which it reproduces formulation 1 exactly (each stage's times mapped by g_i).

``plan_stages`` is the public entry: it checks every argument once, then ``build_plan`` trusts them
(``ScheduleSpec.plan`` calls it with a schedule checked when it was made).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from ..spectral_core import transforms
from ..spectral_core.expansion import REFILLS, aligned_time, contracted_time, growth
from ..spectral_core.frames import Frame, get_frame
from ..spectral_core.plan import (DEFAULT_RESPACE, ENTRIES, RESPACE, TOL, PlanOrigin, RunSettings, Stage, StagePlan,
                                  affine_respace, restart_below, snap, speedup, stage_scale, stage_sizes,
                                  times_to_sigmas)
from ..spectral_core.spectra import PowerLaw
from ..spectral_core.validation import check_open_unit, check_scales, check_size, fail
from .presets import resolve_spectrum
from .switching import stage_switch_times

__all__ = ["DEFAULT_RESPACE", "ENTRIES", "RESPACE", "PlanRequest", "Stage", "StagePlan", "build_plan",
           "check_min_full_steps", "check_run", "check_switch_at", "plan_stages", "snap", "stage_sizes"]


@dataclass(frozen=True)
class PlanRequest:
    """Everything ``build_plan`` needs, already checked: the user's flow times and the schedule."""

    sigmas: torch.Tensor  # float64, CPU, strictly decreasing
    user_t: list[float]
    size: tuple[int, int]
    frame: Frame
    law: PowerLaw
    delta: float
    scales: tuple[float, ...]
    multiple: int
    respace: str
    switch_at: list[float] | None
    entry: str
    transform: str
    refill: str
    min_full_steps: int


def check_run(sigmas: torch.Tensor | Sequence[float], latent_size: Sequence[int], frame: str | Frame,
              spatial_multiple: int, entry: str) -> tuple[torch.Tensor, list[float], tuple[int, int], Frame]:
    """The run's own arguments (what a schedule does not fix): (sigmas, flow times, size, frame)."""
    fr = get_frame(frame)
    size = check_size(tuple(int(v) for v in latent_size) if isinstance(latent_size, (tuple, list, torch.Size))
                      else latent_size, "latent_size")
    if isinstance(spatial_multiple, bool) or not isinstance(spatial_multiple, int) or spatial_multiple < 1:
        fail("spatial_multiple", "a positive int", spatial_multiple)
    if min(size) < spatial_multiple:
        fail("latent_size", f"a latent at least one patch ({spatial_multiple}) on each side", size)
    if entry not in ENTRIES:
        fail("entry", f"one of {ENTRIES}", entry)
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
    return sig, [min(t, 1.0) for t in user_t], size, fr


def check_min_full_steps(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        fail("min_full_steps", "an int >= 1 (full-size steps at the end of every run)", n)
    return n  # type: ignore[return-value]


def check_switch_at(switch_at: Sequence[float], stages: int) -> list[float]:
    try:
        switches = [float(v) for v in switch_at]
    except (TypeError, ValueError):
        fail("switch_at", "a sequence of flow times", switch_at)
    if (len(switches) != stages - 1 or any(not 0.0 < v < 1.0 for v in switches)
            or any(b >= a for a, b in zip(switches, switches[1:]))):
        fail("switch_at", f"{stages - 1} decreasing flow times in (0, 1), one per stage but the last", switch_at)
    return switches


def plan_stages(sigmas: torch.Tensor | Sequence[float], latent_size: Sequence[int], *, delta: float = 0.01,
                scales: Sequence[float] = (0.5, 1.0), spectrum: object = "flux", frame: str | Frame = "const",
                spatial_multiple: int = 1, respace: str = DEFAULT_RESPACE, switch_at: Sequence[float] | None = None,
                entry: str = "noise", transform: str = "dct", refill: str = "paper",
                min_full_steps: int = 1) -> StagePlan:
    """Plan progressive sampling of a ``latent_size`` latent over the user's ``sigmas``.

    Switch times: Prop. 2 (``stage_switch_times``) from ``delta`` and ``spectrum`` (a preset name, a
    PowerLaw or (A, beta)), or ``switch_at`` (own-frame flow times, one per stage but the last,
    decreasing).  ``entry="noise"``: the run starts from pure noise and the first stage takes the low
    band at the same sigma; ``"signal"``: the start carries an image (img2img) and is contracted
    exactly, entering each stage at its contracted time; stages whose work is already done at entry
    are skipped.

    Never more compute, never without the full size (issue 13): the last ``min_full_steps`` steps of
    ``sigmas`` always run at full size (a low stage ends at the latest where they begin; a run with no
    more steps than that runs plainly), and a plan whose model compute (tokens) is not below the plain
    run's is replaced by the plain one-stage plan, with the reason in its notes.
    """
    sig, user_t, size, fr = check_run(sigmas, latent_size, frame, spatial_multiple, entry)
    scales = check_scales(scales, "scales")
    if respace not in RESPACE:
        fail("respace", f"one of {RESPACE}", respace)
    if refill not in REFILLS:
        fail("refill", f"one of {REFILLS}", refill)
    check_min_full_steps(min_full_steps)
    req = PlanRequest(sig, user_t, size, fr, resolve_spectrum(spectrum), check_open_unit(delta, "delta"), scales,
                      spatial_multiple, respace, None if switch_at is None else check_switch_at(switch_at, len(scales)),
                      entry, transforms.get_transform(transform).name, refill, min_full_steps)
    return build_plan(req)


def _sizes_and_switches(req: PlanRequest, notes: list[str]) -> tuple[list[tuple[int, int]], list[float]]:
    """Snapped stage sizes with their switch times; stages that snap to the next one's size merge."""
    H, W = req.size
    if req.scales[0] * min(H, W) < req.multiple:
        fail("scales", f"a first stage of at least one patch ({req.multiple} latent pixels); scale "
             f"{req.scales[0]} of {(H, W)} is smaller", req.scales)
    sizes = stage_sizes(req.size, req.scales, req.multiple)
    tr = transforms.get_transform(req.transform)
    for sz in sizes[:-1]:
        tr.check_sizes(sz, req.size, "scales")
    switches = req.switch_at if req.switch_at is not None else stage_switch_times(
        req.delta, req.law, req.size, [stage_scale(sz, req.size) for sz in sizes[:-1]] + [1.0])
    merged_sizes, merged_sw = [], []
    for i, sz in enumerate(sizes):
        if i + 1 < len(sizes) and sizes[i + 1] == sz:  # nothing to gain; keep the later switch
            notes.append(f"scale {req.scales[i]} snaps to the same size as the next stage; merged")
            continue
        merged_sizes.append(sz)
        if i < len(switches):
            merged_sw.append(switches[i])
    return merged_sizes, merged_sw


def _entry(req: PlanRequest, gs: list[float], switches: list[float], floors: list[float],
           notes: list[str]) -> tuple[int, float]:
    """The stage the run enters and its own-frame start time (stages done at entry are skipped)."""
    t0 = req.user_t[0]
    first = len(gs) - 1
    for i in range(len(gs) - 1):
        entry_t = t0 if req.entry == "noise" else contracted_time(t0, gs[i])
        if entry_t > max(switches[i], floors[i]) + TOL:
            first = i
            break
        if entry_t > switches[i] + TOL:
            notes.append(f"stage {i + 1} skipped: the last {req.min_full_steps} step(s) run at full size")
        else:
            notes.append(f"stage {i + 1} skipped: the run enters below its switch time {switches[i]:.4f}")
    return first, t0 if req.entry == "noise" else contracted_time(t0, gs[first])


def _stages(req: PlanRequest, sizes: list[tuple[int, int]], switches: list[float], gs: list[float],
            floors: list[float], first: int, start: float) -> list[Stage]:
    """Stages ``first``.. over the user's times from ``start``, each continued by ``req.respace``."""
    t_last, fr = req.user_t[-1], req.frame
    future = restart_below(start, req.user_t)
    stages: list[Stage] = []
    for i in range(first, len(sizes) - 1):
        end = max(switches[i], t_last, floors[i])
        head = [t for t in future if t > end + TOL] + [end]
        tail = [t for t in future if t <= end + TOL]  # a switch on a grid point keeps its step
        if req.respace == "affine" and i + 2 == len(sizes) and len(tail) < req.min_full_steps + 1:
            tail = future[-1 - req.min_full_steps:]  # spacing of the last full-size steps, mapped below t~
        stages.append(Stage(sizes[i], tuple(head), times_to_sigmas(head, fr), gs[i], end))
        t_next = aligned_time(end, growth(sizes[i], sizes[i + 1]))
        if req.respace == "keep" or not tail:
            future = restart_below(t_next, future)
            if len(future) == 1:
                future.append(t_last)
        else:
            future = affine_respace(tail, t_next)
    stages.append(Stage(sizes[-1], tuple(future), times_to_sigmas(future, fr), gs[-1], None))
    return stages


def build_plan(req: PlanRequest) -> StagePlan:
    """The plan of checked arguments (see ``plan_stages``)."""
    notes: list[str] = []
    sizes, switches = _sizes_and_switches(req, notes)
    gs = [growth(sz, req.size) for sz in sizes]
    # the last min_full_steps steps run at full size: no low stage's full-size switch time T_i is below
    # where they begin (own frame: contracted_time), and formulation 1 keeps that many steps after it
    n = req.min_full_steps
    full_from = req.user_t[-1 - n] if len(req.user_t) > n else 1.0
    floors = [contracted_time(full_from, g) for g in gs]
    first, start = _entry(req, gs, switches, floors, notes)
    stages = _stages(req, sizes, switches, gs, floors, first, start)
    plan = StagePlan(tuple(stages), req.size, req.frame, req.sigmas,
                     RunSettings(req.transform, req.refill, req.law, req.entry),
                     PlanOrigin(req.delta, req.scales, req.respace), tuple(notes),
                     full_from if len(stages) > 1 else 0.0)
    if len(stages) > 1 and speedup(plan) <= 1.0 + 1e-9:
        return _plain(plan, req.user_t, f"progressive stages dropped: they would cost {1.0 / speedup(plan):.2f}x the "
                                        f"plain run's model compute on {len(req.user_t) - 1} step(s)")
    return plan


def _plain(plan: StagePlan, user_t: list[float], why: str) -> StagePlan:
    """The one-stage (plain, full-size) plan over the user's own flow times ``user_t``, noting ``why``
    (a full-size stage enters at the user's own start, whatever the entry)."""
    stage = Stage(plan.full_size, tuple(user_t), times_to_sigmas(user_t, plan.frame), 1.0, None)
    return replace(plan, stages=(stage,), notes=plan.notes + (why,), full_from=0.0)

"""Prompt editing from an entry stage (seed 001 Sec. 5.5, App. G) as a plan: which stage's band of the
source is kept, where the run restarts and on which sigmas, and the schedule the rest of the run keeps.

The edit keeps the source's band below stage k (noised to its switch time t_k*) and refills the band
above by spectral noise expansion (``spectral_core.editing.edit_start``), so the run restarts at the
full-size time T = g_k t_k* / (1 + (g_k - 1) t_k*) on the user's sigmas below T
(``spectral_core.plan.restart_sigmas``), with the full plan's switch times pinned.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..spectral_core.editing import edit_start
from ..spectral_core.plan import Stage, StagePlan, restart_sigmas
from ..spectral_core.validation import fail
from .spec import ScheduleSpec


def pick_entry_stage(full_switch_times: list[float], entry_stage: int, strength: float) -> int:
    """1-based entry stage k: ``entry_stage`` when > 0, else the stage whose full-size switch time
    (the noise level the edit restarts from) is closest to ``strength``."""
    n = len(full_switch_times)
    if n == 0:
        fail("schedule", "at least two stages (a low stage to keep the source's structure from)", "one stage")
    if entry_stage > 0:
        if entry_stage > n:
            fail("entry_stage", f"a stage from 1 to {n} (the plan has {n + 1} stages)", entry_stage)
        return entry_stage
    if not 0.0 <= strength <= 1.0:
        fail("strength", "a value in [0, 1]", strength)
    return 1 + min(range(n), key=lambda i: abs(full_switch_times[i] - strength))


def pinned(spec: ScheduleSpec, plan: StagePlan) -> ScheduleSpec:
    """``spec`` with the plan's switch times fixed (manual mode, model sigmas), whatever its mode: a run
    on other sigmas (a restart) keeps the stages of the full run."""
    return replace(spec, mode="manual", switch_steps=None,
                   switch_sigmas=tuple(float(plan.frame.sigma_of_t(st.switch_time)) for st in plan.stages[:-1]))


@dataclass(frozen=True)
class EditRun:
    entry: int  # 1-based entry stage k
    stage: Stage
    start: torch.Tensor  # full-size flow-frame latent at t_restart
    t_restart: float
    sigma_restart: float
    sigmas: torch.Tensor  # the run's model sigmas from sigma(t_restart)
    spec: ScheduleSpec  # the schedule of the rest of the run

    def summary(self, plan: StagePlan) -> str:
        times = ", ".join(f"stage {i + 1}: {t:.4f}" for i, t in enumerate(plan.full_switch_times))
        return (f"entry stage {self.entry} ({self.stage.size[0]}x{self.stage.size[1]} band kept), restart at "
                f"t={self.t_restart:.4f} (sigma {self.sigma_restart:.4f}), {len(self.sigmas) - 1} steps\n"
                f"switch times (full-size t): {times}")


def edit_run(spec: ScheduleSpec, plan: StagePlan, x0: torch.Tensor, noise: torch.Tensor, entry_stage: int,
             strength: float) -> EditRun:
    """The edit of clean data ``x0`` (flow frame, full size) with the run's unit ``noise`` on ``plan``
    (made from the user's full sigmas)."""
    k = pick_entry_stage(plan.full_switch_times, entry_stage, strength)
    stage = plan.stages[k - 1]
    x_t, t = edit_start(x0, noise, stage.size, stage.switch_time, plan.transform)
    return EditRun(k, stage, x_t, t, float(plan.frame.sigma_of_t(t)), restart_sigmas(plan.user_sigmas, t, plan.frame),
                   pinned(spec, plan))


__all__ = ["EditRun", "edit_run", "pick_entry_stage", "pinned"]

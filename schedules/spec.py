"""A schedule as the user sets it in the GUI, resolved into a StagePlan once the sampler sees the
model and the sigmas (one resolution path for the nodes, the web preview route and the demo)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from ..spectral_core.expansion import REFILLS
from ..spectral_core.plan import DEFAULT_RESPACE, RESPACE, StagePlan
from ..spectral_core.spectra import PowerLaw
from ..spectral_core.transforms import TRANSFORMS
from ..spectral_core.validation import check_open_unit, check_scales, fail
from .planner import PlanRequest, build_plan, check_min_full_steps, check_run, check_switch_at
from .presets import PRESETS, resolve_spectrum

MODES = ("delta", "manual")


def scales_for_stages(stages: int) -> tuple[float, ...]:
    """S stages at halving scales: 2 -> (0.5, 1), 3 -> (0.25, 0.5, 1)."""
    if not isinstance(stages, int) or stages < 1 or stages > 4:
        fail("stages", "an int from 1 to 4", stages)
    return tuple(2.0 ** -(stages - 1 - i) for i in range(stages))


@dataclass(frozen=True)
class ScheduleSpec:
    """What DeltaSchedule outputs.  ``spectrum`` is a preset name, "auto" (chosen from the model's
    latent format when the sampler sees the model) or a PowerLaw (e.g. from PowerSpectrumProbe).
    Manual mode ends each low stage at ``switch_sigmas`` (model sigmas) or ``switch_steps``
    (indices into the user's schedule) instead of Prop. 2."""

    mode: str = "delta"
    delta: float = 0.01
    scales: tuple[float, ...] = (0.5, 1.0)
    transform: str = "dct"
    spectrum: object = "auto"
    refill: str = "paper"
    respace: str = DEFAULT_RESPACE
    switch_sigmas: tuple[float, ...] | None = None
    switch_steps: tuple[int, ...] | None = None
    min_full_steps: int = 1  # full-size steps at the end of every run (planner: never skip the full size)

    def __post_init__(self) -> None:
        """The one check of a schedule's values (a node's widgets or a Python caller's arguments);
        ``plan`` trusts them."""
        if self.mode not in MODES:
            fail("mode", f"one of {MODES}", self.mode)
        object.__setattr__(self, "delta", check_open_unit(self.delta, "delta"))
        object.__setattr__(self, "scales", check_scales(self.scales, "scales"))
        if self.transform not in TRANSFORMS:
            fail("transform", f"one of {TRANSFORMS}", self.transform)
        if self.refill not in REFILLS:
            fail("refill", f"one of {REFILLS}", self.refill)
        if self.respace not in RESPACE:
            fail("respace", f"one of {RESPACE}", self.respace)
        check_min_full_steps(self.min_full_steps)
        if not (self.spectrum == "auto" or isinstance(self.spectrum, PowerLaw)):
            resolve_spectrum(self.spectrum)
        if self.mode == "manual":
            n = len(self.scales) - 1
            if self.switch_sigmas is None and self.switch_steps is None:
                fail("switch_sigmas", "switch sigmas or switch steps in manual mode", None)
            given = self.switch_sigmas if self.switch_sigmas is not None else self.switch_steps
            if len(given) != n:  # type: ignore[arg-type]
                fail("switch_sigmas" if self.switch_sigmas is not None else "switch_steps",
                     f"{n} values (one per stage but the last)", given)
            if self.switch_steps is not None and (any(not isinstance(s, int) or s < 1 for s in self.switch_steps)
                                                  or any(b <= a for a, b in zip(self.switch_steps, self.switch_steps[1:]))):
                fail("switch_steps", "increasing step numbers >= 1", self.switch_steps)
            if self.switch_sigmas is not None and (any(not math.isfinite(s) or s <= 0 for s in self.switch_sigmas)
                                                   or any(b >= a for a, b in zip(self.switch_sigmas, self.switch_sigmas[1:]))):
                fail("switch_sigmas", "decreasing positive sigmas", self.switch_sigmas)

    def with_spectrum(self, spectrum: object) -> "ScheduleSpec":
        return replace(self, spectrum=spectrum)

    def law(self, auto: str = "flux") -> PowerLaw:
        return resolve_spectrum(auto if self.spectrum == "auto" else self.spectrum)

    def plan(self, sigmas: torch.Tensor | Sequence[float], latent_size: Sequence[int], *, frame: str = "const",
             spatial_multiple: int = 1, auto_spectrum: str = "flux", entry: str = "noise") -> StagePlan:
        """The plan of this schedule on a run (the run's arguments are checked here, the schedule's
        were when it was made)."""
        sig, user_t, size, fr = check_run(sigmas, latent_size, frame, spatial_multiple, entry)
        switch_at = None
        if self.mode == "manual":
            if self.switch_steps is not None:
                if self.switch_steps[-1] >= len(sig) - 1:
                    fail("switch_steps", f"step numbers below the schedule's {len(sig) - 1} steps", self.switch_steps)
                vals = [float(sig[s]) for s in self.switch_steps]
            else:
                vals = list(self.switch_sigmas)  # type: ignore[arg-type]
            switch_at = check_switch_at([float(fr.t_of_sigma(v)) for v in vals], len(self.scales))
        return build_plan(PlanRequest(sig, user_t, size, fr, self.law(auto_spectrum), self.delta, self.scales,
                                      spatial_multiple, self.respace, switch_at, entry, self.transform, self.refill,
                                      self.min_full_steps))


DEFAULT_SPEC = ScheduleSpec()
__all__ = ["DEFAULT_SPEC", "MODES", "PRESETS", "ScheduleSpec", "scales_for_stages"]

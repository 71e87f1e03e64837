"""What the GUI preview shows, computed by the same planner the sampler uses (no second copy of
the math in JavaScript): the user's sigmas, the sigmas each stage runs on the full-size axis, the
stage bands and sizes, the switch steps and the FLOP-ideal speed-ups."""
from __future__ import annotations

from typing import Sequence

import torch

from ..spectral_core.plan import speedup, stage_scale
from .spec import ScheduleSpec
from .switching import band_edge


def preview_payload(spec: ScheduleSpec, sigmas: torch.Tensor | Sequence[float], latent_size: Sequence[int], *,
                    frame: str, spatial_multiple: int = 1, auto_spectrum: str = "flux") -> dict:
    """JSON-ready description of the plan of ``spec`` on these sigmas and this latent size."""
    sig = torch.as_tensor(sigmas, dtype=torch.float64)
    plan = spec.plan(sig, latent_size, frame=frame, spatial_multiple=spatial_multiple, auto_spectrum=auto_spectrum)
    H, W = plan.full_size
    stages, first = [], 0
    for st in plan.stages:
        stages.append({"size": list(st.size), "steps": st.steps, "first_step": first, "last_step": first + st.steps - 1,
                       "t_start": st.times[0], "t_end": st.times[-1], "switch_time": st.switch_time,
                       "full_switch_time": st.full_switch_time,
                       "band_edge": band_edge(stage_scale(st.size, (H, W)), (H, W)),
                       "sigmas": [float(v) for v in st.sigmas]})
        first += st.steps
    law = spec.law(auto_spectrum)
    return {
        "latent_size": [H, W], "frame": plan.frame.name, "transform": plan.transform, "delta": plan.delta,
        "spectrum": {"A": law.A, "beta": law.beta}, "user_sigmas": [float(v) for v in sig],
        "mapped_sigmas": [float(v) for v in plan.full_sigmas()], "stages": stages,
        "switch_steps": [s["last_step"] + 1 for s in stages[:-1]], "steps": plan.steps,
        "speedup_tokens": speedup(plan, power=1), "speedup_tokens2": speedup(plan, power=2),
        "patch_speedup_tokens": speedup(plan, power=1, grid=sig), "summary": plan.summary(),
    }

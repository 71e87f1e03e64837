"""Baselines and ablations the quality benchmark compares progressive sampling against.

* ``fewer_steps``: the full-size sampler with fewer steps at the same FLOP cost.
* ``naive_progressive``: low-resolution sampling to the switch time, bicubic upscale of the
  low-resolution prediction of x_0, re-noise to the switch time with fresh noise, continue at full
  size (the usual "upscale and re-noise" pipeline).
* ``no_alignment``: spectral noise expansion without timestep alignment (seed 001 Sec. 4.1 steps
  (i)-(iii) only): the low band is copied as is, the new band gets t* eps, and sampling continues at
  t* instead of t~ (the ablation of Eqs. 5-6).

All take a k-diffusion denoiser in the CONST (flow) frame and a plan from ``plan_stages``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..spectral_core import sample_euler, transforms
from ..spectral_core.expansion import growth
from ..spectral_core.plan import affine_respace, plan_cost


def naive_progressive(model, noise: torch.Tensor, plan, fresh: torch.Tensor, sampler=sample_euler) -> torch.Tensor:
    """Stage by stage: sample low-res to t_i*, predict x_0, bicubic-upscale, re-noise to t_i* with
    fresh noise (the matching band of ``fresh``), continue on the next stage's grid from t_i*."""
    first = plan.stages[0]
    x = transforms.down(noise * float(plan.user_sigmas[0]), first.size, plan.transform).to(noise.dtype)
    for i, st in enumerate(plan.stages):
        times = list(st.times) if i == 0 else affine_respace(list(st.times), plan.stages[i - 1].switch_time)
        sig = torch.tensor(times, dtype=noise.dtype)
        x = sampler(model, x, sig)
        if st.switch_time is None:
            return x
        t = st.switch_time
        x0 = model(x, torch.full((x.shape[0],), t, dtype=x.dtype))
        nxt = plan.stages[i + 1].size
        lead = x0.shape[:-2]
        up = F.interpolate(x0.reshape(-1, 1, *x0.shape[-2:]), size=nxt, mode="bicubic", align_corners=False)
        up = up.reshape(*lead, *nxt)
        eps = fresh if tuple(nxt) == tuple(fresh.shape[-2:]) else transforms.down(fresh, nxt, plan.transform).to(fresh.dtype)
        x = (1 - t) * up + t * eps
    raise AssertionError


def no_alignment(model, noise: torch.Tensor, plan, sampler=sample_euler) -> torch.Tensor:
    """Spectral expansion without the g kappa rescale and without the time jump."""
    first = plan.stages[0]
    x = transforms.down(noise * float(plan.user_sigmas[0]), first.size, plan.transform).to(noise.dtype)
    for i, st in enumerate(plan.stages):
        times = list(st.times) if i == 0 else affine_respace(list(st.times), plan.stages[i - 1].switch_time)
        x = sampler(model, x, torch.tensor(times, dtype=noise.dtype))
        if st.switch_time is None:
            return x
        t = st.switch_time
        nxt = plan.stages[i + 1].size
        eps = noise if tuple(nxt) == tuple(noise.shape[-2:]) else transforms.down(noise, nxt, plan.transform).to(noise.dtype)
        high = t * (eps - transforms.project_low(eps, st.size, plan.transform))
        x = (transforms.up(x, nxt, plan.transform) + high).to(noise.dtype)
    raise AssertionError


__all__ = ["naive_progressive", "no_alignment", "plan_cost", "growth"]

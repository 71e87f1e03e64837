"""Formulation 1: progressive sampling as a k-diffusion-protocol sampler (seed 001 Sec. 4.1).

``sample_progressive`` wraps any base sampler.  It takes the full-size noised latent ComfyUI (or any
k-diffusion caller) hands it, enters the plan's first stage (low band as is for a pure-noise start;
exact contraction for a start that carries an image), runs the base sampler on each stage's own
sigmas, grows the latent by spectral noise expansion + timestep alignment between stages, and
returns a full-size latent at the last sigma.  The refill noise is the matching band of one
full-size unit noise (seed-consistent), so the same seed gives the same composition with or
without progression.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from . import transforms
from .expansion import band_limited_upsample, contract, expand
from .frames import get_frame
from .plan import Stage, StagePlan, refill_spectrum
from .samplers import progress_bar, sample_euler
from .validation import check_finite, check_spatial_tensor, fail

Sampler = Callable[..., torch.Tensor]


def check_plan(plan: object, full_size: tuple[int, ...], frame: str) -> StagePlan:
    """``plan`` is a StagePlan for a latent of spatial size ``full_size`` in model frame ``frame``."""
    if not isinstance(plan, StagePlan):
        fail("plan", "a StagePlan from schedules.plan_stages", type(plan).__name__)
    if tuple(full_size) != tuple(plan.full_size):
        fail("x", f"a latent of spatial size {tuple(plan.full_size)} (the plan's)", tuple(full_size))
    if get_frame(frame).name != plan.frame.name:
        fail("frame", f"the plan's frame {plan.frame.name!r}", frame)
    return plan


def _enter(plan: StagePlan, x_flow: torch.Tensor, t0: float, dtype: torch.dtype) -> torch.Tensor:
    """The first stage's latent: the low band as is from pure noise, exact contraction from an image."""
    first = plan.stages[0]
    if plan.entry == "noise":
        return transforms.down(x_flow, first.size, plan.transform).to(dtype)
    return contract(x_flow, first.size, t0, transform=plan.transform, validate=False)[0]


def _stage_callback(plan: StagePlan, stage: Stage, offset: int, callback: Callable[[dict], None] | None,
                    bar: Any) -> Callable[[dict], None]:
    """The base sampler's callback for one stage: steps numbered over the whole run, full-size previews."""
    full = tuple(plan.full_size)

    def stage_callback(info: dict) -> None:
        if bar is not None:
            bar.update(1)
        if callback is None:
            return
        out = dict(info)
        out["i"] = info["i"] + offset
        out["stage_size"] = stage.size
        if tuple(stage.size) != full:
            out["x"] = band_limited_upsample(info["x"], full, plan.transform)
            out["denoised"] = band_limited_upsample(info["denoised"], full, plan.transform)
        callback(out)

    return stage_callback


def _grow(plan: StagePlan, i: int, out: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Stage i's final model-frame latent expanded into stage i + 1 (flow frame, at its entry time)."""
    stage, nxt = plan.stages[i], plan.stages[i + 1]
    cur = plan.frame.to_flow(out, float(stage.sigmas[-1]))
    full = tuple(nxt.size) == tuple(plan.full_size)
    refill_noise = noise if full else transforms.down(noise, nxt.size, plan.transform)
    return expand(cur, nxt.size, stage.switch_time, transform=plan.transform, noise=refill_noise, refill=plan.refill,
                  spectrum=refill_spectrum(plan.refill, plan.spectrum, nxt.growth), validate=False)[0]


def sample_progressive(model: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor,
                       extra_args: dict[str, Any] | None = None, callback: Callable[[dict], None] | None = None,
                       disable: bool | None = None, *, plan: StagePlan, sampler: Sampler | None = None,
                       frame: str = "const", noise: torch.Tensor | None = None,
                       stage_hook: Callable[[int, Stage], None] | None = None) -> torch.Tensor:
    """Run ``plan`` (a ``StagePlan``) with ``sampler`` (default Euler) on each stage.

    x: the full-size latent at sigmas[0], model frame.  ``sigmas`` must be the grid the plan was
    made from.  ``noise``: the full-size unit noise of the run (refill source); by default x / t0
    for a pure-noise start (exactly the seed's noise for CONST models) and fresh noise otherwise.
    ``callback`` gets steps numbered over the whole run and full-size previews of x and denoised.
    ``stage_hook(i, stage)`` is called before each stage runs (e.g. to resize conditioning).
    """
    check_spatial_tensor(x, "x")
    check_finite(x, "x")  # once, before the loop
    check_plan(plan, tuple(x.shape[-2:]), frame)
    sig = torch.as_tensor(sigmas)
    if sig.ndim != 1 or len(sig) != len(plan.user_sigmas) or not torch.allclose(
            sig.detach().double().cpu(), plan.user_sigmas, rtol=1e-4, atol=1e-6):
        fail("sigmas", "the sigma grid the plan was made from", tuple(sig.shape))
    if noise is not None and tuple(noise.shape) != tuple(x.shape):
        fail("noise", f"a tensor of the latent's shape {tuple(x.shape)}", tuple(noise.shape))
    base = sample_euler if sampler is None else sampler
    fr, extra_args = plan.frame, {} if extra_args is None else extra_args
    t0 = float(fr.t_of_sigma(float(plan.user_sigmas[0])))
    x_flow = fr.to_flow(x, float(plan.user_sigmas[0]))
    # The start's own content carried down the pure-noise path: for a pure-noise start this is exactly
    # the seed's noise; for an image start its high band keeps the input's detail at the weight the
    # zero-prediction path gives it, so formulation 1 equals formulation 2.
    noise = x_flow / t0 if noise is None else noise
    cur = _enter(plan, x_flow, t0, x.dtype)
    bar = progress_bar(plan.steps, disable)  # one console bar over all stages (the base samplers' stay off)
    inner_disable = True if bar is not None else disable
    offset = 0
    for i, stage in enumerate(plan.stages):
        if stage_hook is not None:
            stage_hook(i, stage)
        st_sig = stage.sigmas.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
        cb = _stage_callback(plan, stage, offset, callback, bar) if (callback is not None or bar is not None) else None
        out = base(model, fr.from_flow(cur, float(stage.sigmas[0])), st_sig, extra_args=extra_args, callback=cb,
                   disable=inner_disable)
        offset += stage.steps
        if stage.switch_time is None:
            if bar is not None:
                bar.close()
            return out
        cur = _grow(plan, i, out, noise)
    raise AssertionError("a plan always ends with a full-size stage")

"""Formulation 2 inside ComfyUI: a MODEL patch (``spectral_core.BandRouter``) installed as a
CALC_COND_BATCH wrapper, so it chains with other packs' wrappers.  The latent stays full size; while
a low stage is active the cond batch (ControlNet and concat conditions included) is evaluated at
the stage size and its predictions are lifted back.  The plan is made from the sigmas the sampler
really runs (``transformer_options["sample_sigmas"]``), once per run.  An OUTER_SAMPLE wrapper checks
the run before sampling starts (latent rank and channels, regional conditioning, the plan itself),
so a combination that cannot work fails with a clear message instead of mid-run.  A step cache
(EasyCache / LazyCache) gets its own state per stage size (``stage_conds.stage_step_cache``)."""
from __future__ import annotations

from typing import Any

import comfy.patcher_extension
import torch

from ..schedules.spec import ScheduleSpec
from ..spectral_core.denoiser import BandRouter
from . import inputs, model_adapter
from .stage_conds import check_step_cache, has_regional, refuse_regional, resize_conds, stage_step_cache

WRAPPER_KEY = "spectral_progressive"


class PatchState:
    """What the patched model carries: the schedule and a per-run plan cache."""

    def __init__(self, spec: ScheduleSpec, high: str, context: model_adapter.PlanContext):
        self.spec, self.high, self.context = spec, high, context
        self._key: tuple | None = None
        self._router: BandRouter | None = None
        self.log: list[tuple[int, tuple[int, ...]]] = []  # (stage index, spatial size) per cond batch
        self.caches: dict = {}  # per run: stage size -> its own step-cache state (EasyCache / LazyCache)

    def router(self, x: torch.Tensor, model_options: dict) -> BandRouter | None:
        sig = model_options.get("transformer_options", {}).get("sample_sigmas")
        if sig is None:
            return None
        # one sigma tensor per run (outer_sample clears the cache when a run starts), so identity is
        # a key that costs no host read in the per-step path
        key = (tuple(x.shape[-2:]), id(sig), tuple(sig.shape))
        if key != self._key:
            plan = model_adapter.plan(self.spec, sig.detach().float().cpu(), x.shape[-2:], self.context)
            law = self.spec.law(self.context.preset)
            self._router = BandRouter(plan, frame=self.context.frame, high=self.high, spectrum=law)
            self._key = key
        return self._router

    def outer_sample(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        """OUTER_SAMPLE wrapper: everything that can be checked is checked before the first step."""
        guider = executor.class_obj
        patcher = getattr(guider, "model_patcher", None)
        model_adapter.check_single_latent(kwargs.get("latent_shapes"), "latent_image")
        if patcher is not None:
            model_adapter.check_latent(patcher, noise, "latent_image")
        if isinstance(latent_image, torch.Tensor):
            inputs.finite(latent_image, "latent_image")
        check_step_cache(getattr(guider, "model_options", None))
        self.caches = {}
        self._key = None  # a new run plans from its own sigmas
        if sigmas is not None and len(sigmas) > 1:
            self.router(noise, {"transformer_options": {"sample_sigmas": sigmas}})  # plans now: errors before sampling
            if len(self._router.plan.stages) > 1 and has_regional(getattr(guider, "conds", None)):
                refuse_regional(guider.conds, "positive/negative")
        self.log = []  # per run
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def __call__(self, executor, model, conds, x_in, timestep, model_options):
        router = self.router(x_in, model_options)
        if router is None or tuple(x_in.shape[-2:]) != router.full:
            return executor(model, conds, x_in, timestep, model_options)
        e = router.enter(x_in, timestep)
        if e is None:
            self.log.append((len(router.plan.stages) - 1, tuple(x_in.shape[-2:])))
            return executor(model, conds, x_in, timestep, model_options)
        refuse_regional(conds, "positive/negative")
        self.log.append((e.index, tuple(e.stage.size)))
        size = tuple(e.stage.size)
        model_options = stage_step_cache(model_options, size, router.full, self.caches, model.model_sampling)
        outs = executor(model, resize_conds(conds, size, router.plan.transform, router.full), e.x, e.sigma, model_options)
        return [router.lift(o, e) for o in outs]


def patch_model(model: Any, spec: ScheduleSpec, high: str = "zero") -> tuple[Any, PatchState]:
    """A clone of ``model`` (a ModelPatcher) with the progressive wrapper installed."""
    state = PatchState(spec, high, model_adapter.context_of(model))
    spec.law(state.context.preset)  # validates a custom spectrum now, not mid-run
    patched = model.clone()
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY)
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY, state)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, state.outer_sample)
    return patched, state

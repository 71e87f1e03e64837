"""Formulation 1 inside ComfyUI: a ``comfy.samplers.Sampler`` that runs any k-diffusion SAMPLER
progressively (``spectral_core.sample_progressive``), with noise-mask inpainting, spatial
conditioning, reference latents, step caches (EasyCache / LazyCache: one state per stage size) and
previews handled at every stage size."""
from __future__ import annotations

import functools
from typing import Any

import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch

from ..schedules.spec import ScheduleSpec
from ..spectral_core import transforms
from ..spectral_core.progressive import sample_progressive
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .model_patch import PatchState
from .stage_conds import CondResizeWrapper, check_step_cache, data_to_size, mask_to_size, refuse_regional, stage_step_cache

WRAPPER_KEY = "spectral_progressive"


def inpaint_noise(base: Any, noise: torch.Tensor, extra_args: dict) -> torch.Tensor:
    """The noise ComfyUI's KSAMPLER blends a noise mask's kept region with: the run's noise, or fresh
    noise from seed + 1 when the base sampler asks for it (``inpaint_options["random"]``, e.g. ddim)."""
    if not getattr(base, "inpaint_options", {}).get("random", False):
        return noise
    gen = torch.manual_seed(extra_args.get("seed", 41) + 1)
    return torch.randn(noise.shape, generator=gen, device="cpu").to(noise.dtype).to(noise.device)


class StageDenoiser:
    """ComfyUI's own KSamplerX0Inpaint at the current stage's size: the mask, the source latent and the
    inpaint noise are contracted once per stage (data by C/g, noise by C, masks by area averaging);
    each stage size keeps its own step-cache state."""

    def __init__(self, model_wrap: Any, sigmas: torch.Tensor, noise: torch.Tensor, latent_image: torch.Tensor | None,
                 denoise_mask: torch.Tensor | None, transform: str):
        self.inpaint = comfy.samplers.KSamplerX0Inpaint(model_wrap, sigmas)
        self.inner_model = model_wrap  # ComfyUI's samplers look through model.inner_model.inner_model
        self.full = (noise, latent_image, denoise_mask)
        self.transform = transform
        self.mask = denoise_mask
        self.size = tuple(noise.shape[-2:])
        self.caches: dict = {}  # stage size -> its own step-cache state (EasyCache / LazyCache)
        self.inpaint.noise, self.inpaint.latent_image = noise, latent_image

    def set_stage(self, index: int, stage: Any) -> None:
        noise, latent, mask = self.full
        self.size = tuple(stage.size)
        if self.size != tuple(noise.shape[-2:]):
            noise = transforms.down(noise, self.size, self.transform).to(noise.dtype)
            latent = None if latent is None else data_to_size(latent, self.size, self.transform)
            mask = None if mask is None else mask_to_size(mask, self.size)
        self.inpaint.noise, self.inpaint.latent_image, self.mask = noise, latent, mask

    def __call__(self, x, sigma, denoise_mask=None, model_options={}, seed=None):  # noqa: B006 - ComfyUI's signature
        model_options = stage_step_cache(model_options, self.size, tuple(self.full[0].shape[-2:]), self.caches,
                                         self.inner_model.inner_model.model_sampling)
        return self.inpaint(x, sigma, denoise_mask=self.mask, model_options=model_options, seed=seed)


class ProgressiveKSampler(comfy.samplers.Sampler):
    """Runs ``base`` (a KSAMPLER) on each stage of ``spec``'s plan."""

    def __init__(self, base: Any, spec: ScheduleSpec):
        if not isinstance(base, comfy.samplers.KSAMPLER):
            fail("sampler", "a k-diffusion SAMPLER (KSamplerSelect or a Sampler* node)", type(base).__name__)
        self.base = base
        self.spec = spec
        self.last_plan = None

    def plan_for(self, model_wrap: Any, sigmas: torch.Tensor, shape: tuple, entry: str):
        return model_adapter.plan(self.spec, sigmas.detach().float().cpu(), shape[-2:], model_wrap.inner_model, entry)

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        inner = model_wrap.inner_model
        wrappers = comfy.patcher_extension.get_all_wrappers(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH,
                                                            extra_args["model_options"], is_model_options=True)
        if any(isinstance(w, PatchState) for w in wrappers):
            fail("model", "a model without the SpectralProgressiveModel patch: the progressive sampler already samples "
                 "progressively (use the patch with an ordinary sampler, or this sampler with the unpatched model)",
                 "a SpectralProgressiveModel-patched model")
        # ComfyUI 0.8+ packs a multi-part latent before any sampler runs; 0.33 also sets the parts' shapes
        # on the model (CFGGuider.inner_sample), 0.8 leaves only the packed (B, 1, N) shape (check_latent)
        model_adapter.check_single_latent(getattr(inner, "latent_shapes", None), "latent_image")
        model_adapter.check_latent(inner, noise, "latent_image")
        refuse_regional(getattr(model_wrap, "conds", {}), "positive/negative")
        check_step_cache(extra_args.get("model_options"))
        max_denoise = self.max_denoise(model_wrap, sigmas)
        has_signal = latent_image is not None and bool(torch.count_nonzero(latent_image))  # once, before the loop
        entry = "signal" if has_signal and not max_denoise else "noise"
        plan = self.plan_for(model_wrap, sigmas, tuple(noise.shape), entry)
        self.last_plan = plan
        frame = plan.frame.name
        x = inner.model_sampling.noise_scaling(sigmas[0], noise, latent_image, max_denoise)
        inputs.finite(x, "latent_image")  # NaN/inf in the latent (or its noised start): once, before the loop
        denoiser = StageDenoiser(model_wrap, sigmas, inpaint_noise(self.base, noise, extra_args), latent_image,
                                 denoise_mask, plan.transform)
        comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY,
                                                     CondResizeWrapper(tuple(noise.shape[-2:]), plan.transform),
                                                     extra_args["model_options"], is_model_options=True)
        total = plan.steps
        k_callback = None
        if callback is not None:
            k_callback = lambda d: callback(d["i"], d["denoised"], d["x"], total)  # noqa: E731
        base_fn = functools.partial(self.base.sampler_function, **self.base.extra_options)
        samples = sample_progressive(denoiser, x, sigmas, extra_args=extra_args, callback=k_callback,
                                     disable=disable_pbar, plan=plan, sampler=base_fn, frame=frame,
                                     noise=None, stage_hook=denoiser.set_stage)
        return inner.model_sampling.inverse_noise_scaling(sigmas[-1], samples)


def sample_progressively(model: Any, spec: ScheduleSpec, sampler_name: str, noise: torch.Tensor, cfg: float,
                         sigmas: torch.Tensor, positive: list, negative: list, latent: torch.Tensor, seed: int,
                         noise_mask: torch.Tensor | None = None, preview_steps: int | None = None) -> tuple[Any, Any]:
    """ComfyUI's sample_custom with ``sampler_name`` run progressively on ``spec``'s plan, with the
    latent preview and the progress bar; returns (samples, the plan that ran)."""
    sampler = ProgressiveKSampler(comfy.samplers.sampler_object(sampler_name), spec)
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1 if preview_steps is None else preview_steps)
    samples = comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent,
                                         noise_mask=noise_mask, callback=callback,
                                         disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    return samples, sampler.last_plan

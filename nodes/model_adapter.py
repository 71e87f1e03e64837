"""Everything the pack reads from, or does through, a ComfyUI model, so the user is never asked for it:

* the frame: CONST (rectified flow) models -> "const"; EPS, V_PREDICTION, EDM, X0 -> "eps"
  (ComfyUI runs all of them in the variance-exploding sigma frame x = x_0 + sigma eps);
* the spatial multiple: the DiT patch size, or 2^(levels-1) for a UNet;
* the spectrum preset for DeltaSchedule's "auto" from the latent format (``schedules/families.py``);
* the one path from a MODEL to a plan (``plan``: frame, multiple and preset read once into a
  ``PlanContext``; errors name the node inputs);
* ComfyUI's latents in the flow frame and back, and the sigmas KSampler would run;
* the latent's expected rank (4-D image or 5-D video) and channel count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import comfy.model_sampling as ms
import torch

from ..schedules.families import preset_for
from ..schedules.widgets import WIDGET_NAMES
from ..schedules.widgets import renamed as widgets_renamed
from ..spectral_core.frames import Frame, get_frame
from ..spectral_core.plan import StagePlan
from ..spectral_core.validation import fail

def base_model(model: Any) -> Any:
    """The comfy BaseModel behind a ModelPatcher (or the BaseModel itself)."""
    return getattr(model, "model", model)


def frame_of(model: Any) -> str:
    sampling = base_model(model).model_sampling
    if isinstance(sampling, ms.CONST):
        return "const"
    if isinstance(sampling, ms.EPS):
        return "eps"
    fail("model", "a CONST (flow) or EPS/V-prediction/EDM model; this model's sampling "
         f"{type(sampling).__name__} is not supported", type(sampling).__name__)
    raise AssertionError


def spatial_multiple_of(model: Any) -> int:
    bm = base_model(model)
    dm = getattr(bm, "diffusion_model", None)
    patch = getattr(dm, "patch_size", None)
    if patch is not None:
        if isinstance(patch, (tuple, list)):
            return int(max(patch[-2:]))
        return int(patch)
    unet = getattr(getattr(bm, "model_config", None), "unet_config", {}) or {}
    mult = unet.get("channel_mult")
    if mult:
        return 2 ** (len(mult) - 1)
    return 1


def latent_format_name(model: Any) -> str:
    return type(base_model(model).latent_format).__name__


def auto_spectrum(model: Any) -> str:
    return preset_for(latent_format_name(model))


def renamed(exc: ValueError, latent: str = "latent_image") -> ValueError:
    """A core ValueError ("name: expected ...") re-addressed to the node input the user set: the
    DeltaSchedule widgets, and ``latent`` (the node's latent input) for the latent size."""
    return widgets_renamed(exc, {**WIDGET_NAMES, "latent_size": latent})


@dataclass(frozen=True)
class PlanContext:
    """What a plan needs of the model: its frame, spatial multiple and spectrum preset."""

    frame: str
    multiple: int
    preset: str


def context_of(model: Any) -> PlanContext:
    if isinstance(model, PlanContext):
        return model
    return PlanContext(frame_of(model), spatial_multiple_of(model), auto_spectrum(model))


def plan(spec: Any, sigmas: Any, size: Any, model: Any, entry: str = "noise",
         latent: str = "latent_image") -> StagePlan:
    """The plan of ``spec`` on a run of ``model`` (a ModelPatcher, a BaseModel or its ``PlanContext``)
    over ``sigmas`` and a latent of spatial ``size``; errors name the node inputs (``latent``: the
    node's latent input)."""
    ctx = context_of(model)
    try:
        return spec.plan(sigmas, tuple(int(v) for v in size), frame=ctx.frame, spatial_multiple=ctx.multiple,
                         auto_spectrum=ctx.preset, entry=entry)
    except ValueError as exc:
        raise renamed(exc, latent) from None


def frame(model: Any) -> Frame:
    return get_frame(frame_of(model))


def ksampler_sigmas(model: Any, scheduler: str, steps: int, denoise: float, sampler_name: str = "euler") -> Any:
    """The sigmas ComfyUI's KSampler would run for (steps, scheduler, denoise, sampler_name): its own
    code, so denoise truncation and the samplers that drop the penultimate sigma (dpm_2, uni_pc) match.
    None for denoise 0."""
    import comfy.samplers
    if denoise <= 0.0:
        return None
    return comfy.samplers.KSampler(model, steps, "cpu", sampler_name, scheduler, denoise).sigmas.cpu()


def clean_to_flow(model: Any, latent: torch.Tensor) -> torch.Tensor:
    """A clean latent (e.g. VAE-encoded) as the model's data x_0, float32 (x_0 is the same in every frame)."""
    return base_model(model).process_latent_in(latent).float()


def latent_to_flow(model: Any, latent: torch.Tensor, sigma: float) -> torch.Tensor:
    """A ComfyUI latent at noise level ``sigma`` (KSamplerAdvanced's leftover-noise form) in the flow frame."""
    bm = base_model(model)
    x = bm.model_sampling.noise_scaling(torch.tensor(sigma), torch.zeros_like(latent), bm.process_latent_in(latent),
                                        False)
    return frame(model).to_flow(x.float(), sigma)


def flow_to_latent(model: Any, x_flow: torch.Tensor, sigma: float) -> torch.Tensor:
    """A flow-frame latent at ``sigma`` in ComfyUI's latent form (the inverse of ``latent_to_flow``)."""
    bm = base_model(model)
    x = bm.model_sampling.inverse_noise_scaling(torch.tensor(sigma), frame(model).from_flow(x_flow, sigma))
    return bm.process_latent_out(x)


PACKED_LATENT = ("one image or video latent: a multi-part latent (e.g. LTX-2 audio+video, packed by ComfyUI into "
                 "one flat tensor) cannot change size; sample it with an ordinary sampler and no "
                 "SpectralProgressiveModel patch")


def fix_empty_latent(model: Any, latent: dict) -> Any:
    """``latent["samples"]`` as ComfyUI's samplers see it: an empty latent made for another VAE gets
    the model's channels (and, ComfyUI 0.33+, its spatial/temporal downscale ratio), exactly as
    KSampler and SamplerCustomAdvanced do with ``comfy.sample.fix_empty_latent_channels``."""
    import inspect

    import comfy.sample
    fn = comfy.sample.fix_empty_latent_channels
    if "downscale_ratio_spacial" in inspect.signature(fn).parameters:
        return fn(model, latent["samples"], latent.get("downscale_ratio_spacial", None),
                  latent.get("downscale_ratio_temporal", None))
    return fn(model, latent["samples"])


def check_single_latent(latent_shapes: Any, name: str = "latent_image") -> None:
    """Refuses a multi-part latent: ComfyUI (0.8+) packs nested latents into one flat (B, 1, N)
    tensor and passes the parts' shapes as ``latent_shapes`` to OUTER_SAMPLE; none of them can be resized."""
    if latent_shapes is not None and len(latent_shapes) > 1:
        fail(name, PACKED_LATENT, f"{len(latent_shapes)} packed parts {[tuple(s) for s in latent_shapes]}")


def check_latent(model: Any, samples: Any, name: str = "latent") -> None:
    """Rank and channel count of a latent against what the model expects."""
    if getattr(samples, "is_nested", False):
        fail(name, PACKED_LATENT, f"a nested latent of {len(samples.unbind())} parts")
    bm = base_model(model)
    fmt = bm.latent_format
    ch = getattr(fmt, "latent_channels", None)
    dims = getattr(fmt, "latent_dimensions", 2)
    if samples.ndim == 3 and samples.shape[1] == 1 and dims + 2 != 3:
        # what a sampler sees of a nested latent: ComfyUI (0.8+) packed its parts into one flat tensor
        fail(name, PACKED_LATENT, f"a packed (B, 1, N) latent of shape {tuple(samples.shape)}")
    if samples.ndim != dims + 2:
        kind = "a video latent (B,C,T,H,W)" if dims == 3 else "an image latent (B,C,H,W)"
        fail(name, f"{kind} for this {type(fmt).__name__} model", tuple(samples.shape))
    if ch is not None and samples.shape[1] != ch:
        fail(name, f"{ch} channels for this {type(fmt).__name__} model", samples.shape[1])


def spectrum_law(model: Any, spectrum: str, probe_spectrum: Any = None) -> Any:
    """The power law a node works with: the connected SPECTRUM (probe or calibration) when given, else the
    preset named by the ``spectrum`` widget ("auto": the model family's)."""
    from ..schedules.presets import PRESETS
    from . import inputs
    if probe_spectrum is not None:
        return inputs.spectrum(probe_spectrum, "probe_spectrum")["law"]
    name = auto_spectrum(model) if spectrum == "auto" else spectrum
    if name not in PRESETS:
        fail("spectrum", f"'auto' or a preset in {sorted(PRESETS)}", spectrum)
    return PRESETS[name]

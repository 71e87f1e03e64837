"""SpectralScheduler: SIGMAS designed from the data's power spectrum (seed 002, Benita, Elad, Keshet 2025).

The design is ``spectral_core.schedule_design.design_sigmas``: the N-step schedule minimising the KL of the
sampler's output law to the data law under Gaussian data with spectrum P(w) = A w^-beta on the latent's
grid (closed-form spectral transfer function).  This node reads what the design needs from the model:
its frame (CONST: sigma = t; EPS/V/EDM: sigma = t / (1 - t)), its sigma range, its latent format (the
spectrum preset and the VAE's downscale), and the start ComfyUI gives the sampler (pure noise; for EPS
models sqrt(1 + sigma_max^2) noise; with denoise < 1 an image noised to the start sigma).
"""
from __future__ import annotations

import math

import torch
from comfy_api.latest import io

from ..schedules.presets import PRESETS
from ..spectral_core.schedule_design import design_sigmas
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .types import CATEGORY, Spectrum

SPECTRUM_CHOICES = ["auto", *PRESETS.keys()]
DESIGN_SAMPLERS = ["euler", "ab2"]


def model_sigma_range(model) -> tuple[float, float, object]:
    """(sigma_min, sigma_max, model_sampling) of a ComfyUI model."""
    ms = model.get_model_object("model_sampling")
    return float(ms.sigma_min), float(ms.sigma_max), ms


def latent_grid(model, latent: dict | None, width: int, height: int) -> tuple[int, int]:
    """The latent's spatial (H, W): from ``latent`` when connected, else the image size over the VAE's
    spatial downscale (8 unless the latent format says otherwise)."""
    if latent is not None:
        samples = inputs.latent(latent, "latent")["samples"]
        if samples.ndim < 4:
            fail("latent", "an image (B,C,H,W) or video (B,C,T,H,W) latent", tuple(samples.shape))
        return int(samples.shape[-2]), int(samples.shape[-1])
    ratio = int(getattr(model_adapter.base_model(model).latent_format, "spacial_downscale_ratio", 8) or 8)
    h, w = int(height) // ratio, int(width) // ratio
    if h < 1 or w < 1:
        fail("width" if w < 1 else "height", f"at least {ratio} pixels (one latent pixel)", (width, height))
    return h, w


def start_of(model, denoise: float, frame: str) -> tuple[float, str]:
    """The first sigma and the sampler's input law (``spectral_transfer.STARTS``) ComfyUI gives it."""
    sigma_min, sigma_max, ms = model_sigma_range(model)
    if denoise >= 1.0:
        return sigma_max, "noise" if frame == "const" else "unit_marginal"
    start = float(ms.percent_to_sigma(1.0 - denoise))
    if not start > sigma_min:
        fail("denoise", f"a value whose start sigma is above the model's smallest sigma {sigma_min:.4g}", denoise)
    return min(start, sigma_max), "marginal"


def designed_sigmas(model, law, size, steps: int, denoise: float, design_for: str) -> tuple[torch.Tensor, str]:
    """(SIGMAS in the model's frame, summary): seed 002's design on the latent grid ``size``."""
    frame = model_adapter.frame_of(model)
    sigma_min, _, _ = model_sigma_range(model)
    sigma0, start = start_of(model, denoise, frame)
    design = design_sigmas(law, size, steps, frame=frame, sampler=design_for, start=start,
                           sigma_max=sigma0, sigma_min=sigma_min)
    sig = design.sigmas.to(torch.float32)
    if not bool((sig[1:] < sig[:-1]).all()) or not math.isfinite(float(sig[0])):
        fail("steps", "fewer steps: the designed sigmas collide in float32", steps)
    text = design.summary() + f"\nstart sigma {sigma0:.4g} ({start}), {frame} frame\nsigmas: " + \
        ", ".join(f"{v:.4g}" for v in sig.tolist())
    return sig, text


class SpectralScheduler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralScheduler",
            display_name="Spectral Scheduler (spectrum-designed sigmas)",
            category=CATEGORY,
            description="Noise schedule designed from the data's power spectrum (Benita, Elad, Keshet 2025): the sigmas "
                        "that minimise the KL between the sampler's output and the data under a Gaussian model with "
                        "spectrum P(w) = A w^-beta on your latent's grid, computed in closed form. Use the SIGMAS with "
                        "SamplerCustomAdvanced, or feed them to DeltaSchedule's sigmas for progressive sampling.",
            inputs=[io.Model.Input("model", tooltip="The model: its sigma range, frame and latent format (spectrum preset)."),
                    io.Int.Input("steps", default=20, min=1, max=500, tooltip="Number of sampling steps."),
                    io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                                   tooltip="1: from pure noise. Below 1 (img2img): the schedule starts where ComfyUI's "
                                           "schedulers start for this denoise and is designed for an image noised there."),
                    io.Combo.Input("design_for", options=DESIGN_SAMPLERS, default="euler",
                                   tooltip="Solver the schedule is designed for: 'euler' (first order: euler, ddim, "
                                           "the drift of ancestral samplers) or 'ab2' (2nd-order multistep, a stand-in "
                                           "for ipndm / deis / dpmpp_2m)."),
                    io.Combo.Input("spectrum", options=SPECTRUM_CHOICES, default="auto",
                                   tooltip="Data power spectrum: 'auto' picks the preset of the model's latent format "
                                           "(seed 001 Table 4); a connected probe_spectrum overrides it."),
                    io.Int.Input("width", default=1024, min=8, max=16384, step=8,
                                 tooltip="Image width in pixels (for the latent grid) when no latent is connected."),
                    io.Int.Input("height", default=1024, min=8, max=16384, step=8,
                                 tooltip="Image height in pixels (for the latent grid) when no latent is connected."),
                    io.Latent.Input("latent", optional=True,
                                    tooltip="The latent to be sampled: its size overrides width and height."),
                    Spectrum.Input("probe_spectrum", optional=True,
                                   tooltip="A spectrum from PowerSpectrumProbe or SpectralCalibrate; overrides 'spectrum'.")],
            outputs=[io.Sigmas.Output("sigmas", tooltip="The designed sigmas (steps + 1 values, last 0)."),
                     io.String.Output("summary", tooltip="The spectral KL of the design and of the linear schedule.")],
        )

    @classmethod
    def execute(cls, model, steps, denoise, design_for, spectrum, width, height, latent=None,
                probe_spectrum=None) -> io.NodeOutput:
        inputs.model(model)
        steps = int(inputs.finite_number(steps, "steps", 1, 500))
        denoise = inputs.finite_number(denoise, "denoise", 0.0, 1.0)
        if design_for not in DESIGN_SAMPLERS:
            fail("design_for", f"one of {DESIGN_SAMPLERS}", design_for)
        if denoise <= 0.0:  # as BasicScheduler: nothing to sample
            return io.NodeOutput(torch.zeros(0), "denoise 0: no steps")
        law = model_adapter.spectrum_law(model, spectrum, probe_spectrum)
        return io.NodeOutput(*designed_sigmas(model, law, latent_grid(model, latent, width, height), steps, denoise,
                                              design_for))

"""SpectralForcingPatch: seed 004's spectral forcing put on a model at inference (a diagnostic).

Spectral forcing is a training-time design: a model trained with it has only ever seen the low-passed
input F_t(x) (``spectral_core.forcing``) and needs the same operator at inference. Put on a model that was
NOT trained with it, the patch shows that model an input it never saw (the band above the data-to-noise
contour removed), which is what this node is for: measuring how much a model relies on the band the
contour calls noise. It is not expected to improve samples (README "Spectral forcing and loss weighting").

ComfyUI side. A keyed APPLY_MODEL wrapper (chains with other packs' wrappers, like the pack's progressive
patch): every model call at sigma gets the forced input, in the model's own frame x (any frame is a
scalar multiple of the flow frame's x_t, and F is linear) with flow time t = t(sigma) (``spectral_core.frames``):

    D(x, sigma) = D_model(F_t(x), sigma),

the denoiser as a function of the kept band alone, whatever the model predicts (eps, v, x0, flow):
forcing.py's parametrisation, which is what ``embedded.model.EmbeddedDenoiser`` runs for a model trained
with forcing (for a velocity model, v = v_theta(F x) + (x - F x) / t). The law is taken on the grid the
network sees (under SpectralProgressiveModel's low stages, the stage grid).
"""
from __future__ import annotations

from typing import Any

import comfy.patcher_extension
import torch
from comfy_api.latest import io

from ..schedules.presets import PRESETS, resolve_spectrum
from ..spectral_core.forcing import SpectralForcing
from ..spectral_core.frames import get_frame
from ..spectral_core.spectra import PowerLaw
from ..spectral_core.transforms import TRANSFORMS
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .types import CATEGORY, Spectrum

WRAPPER_KEY = "spectral_forcing"
SPECTRUM_CHOICES = ["auto", *PRESETS.keys(), "custom"]


class ForcingWrapper:
    """The APPLY_MODEL wrapper: the model called on F_t(x) (module docstring)."""

    def __init__(self, forcing: SpectralForcing, frame: str) -> None:
        self.forcing, self.frame = forcing, get_frame(frame)

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        if not isinstance(x, torch.Tensor) or x.ndim not in (4, 5):
            fail("latent", "an image (B,C,H,W) or video (B,C,T,H,W) latent for SpectralForcingPatch",
                 tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__)
        tt = self.frame.t_of_sigma(t.to(device=x.device, dtype=torch.float32)).reshape(-1)
        fx = self.forcing(x, tt.reshape(()) if tt.numel() == 1 else tt)
        return executor(fx, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


def forcing_law(model: Any, spectrum: str, custom_A: float, custom_beta: float,
                probe_spectrum: dict | None = None) -> PowerLaw:
    """The law from the node's inputs: a probe spectrum, custom (A, beta), a preset, or 'auto' (the
    preset of the model's latent format); errors name the input."""
    if probe_spectrum is not None:
        return inputs.spectrum(probe_spectrum, "probe_spectrum")["law"]
    if spectrum == "custom":
        a = inputs.finite_number(custom_A, "custom_A", lo=0.0)
        b = inputs.finite_number(custom_beta, "custom_beta", lo=0.0)
        if a <= 0:
            fail("custom_A", "a positive number", custom_A)
        return PowerLaw(a, b)
    if spectrum not in SPECTRUM_CHOICES:
        fail("spectrum", f"one of {SPECTRUM_CHOICES}", spectrum)
    return resolve_spectrum(model_adapter.auto_spectrum(model) if spectrum == "auto" else spectrum, "spectrum")


def patch_forcing(model: Any, forcing: SpectralForcing) -> Any:
    """A clone of ``model`` (a ModelPatcher) with the forcing wrapper installed under WRAPPER_KEY."""
    wrapper = ForcingWrapper(forcing, model_adapter.frame_of(model))
    patched = model.clone()
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY, wrapper)
    return patched


class SpectralForcingPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralForcingPatch",
            display_name="Spectral Forcing (diagnostic patch)",
            category=CATEGORY,
            description="DIAGNOSTIC for models NOT trained with spectral forcing (seed 004): the network sees its noisy "
                        "input low-passed at the data-to-noise contour (1-t)^2 A w^-beta = t^2 (identity at the data "
                        "end): the model denoises the low-passed input. A model trained without forcing never saw "
                        "such inputs, so expect worse samples: this measures how much the model relies on the band "
                        "the contour calls noise. Not a quality or speed option.",
            inputs=[io.Model.Input("model", tooltip="The model to patch (a diagnostic: it was not trained with forcing)."),
                    io.Combo.Input("spectrum", options=SPECTRUM_CHOICES, default="auto",
                                   tooltip="Data power spectrum P(w) = A w^-beta that sets the contour: 'auto' picks "
                                           "from the model's latent format, presets from seed 001 Table 4, or "
                                           "'custom'. A connected probe spectrum overrides this."),
                    io.Float.Input("custom_A", default=203.62, min=1e-6, max=1e9, step=0.01,
                                   tooltip="A of a custom spectrum (spectrum = custom)."),
                    io.Float.Input("custom_beta", default=1.9155, min=0.0, max=10.0, step=0.001,
                                   tooltip="beta of a custom spectrum (spectrum = custom)."),
                    io.Combo.Input("transform", options=list(TRANSFORMS), default="dct",
                                   tooltip="Transform of the low-pass: dct (seed 004's), dwt or fft."),
                    Spectrum.Input("probe_spectrum", optional=True,
                                   tooltip="A spectrum measured by PowerSpectrumProbe on your latents; overrides "
                                           "the spectrum widget.")],
            outputs=[io.Model.Output(tooltip="The model with its network input low-passed (diagnostic).")],
        )

    @classmethod
    def execute(cls, model, spectrum="auto", custom_A=203.62, custom_beta=1.9155, transform="dct",
                probe_spectrum=None) -> io.NodeOutput:
        inputs.model(model)
        if transform not in TRANSFORMS:
            fail("transform", f"one of {list(TRANSFORMS)}", transform)
        law = forcing_law(model, spectrum, custom_A, custom_beta, probe_spectrum)
        return io.NodeOutput(patch_forcing(model, SpectralForcing(law, transform)))

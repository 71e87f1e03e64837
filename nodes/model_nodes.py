"""SpectralProgressiveModel: the MODEL patch of formulation 2."""
from __future__ import annotations

from comfy_api.latest import io

from ..spectral_core.denoiser import HIGH_MODES
from . import inputs
from .model_patch import patch_model
from .types import CATEGORY, SpectralSchedule


class SpectralProgressiveModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralProgressiveModel",
            display_name="Spectral Progressive (model patch)",
            category=CATEGORY,
            description="Put between the model loader and any KSampler / SamplerCustom graph: while the high frequencies "
                        "are pure noise the network runs on a smaller latent, and every sampler, scheduler, mask and "
                        "ControlNet keeps working because the latent stays full size. On your own sigmas it switches "
                        "later than the paper's loop; feed DeltaSchedule's mapped_sigmas to SamplerCustom for the "
                        "paper's allocation.",
            inputs=[io.Model.Input("model", tooltip="The model to patch."),
                    SpectralSchedule.Input("schedule", optional=True,
                                           tooltip="A DeltaSchedule (default: delta 0.01, 2 stages, DCT, auto spectrum)."),
                    io.Combo.Input("high_band", options=list(HIGH_MODES), default="zero",
                                   tooltip="Prediction for the frequencies a low stage does not hold: 'zero' (the paper's "
                                           "pure-noise assumption) or 'wiener' (the estimate from the spectrum prior).")],
            outputs=[io.Model.Output(tooltip="The patched model.")],
        )

    @classmethod
    def execute(cls, model, schedule=None, high_band="zero") -> io.NodeOutput:
        inputs.model(model)
        patched, _ = patch_model(model, inputs.schedule(schedule), high_band)
        return io.NodeOutput(patched)

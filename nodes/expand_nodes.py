"""SpectralNoiseExpand: one stage switch (or its exact inverse) as a node, for hand-built
multi-stage graphs with KSamplerAdvanced / SamplerCustomAdvanced per stage."""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ..spectral_core.expansion import resize
from ..spectral_core.plan import RESPACE, respace_sigmas
from ..spectral_core.transforms import TRANSFORMS
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .types import CATEGORY


def _checked(model, samples: dict, sigmas, direction: str, scale: float) -> tuple[torch.Tensor, float, tuple[int, int]]:
    """The node's inputs, checked: (latent, its sigma, the new spatial size)."""
    inputs.model(model)
    x = inputs.latent(samples, "samples", nested_ok=True)["samples"]
    model_adapter.check_latent(model, model_adapter.fix_empty_latent(model, samples), "samples")
    if sigmas is None or len(inputs.sigmas(sigmas)) < 1:
        fail("sigmas", "at least one sigma (the latent's current noise level)", None)
    inputs.finite(x, "samples")
    inputs.finite(sigmas, "sigmas")
    inputs.finite_number(scale, "scale")
    if direction == "expand" and scale <= 1.0 or direction == "contract" and scale >= 1.0:
        fail("scale", "above 1 to expand, below 1 to contract", scale)
    sigma0 = float(sigmas[0])
    size = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
    mult = model_adapter.spatial_multiple_of(model)
    if min(size) < mult:
        fail("scale", f"a size of at least one patch ({mult}); {size} is smaller", scale)
    if not 0.0 <= float(model_adapter.frame(model).t_of_sigma(sigma0)) < 1.0:
        # at t = 1 the latent is pure noise, and ComfyUI's leftover-noise form of a flow latent
        # (x / (1 - sigma), what KSamplerAdvanced returns) is infinite
        fail("sigmas", "a first sigma that leaves some signal (below the model's pure-noise level, e.g. after the first "
             "steps of KSamplerAdvanced with leftover noise)", sigma0)
    return x, sigma0, size


class SpectralNoiseExpand(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralNoiseExpand",
            display_name="Spectral Noise Expand / Contract",
            category=CATEGORY,
            description="Grows a partly denoised latent (e.g. KSamplerAdvanced with leftover noise) to a larger size by "
                        "spectral noise expansion and timestep alignment, and re-aligns the remaining sigmas so the next "
                        "stage can continue (add_noise disabled). 'contract' is the exact inverse, to start a low stage "
                        "from a full-size latent.",
            inputs=[io.Model.Input("model", tooltip="The model (its frame and latent format)."),
                    io.Latent.Input("samples", tooltip="The latent at the first of the given sigmas."),
                    io.Sigmas.Input("sigmas", tooltip="The remaining sigmas, the first being the latent's current noise level."),
                    io.Combo.Input("direction", options=["expand", "contract"], default="expand",
                                   tooltip="expand: to a larger latent; contract: to a smaller one."),
                    io.Float.Input("scale", default=2.0, min=0.05, max=8.0, step=0.05,
                                   tooltip="Size factor per side (2 doubles for expand; 0.5 halves for contract)."),
                    io.Combo.Input("transform", options=list(TRANSFORMS), default="dct", tooltip="Spectral transform."),
                    io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=False,
                                 tooltip="Seed of the full-size noise whose band refills the new frequencies (use the "
                                         "run's seed for seed-consistent composition)."),
                    io.Combo.Input("respace", options=list(RESPACE), default="affine",
                                   tooltip="affine: re-space the remaining steps from the aligned time; keep: your sigmas "
                                           "below it.")],
            outputs=[io.Latent.Output("latent", tooltip="The latent at the new size."),
                     io.Sigmas.Output("aligned_sigmas", tooltip="Sigmas starting at the aligned noise level.")],
        )

    @classmethod
    def execute(cls, model, samples, sigmas, direction, scale, transform, seed, respace) -> io.NodeOutput:
        x, sigma0, size = _checked(model, samples, sigmas, direction, scale)
        frame = model_adapter.frame(model)
        x_flow = model_adapter.latent_to_flow(model, x, sigma0)
        new, t_new = resize(x_flow, size, float(frame.t_of_sigma(sigma0)), transform=transform, seed=seed)
        new_sigmas = respace_sigmas(sigmas.float().cpu(), t_new, frame, respace)
        out = {k: v for k, v in samples.items() if k != "noise_mask"}
        out["samples"] = model_adapter.flow_to_latent(model, new, float(new_sigmas[0])).to(x.dtype)
        return io.NodeOutput(out, new_sigmas)

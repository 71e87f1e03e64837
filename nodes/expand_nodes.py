"""SpectralNoiseExpand: one stage switch (or its exact inverse) as a node, for hand-built
multi-stage graphs with KSamplerAdvanced / SamplerCustomAdvanced per stage."""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ..spectral_core.expansion import contract, expand
from ..spectral_core.plan import RESPACE, respace_sigmas
from ..spectral_core.transforms import TRANSFORMS
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .types import CATEGORY


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
        bm = model_adapter.base_model(model)
        fr = model_adapter.frame_of(model)
        from ..spectral_core.frames import get_frame
        frame = get_frame(fr)
        sigma0 = float(sigmas[0])
        t0 = float(frame.t_of_sigma(sigma0))
        H, W = x.shape[-2:]
        size = (max(1, round(H * scale)), max(1, round(W * scale)))
        mult = model_adapter.spatial_multiple_of(model)
        if min(size) < mult:
            fail("scale", f"a size of at least one patch ({mult}); {size} is smaller", scale)
        if not 0.0 <= t0 < 1.0:
            # at t = 1 the latent is pure noise, and ComfyUI's leftover-noise form of a flow latent
            # (x / (1 - sigma), what KSamplerAdvanced returns) is infinite
            fail("sigmas", "a first sigma that leaves some signal (below the model's pure-noise level, e.g. after the first "
                 "steps of KSamplerAdvanced with leftover noise)", sigma0)
        ms = bm.model_sampling
        x_model = ms.noise_scaling(torch.tensor(sigma0), torch.zeros_like(x), bm.process_latent_in(x), False)
        x_flow = frame.to_flow(x_model.float(), sigma0)
        if direction == "expand":
            full_shape = tuple(x.shape[:-2]) + size
            gen = torch.Generator().manual_seed(int(seed))
            noise = torch.randn(full_shape, generator=gen)
            new, t_new = expand(x_flow, size, t0, transform=transform, noise=noise)
        else:
            new, t_new = contract(x_flow, size, t0, transform=transform)
        new_sigmas = respace_sigmas(sigmas.float().cpu(), t_new, frame, respace)
        s_new = float(new_sigmas[0])
        x_new = frame.from_flow(new, s_new)
        latent = ms.inverse_noise_scaling(torch.tensor(s_new), x_new)
        out = {k: v for k, v in samples.items() if k not in ("noise_mask",)}
        out["samples"] = bm.process_latent_out(latent).to(x.dtype)
        return io.NodeOutput(out, new_sigmas)

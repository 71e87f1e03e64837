"""SamplerSpectralProgressive (a SAMPLER for SamplerCustomAdvanced) and SpectralProgressiveSampler
(the KSampler-shaped all-in-one)."""
from __future__ import annotations

import comfy.sample
import comfy.samplers
from comfy_api.latest import io

from . import inputs, model_adapter
from .progressive_sampler import ProgressiveKSampler, sample_progressively
from .types import CATEGORY, SpectralSchedule


class SamplerSpectralProgressive(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SamplerSpectralProgressive",
            display_name="Sampler Spectral Progressive",
            category=CATEGORY,
            description="Wraps any SAMPLER so that it samples progressively: the latent starts small, grows by spectral "
                        "noise expansion when its high frequencies stop being pure noise, and finishes at full size. "
                        "Use with SamplerCustomAdvanced.",
            inputs=[io.Sampler.Input("sampler", tooltip="The base sampler run on every stage (from KSamplerSelect or any "
                                                        "Sampler* node: euler, dpmpp_2m, ancestral, SDE ...)."),
                    SpectralSchedule.Input("schedule", optional=True,
                                           tooltip="A DeltaSchedule. Default: delta 0.01, 2 stages, DCT, auto spectrum.")],
            outputs=[io.Sampler.Output(tooltip="The progressive sampler.")],
        )

    @classmethod
    def execute(cls, sampler, schedule=None) -> io.NodeOutput:
        return io.NodeOutput(ProgressiveKSampler(sampler, inputs.schedule(schedule)))


class SpectralProgressiveSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralProgressiveSampler",
            display_name="KSampler (Spectral Progressive)",
            category=CATEGORY,
            description="A KSampler that samples progressively in resolution. Same inputs as KSampler plus a schedule.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Noise seed. The same seed gives the same composition with or without progression."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Steps of your schedule (the plan keeps their count "
                                                                          "with respace 'affine')."),
                io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Classifier-free guidance."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, tooltip="The base sampler of every stage."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, tooltip="Your sigma schedule."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning."),
                io.Latent.Input("latent_image", tooltip="The latent to sample (empty for txt2img, encoded for img2img)."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Denoise strength; below 1 the run enters at the stage its start time belongs to."),
                SpectralSchedule.Input("schedule", optional=True, tooltip="A DeltaSchedule (default: delta 0.01, 2 stages)."),
            ],
            outputs=[io.Latent.Output(tooltip="The denoised latent, full size."),
                     io.String.Output("plan", tooltip="The plan that ran: stages, steps, FLOP-ideal speed-up.")],
        )

    @classmethod
    def execute(cls, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise,
                schedule=None) -> io.NodeOutput:
        spec = inputs.schedule(schedule)
        inputs.guidance(model, positive, negative, cfg)
        inputs.latent(latent_image, "latent_image", nested_ok=True)
        inputs.finite_number(denoise, "denoise", 0.0, 1.0)
        latent = model_adapter.fix_empty_latent(model, latent_image)
        model_adapter.check_latent(model, latent, "latent_image")
        sigmas = model_adapter.ksampler_sigmas(model, scheduler, steps, denoise, sampler_name)
        if sigmas is None:
            return io.NodeOutput(dict(latent_image, samples=latent), "denoise 0: nothing to do")
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        samples, plan = sample_progressively(model, spec, sampler_name, noise, cfg, sigmas, positive, negative, latent,
                                             seed, latent_image.get("noise_mask"), preview_steps=steps)
        out = {k: v for k, v in latent_image.items() if k != "downscale_ratio_spacial"}
        return io.NodeOutput(dict(out, samples=samples), plan.summary() if plan is not None else "")

"""FrequencyEdit (seed 001 Sec. 5.5, App. G) and FrequencyBandGain (model-free band gains)."""
from __future__ import annotations

import comfy.sample
import comfy.samplers
import torch
from comfy_api.latest import io

from ..schedules.editing import edit_run
from ..spectral_core.editing import apply_band_gains, band_transfer
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .progressive_sampler import sample_progressively
from .types import CATEGORY, SpectralSchedule


class FrequencyEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FrequencyEdit",
            display_name="Frequency Edit (texture / style)",
            category=CATEGORY,
            description="Edits texture and style while keeping structure: the source's spectrum below the entry stage's "
                        "band is kept (noised to that stage's switch time), the band above is filled with noise by "
                        "spectral noise expansion, and sampling resumes progressively with your prompt.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model."),
                io.Conditioning.Input("positive", tooltip="The editing prompt."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning."),
                io.Latent.Input("source", tooltip="The source latent (VAE-encode an image)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Noise seed of the new frequencies."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Steps of the full schedule."),
                io.Float.Input("cfg", default=4.0, min=0.0, max=100.0, step=0.1, tooltip="Classifier-free guidance."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, tooltip="Base sampler."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, tooltip="Sigma schedule."),
                io.Int.Input("entry_stage", default=0, min=0, max=3,
                             tooltip="Stage k whose band of the source is kept (1 = lowest). 0: chosen from strength."),
                io.Float.Input("strength", default=0.85, min=0.0, max=1.0, step=0.01,
                               tooltip="When entry_stage is 0: the noise level to restart from; the stage whose switch "
                                       "time is closest is used (the summary shows the exact times)."),
                SpectralSchedule.Input("schedule", optional=True, tooltip="A DeltaSchedule (default: delta 0.01, 2 stages)."),
            ],
            outputs=[io.Latent.Output(tooltip="The edited latent."),
                     io.String.Output("summary", tooltip="Entry stage, restart time and the switch times available.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, source, seed, steps, cfg, sampler_name, scheduler, entry_stage,
                strength, schedule=None) -> io.NodeOutput:
        spec = inputs.schedule(schedule)
        inputs.guidance(model, positive, negative, cfg)
        latent = inputs.latent(source, "source", nested_ok=True)["samples"]
        model_adapter.check_latent(model, latent, "source")
        inputs.finite(latent, "source")
        sigmas = model_adapter.ksampler_sigmas(model, scheduler, steps, 1.0)
        plan = model_adapter.plan(spec, sigmas, latent.shape[-2:], model, latent="source")
        noise = comfy.sample.prepare_noise(latent, seed, source.get("batch_index"))
        run = edit_run(spec, plan, model_adapter.clean_to_flow(model, latent), noise.float(), entry_stage, strength)
        start = model_adapter.flow_to_latent(model, run.start, run.sigma_restart).to(latent.dtype)
        samples, _ = sample_progressively(model, run.spec, sampler_name, torch.zeros_like(latent), cfg, run.sigmas,
                                          positive, negative, start, seed)
        out = {k: v for k, v in source.items() if k != "noise_mask"}
        return io.NodeOutput(dict(out, samples=samples), run.summary(plan))


def _check_band_widgets(mode: str, widgets: dict, items: dict) -> None:
    """FrequencyBandGain's inputs: something to edit, finite widgets (NaN passes ComfyUI's min/max
    validation), ordered cuts, and IMAGE / LATENT sockets."""
    if items["image"] is None and items["latent"] is None:
        fail("image", "an IMAGE or a LATENT to edit", None)
    for name, v in widgets.items():
        inputs.finite_number(v, name)
    if mode == "gains" and not widgets["cut_low"] < widgets["cut_high"]:
        fail("cut_high", f"a cut above cut_low ({widgets['cut_low']})", widgets["cut_high"])
    for name, v in items.items():
        if v is not None and name.startswith("image"):
            inputs.image(v, name)
        elif v is not None:
            inputs.latent(v, name)


def _band_edit(mode: str, w: dict, a: torch.Tensor, b: torch.Tensor | None, b_name: str) -> torch.Tensor:
    """Gains on ``a``, or (transfer) the low band of ``a`` with the high band of ``b``."""
    if mode != "transfer":
        return apply_band_gains(a, [w["cut_low"], w["cut_high"]], [w["gain_low"], w["gain_mid"], w["gain_high"]],
                                w["soft"])
    if b is None:
        fail(b_name, "a second input for transfer mode", None)
    if tuple(b.shape) != tuple(a.shape):
        fail(b_name, f"the shape of the first input {tuple(a.shape)}", tuple(b.shape))
    return band_transfer(a, b, w["cut_low"], w["soft"])


class FrequencyBandGain(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FrequencyBandGain",
            display_name="Frequency Band Gain / Transfer",
            category=CATEGORY,
            description="Model-free frequency editing of an IMAGE or a LATENT: scale the low, mid and high bands "
                        "(sharpen, soften) or, in transfer mode, take the low band from the first input and the high "
                        "band from the second (texture transfer). Outputs the kinds that are connected.",
            inputs=[
                io.Combo.Input("mode", options=["gains", "transfer"], default="gains",
                               tooltip="gains: per-band gains; transfer: low band of A + high band of B (cut at cut_low)."),
                io.Float.Input("cut_low", default=0.25, min=0.01, max=1.4, step=0.01,
                               tooltip="Low/mid cut in normalised frequency (1 = Nyquist of the shorter side)."),
                io.Float.Input("cut_high", default=0.6, min=0.01, max=1.45, step=0.01, tooltip="Mid/high cut."),
                io.Float.Input("gain_low", default=1.0, min=0.0, max=4.0, step=0.01, tooltip="Gain below cut_low."),
                io.Float.Input("gain_mid", default=1.0, min=0.0, max=4.0, step=0.01, tooltip="Gain between the cuts."),
                io.Float.Input("gain_high", default=1.5, min=0.0, max=4.0, step=0.01, tooltip="Gain above cut_high."),
                io.Float.Input("soft", default=0.05, min=0.0, max=0.5, step=0.01, tooltip="Width of the transitions."),
                io.Image.Input("image", optional=True, tooltip="IMAGE to edit (input A)."),
                io.Latent.Input("latent", optional=True, tooltip="LATENT to edit (input A)."),
                io.Image.Input("image_b", optional=True, tooltip="Transfer mode: the IMAGE whose high band is taken."),
                io.Latent.Input("latent_b", optional=True, tooltip="Transfer mode: the LATENT whose high band is taken."),
            ],
            outputs=[io.Image.Output("edited_image", tooltip="The edited IMAGE (when an image was given)."),
                     io.Latent.Output("edited_latent", tooltip="The edited LATENT (when a latent was given).")],
        )

    @classmethod
    def execute(cls, mode, cut_low, cut_high, gain_low, gain_mid, gain_high, soft, image=None, latent=None,
                image_b=None, latent_b=None) -> io.NodeOutput:
        w = dict(cut_low=cut_low, cut_high=cut_high, gain_low=gain_low, gain_mid=gain_mid, gain_high=gain_high,
                 soft=soft)
        _check_band_widgets(mode, w, dict(image=image, image_b=image_b, latent=latent, latent_b=latent_b))
        out_img, out_lat = None, None
        if image is not None:  # IMAGE is (B, H, W, C): edit channels-first
            b = None if image_b is None else image_b.movedim(-1, 1)
            out_img = _band_edit(mode, w, image.movedim(-1, 1), b, "image_b").movedim(1, -1).clamp(0.0, 1.0)
        if latent is not None:
            b = None if latent_b is None else latent_b["samples"]
            out_lat = dict(latent, samples=_band_edit(mode, w, latent["samples"], b, "latent_b"))
        return io.NodeOutput(out_img, out_lat)

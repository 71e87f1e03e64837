"""FrequencyEdit (seed 001 Sec. 5.5, App. G) and FrequencyBandGain (model-free band gains)."""
from __future__ import annotations

from dataclasses import replace

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch
from comfy_api.latest import io

from ..spectral_core.editing import apply_band_gains, band_transfer, edit_start
from ..spectral_core.frames import get_frame
from ..spectral_core.plan import restart_sigmas
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .progressive_sampler import ProgressiveKSampler
from .sampler_nodes import _spec, ksampler_sigmas
from .types import CATEGORY, SpectralSchedule


def pick_entry_stage(full_switch_times: list[float], entry_stage: int, strength: float) -> int:
    """1-based entry stage k: ``entry_stage`` when > 0, else the stage whose full-size switch time
    (the noise level the edit restarts from) is closest to ``strength``."""
    n = len(full_switch_times)
    if n == 0:
        fail("schedule", "at least two stages (a low stage to keep the source's structure from)", "one stage")
    if entry_stage > 0:
        if entry_stage > n:
            fail("entry_stage", f"a stage from 1 to {n} (the plan has {n + 1} stages)", entry_stage)
        return entry_stage
    if not 0.0 <= strength <= 1.0:
        fail("strength", "a value in [0, 1]", strength)
    return 1 + min(range(n), key=lambda i: abs(full_switch_times[i] - strength))


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
        spec = _spec(schedule)
        inputs.model(model)
        inputs.conditioning(positive, "positive")
        inputs.conditioning(negative, "negative")
        inputs.finite_number(cfg, "cfg")
        latent = inputs.latent(source, "source", nested_ok=True)["samples"]
        model_adapter.check_latent(model, latent, "source")
        if not bool(torch.isfinite(latent).all()):
            fail("source", "finite values", "NaN/inf")
        bm = model_adapter.base_model(model)
        frame = get_frame(model_adapter.frame_of(model))
        sigmas = ksampler_sigmas(model, scheduler, steps, 1.0)
        plan = spec.plan(sigmas, tuple(latent.shape[-2:]), frame=frame.name,
                         spatial_multiple=model_adapter.spatial_multiple_of(model),
                         auto_spectrum=model_adapter.auto_spectrum(model), entry="noise")
        k = pick_entry_stage(plan.full_switch_times, entry_stage, strength)
        stage = plan.stages[k - 1]
        noise = comfy.sample.prepare_noise(latent, seed, source.get("batch_index"))
        x0 = bm.process_latent_in(latent).float()
        x_T, T = edit_start(x0, noise.float(), stage.size, stage.switch_time, plan.transform)
        sigma_T = float(frame.sigma_of_t(T))
        run_sigmas = restart_sigmas(sigmas, T, frame)
        ms = bm.model_sampling
        start = bm.process_latent_out(ms.inverse_noise_scaling(torch.tensor(sigma_T), frame.from_flow(x_T, sigma_T)))
        # the rest of the run keeps the full plan's switch times, whatever the schedule's mode
        run_spec = replace(spec, mode="manual", switch_steps=None,
                           switch_sigmas=tuple(float(frame.sigma_of_t(st.switch_time)) for st in plan.stages[:-1]))
        sampler = ProgressiveKSampler(comfy.samplers.sampler_object(sampler_name), run_spec)
        callback = latent_preview.prepare_callback(model, len(run_sigmas) - 1)
        samples = comfy.sample.sample_custom(model, torch.zeros_like(latent), cfg, sampler, run_sigmas, positive, negative,
                                             start.to(latent.dtype), callback=callback,
                                             disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        out = source.copy()
        out.pop("noise_mask", None)
        out["samples"] = samples
        times = ", ".join(f"stage {i + 1}: {t:.4f}" for i, t in enumerate(plan.full_switch_times))
        text = (f"entry stage {k} ({stage.size[0]}x{stage.size[1]} band kept), restart at t={T:.4f} (sigma {sigma_T:.4f}), "
                f"{len(run_sigmas) - 1} steps\nswitch times (full-size t): {times}")
        return io.NodeOutput(out, text)


def _as_channels_first(image: torch.Tensor) -> torch.Tensor:
    return image.movedim(-1, 1)


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
        if image is None and latent is None:
            fail("image", "an IMAGE or a LATENT to edit", None)
        for name, v in (("cut_low", cut_low), ("cut_high", cut_high), ("gain_low", gain_low), ("gain_mid", gain_mid),
                        ("gain_high", gain_high), ("soft", soft)):
            inputs.finite_number(v, name)  # NaN passes ComfyUI's min/max validation
        if mode == "gains" and not cut_low < cut_high:
            fail("cut_high", f"a cut above cut_low ({cut_low})", cut_high)
        for name, v in (("image", image), ("image_b", image_b)):
            if v is not None:
                inputs.image(v, name)
        for name, v in (("latent", latent), ("latent_b", latent_b)):
            if v is not None:
                inputs.latent(v, name)
        out_img, out_lat = None, None

        def edit(a: torch.Tensor, b: torch.Tensor | None, b_name: str) -> torch.Tensor:
            if mode == "transfer":
                if b is None:
                    fail(b_name, "a second input for transfer mode", None)
                if tuple(b.shape) != tuple(a.shape):
                    fail(b_name, f"the shape of the first input {tuple(a.shape)}", tuple(b.shape))
                return band_transfer(a, b, cut_low, soft)
            return apply_band_gains(a, [cut_low, cut_high], [gain_low, gain_mid, gain_high], soft)

        if image is not None:
            b = None if image_b is None else _as_channels_first(image_b)
            out_img = edit(_as_channels_first(image), b, "image_b").movedim(1, -1).clamp(0.0, 1.0)
        if latent is not None:
            out_lat = latent.copy()
            out_lat["samples"] = edit(latent["samples"], None if latent_b is None else latent_b["samples"], "latent_b")
        return io.NodeOutput(out_img, out_lat)

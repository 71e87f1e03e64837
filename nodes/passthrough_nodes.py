"""SpectralPassthroughSweep: seed 001 App. B as a diagnostic.  The same prompt and seed are sampled at full size
once plainly and once per delta with every frequency held at pure noise (t T(eps)) until its Prop. 1 activation
time (``spectral_core.passthrough``); the decoded images come back as one labelled batch and the change against
the plain run as numbers, so a user sees which delta their model and prompt tolerate before choosing a schedule.

Change per delta: the relative RMS difference of the sampled latents, ||x_delta - x_plain|| / ||x_plain||
(``relative_change``), and the PSNR of the decoded images against the plain run's.  ``tolerated_delta`` is
the largest swept delta whose change (and every smaller one's) stays within ``tolerance``: wire it into
DeltaSchedule's delta, with SpectralCalibrate's spectrum into both nodes, for few-step / distilled models.
"""
from __future__ import annotations

import math

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch
from comfy_api.latest import io

from ..schedules.presets import PRESETS
from ..spectral_core.passthrough import PassthroughDenoiser, activation_times, relative_change, tolerated_delta
from ..spectral_core.transforms import TRANSFORMS
from ..spectral_core.validation import fail
from . import inputs, model_adapter
from .plot import font
from .types import CATEGORY, Spectrum, parse_floats

MAX_DELTAS = 12
DELTAS_EXPECTED = (f"1 to {MAX_DELTAS} distinct comma-separated tolerances in (0, 1), such as "
                   "'0.001, 0.01, 0.05, 0.1'")


def parse_deltas(text: str) -> tuple[float, ...]:
    """'0.001, 0.01, 0.05' -> (0.001, 0.01, 0.05); anything else is an error naming ``deltas``."""
    if not isinstance(text, str):
        fail("deltas", DELTAS_EXPECTED, text)
    try:
        vals = parse_floats(text, "deltas")
    except ValueError:
        fail("deltas", DELTAS_EXPECTED, text)
    if (not vals or len(vals) > MAX_DELTAS or len(set(vals)) != len(vals)
            or any(not (math.isfinite(d) and 0.0 < d < 1.0) for d in vals)):
        fail("deltas", DELTAS_EXPECTED, text)
    return vals


class _ComfyPassthrough(PassthroughDenoiser):
    """The passthrough around ComfyUI's KSamplerX0Inpaint: other attributes (inner_model, ...) are the
    wrapped model's, as ComfyUI's samplers look through them."""

    def __getattr__(self, name: str):
        inner = self.__dict__.get("denoiser")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


class PassthroughKSampler(comfy.samplers.KSAMPLER):
    """Runs ``base`` (a KSAMPLER) with its model wrapped in the App. B passthrough (after CFG, one
    replacement per model call); the run's own noise is the one ComfyUI hands the sampler."""

    def __init__(self, base: comfy.samplers.KSAMPLER, activation: torch.Tensor, frame: str, transform: str):
        if not isinstance(base, comfy.samplers.KSAMPLER):
            fail("sampler_name", "a k-diffusion sampler", type(base).__name__)
        super().__init__(self.run_base, base.extra_options, base.inpaint_options)
        self.base, self.activation, self.frame, self.transform = base, activation, frame, transform
        self.noise = None

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        self.noise = noise
        return super().sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)

    def run_base(self, model_k, x, sigmas, *args, **kwargs):
        den = _ComfyPassthrough(model_k, self.noise, self.activation, sigmas, frame=self.frame,
                                transform=self.transform)
        return self.base.sampler_function(den, x, sigmas, *args, **kwargs)


def label_images(images: torch.Tensor, text: str) -> torch.Tensor:
    """IMAGE (N, H, W, 3) with ``text`` printed (PIL) on a dark strip at the top of each image; the pixels below
    the strip are the input's, unquantised."""
    import numpy as np
    from PIL import Image, ImageDraw

    out = images[..., :3].clone()
    h, w = int(images.shape[1]), int(images.shape[2])
    for i, img in enumerate(images):
        pil = Image.fromarray((img[..., :3].clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
        d = ImageDraw.Draw(pil)
        size = max(8, min(h, w) // 16)
        d.font = font(size)
        width = d.textlength(text)
        if width > w - 6:  # shrink to fit the image's width
            d.font = font(max(8, int(size * (w - 6) / width)))
        rows = min(h, int(d.textbbox((3, 2), text)[3]) + 3)
        d.rectangle([0, 0, w, rows], fill=(0, 0, 0))
        d.text((3, 2), text, fill=(255, 255, 255))
        strip = np.asarray(pil, dtype=np.float32)[:rows] / 255.0
        out[i, :rows] = torch.from_numpy(strip).to(out.device, out.dtype)
    return out


def psnr(images: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of decoded images (range 1) against the plain run's; inf when identical."""
    mse = float(((images.double() - reference.double()) ** 2).mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


class _Sweep:
    """One plain run and one run per delta, on the same noise and sigmas, under one progress bar."""

    def __init__(self, model, positive, negative, latent, noise, sigmas, cfg, seed, runs: int):
        self.args = (model, positive, negative, latent, noise, sigmas, cfg, seed)
        self.steps = len(sigmas) - 1
        self.total = runs * self.steps
        self.done = 0
        self.pbar = comfy.utils.ProgressBar(self.total)
        self.previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)

    def _callback(self, step, x0, x, total_steps):
        preview = None
        if self.previewer is not None:
            preview = self.previewer.decode_latent_to_preview_image("JPEG", x0)
        self.pbar.update_absolute(self.done + step + 1, self.total, preview)

    def run(self, sampler: comfy.samplers.KSAMPLER) -> torch.Tensor:
        model, positive, negative, latent, noise, sigmas, cfg, seed = self.args
        out = comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent,
                                         callback=self._callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
                                         seed=seed)
        self.done += self.steps
        return out


def _check(model, positive, negative, latent, vae, cfg, tolerance, transform) -> torch.Tensor:
    inputs.model(model)
    inputs.conditioning(positive, "positive")
    inputs.conditioning(negative, "negative")
    inputs.latent(latent, "latent")
    if not hasattr(vae, "decode"):
        fail("vae", "a VAE (from a loader) to decode the sweep", type(vae).__name__)
    inputs.finite_number(cfg, "cfg")
    inputs.finite_number(tolerance, "tolerance", 0.0)
    if transform not in TRANSFORMS:
        fail("transform", f"one of {list(TRANSFORMS)}", transform)
    if latent.get("noise_mask") is not None:
        fail("latent", "a latent without a noise mask (the sweep samples the whole latent: remove SetLatentNoiseMask)",
             "a latent with a noise mask")
    x = model_adapter.fix_empty_latent(model, latent)
    model_adapter.check_latent(model, x, "latent")
    if x.ndim != 4:
        fail("latent", "an image latent (B,C,H,W): the sweep decodes and labels still images; video latents are "
             "not supported", tuple(x.shape))
    if x.numel() == 0:
        fail("latent", "a non-empty latent", tuple(x.shape))
    return x


def _report(deltas, changes, psnrs, tolerance, chosen) -> str:
    lines = [f"delta {d:g}: latent change {c:.4g} ({100 * c:.2f} %), PSNR {p:.2f} dB vs plain"
             for d, c, p in zip(deltas, changes, psnrs)]
    if chosen is None:
        lines.append(f"no swept delta stays within tolerance {tolerance:g}: tolerated_delta = the smallest, "
                     f"{min(deltas):g}; sweep smaller deltas")
    else:
        lines.append(f"tolerated_delta = {chosen:g} (largest swept delta with change <= {tolerance:g})")
    return "\n".join(lines)


def sweep_runs(model, positive, negative, x, latent, seed, steps, cfg, sampler_name, scheduler, ds, law,
               transform) -> list[torch.Tensor]:
    """The plain run, then one App. B passthrough run per delta (same noise, sigmas and sampler)."""
    frame = model_adapter.frame_of(model)
    sigmas = model_adapter.ksampler_sigmas(model, scheduler, steps, 1.0, sampler_name)
    noise = comfy.sample.prepare_noise(x, seed, latent.get("batch_index"))
    sweep = _Sweep(model, positive, negative, x, noise, sigmas, cfg, seed, 1 + len(ds))
    runs = [sweep.run(comfy.samplers.sampler_object(sampler_name))]
    for d in ds:
        act = activation_times(law, x.shape[-2:], d, transform)
        runs.append(sweep.run(PassthroughKSampler(comfy.samplers.sampler_object(sampler_name), act, frame, transform)))
    return runs


def sweep_outputs(vae, runs: list[torch.Tensor], ds: list[float], seed: int, tolerance: float):
    """(labelled image batch, report, tolerated delta): the decoded runs with their delta, change and PSNR."""
    images = [vae.decode(r) for r in runs]
    changes = [relative_change(r, runs[0]) for r in runs[1:]]
    psnrs = [psnr(im, images[0]) for im in images[1:]]
    labelled = [label_images(images[0], f"plain, seed {seed}")]
    labelled += [label_images(im, f"delta {d:g}  change {c:.3f}  PSNR {p:.1f} dB")
                 for im, d, c, p in zip(images[1:], ds, changes, psnrs)]
    chosen = tolerated_delta(ds, changes, tolerance)
    report = _report(ds, changes, psnrs, tolerance, chosen)
    return torch.cat(labelled, 0), report, float(min(ds) if chosen is None else chosen)


class SpectralPassthroughSweep(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralPassthroughSweep",
            display_name="Spectral Passthrough Sweep (delta diagnostic)",
            category=CATEGORY,
            description="Seed 001 App. B as a diagnostic: samples your prompt at full size once plainly and once per "
                        "delta with every frequency held at pure noise until its activation time (Prop. 1). Shows "
                        "which delta your model and prompt tolerate before you choose a schedule: a labelled image "
                        "batch (plain first), the change per delta, and the largest delta within a tolerance "
                        "(wire it into DeltaSchedule's delta). Costs 1 + (number of deltas) full samplings.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning (your prompt)."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning."),
                io.Latent.Input("latent", tooltip="The latent to sample (an empty image latent; batches and any "
                                                  "aspect ratio work; no video, no noise mask)."),
                io.Vae.Input("vae", tooltip="Decodes every run for the image batch."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Noise seed: every run uses the same noise, so only the passthrough differs."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Steps of every run."),
                io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES,
                               tooltip="The sampler of every run (deterministic samplers show the effect cleanest)."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, tooltip="Your sigma schedule."),
                io.String.Input("deltas", default="0.001, 0.01, 0.05, 0.1",
                                tooltip=f"Tolerances to sweep: comma-separated, each in (0, 1), at most {MAX_DELTAS}. "
                                        "Larger delta = frequencies stay noise longer (more speed-up, more risk)."),
                io.Combo.Input("spectrum", options=["auto", *PRESETS.keys()], default="auto",
                               tooltip="Power-law prior P(w) = A w^-beta for the activation times: 'auto' picks from "
                                       "the model's latent format; a connected probe_spectrum overrides it."),
                io.Combo.Input("transform", options=list(TRANSFORMS), default="dct",
                               tooltip="Spectral transform of the replacement (App. B uses the DCT)."),
                io.Float.Input("tolerance", default=0.05, min=0.0, max=10.0, step=0.005, round=0.0001,
                               tooltip="Largest acceptable relative latent change against the plain run, for "
                                       "the tolerated_delta output."),
                Spectrum.Input("probe_spectrum", optional=True,
                               tooltip="A spectrum from SpectralCalibrate or PowerSpectrumProbe "
                                       "(overrides 'spectrum')."),
            ],
            outputs=[io.Image.Output("images", tooltip="Decoded runs: plain first, then one per delta, each labelled "
                                                       "with its delta, change and PSNR (batches: each run's images "
                                                       "in order)."),
                     io.String.Output("changes",
                                      tooltip="Per delta: relative latent change and PSNR vs the plain run."),
                     io.Float.Output("tolerated_delta", tooltip="The largest swept delta within tolerance (the "
                                                                "smallest swept one if none is); for DeltaSchedule.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, vae, seed, steps, cfg, sampler_name, scheduler, deltas,
                spectrum, transform, tolerance, probe_spectrum=None) -> io.NodeOutput:
        x = _check(model, positive, negative, latent, vae, cfg, tolerance, transform)
        ds = parse_deltas(deltas)
        law = model_adapter.spectrum_law(model, spectrum, probe_spectrum)
        runs = sweep_runs(model, positive, negative, x, latent, seed, steps, cfg, sampler_name, scheduler, ds, law,
                          transform)
        return io.NodeOutput(*sweep_outputs(vae, runs, ds, seed, float(tolerance)))

"""PowerSpectrumProbe: measure a latent's (or image's) power spectrum and fit A w^-beta."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ..schedules.spec import scales_for_stages
from ..schedules.switching import band_edge, stage_switch_times
from ..spectral_core.plan import stage_scale, stage_sizes
from ..spectral_core.spectra import measure_spectrum
from ..spectral_core.validation import check_open_unit, fail
from . import inputs
from .plot import spectrum_plot, to_image_tensor
from .types import CATEGORY, Spectrum


def probe(x, delta: float, stages: int, transform: str = "dct") -> tuple[dict, object, str]:
    """x: (B,C,H,W) or (B,C,T,H,W). Returns (spectrum value, PIL plot, summary)."""
    delta = check_open_unit(delta, "delta")
    m = measure_spectrum(x.float(), transform)
    law = m.fit.law
    H, W = m.size
    scales = scales_for_stages(stages)
    actual = [stage_scale(size, (H, W)) for size in stage_sizes((H, W), scales)]  # what the planner runs
    switch = stage_switch_times(delta, law, (H, W), actual)
    markers = [(f"s={s:g}: t*={t:.3f}", band_edge(a, (H, W))) for s, a, t in zip(scales[:-1], actual, switch)]
    curves = [("pooled", m.pooled.tolist())] + [(f"ch{c}", m.power[c].tolist()) for c in range(min(m.power.shape[0], 4))]
    img = spectrum_plot(m.freqs.tolist(), curves, (law.A, law.beta), markers)
    lines = [f"P(w) = {law.A:.5g} * w^-{law.beta:.5g}  (R^2 {m.fit.r2:.3f}, rms log error {m.fit.rms_log_error:.3f})",
             f"measured on {x.shape[0]} sample(s), {H}x{W}, {x.shape[1]} channel(s)"]
    lines += [f"stage at scale {s:g} ends at t*={t:.4f} (delta {delta})" for s, t in zip(scales[:-1], switch)]
    lines += [f"channel {c}: A={f.law.A:.4g} beta={f.law.beta:.4g}" for c, f in enumerate(m.channel_fits)]
    value = {"law": law, "channel_laws": [f.law for f in m.channel_fits], "r2": m.fit.r2, "size": (H, W),
             "freqs": m.freqs.tolist(), "power": m.pooled.tolist()}
    return value, img, "\n".join(lines)


class PowerSpectrumProbe(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PowerSpectrumProbe",
            display_name="Power Spectrum Probe",
            category=CATEGORY,
            description="Measures the radially averaged power spectrum of latents (or images, VAE-encoded when a VAE is "
                        "given), fits P(w) = A w^-beta, and plots it with the stage switch frequencies. Connect its "
                        "spectrum to DeltaSchedule to derive the schedule from your own data.",
            is_output_node=True,
            inputs=[io.Latent.Input("latent", optional=True, tooltip="Latents to measure (a batch of real samples is best)."),
                    io.Image.Input("image", optional=True, tooltip="Images to measure (encoded with the VAE if given)."),
                    io.Vae.Input("vae", optional=True, tooltip="Encode the images to the model's latent space first."),
                    io.Float.Input("delta", default=0.01, min=0.0001, max=0.5, step=0.001,
                                   tooltip="delta for the switch frequencies marked on the plot."),
                    io.Int.Input("stages", default=2, min=1, max=4, tooltip="Stages for the marked switch frequencies.")],
            outputs=[Spectrum.Output("spectrum", tooltip="The fitted spectrum (A, beta, per-channel fits)."),
                     io.Image.Output("plot", tooltip="Log-log plot: measured spectrum, fit, switch frequencies."),
                     io.String.Output("summary", tooltip="The fit and the switch times as text.")],
        )

    @classmethod
    def execute(cls, latent=None, image=None, vae=None, delta=0.01, stages=2) -> io.NodeOutput:
        if latent is not None:
            x = inputs.latent(latent, "latent")["samples"]
        elif image is not None:
            if inputs.image(image, "image").shape[0] == 0:
                fail("image", "a non-empty IMAGE batch", tuple(image.shape))
            x = vae.encode(image[:, :, :, :3]) if vae is not None else image.movedim(-1, 1)
        else:
            fail("latent", "a LATENT or an IMAGE to measure", None)
        if x.numel() == 0:
            fail("latent" if latent is not None else "image", "a non-empty input", tuple(x.shape))
        inputs.finite(x, "latent" if latent is not None else "image")
        try:
            value, img, text = probe(x, delta, stages)
        except ValueError as exc:  # name the node input, keep the reason
            raise ValueError(f"{'latent' if latent is not None else 'image'}: {exc}") from None
        plot = to_image_tensor(img)
        return io.NodeOutput(value, plot, text, ui=ui.PreviewImage(plot, cls=cls))

"""DeltaSchedule: the spectral schedule as a socket value (and, given the run's sigmas and latent,
the plan's mapped full-size SIGMAS for the model patch)."""
from __future__ import annotations

from dataclasses import replace

import torch
from comfy_api.latest import io

from ..schedules.presets import PRESETS
from ..schedules.spec import ScheduleSpec, scales_for_stages
from ..spectral_core.expansion import REFILLS
from ..spectral_core.spectra import PowerLaw
from ..spectral_core.transforms import TRANSFORMS
from ..schedules.planner import RESPACE
from . import inputs, model_adapter
from .types import CATEGORY, SpectralSchedule, Spectrum, parse_floats, parse_ints

SPECTRUM_CHOICES = ["auto", *PRESETS.keys(), "custom"]


def build_spec(mode: str, delta: float, stages: int, scales: str, transform: str, spectrum: str, custom_A: float,
               custom_beta: float, refill: str, respace: str, manual_switch: str, manual_unit: str,
               measured: dict | None = None) -> ScheduleSpec:
    """Widget values -> ScheduleSpec (every check names the widget)."""
    sc = parse_floats(scales, "scales") or scales_for_stages(stages)
    if measured is not None:
        law: object = measured["law"]
    elif spectrum == "custom":
        try:
            law = PowerLaw(float(custom_A), float(custom_beta))
        except ValueError as exc:  # the core names the law's fields; the user set these widgets
            msg = str(exc).replace("spectrum.A:", "custom_A:", 1).replace("spectrum.beta:", "custom_beta:", 1)
            raise ValueError(msg) from None
    else:
        law = spectrum
    kwargs = {}
    if mode == "manual":
        if manual_unit == "step":
            kwargs["switch_steps"] = parse_ints(manual_switch, "manual_switch")
        else:
            kwargs["switch_sigmas"] = parse_floats(manual_switch, "manual_switch")
    try:
        return ScheduleSpec(mode=mode, delta=delta, scales=sc, transform=transform, spectrum=law, refill=refill,
                            respace=respace, **kwargs)
    except ValueError as exc:  # switch_sigmas / switch_steps are the manual_switch widget
        raise model_adapter.renamed(exc) from None


SCHEDULE_INPUTS = [
    io.Combo.Input("mode", options=["delta", "manual"], default="delta",
                   tooltip="delta: switch times from the error tolerance delta and the data spectrum (seed 001 Prop. 2). "
                           "manual: you give the switch sigmas or steps."),
    io.Float.Input("delta", default=0.01, min=0.0001, max=0.5, step=0.001, round=0.0001,
                   tooltip="Error tolerance: a band is kept small while its best velocity prediction is within delta of pure "
                           "noise. Larger = switches later = faster, blurrier. 0.01 is the paper's default."),
    io.Int.Input("stages", default=2, min=1, max=4,
                  tooltip="Number of resolution stages S at halving scales (2: 1/2 then full; 3: 1/4, 1/2, full)."),
    io.String.Input("scales", default="",
                    tooltip="Optional explicit scales, increasing and ending at 1, e.g. '0.25, 0.5, 1'. Empty: from stages."),
    io.Combo.Input("transform", options=list(TRANSFORMS), default="dct",
                   tooltip="Spectral transform: DCT (default), Haar DWT (power-of-two sizes), or FFT."),
    io.Combo.Input("spectrum", options=SPECTRUM_CHOICES, default="auto",
                   tooltip="Data power spectrum P(w) = A w^-beta: 'auto' picks from the model's latent format, presets from "
                           "seed 001 Table 4, or 'custom' A and beta. A connected probe spectrum overrides this."),
    io.Float.Input("custom_A", default=203.62, min=1e-6, max=1e9, step=0.01, tooltip="A of a custom power law."),
    io.Float.Input("custom_beta", default=1.9155, min=0.0, max=10.0, step=0.001, round=0.0001,
                   tooltip="beta of a custom power law."),
    io.Combo.Input("refill", options=list(REFILLS), default="paper",
                   tooltip="New frequencies at a switch: 'paper' fills t~ * noise; 'matched' fills noise whose power "
                           "matches the spectrum prior at t~ (exact for Gaussian data)."),
    io.Combo.Input("respace", options=list(RESPACE), default="affine",
                   tooltip="After a switch: 'affine' re-spaces your remaining steps from the aligned time (same step count, "
                           "the paper's allocation); 'keep' continues on your own sigmas below the aligned time."),
    io.String.Input("manual_switch", default="",
                    tooltip="Manual mode: one value per stage but the last, e.g. '0.8' (sigma) or '12' (step)."),
    io.Combo.Input("manual_unit", options=["sigma", "step"], default="sigma",
                   tooltip="Whether manual_switch holds sigmas or step numbers."),
]


class DeltaSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeltaSchedule",
            display_name="Spectral Schedule (delta)",
            category=CATEGORY,
            description="The spectral progressive schedule: how many stages, when each one grows (from delta and the "
                        "data spectrum, or by hand), and how. Feed it to the spectral samplers or the model patch. "
                        "With sigmas and a latent connected it also outputs the plan's full-size SIGMAS, which give the "
                        "model patch the paper's step allocation.",
            inputs=[*SCHEDULE_INPUTS,
                    Spectrum.Input("probe_spectrum", optional=True,
                                   tooltip="A spectrum measured by PowerSpectrumProbe; overrides the spectrum widget."),
                    io.Model.Input("model", optional=True,
                                   tooltip="The model, to read its frame, patch size and latent format for the SIGMAS output."),
                    io.Sigmas.Input("sigmas", optional=True, tooltip="Your sigmas (e.g. from BasicScheduler)."),
                    io.Latent.Input("latent", optional=True, tooltip="The latent to be sampled (for its size)."),
                    ],
            outputs=[SpectralSchedule.Output("schedule", tooltip="The schedule."),
                     io.Sigmas.Output("mapped_sigmas", tooltip="Full-size sigmas that give the model patch the paper's "
                                                                "allocation (your sigmas unchanged when not computable)."),
                     io.String.Output("summary", tooltip="The plan: stage sizes, steps, switch times, FLOP-ideal speed-up.")],
        )

    @classmethod
    def execute(cls, mode, delta, stages, scales, transform, spectrum, custom_A, custom_beta, refill, respace,
                manual_switch, manual_unit, probe_spectrum=None, model=None, sigmas=None, latent=None) -> io.NodeOutput:
        if probe_spectrum is not None:
            inputs.spectrum(probe_spectrum, "probe_spectrum")
        if model is not None:
            inputs.model(model)
        if sigmas is not None:
            inputs.sigmas(sigmas)
        if latent is not None:
            inputs.latent(latent, "latent")
        spec = build_spec(mode, delta, stages, scales, transform, spectrum, custom_A, custom_beta, refill, respace,
                          manual_switch, manual_unit, probe_spectrum)
        out_sigmas = sigmas if sigmas is not None else torch.zeros(0)
        summary = f"schedule: {spec.mode}, delta={spec.delta}, scales={spec.scales}, transform={spec.transform}"
        if sigmas is not None and latent is not None and model is not None and len(sigmas) > 1:
            samples = latent["samples"]
            plan = model_adapter.plan(spec, sigmas.float().cpu(), samples.shape[-2:], model)
            out_sigmas = plan.full_sigmas().to(torch.float32)
            if spec.switch_steps is not None:
                # step numbers index the grid they are applied to: on mapped_sigmas they would name other
                # times.  Resolve them to this run's sigmas so the schedule and mapped_sigmas agree.
                spec = replace(spec, switch_steps=None,
                               switch_sigmas=tuple(float(sigmas[k]) for k in spec.switch_steps))
            summary = plan.summary() + (
                f"\nmodel patch on your sigmas: {plan.compute_ratio('tokens', grid=sigmas.float().cpu()):.3f}x (tokens); "
                f"on mapped_sigmas: {plan.compute_ratio('tokens', grid=plan.full_sigmas()):.3f}x")
        return io.NodeOutput(spec, out_sigmas, summary)

"""DeltaSchedule: the spectral schedule as a socket value (and, given the run's sigmas and latent,
the plan's mapped full-size SIGMAS for the model patch)."""
from __future__ import annotations

from dataclasses import replace

import torch
from comfy_api.latest import io

from ..schedules.widgets import SCHEDULE_FIELDS, Field, spec_from_widgets
from ..spectral_core.plan import speedup
from . import inputs, model_adapter
from .types import CATEGORY, SpectralSchedule, Spectrum


def widget_input(f: Field) -> io.Input:
    """The V3 input of one row of a widget table (schedules/widgets.py)."""
    if f.kind == "combo":
        return io.Combo.Input(f.name, options=list(f.options), default=f.default, tooltip=f.tooltip)
    if f.kind == "float":
        return io.Float.Input(f.name, default=f.default, min=f.min, max=f.max, step=f.step, round=f.round,
                              tooltip=f.tooltip)
    if f.kind == "int":
        return io.Int.Input(f.name, default=f.default, min=f.min, max=f.max, tooltip=f.tooltip)
    return io.String.Input(f.name, default=f.default, tooltip=f.tooltip)


SCHEDULE_INPUTS = [widget_input(f) for f in SCHEDULE_FIELDS]


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
    def execute(cls, probe_spectrum=None, model=None, sigmas=None, latent=None, **widgets) -> io.NodeOutput:
        if probe_spectrum is not None:
            inputs.spectrum(probe_spectrum, "probe_spectrum")
        if model is not None:
            inputs.model(model)
        if sigmas is not None:
            inputs.sigmas(sigmas)
        if latent is not None:
            inputs.latent(latent, "latent")
        spec = spec_from_widgets(widgets, None if probe_spectrum is None else probe_spectrum["law"])
        if sigmas is None or latent is None or model is None or len(sigmas) < 2:
            summary = f"schedule: {spec.mode}, delta={spec.delta}, scales={spec.scales}, transform={spec.transform}"
            return io.NodeOutput(spec, sigmas if sigmas is not None else torch.zeros(0), summary)
        return io.NodeOutput(*_with_plan(spec, model, sigmas, latent["samples"].shape[-2:]))


def _with_plan(spec, model, sigmas: torch.Tensor, size) -> tuple:
    """The schedule, its plan's mapped full-size sigmas and the plan's summary on this run."""
    plan = model_adapter.plan(spec, sigmas.float().cpu(), size, model)
    if spec.switch_steps is not None:
        # step numbers index the grid they are applied to: on mapped_sigmas they would name other
        # times.  Resolve them to this run's sigmas so the schedule and mapped_sigmas agree.
        spec = replace(spec, switch_steps=None, switch_sigmas=tuple(float(sigmas[k]) for k in spec.switch_steps))
    summary = plan.summary() + (
        f"\nmodel patch on your sigmas: {speedup(plan, grid=sigmas.float().cpu()):.3f}x (tokens); "
        f"on mapped_sigmas: {speedup(plan, grid=plan.full_sigmas()):.3f}x")
    return spec, plan.full_sigmas().to(torch.float32), summary

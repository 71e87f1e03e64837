"""The schedule's widgets as one table, and the one way widget values become a ScheduleSpec.

``SCHEDULE_FIELDS`` drives DeltaSchedule's V3 schema (nodes/schedule_nodes.py builds each input from
its row), the spec builder below, the web preview route (which checks a request against the same
bounds ComfyUI checks the node's widgets against) and the frontend (which reads the field names from
GET /spectral_progressive/config).  A new schedule widget for a ScheduleSpec field is one row here
(``to_spec=True``); a widget that is read another way also needs its use in ``spec_from_widgets``.

``PREVIEW_FIELDS``: the preview's own context (model family, steps, scheduler, latent size), with the
defaults the frontend starts from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..spectral_core.expansion import REFILLS
from ..spectral_core.plan import DEFAULT_RESPACE, RESPACE
from ..spectral_core.spectra import PRESETS, PowerLaw
from ..spectral_core.transforms import REGISTRY, TRANSFORMS
from ..spectral_core.validation import fail
from .families import PREVIEW_FAMILIES
from .spec import MODES, ScheduleSpec, scales_for_stages

SPECTRUM_CHOICES = ("auto", *PRESETS.keys(), "custom")
MANUAL_UNITS = ("sigma", "step")
_LABELS = [t.label for t in REGISTRY.values()]


@dataclass(frozen=True)
class Field:
    """One widget: ``kind`` is "combo", "float", "int" or "string"; bounds and step as ComfyUI takes them;
    ``to_spec``: the value is the ScheduleSpec field of the same name (the others are read by
    ``spec_from_widgets``)."""

    name: str
    kind: str
    default: Any
    tooltip: str
    options: tuple[str, ...] = ()
    to_spec: bool = False
    min: float | None = None
    max: float | None = None
    step: float | None = None
    round: float | None = None

    def check(self, value: Any) -> Any:
        """A request's value of this widget, cast and inside the widget's options or bounds."""
        if self.kind == "string":
            return "" if value is None else str(value)
        if self.kind == "combo":
            if value not in self.options:
                fail(self.name, f"one of {list(self.options)}", value)
            return value
        try:
            v = (int if self.kind == "int" else float)(value)
        except (TypeError, ValueError, OverflowError):
            fail(self.name, "a number", value)
        if not (math.isfinite(v) and self.min <= v <= self.max):  # type: ignore[operator]
            fail(self.name, f"a value in [{self.min}, {self.max}]", v)
        return v


SCHEDULE_FIELDS: tuple[Field, ...] = (
    Field("mode", "combo", "delta", "delta: switch times from the error tolerance delta and the data spectrum "
          "(seed 001 Prop. 2). manual: you give the switch sigmas or steps.", options=MODES, to_spec=True),
    Field("delta", "float", 0.01, "Error tolerance: a band is kept small while its best velocity prediction is within "
          "delta of pure noise. Larger = switches later = faster, blurrier. 0.01 is the paper's default.",
          min=0.0001, max=0.5, step=0.001, round=0.0001, to_spec=True),
    Field("stages", "int", 2, "Number of resolution stages S at halving scales (2: 1/2 then full; 3: 1/4, 1/2, full).",
          min=1, max=4),
    Field("scales", "string", "", "Optional explicit scales, increasing and ending at 1, e.g. '0.25, 0.5, 1'. "
          "Empty: from stages."),
    Field("transform", "combo", "dct", f"Spectral transform: {', '.join(_LABELS[:-1])}, or {_LABELS[-1]}.",
          options=TRANSFORMS, to_spec=True),
    Field("spectrum", "combo", "auto", "Data power spectrum P(w) = A w^-beta: 'auto' picks from the model's latent "
          "format, presets from seed 001 Table 4, or 'custom' A and beta. A connected probe spectrum overrides this.",
          options=SPECTRUM_CHOICES),
    Field("custom_A", "float", 203.62, "A of a custom power law.", min=1e-6, max=1e9, step=0.01),
    Field("custom_beta", "float", 1.9155, "beta of a custom power law.", min=0.0, max=10.0, step=0.001, round=0.0001),
    Field("refill", "combo", "paper", "New frequencies at a switch: 'paper' fills t~ * noise; 'matched' fills noise "
          "whose power matches the spectrum prior at t~ (exact for Gaussian data).", options=REFILLS, to_spec=True),
    Field("respace", "combo", DEFAULT_RESPACE, "After a switch: 'affine' re-spaces your remaining steps from the "
          "aligned time (same step count, the paper's allocation); 'keep' continues on your own sigmas below the "
          "aligned time.", options=RESPACE, to_spec=True),
    Field("manual_switch", "string", "", "Manual mode: one value per stage but the last, e.g. '0.8' (sigma) or '12' "
          "(step)."),
    Field("manual_unit", "combo", "sigma", "Whether manual_switch holds sigmas or step numbers.", options=MANUAL_UNITS),
)

PREVIEW_FIELDS: tuple[Field, ...] = (
    Field("family", "combo", "flux", "The model family whose sigmas and patch size the preview plans with.",
          options=tuple(PREVIEW_FAMILIES)),
    Field("steps", "int", 20, "Steps of the previewed schedule.", min=1, max=1000),
    Field("scheduler", "string", "simple", "ComfyUI scheduler of the previewed sigmas."),
    Field("width", "int", 128, "Latent width.", min=1, max=4096),
    Field("height", "int", 128, "Latent height.", min=1, max=4096),
)

# core argument names -> the widget the user set (a schedule's errors are re-addressed to its widgets)
WIDGET_NAMES = {"switch_steps": "manual_switch", "switch_sigmas": "manual_switch", "spectrum.A": "custom_A",
                "spectrum.beta": "custom_beta"}


def renamed(exc: ValueError, names: Mapping[str, str] = WIDGET_NAMES) -> ValueError:
    """A core ValueError ("name: expected ...") re-addressed to the input the user set."""
    head, sep, rest = str(exc).partition(":")
    if sep and head in names:
        return ValueError(f"{names[head]}:{rest}")
    return exc


def checked(fields: tuple[Field, ...], body: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``fields`` in a request (the default where one is missing), each checked."""
    return {f.name: f.check(body.get(f.name, f.default)) for f in fields}


def parse_floats(text: str, name: str) -> tuple[float, ...]:
    """'0.25, 0.5, 1' -> (0.25, 0.5, 1.0); empty -> ()."""
    text = (text or "").strip()
    if not text:
        return ()
    try:
        return tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        fail(name, "comma-separated numbers such as '0.5, 1'", text)
    raise AssertionError


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    vals = parse_floats(text, name)
    if any(v != int(v) for v in vals):
        fail(name, "comma-separated whole step numbers such as '12, 24'", text)
    return tuple(int(v) for v in vals)


def spec_from_widgets(values: Mapping[str, Any], measured: PowerLaw | None = None) -> ScheduleSpec:
    """The widgets of ``SCHEDULE_FIELDS`` -> ScheduleSpec (a measured spectrum overrides the spectrum
    widget); every error names the widget."""
    v = values
    try:
        scales = parse_floats(v["scales"], "scales") or scales_for_stages(v["stages"])
        if measured is not None:
            law: object = measured
        elif v["spectrum"] == "custom":
            law = PowerLaw(float(v["custom_A"]), float(v["custom_beta"]))
        else:
            law = v["spectrum"]
        kw: dict[str, Any] = {f.name: v[f.name] for f in SCHEDULE_FIELDS if f.to_spec}
        if v["mode"] == "manual":
            if v["manual_unit"] == "step":
                kw["switch_steps"] = parse_ints(v["manual_switch"], "manual_switch")
            else:
                kw["switch_sigmas"] = parse_floats(v["manual_switch"], "manual_switch")
        return ScheduleSpec(scales=scales, spectrum=law, **kw)
    except ValueError as exc:
        raise renamed(exc) from None


__all__ = ["Field", "MANUAL_UNITS", "PREVIEW_FIELDS", "SCHEDULE_FIELDS", "SPECTRUM_CHOICES", "WIDGET_NAMES", "checked",
           "parse_floats", "parse_ints", "renamed", "spec_from_widgets"]

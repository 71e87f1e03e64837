"""The pack's custom socket types (and the widget-text parsers, defined in schedules/widgets.py)."""
from __future__ import annotations

from comfy_api.latest import io

from ..schedules.widgets import parse_floats, parse_ints

SpectralSchedule = io.Custom("SPECTRAL_SCHEDULE")
Spectrum = io.Custom("SPECTRUM")

CATEGORY = "sampling/spectral"

__all__ = ["CATEGORY", "SpectralSchedule", "Spectrum", "parse_floats", "parse_ints"]

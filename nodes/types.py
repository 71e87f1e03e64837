"""The pack's custom socket types and the helpers that parse widget text."""
from __future__ import annotations

from comfy_api.latest import io

from ..spectral_core.validation import fail

SpectralSchedule = io.Custom("SPECTRAL_SCHEDULE")
Spectrum = io.Custom("SPECTRUM")

CATEGORY = "sampling/spectral"


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

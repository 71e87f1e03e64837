"""The model-family table: what the pack knows of a model from its ComfyUI latent format, in one place.

Each row: the spectrum preset DeltaSchedule's "auto" picks (seed 001 Table 4, ``spectral_core.spectra
.PRESETS``) and, for the families the web preview offers, what the preview plans with when there is no
model to read: the spatial multiple (DiT patch size / UNet depth), the frame, and which ComfyUI model
class and ModelType give that family's sigmas.  With a real model the pack reads the frame and the
multiple from the model itself (``nodes/model_adapter.py``); only the preset comes from here.

Presets: only the FLUX / Z-Image latent, the WAN 2.1 latent (also WAN 2.2 A14B's and Qwen-Image's:
the WAN 2.1 VAE) and pixels have published ones.  Every other format (SD1.5, SDXL, SD3, HunyuanVideo,
LTX-Video, WAN 2.2 TI2V-5B's 48-channel Wan22, Mochi, Cosmos, ...) falls back to ``DEFAULT_PRESET``:
measure it with PowerSpectrumProbe.  A new family is one row.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PRESET = "flux"


@dataclass(frozen=True)
class Preview:
    """How the web preview stands in for a family's model: its name in the preview, the ComfyUI
    ``supported_models`` class and the ``model_base.ModelType`` its sigmas come from."""

    name: str
    model_class: str
    model_type: str


@dataclass(frozen=True)
class Family:
    preset: str  # spectrum preset for "auto"
    multiple: int | None = None  # spatial multiple the preview plans with
    frame: str | None = None  # "const" (flow) or "eps" for the preview
    preview: Preview | None = None  # offered by the web preview


FAMILIES: dict[str, Family] = {  # ComfyUI latent format class name -> family
    "Flux": Family("flux", 2, "const", Preview("flux", "Flux", "FLUX")),
    "SD3": Family(DEFAULT_PRESET, 2, "const", Preview("sd3", "SD3", "FLOW")),
    "SD15": Family(DEFAULT_PRESET, 8, "eps", Preview("sd15", "SD15", "EPS")),
    "Wan21": Family("wan", 2, "const", Preview("wan", "WAN21_T2V", "FLOW")),
    "Flux2": Family("flux"),
    "ChromaRadiance": Family("pixel512"),
}

PREVIEW_FAMILIES: dict[str, Family] = {f.preview.name: f for f in FAMILIES.values() if f.preview is not None}


def preset_for(latent_format: str) -> str:
    """The spectrum preset of a latent format (``DEFAULT_PRESET`` for a format without one)."""
    family = FAMILIES.get(latent_format)
    return family.preset if family is not None else DEFAULT_PRESET


__all__ = ["DEFAULT_PRESET", "FAMILIES", "Family", "PREVIEW_FAMILIES", "Preview", "preset_for"]

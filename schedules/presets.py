"""Power-law spectrum presets (seed 001 App. C, Table 4).  They live in ``spectral_core.spectra`` so
the core resolves preset names too (``progressive_denoiser(spectrum="flux")``); re-exported here."""
from __future__ import annotations

from ..spectral_core.spectra import PRESETS, resolve_spectrum

__all__ = ["PRESETS", "resolve_spectrum"]

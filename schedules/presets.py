"""Power-law spectrum presets, seed 001 App. C, Table 4 (P(w) = A w^-beta on centred data)."""
from __future__ import annotations

from typing import Sequence

from ..spectral_core.spectra import PowerLaw
from ..spectral_core.validation import fail

PRESETS: dict[str, PowerLaw] = {
    "flux": PowerLaw(203.62, 1.9155),  # FLUX.1-dev VAE latent
    "zimage": PowerLaw(203.62, 1.9155),  # Z-Image shares the FLUX VAE
    "wan": PowerLaw(219.48, 2.4227),  # WAN 2.1 video latent
    "pixel512": PowerLaw(3745.46, 2.4493),  # pixels at 512^2
}


def resolve_spectrum(spectrum: object, name: str = "spectrum") -> PowerLaw:
    """A preset name, a PowerLaw, or a custom (A, beta) pair."""
    if isinstance(spectrum, PowerLaw):
        return spectrum
    if isinstance(spectrum, str):
        if spectrum not in PRESETS:
            fail(name, f"a preset in {sorted(PRESETS)}, a PowerLaw or (A, beta)", spectrum)
        return PRESETS[spectrum]
    if isinstance(spectrum, Sequence) and len(spectrum) == 2:
        try:
            return PowerLaw(float(spectrum[0]), float(spectrum[1]))
        except (TypeError, ValueError) as exc:
            fail(name, f"(A, beta) with A > 0 and beta >= 0 ({exc})", spectrum)
    fail(name, f"a preset in {sorted(PRESETS)}, a PowerLaw or (A, beta)", spectrum)
    raise AssertionError  # unreachable

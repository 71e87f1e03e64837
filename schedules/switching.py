"""delta-optimal switching times (seed 001 Sec. 4.2, Props. 1-2, App. A.3-A.4).

Prop. 1 (per-frequency activation time) for x_0^(w) ~ N(0, P_w):

    t_w = 1 / (1 + sqrt(delta / (P_w (1 + P_w - delta))))

Prop. 2 (per-resolution transition): the stage at scale s_i ends at t_i* = t_w with
w = s_i * min(H, W) / 2 on the target grid (cycles per image).
"""
from __future__ import annotations

import math
from typing import Sequence

from ..spectral_core.spectra import PowerLaw
from ..spectral_core.validation import check_open_unit, fail


def switch_time(delta: float, A: float, beta: float, omega: float) -> float:
    """Prop. 1: t_w for P_w = A omega^-beta (public entry: checks its arguments, see ``activation_time``)."""
    delta = check_open_unit(delta, "delta")
    if not (math.isfinite(A) and A > 0):
        fail("A", "a positive finite number", A)
    if not (math.isfinite(beta) and beta >= 0):
        fail("beta", "a non-negative finite number", beta)
    if not (math.isfinite(omega) and omega > 0):
        fail("omega", "a positive frequency (cycles per image)", omega)
    return activation_time(delta, A * omega ** (-beta))


def activation_time(delta: float, power: float) -> float:
    """Prop. 1 for a coefficient of power P_w (arguments trusted: delta in (0, 1), P_w > 0)."""
    return 1.0 / (1.0 + math.sqrt(delta / (power * (1.0 + power - delta))))


def band_edge(scale: float, latent_size: Sequence[int]) -> float:
    """w = s * min(H, W) / 2: the highest frequency along an axis kept at scale s (Prop. 2)."""
    return scale * min(int(latent_size[0]), int(latent_size[1])) / 2.0


def stage_switch_times(delta: float, spectrum: PowerLaw, latent_size: Sequence[int],
                       scales: Sequence[float]) -> list[float]:
    """Prop. 2: t_i* for every stage but the last (scales s_1 < ... < s_S = 1; arguments trusted: a
    checked delta and PowerLaw, positive scales)."""
    return [activation_time(delta, spectrum.A * band_edge(s, latent_size) ** (-spectrum.beta)) for s in scales[:-1]]

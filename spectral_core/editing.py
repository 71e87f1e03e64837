"""Frequency-domain editing (seed 001 Sec. 5.5, App. G) and model-free band gains.

Prompt editing from entry stage k (flow frame): keep the source's spectrum below stage k's band,
noise it to the stage's switch time t_k*, and fill the band above with noise by spectral noise
expansion + timestep alignment; sampling resumes at the aligned time with the editing prompt:

    x_k   = (1 - t_k*) C_k(x_0) / g_k + t_k* C_k(eps)         (the source's low band, noised)
    x_T   = expand(x_k, full size, t_k*, noise = eps)           (T = g_k t_k* / (1 + (g_k - 1) t_k*))

Band gains: X -> G(w) X per coefficient, G piecewise constant over normalised radial frequency
r = w / (min(H, W) / 2) with raised-cosine transitions of width ``soft`` around each cut.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from . import transforms
from .expansion import expand, growth
from .validation import check_size, check_spatial_tensor, check_time, fail


def edit_start(x0: torch.Tensor, noise: torch.Tensor, stage_size: tuple[int, int], t_switch: float,
               transform: str = "dct") -> tuple[torch.Tensor, float]:
    """Full-size flow-frame start of a frequency edit and its time T (see module docstring)."""
    check_spatial_tensor(x0, "source")
    if tuple(noise.shape) != tuple(x0.shape):
        fail("noise", f"a tensor of the source's shape {tuple(x0.shape)}", tuple(noise.shape))
    h, w = check_size(stage_size, "stage_size")
    t = check_time(t_switch, "t_switch")
    full = (int(x0.shape[-2]), int(x0.shape[-1]))
    if h > full[0] or w > full[1]:
        fail("stage_size", f"a size at most the source's {full}", (h, w))
    g = growth((h, w), full)
    x0_lo = transforms.down(x0, (h, w), transform) / g
    eps_lo = transforms.down(noise, (h, w), transform)
    x_k = ((1.0 - t) * x0_lo + t * eps_lo).to(x0.dtype)
    return expand(x_k, full, t, transform=transform, noise=noise)


def sdedit_start(x0: torch.Tensor, noise: torch.Tensor, t: float) -> torch.Tensor:
    """The SDEdit baseline at the same time: (1 - t) x_0 + t eps at full size."""
    t = check_time(t, "t")
    return ((1.0 - t) * x0 + t * noise).to(x0.dtype)


def _ramp(r: torch.Tensor, cut: float, soft: float) -> torch.Tensor:
    """0 below cut - soft/2, 1 above cut + soft/2, raised cosine between."""
    if soft <= 0:
        return (r >= cut).to(r.dtype)
    z = ((r - (cut - soft / 2)) / soft).clamp(0.0, 1.0)
    return 0.5 - 0.5 * torch.cos(math.pi * z)


def band_gain_curve(height: int, width: int, cuts: Sequence[float], gains: Sequence[float], soft: float = 0.05,
                    transform: str = "dct") -> torch.Tensor:
    """Per-coefficient gain: ``gains[i]`` between ``cuts[i-1]`` and ``cuts[i]`` (normalised radial
    frequency, 1 = the Nyquist frequency along the shorter side)."""
    cuts = [float(c) for c in cuts]
    gains = [float(v) for v in gains]
    if len(gains) != len(cuts) + 1:
        fail("gains", f"{len(cuts) + 1} gains for {len(cuts)} cuts", gains)
    if any(not math.isfinite(v) or v < 0 for v in gains):
        fail("gains", "finite non-negative gains", gains)
    if any(not math.isfinite(c) or c <= 0 or c >= 1.5 for c in cuts) or any(b <= a for a, b in zip(cuts, cuts[1:])):
        fail("cuts", "increasing cut frequencies in (0, 1.5) (1 = Nyquist)", cuts)
    if not math.isfinite(soft) or soft < 0 or soft > 0.5:
        fail("soft", "a transition width in [0, 0.5]", soft)
    r = transforms.radial_frequency(height, width, transform) / (min(height, width) / 2.0)
    g = torch.full_like(r, gains[0])
    for c, lo, hi in zip(cuts, gains, gains[1:]):
        g = g + (hi - lo) * _ramp(r, c, soft)
    return g


def apply_band_gains(x: torch.Tensor, cuts: Sequence[float], gains: Sequence[float], soft: float = 0.05,
                     transform: str = "dct") -> torch.Tensor:
    """x (..., H, W) filtered by ``band_gain_curve``; same dtype."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        fail("x", "a tensor with two spatial axes", type(x).__name__)
    gain = band_gain_curve(int(x.shape[-2]), int(x.shape[-1]), cuts, gains, soft, transform)
    return transforms.apply_gain(x, gain, transform).to(x.dtype)


def band_transfer(low_from: torch.Tensor, high_from: torch.Tensor, cut: float, soft: float = 0.05,
                  transform: str = "dct") -> torch.Tensor:
    """Low band of ``low_from`` + high band of ``high_from`` (complementary masks, same size)."""
    if tuple(low_from.shape) != tuple(high_from.shape):
        fail("high_from", f"the same shape as the low-band input {tuple(low_from.shape)}", tuple(high_from.shape))
    low = apply_band_gains(low_from, [cut], [1.0, 0.0], soft, transform)
    high = apply_band_gains(high_from, [cut], [0.0, 1.0], soft, transform)
    return (low + high).to(low_from.dtype)

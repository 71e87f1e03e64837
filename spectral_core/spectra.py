"""Power spectra: radially averaged per-frequency power and power-law fits (seed 001 Sec. 3.2, App. C).

The power of a coefficient is its second moment in the orthonormal transform of the centred data,
so for the DCT it is directly the P_w of Prop. 1 (seed 001 Eq. 9).  Frequencies are in cycles per
image on the DESIGN.md radial grid (``transforms.radial_frequency``); the fit is

    P(w) = A * w^(-beta)      (seed 001 Eq. 4, Table 4)

by least squares of log P on log w over the radial bins, DC excluded, every bin weighing the same
(seed 001 App. C fits the radially averaged curve; weighting bins by their coefficient count lets the
many high-frequency coefficients dominate and puts the fit below the curve at low frequencies).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from . import transforms
from .validation import check_spatial_tensor, fail


@dataclass(frozen=True)
class PowerLaw:
    """P(w) = A w^-beta; ``power`` clamps w at ``w_min`` so DC gets a finite value."""

    A: float
    beta: float
    w_min: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.A) and self.A > 0):
            fail("spectrum.A", "a positive finite number", self.A)
        if not (math.isfinite(self.beta) and self.beta >= 0):
            fail("spectrum.beta", "a non-negative finite number", self.beta)

    def power(self, w: torch.Tensor) -> torch.Tensor:
        return self.A * w.clamp_min(self.w_min).pow(-self.beta)

    def coefficient_power(self, height: int, width: int, transform: str = "dct",
                          device: torch.device | str | None = None) -> torch.Tensor:
        """P per coefficient of an (H, W) grid, float64."""
        return self.power(transforms.radial_frequency(height, width, transform, device))


# Power-law spectrum presets, seed 001 App. C, Table 4 (P(w) = A w^-beta on centred data).  Which model
# family uses which one: schedules/families.py.
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


@dataclass(frozen=True)
class MeasuredSpectrum:
    """Radially averaged power: bin centres ``freqs`` (cycles/image), ``power`` per channel
    (C, bins) and pooled over channels (bins), and the power-law fit of the pooled curve and of
    each channel."""

    freqs: torch.Tensor
    power: torch.Tensor
    pooled: torch.Tensor
    counts: torch.Tensor
    fit: "PowerLawFit"
    channel_fits: tuple["PowerLawFit", ...]
    size: tuple[int, int]


@dataclass(frozen=True)
class PowerLawFit:
    law: PowerLaw
    rms_log_error: float  # root mean square of log(P) - log(fit) over the fitted bins (natural log)
    r2: float  # coefficient of determination in log-log


def radial_power(x: torch.Tensor, transform: str = "dct", center: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Radially averaged power of a batch of latents.

    x: (B,C,H,W) or (B,C,T,H,W); returns (freqs, power (C, bins), counts) where bin k collects the
    coefficients with round(w) == k and power is the mean of |X|^2 over samples, frames and the bin.
    ``center`` subtracts each sample's per-channel mean first (seed 001 App. C).
    """
    check_spatial_tensor(x, "x")
    xs = x.to(transforms.compute_dtype(x.dtype))
    if xs.ndim == 5:  # frames are samples of the spatial spectrum
        xs = xs.permute(0, 2, 1, 3, 4).reshape(-1, xs.shape[1], xs.shape[-2], xs.shape[-1])
    if center:
        xs = xs - xs.mean(dim=(-2, -1), keepdim=True)
    H, W = xs.shape[-2:]
    coef = transforms.forward(xs, transform)
    p = (coef.abs() ** 2).mean(dim=0)  # (C, H, W)
    w = transforms.radial_frequency(H, W, transform, xs.device)
    bins = w.round().to(torch.int64).flatten()
    nb = int(bins.max()) + 1
    counts = torch.zeros(nb, dtype=p.dtype, device=p.device).index_add_(0, bins, torch.ones_like(bins, dtype=p.dtype))
    sums = torch.zeros(p.shape[0], nb, dtype=p.dtype, device=p.device).index_add_(1, bins, p.reshape(p.shape[0], -1))
    keep = counts > 0
    freqs = torch.arange(nb, dtype=p.dtype, device=p.device)
    return freqs[keep], sums[:, keep] / counts[keep], counts[keep]


def fit_power_law(freqs: torch.Tensor, power: torch.Tensor, weights: torch.Tensor | None = None,
                  w_max: float | None = None) -> PowerLawFit:
    """Weighted least squares fit of log P = log A - beta log w over bins with w > 0 (and
    w <= w_max), weights default to 1.  Raises ValueError when fewer than two usable bins exist
    or the data has no power (a constant image)."""
    f = freqs.to(torch.float64).flatten()
    p = power.to(torch.float64).flatten()
    wts = torch.ones_like(f) if weights is None else weights.to(torch.float64).flatten()
    sel = (f > 0) & torch.isfinite(p) & (p > 0)
    if w_max is not None:
        sel &= f <= w_max
    if int(sel.sum()) < 2:
        fail("spectrum", "at least two non-DC frequencies with positive power (an image with texture, not "
             "an empty or constant one)", f"{int(sel.sum())} usable bins")
    lx, ly, lw = torch.log(f[sel]), torch.log(p[sel]), wts[sel]
    mx = (lw * lx).sum() / lw.sum()
    my = (lw * ly).sum() / lw.sum()
    sxx = (lw * (lx - mx) ** 2).sum()
    if float(sxx) <= 0:
        fail("spectrum", "at least two distinct non-DC frequencies", "one")
    slope = (lw * (lx - mx) * (ly - my)).sum() / sxx
    intercept = my - slope * mx
    resid = ly - (intercept + slope * lx)
    rms = math.sqrt(float((lw * resid ** 2).sum() / lw.sum()))
    tot = float((lw * (ly - my) ** 2).sum())
    r2 = 1.0 - float((lw * resid ** 2).sum()) / tot if tot > 0 else 1.0
    beta = max(-float(slope), 0.0)
    return PowerLawFit(PowerLaw(math.exp(float(intercept)), beta), rms, r2)


def measure_spectrum(x: torch.Tensor, transform: str = "dct", center: bool = True) -> MeasuredSpectrum:
    """Radial power per channel and pooled, with their power-law fits."""
    freqs, power, counts = radial_power(x, transform, center)
    if not bool(torch.isfinite(power).all()):
        fail("x", "finite values (no NaN or inf)", "a tensor with NaN/inf")
    pooled = power.mean(dim=0)
    fit = fit_power_law(freqs, pooled)
    ch = []
    for c in range(power.shape[0]):
        try:
            ch.append(fit_power_law(freqs, power[c]))
        except ValueError:  # a constant channel has no spectrum; pooled fit stands in
            ch.append(fit)
    return MeasuredSpectrum(freqs, power, pooled, counts, fit, tuple(ch), (int(x.shape[-2]), int(x.shape[-1])))

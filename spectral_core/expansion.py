"""Spectral noise expansion, timestep alignment and exact contraction (seed 001 Sec. 4.1, App. A.2).

Flow frame, orthonormal transform T, low band of an (h, w) grid inside an (H, W) grid.
g = sqrt(H W / (h w)) from the actual sizes (2 for 2x per axis).

Expansion (h x w at time t -> H x W at time t~), seed 001 Eqs. 5-6 with r = g:

    kappa = 1 / (1 + (g - 1) t),     t~ = g t kappa,
    X_new[low]  = g kappa X,         X_new[high] = r(t~) eps'[high]

with r(t~) = t~ (refill "paper") or sqrt((1 - t~)^2 P(w) + t~^2) (refill "matched", exact for
Gaussian data with spectrum P).  In space: x_new = g kappa U x + (I - U C) R eps'.

Contraction (H x W at time t -> h x w at time t'):

    kappa' = 1 / (g (1 - t) + t),    t' = t kappa',    X_lo = kappa' X[low]

so contract(expand(x)) == x (kappa' at t~ is 1 / (g kappa)).
"""
from __future__ import annotations

import math

import torch

from . import transforms
from .spectra import PowerLaw
from .validation import check_finite, check_size, check_spatial_tensor, check_time, fail

REFILLS = ("paper", "matched")


def growth(small: tuple[int, int], big: tuple[int, int]) -> float:
    """g = sqrt(H W / (h w)) from the actual sizes."""
    return math.sqrt((big[0] * big[1]) / (small[0] * small[1]))


def aligned_time(t, g: float):
    """t~ = g t / (1 + (g - 1) t): the time after expanding by g (seed 001 Eq. 6).
    Also maps a stage's own time to the full-size time."""
    return g * t / (1.0 + (g - 1.0) * t)


def contracted_time(t, g: float):
    """t' = t / (g (1 - t) + t): inverse of ``aligned_time``."""
    return t / (g * (1.0 - t) + t)


def _spatial(x: torch.Tensor) -> tuple[int, int]:
    return int(x.shape[-2]), int(x.shape[-1])


def _checked(x: torch.Tensor, size: tuple[int, int], t: float, transform: str, validate: bool,
             grow: bool) -> tuple[tuple[int, int], tuple[int, int], float]:
    """The checks expand (``grow``) and contract share: (the input's spatial size, the target size, t)."""
    check_spatial_tensor(x, "x")
    if validate:
        check_finite(x, "x")
    target = check_size(size, "size")
    t = check_time(t, "t")
    own = _spatial(x)
    small, big = (own, target) if grow else (target, own)
    if small[0] > big[0] or small[1] > big[1]:
        fail("size", f"a size {'at least' if grow else 'at most'} the input's {own}", target)
    transforms.get_transform(transform).check_sizes(small, big, "size")
    return own, target, t


def expand(x: torch.Tensor, size: tuple[int, int], t: float, *, transform: str = "dct",
           noise: torch.Tensor | None = None, refill: str = "paper",
           spectrum: PowerLaw | None = None, generator: torch.Generator | None = None,
           validate: bool = True) -> tuple[torch.Tensor, float]:
    """Grow a flow-frame latent from its grid to ``size`` at time t; returns (x_new, t~).

    ``noise``: full-size unit noise (same leading dims as x, spatial dims ``size``) whose high band
    refills the new frequencies; fresh Gaussian noise when None.  ``refill="matched"`` needs
    ``spectrum`` (P on the full-size grid).  Output dtype = input dtype.  ``validate=False`` skips
    the NaN/inf scans (host syncs) for callers inside a sampling loop that checked their input.
    """
    small, (H, W), t = _checked(x, size, t, transform, validate, grow=True)
    if refill not in REFILLS:
        fail("refill", f"one of {REFILLS}", refill)
    if refill == "matched" and not isinstance(spectrum, PowerLaw):
        fail("spectrum", "a PowerLaw when refill='matched'", spectrum)
    full_shape = tuple(x.shape[:-2]) + (H, W)
    if noise is None:
        noise = torch.randn(full_shape, device=x.device, dtype=transforms.compute_dtype(x.dtype), generator=generator)
    elif not isinstance(noise, torch.Tensor) or tuple(noise.shape) != full_shape:
        fail("noise", f"a tensor of shape {full_shape}", tuple(noise.shape) if isinstance(noise, torch.Tensor) else noise)
    elif validate:
        check_finite(noise, "noise")
    g = growth(small, (H, W))
    kappa = 1.0 / (1.0 + (g - 1.0) * t)
    t_new = g * t * kappa
    eps = noise.to(transforms.compute_dtype(x.dtype))
    if refill == "matched":
        p = spectrum.coefficient_power(H, W, transform, eps.device)
        amp = torch.sqrt((1.0 - t_new) ** 2 * p + t_new ** 2)
        eps = transforms.apply_gain(eps, amp, transform)
    else:
        eps = eps * t_new
    high = eps - transforms.project_low(eps, small, transform)
    out = (g * kappa) * transforms.up(x, (H, W), transform) + high
    return out.to(x.dtype), t_new


def contract(x: torch.Tensor, size: tuple[int, int], t: float, *, transform: str = "dct",
             validate: bool = True) -> tuple[torch.Tensor, float]:
    """Shrink a flow-frame latent to ``size`` at time t exactly; returns (x_lo, t')."""
    big, (h, w), t = _checked(x, size, t, transform, validate, grow=False)
    g = growth((h, w), big)
    kappa_c = 1.0 / (g * (1.0 - t) + t)
    out = kappa_c * transforms.down(x, (h, w), transform)
    return out.to(x.dtype), t * kappa_c


def resize(x: torch.Tensor, size: tuple[int, int], t: float, *, transform: str = "dct",
           seed: int = 0) -> tuple[torch.Tensor, float]:
    """One stage switch of a flow-frame latent at time t: ``expand`` to a larger ``size`` (the new band
    refilled from the full-size unit noise of ``seed``, drawn on the CPU so a seed means the same noise
    on every device), or ``contract`` exactly to a smaller one.  Returns (latent, new time)."""
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return contract(x, size, t, transform=transform)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(tuple(x.shape[:-2]) + tuple(size), generator=gen).to(x.device)
    return expand(x, size, t, transform=transform, noise=noise)


def band_limited_upsample(x: torch.Tensor, size: tuple[int, int], transform: str = "dct") -> torch.Tensor:
    """g U x: the low-band image shown on a larger grid with its values preserved (no noise).
    Used for previews and for lifting a stage's prediction of x_0 to full size."""
    small = _spatial(x)
    return (growth(small, size) * transforms.up(x, size, transform)).to(x.dtype)

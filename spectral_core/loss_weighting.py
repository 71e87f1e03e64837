"""Spectrum-aware loss weighting (seed 003 Sec. 5.2, Eq. 11) on the bands of the core's transforms.

Seed 003 weights the squared error of each frequency component by the clean data's spectral
magnitude, omega = |X|^alpha with alpha < 0 (alpha = -1 there), so components with little energy
(high frequencies) count more and the dominant low band less. Here:

* Bands. The dyadic blocks of the orthonormal DCT or Haar (``transforms``, standard layout): along an
  axis of length n with L = haar_levels(n) levels the block edges are n_0 = n / 2^L, 2 n_0, ..., n, so
  band 0 is [0, n_0) and band j is [n_0 2^(j-1), n_0 2^j). A 2-D band is a pair (j_y, j_x) of axis
  bands, (L_y + 1)(L_x + 1) bands in all. For the Haar these are exactly the subbands of the core's
  separable decomposition (approximation x approximation, detail level x detail level, ...); for the
  DCT the block edges are the low bands a 2^j contraction keeps, the grids of the progressive stages.
* Magnitude. |X|_b = sqrt(mean |X_k|^2) over the coefficients k of band b, over the batch and its
  channels (and frames): the batch's estimate of the data's spectral magnitude in that band. Pooling
  keeps the weight finite where one coefficient of one image is near 0 (|X_k|^alpha is unbounded
  there for alpha < 0); a band with no energy at all is floored at FLOOR times the mean power.
* Weights. omega_b = |X|_b^alpha, normalised to mean 1 over the coefficients,

      w_k = omega_b(k) / ((1/N) sum_k' omega_b(k')),    (1/N) sum_k w_k = 1,

  so the weighted loss of an error that is white (equal power in every coefficient) equals the plain
  MSE: the learning rate keeps its meaning. alpha = 0 gives w = 1, the plain MSE exactly.
* Loss. Per sample, L = (1 / (C N)) sum_{c, k} w_k |T(pred - target)_{c,k}|^2; with w = 1 it is the
  plain MSE (the transform is orthonormal). Seed 003 adds the weighted term to the plain loss
  (lambda_f = 0.1); here it replaces it (one knob, alpha; documented in the trainers).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from . import transforms
from .validation import check_spatial_tensor, fail

WEIGHTED_TRANSFORMS = ("dct", "dwt")
FLOOR = 1e-12  # a band's power is at least FLOOR * (mean power), so alpha < 0 never divides by 0


def axis_bands(n: int) -> torch.Tensor:
    """Band index of each position 0..n-1 of an axis: 0 on [0, n / 2^L), j on [n 2^(j-1-L), n 2^(j-L))."""
    if not isinstance(n, int) or n < 1:
        fail("size", "positive ints", n)
    levels = transforms.haar_levels(n)
    base = n >> levels
    k = torch.arange(n)
    band = torch.zeros(n, dtype=torch.int64)
    for j in range(1, levels + 1):
        band[k >= base << (j - 1)] = j
    return band


@functools.lru_cache(maxsize=64)
def _band_map(height: int, width: int) -> tuple[torch.Tensor, int]:
    by, bx = axis_bands(height), axis_bands(width)
    nx = int(bx.max()) + 1
    return by[:, None] * nx + bx[None, :], (int(by.max()) + 1) * nx


def band_index(height: int, width: int) -> tuple[torch.Tensor, int]:
    """(index (H, W) int64 of each coefficient's 2-D band j_y (L_x + 1) + j_x, number of bands)."""
    return _band_map(int(height), int(width))


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """alpha <= 0 (seed 003: alpha < 0 up-weights low-energy bands; 0 is the plain loss)."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        fail(name, "a number <= 0", alpha)
    if not math.isfinite(a) or a > 0:
        fail(name, "a finite number <= 0 (seed 003 Eq. 11: alpha < 0)", alpha)
    return a


def _check_transform(transform: str) -> str:
    if transform not in WEIGHTED_TRANSFORMS:
        fail("transform", f"one of {WEIGHTED_TRANSFORMS} (real transforms with dyadic bands)", transform)
    return transform


def band_power(x0: torch.Tensor, transform: str = "dct") -> torch.Tensor:
    """Mean |X|^2 per band over the batch, channels, frames and the band's coefficients: (bands,)."""
    check_spatial_tensor(x0, "x0")
    coef = transforms.forward(x0, _check_transform(transform))
    p = (coef ** 2).reshape(-1, coef.shape[-2], coef.shape[-1]).mean(0)  # (H, W)
    idx, nb = band_index(coef.shape[-2], coef.shape[-1])
    idx = idx.to(p.device).flatten()
    sums = torch.zeros(nb, dtype=p.dtype, device=p.device).index_add_(0, idx, p.flatten())
    counts = torch.zeros(nb, dtype=p.dtype, device=p.device).index_add_(0, idx, torch.ones_like(p.flatten()))
    return sums / counts


def band_weights(x0: torch.Tensor, alpha: float, transform: str = "dct") -> torch.Tensor:
    """w (H, W): |X|_b^alpha of each coefficient's band, normalised to mean 1 over the coefficients
    (module docstring). ``x0``: the clean data of the batch (B, C, H, W) or (B, C, T, H, W)."""
    a = check_alpha(alpha)
    power = band_power(x0, transform)
    power = power.clamp_min(FLOOR * power.mean().clamp_min(torch.finfo(power.dtype).tiny))
    omega = power ** (0.5 * a)
    idx, _ = band_index(x0.shape[-2], x0.shape[-1])
    w = omega[idx.to(omega.device)]
    return w / w.mean()


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                 transform: str = "dct") -> torch.Tensor:
    """Per-sample (B,) loss (1 / (C N)) sum w_k |T(pred - target)_k|^2 (module docstring); ``weights``
    (H, W) from ``band_weights``. Differentiable in ``pred``; float32 at least."""
    if pred.shape != target.shape:
        fail("target", f"the prediction's shape {tuple(pred.shape)}", tuple(target.shape))
    diff = transforms.forward(pred - target.to(pred.dtype), _check_transform(transform))
    return (weights.to(device=diff.device, dtype=diff.dtype) * diff ** 2).flatten(1).mean(1)


@dataclass(frozen=True)
class SpectralLossWeighting:
    """The weighting as plain data for the trainers: ``loss(pred, target, x0)`` is the per-sample
    weighted loss with the weights of ``x0``'s batch (``band_weights``)."""

    alpha: float = -1.0
    transform: str = "dct"

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_alpha(self.alpha, "weight_alpha"))
        _check_transform(self.transform)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            w = band_weights(x0, self.alpha, self.transform)
        return weighted_mse(pred, target, w, self.transform)

    def to_dict(self) -> dict:
        return {"kind": "spectral", "alpha": self.alpha, "transform": self.transform,
                "bands": "dyadic DCT/Haar blocks per axis (spectral_core/loss_weighting.py)",
                "magnitude": "sqrt(mean |X|^2) per band over the batch's clean data x0",
                "normalisation": "weights mean 1 over the coefficients (white error: loss = plain MSE)",
                "replaces": "the plain MSE (seed 003 adds it as a term with lambda_f = 0.1)"}

"""Spectral forcing (seed 004): a time-conditional low-pass on the network's noisy input.

Contour, in the pack's units. The data have per-coefficient power P(w) = A w^-beta in an orthonormal
transform, w in cycles per image on the DESIGN.md radial grid (``transforms.radial_frequency``; the
``spectra.PowerLaw`` of the presets and the probe). In the flow frame x_t = (1 - t) x0 + t eps a
coefficient at frequency w carries signal power (1 - t)^2 P(w) and noise power t^2 (unit noise is
white in any orthonormal transform). Signal and noise are equal on the data-to-noise contour

    (1 - t)^2 A w^-beta = t^2   <=>   w*(t) = A^(1/beta) ((1 - t) / t)^(2/beta).          (1)

Seed 004 writes the contour as k*(t) = (1 - t)^(-2/alpha), alpha the spectrum's exponent, in the
convention where t = 1 is data and t = 0 noise (x = t x0 + (1 - t) eps): there SNR = 1 reads
t^2 A k^-alpha = (1 - t)^2, i.e. k* = (A t^2)^(1/alpha) (1 - t)^(-2/alpha), whose data-end form
(t -> 1, unit amplitude) is the seed's. Substituting t -> 1 - t gives (1) with alpha = beta. It grows
monotonically as t falls and is infinite at t = 0 (identity at the data end); at t = 1 it is 0.

Operator (hard mask). M_k = 1 where (1 - t)^2 P(w_k) >= t^2, i.e. max(w_k, w_min) <= w*(t) (w_min is
the law's DC clamp, so DC has the finite power ``PowerLaw.power`` gives it), else 0, and

    F_t(x) = x - T^-1((1 - M) T x),                                                      (2)

exactly x wherever nothing is removed (t = 0 in particular) and, for the orthonormal DCT, the exact
removal of the coefficients above the contour. A hard mask is parameter-free like seed 004's operator;
a smooth roll-off would need a width the seed does not define. At t = 1 everything (DC included) is
removed: pure noise carries no signal, so the network sees zeros.

Parametrisation. Forcing makes the denoiser a function of F_t(x) alone, D(x, t) = D_theta(F_t x, t)
(what it can learn is E[x0 | F_t x_t]), whatever the network predicts. For a velocity network in the
flow frame (D = x - t v) that is

    v(x, t) = v_theta(F_t x, t) + (x - F_t x) / t,                                       (3)

so the removed band's velocity is its own noise, carried by the skip term, and the network is asked
only about what it sees (on the removed band it predicts -x0 / t, a prediction of the data from the
kept band, as seed 004's x-prediction network does). The other reading, v = v_theta(F_t x, t) with the
full x in the skip, asks the network for the noise of a band it never sees: its loss cannot fall below
that band's noise power (about 1 at mid t; a continuation run measured 1.14 against 0.28 unforced).

Grids of other sizes. A grid (h, w) that holds the contraction of data whose law was measured on a
``reference_size`` (H, W) grid (a progressive run's low stage, the trainer's low-resolution batches)
has power P hw / (HW) in the same cycles-per-image units (the low band divided by g^2, g^2 = HW / hw).
Its contour at the stage's own time s = t / (g (1 - t) + t) is the full grid's contour at t, because
(1 - s) / s = g (1 - t) / t: forcing commutes with contraction. Without ``reference_size`` the law is
taken on the grid the network sees.

Pure torch, device-agnostic, no host sync (the mask is computed from the time tensor on x's device).
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Callable

import torch

from . import transforms
from .spectra import PowerLaw
from .validation import check_size, check_spatial_tensor, check_time, fail


def _area_ratio(size: tuple[int, int], reference_size: tuple[int, int] | None) -> float:
    """hw / (HW): the factor on A for a grid holding the contraction of reference-grid data."""
    if reference_size is None:
        return 1.0
    H, W = check_size(tuple(reference_size), "reference_size")
    return (size[0] * size[1]) / (H * W)


def _time_tensor(t: torch.Tensor | float, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """t as a (batch,) tensor; a Python number is checked to lie in [0, 1] (a tensor is not: no host sync)."""
    if not isinstance(t, torch.Tensor):
        t = check_time(t, "t")
    tt = torch.as_tensor(t, device=device, dtype=dtype)
    if tt.ndim == 0:
        tt = tt.expand(batch)
    tt = tt.reshape(-1)
    if tt.shape[0] != batch:
        fail("t", f"a number or one time per sample ({batch})", tuple(tt.shape))
    return tt


def cutoff_frequency(t: torch.Tensor | float, law: PowerLaw, area_ratio: float = 1.0) -> torch.Tensor:
    """w*(t) = (A' ((1 - t) / t)^2)^(1/beta), A' = A * area_ratio (Eq. 1): the frequency where signal
    power (1 - t)^2 A' w^-beta equals the noise power t^2. inf at t = 0, 0 at t = 1. For beta = 0 (a
    flat spectrum, the same SNR at every frequency) it is inf where A' (1 - t)^2 >= t^2, else 0."""
    if not isinstance(law, PowerLaw):
        fail("law", "a spectra.PowerLaw", type(law).__name__)
    tt = t if isinstance(t, torch.Tensor) else torch.tensor(check_time(t, "t"), dtype=torch.float64)
    ratio = (law.A * area_ratio) * ((1.0 - tt) / tt) ** 2  # SNR of a unit-power coefficient; inf at t = 0
    if law.beta == 0.0:
        return torch.where(ratio >= 1.0, torch.full_like(ratio, math.inf), torch.zeros_like(ratio))
    return ratio ** (1.0 / law.beta)


@functools.lru_cache(maxsize=64)
def _radial(height: int, width: int, transform: str, device: str, dtype: torch.dtype) -> torch.Tensor:
    return transforms.radial_frequency(height, width, transform).to(device=device, dtype=dtype)


def forcing_mask(t: torch.Tensor | float, size: tuple[int, int], law: PowerLaw, transform: str = "dct",
                 reference_size: tuple[int, int] | None = None, batch: int = 1,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """M (batch, H, W): 1 where max(w, w_min) <= w*(t) (signal power >= noise power), else 0 (Eq. 2)."""
    H, W = check_size(tuple(size), "size")
    transforms.get_transform(transform)
    tt = _time_tensor(t, batch, torch.device(device), dtype)
    cut = cutoff_frequency(tt, law, _area_ratio((H, W), reference_size)).to(dtype)
    w = _radial(H, W, transform, str(torch.device(device)), dtype).clamp_min(law.w_min)
    return (w[None] <= cut[:, None, None]).to(dtype)


def spectral_forcing(x: torch.Tensor, t: torch.Tensor | float, law: PowerLaw, transform: str = "dct",
                     reference_size: tuple[int, int] | None = None) -> torch.Tensor:
    """F_t(x) = x - T^-1((1 - M_t) T x) (Eq. 2) for x (B, C, H, W) or (B, C, T, H, W) in the flow frame
    (any scalar multiple of it too: the operator is linear) and t a number or (B,) flow times."""
    check_spatial_tensor(x, "x")
    dt = transforms.compute_dtype(x.dtype)
    mask = forcing_mask(t, (int(x.shape[-2]), int(x.shape[-1])), law, transform, reference_size,
                        batch=int(x.shape[0]), device=x.device, dtype=dt)
    removed = (1.0 - mask).reshape(mask.shape[0], *([1] * (x.ndim - 3)), *mask.shape[1:])
    coef = transforms.forward(x, transform)
    return (x.to(dt) - transforms.inverse(coef * removed, transform)).to(x.dtype)


@dataclass(frozen=True)
class SpectralForcing:
    """The forcing operator as plain data: the data law, the transform, and the grid the law was
    measured on (None: the grid the network sees). ``forcing(x, t)`` applies Eq. 2."""

    law: PowerLaw
    transform: str = "dct"
    reference_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.law, PowerLaw):
            fail("law", "a spectra.PowerLaw", type(self.law).__name__)
        transforms.get_transform(self.transform)
        if self.reference_size is not None:
            object.__setattr__(self, "reference_size", check_size(tuple(self.reference_size), "reference_size"))

    def __call__(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return spectral_forcing(x, t, self.law, self.transform, self.reference_size)

    def velocity(self, net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                 t: torch.Tensor) -> torch.Tensor:
        """Eq. 3: net(F_t x, t) + (x - F_t x) / t for a velocity network ``net(x, t)`` and (B,) times ``t``
        (at t = 0 nothing is removed and the skip term is exactly 0)."""
        fx = self(x, t)
        tt = t.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return net(fx, t) + (x - fx) / tt.clamp_min(torch.finfo(x.dtype).tiny)

    def to_dict(self) -> dict:
        return {"A": self.law.A, "beta": self.law.beta, "w_min": self.law.w_min, "transform": self.transform,
                "reference_size": None if self.reference_size is None else list(self.reference_size),
                "mask": "hard: keep (1-t)^2 A max(w, w_min)^-beta >= t^2 (seed 004 contour, spectral_core/forcing.py)"}

    @classmethod
    def from_dict(cls, d: dict) -> "SpectralForcing":
        if not isinstance(d, dict) or "A" not in d or "beta" not in d:
            fail("spectral_forcing", "a dict with 'A' and 'beta' (SpectralForcing.to_dict)", d)
        ref = d.get("reference_size")
        return cls(PowerLaw(float(d["A"]), float(d["beta"]), float(d.get("w_min", 0.5))), d.get("transform", "dct"),
                   None if ref is None else tuple(int(v) for v in ref))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

"""Exact Gaussian data models: the testbed where every quantity has a closed form.

Data x_0 whose coefficients in an orthonormal transform (DCT or DWT) are independent N(0, P_k) on
the full (H, W) grid.  Its contraction to an (h, w) grid (the low band scaled by 1/g) is again such
a model with variances P_k / g^2 on the low block, so the same object is an exact model at every
stage size.  The Bayes denoiser (seed 001 App. A.3, seed 003) is the Wiener filter

    E[X_0 | X_t] = (1 - t) P / ((1 - t)^2 P + t^2) X_t,   x_t = (1 - t) x_0 + t eps (flow frame).
"""
from __future__ import annotations

from typing import Any

import torch

from . import transforms
from .denoiser import wiener_gain
from .frames import append_dims, get_frame
from .spectra import PowerLaw
from .validation import fail


class GaussianSpectrumModel:
    """Exact denoiser ``model(x, sigma)`` of Gaussian data with per-coefficient variance ``power``
    (an (H, W) tensor on the full grid).  Works at the full size and at every low-band size.
    ``calls`` logs the spatial size of every evaluation."""

    def __init__(self, power: torch.Tensor, transform: str = "dct", frame: str = "const") -> None:
        if not transforms.get_transform(transform).real:
            real = [n for n, t in transforms.REGISTRY.items() if t.real]
            fail("transform", f"one of {real} (real diagonal coefficient models)", transform)
        if power.ndim != 2 or not bool((power > 0).all()):
            fail("power", "a positive (H, W) tensor", tuple(power.shape))
        self.power = power.to(torch.float64)
        self.transform = transform
        self.frame = get_frame(frame)
        self.calls: list[tuple[int, ...]] = []

    @classmethod
    def power_law(cls, law: PowerLaw, size: tuple[int, int], transform: str = "dct", frame: str = "const"
                  ) -> "GaussianSpectrumModel":
        return cls(law.coefficient_power(size[0], size[1], transform), transform, frame)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.power.shape[0]), int(self.power.shape[1])

    def power_at(self, h: int, w: int) -> torch.Tensor:
        """P on an (h, w) low-band grid: the low block of the full P divided by g^2."""
        H, W = self.size
        if h > H or w > W:
            fail("x", f"a spatial size at most {self.size}", (h, w))
        return self.power[:h, :w] * (h * w) / (H * W)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_: Any) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        self.calls.append((h, w))
        dt = transforms.compute_dtype(x.dtype)
        sig = torch.as_tensor(sigma, device=x.device, dtype=dt).reshape(-1)
        t = append_dims(self.frame.t_of_sigma(sig), x.ndim)
        x_t = x.to(dt) * self.frame.scale_of_sigma(sig).reshape(t.shape)
        p = self.power_at(h, w).to(device=x.device, dtype=dt)
        return transforms.apply_gain(x_t, wiener_gain(t, p), self.transform).to(x.dtype)

    def sample(self, shape_prefix: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Draw x_0 of shape prefix + (H, W)."""
        H, W = self.size
        z = torch.randn(*shape_prefix, H, W, generator=generator, dtype=torch.float64)
        return transforms.inverse(z * self.power.sqrt(), self.transform).to(dtype)

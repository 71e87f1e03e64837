"""The one frame conversion: model sigma <-> flow time t, and latents between the two frames.

Flow frame (seed 001 Sec. 3.1): x_t = (1 - t) x_0 + t eps, t in [0, 1], t = 1 is pure noise.

* ``const`` (rectified flow: FLUX, SD3, WAN, ...): t = sigma and x_t = x.
* ``eps`` (variance exploding parametrisation of EPS / V-prediction / EDM models: x = x_0 + sigma eps):
  t = sigma / (1 + sigma), x_t = x / (1 + sigma); back: sigma = t / (1 - t), x = x_t (1 + sigma).

Every spectral operation of the pack happens in the flow frame, whatever the model's frame.
(DESIGN.md puts frames under schedules/; they live here because the sampling loop in this layer
needs them and imports only go downwards. schedules/ uses this module, it has no second copy.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from .validation import fail

T = TypeVar("T", float, torch.Tensor)


@dataclass(frozen=True)
class Frame:
    name: str
    t_of_sigma: Callable[[T], T]
    sigma_of_t: Callable[[T], T]
    scale_of_sigma: Callable[[T], T]  # x_t = x * scale(sigma)

    def to_flow(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return x * self.scale_of_sigma(sigma)

    def from_flow(self, x_t: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return x_t / self.scale_of_sigma(sigma)


def append_dims(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-sample vector (B,) shaped (B, 1, ..., 1) to broadcast against an ``ndim``-D latent; a
    scalar tensor as it is.  The one helper for per-sample sigmas and times."""
    return v.reshape(v.shape[0], *([1] * (ndim - 1))) if v.ndim == 1 else v


def _eps_sigma_of_t(t):
    if isinstance(t, torch.Tensor):
        return t / (1.0 - t)
    return float("inf") if t >= 1.0 else t / (1.0 - t)


FRAMES: dict[str, Frame] = {
    "const": Frame("const", lambda s: s, lambda t: t, lambda s: 1.0 + 0.0 * s),
    "eps": Frame("eps", lambda s: s / (1.0 + s), _eps_sigma_of_t, lambda s: 1.0 / (1.0 + s)),
}


def get_frame(frame: str | Frame) -> Frame:
    if isinstance(frame, Frame):
        return frame
    if frame not in FRAMES:
        fail("frame", f"one of {sorted(FRAMES)}", frame)
    return FRAMES[frame]

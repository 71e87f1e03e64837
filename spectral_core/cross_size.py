"""The full-size model's prediction seen at a stage size: the oracle of the low stage.

A low stage asks the model at size s for x_0 of its state x_lo at its own flow time s.  The same
question can be put to the full-size model on the state the run would have if it were expanded now
(seed 001 Eqs. 5-6, the expansion inference uses, straight to the full size) and answered at the
stage size by the exact contraction at t = 0 (the data of a stage is C_0 x_0):

    x~ = E_s(x_lo; eps'),   t~ = g s / (1 + (g - 1) s),   D_lo = C_0 D(x~, t~) = T_low D(x~, t~) / g

eps' is full-size unit noise for the new band (the run's own, another draw, or fresh).  Expanding a
16x16 stage straight to 64x64 equals expanding it twice (kappa and t~ compose), so the state is the
one inference would reach.  ``bench.oracle`` samples with it (how much of the progressive error is
the model's); ``finetune`` can regress the low stages on it (the "teacher" variant).
"""
from __future__ import annotations

from typing import Callable

import torch

from .expansion import contract, expand
from .spectra import PowerLaw

FlowDenoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def contracted_full_prediction(model: FlowDenoiser, x_lo: torch.Tensor, s: float | torch.Tensor,
                               full_size: tuple[int, int], *, transform: str = "dct",
                               noise: torch.Tensor | None = None, refill: str = "paper",
                               spectrum: PowerLaw | None = None,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """C_0 D(E_s(x_lo; eps'), t~) on x_lo's grid (module docstring), all in the flow frame.

    ``model(x, t)``: the full-size x_0 prediction of the flow state x at times t (B,);
    ``x_lo``: stage-size flow states (B, ..., h, w); ``s``: their flow time, one float or one per
    sample (B,); ``noise``: full-size unit noise (B, ..., H, W) for the new band (None: fresh draws
    from ``generator``); ``transform`` / ``refill`` / ``spectrum``: the run's expansion.
    Returns the stage-size x_0 prediction, x_lo's dtype."""
    b = x_lo.shape[0]
    times = torch.as_tensor(s, dtype=torch.float64).reshape(-1)
    if times.numel() not in (1, b):
        raise ValueError(f"s: expected one time or one per sample ({b}), got {times.numel()}")
    if noise is not None and noise.shape[0] != b:
        raise ValueError(f"noise: expected {b} full-size draws, got {noise.shape[0]}")
    size = tuple(x_lo.shape[-2:])
    if times.numel() == 1:
        big, t_full = expand(x_lo, full_size, float(times[0]), transform=transform, noise=noise, refill=refill,
                             spectrum=spectrum, generator=generator, validate=False)
        t_big = torch.full((b,), float(t_full), dtype=x_lo.dtype, device=x_lo.device)
    else:  # expand takes one time: grow each sample at its own
        grown = [expand(x_lo[k:k + 1], full_size, float(times[k]), transform=transform,
                        noise=None if noise is None else noise[k:k + 1], refill=refill, spectrum=spectrum,
                        generator=generator, validate=False) for k in range(b)]
        big = torch.cat([g for g, _ in grown])
        t_big = torch.tensor([float(t) for _, t in grown], dtype=x_lo.dtype, device=x_lo.device)
    x0_full = model(big, t_big)
    return contract(x0_full, size, 0.0, transform=transform, validate=False)[0].to(x_lo.dtype)

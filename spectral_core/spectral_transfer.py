"""The sampler's spectral transfer function under Gaussian data (seed 002, Benita, Elad, Keshet 2025).

Data x_0 with independent transform coefficients X_0 ~ N(0, P_k) and its exact (Wiener) denoiser
D(x, sigma) = a(t) s(sigma) x, a(t) = (1 - t) P / ((1 - t)^2 P + t^2), s = the frame's x -> x_t scale
(``frames.py``; t = sigma, s = 1 for CONST; t = sigma / (1 + sigma), s = 1 / (1 + sigma) for EPS).
The probability-flow derivative the samplers take is then linear per coefficient:

    d_n = (x_n - D_n) / sigma_n = c_n x_n,      c_n = (1 - a(t_n) s(sigma_n)) / sigma_n,

so every step is a per-coefficient linear map and the run is X_out = G X_in with

    Euler:  G = prod_n (1 + h_n c_n),                         h_n = sigma_{n+1} - sigma_n
    AB2:    G_{n+1} = G_n + h_n ((1 + r/2) c_n G_n - (r/2) c_{n-1} G_{n-1}),  r = h_n / h_{n-1}

(the recursions of ``samplers.sample_euler`` / ``sample_ab2``).  With X_in ~ N(0, v_in) the output law
per coefficient is N(0, G^2 v_in) and its KL to the data law N(0, P) is

    KL_k = (r_k - 1 - log r_k) / 2,   r_k = G_k^2 v_in,k / P_k,

summed over the coefficients of the grid (the "spectral error" of the schedule, per channel).
For a power law the coefficients of one radial frequency share P, so the sum runs over the distinct
frequencies weighted by their multiplicity on the DCT grid.

The start (model frame) is what the caller's sampler is handed:
"noise" x = sigma_0 eps (the pack's samplers, ComfyUI's CONST models), "unit_marginal" x = sqrt(1 + sigma_0^2) eps
(ComfyUI's maximal-denoise start of EPS models: the marginal of unit-variance data), "marginal" x = x_0 + noise
at sigma_0 (img2img from data: the exact marginal, flow variance (1 - t0)^2 P + t0^2).
"""
from __future__ import annotations

from typing import Any

import torch

from . import transforms
from .denoiser import wiener_gain
from .frames import Frame, get_frame
from .spectra import PowerLaw
from .validation import check_size, fail

SAMPLERS = ("euler", "ab2")
STARTS = ("noise", "unit_marginal", "marginal")


def frequency_weights(law: PowerLaw, size: tuple[int, int], transform: str = "dct"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(P per distinct radial frequency, its multiplicity on the (H, W) grid), float64.
    sum(weights * f(P)) equals the sum of f over every coefficient of the grid."""
    if not isinstance(law, PowerLaw):
        fail("spectrum", "a PowerLaw", type(law).__name__)
    H, W = check_size(size, "size")
    w = transforms.radial_frequency(H, W, transform).to(torch.float64).flatten()
    uniq, counts = torch.unique(w, return_counts=True)
    return law.power(uniq), counts.to(torch.float64)


def binned_weights(power: torch.Tensor, weights: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``bins`` groups of equal width in log P: each group's weighted geometric mean power and
    total weight (a cheap stand-in for thousands of distinct frequencies; neighbours in a group differ
    in P by less than the group width, so their KL terms nearly agree)."""
    if power.numel() <= bins:
        return power, weights
    lp = torch.log(power)
    lo, hi = float(lp.min()), float(lp.max())
    idx = ((lp - lo) / max(hi - lo, 1e-12) * bins).floor().clamp_(0, bins - 1).to(torch.int64)
    wsum = torch.zeros(bins, dtype=power.dtype).index_add_(0, idx, weights)
    lsum = torch.zeros(bins, dtype=power.dtype).index_add_(0, idx, weights * lp)
    keep = wsum > 0
    return torch.exp(lsum[keep] / wsum[keep]), wsum[keep]


def step_rates(sigmas: torch.Tensor, power: torch.Tensor, frame: str | Frame = "const") -> torch.Tensor:
    """c_n = (1 - a(t_n) s(sigma_n)) / sigma_n for every step n (rows) and coefficient (columns)."""
    fr = get_frame(frame)
    s = sigmas[:-1].reshape(-1, *([1] * power.ndim))
    t = fr.t_of_sigma(s)
    return (1.0 - wiener_gain(t, power) * fr.scale_of_sigma(s)) / s


def transfer_gain(sigmas: torch.Tensor, power: torch.Tensor, frame: str | Frame = "const",
                  sampler: str = "euler") -> torch.Tensor:
    """G with X_out = G X_in (model frame) for the run of ``sampler`` over ``sigmas`` on the exact
    denoiser of N(0, power); differentiable in ``sigmas`` and ``power``."""
    if sampler not in SAMPLERS:
        fail("sampler", f"one of {SAMPLERS}", sampler)
    c = step_rates(sigmas, power, frame)
    h = (sigmas[1:] - sigmas[:-1]).reshape(-1, *([1] * power.ndim))
    if sampler == "euler":
        return torch.prod(1.0 + h * c, dim=0)
    g = torch.ones_like(c[0])
    g_prev = c_prev = h_prev = None
    for n in range(c.shape[0]):
        if g_prev is None:
            g_next = g + h[n] * c[n] * g
        else:
            r = h[n] / h_prev
            g_next = g + h[n] * ((1.0 + r / 2.0) * c[n] * g - (r / 2.0) * c_prev * g_prev)
        g_prev, c_prev, h_prev, g = g, c[n], h[n], g_next
    return g


def start_variance(start: str, sigma0: torch.Tensor | float, power: torch.Tensor,
                   frame: str | Frame = "const") -> torch.Tensor:
    """Per-coefficient variance of the sampler's input x at sigma_0 (model frame), see the module doc."""
    fr = get_frame(frame)
    s0 = torch.as_tensor(sigma0, dtype=power.dtype)
    t0 = fr.t_of_sigma(s0)
    if start == "noise":
        flow = t0 ** 2 * torch.ones_like(power)
    elif start == "unit_marginal":
        flow = ((1.0 - t0) ** 2 + t0 ** 2) * torch.ones_like(power)
    elif start == "marginal":
        flow = (1.0 - t0) ** 2 * power + t0 ** 2
    else:
        fail("start", f"one of {STARTS}", start)
    return flow / fr.scale_of_sigma(s0) ** 2


def gaussian_kl(variance: torch.Tensor, power: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """sum_k w_k KL(N(0, v_k) || N(0, P_k)) = sum_k w_k (r - 1 - log r) / 2, r = v / P (nats)."""
    r = variance / power
    terms = 0.5 * (r - 1.0 - torch.log(r))
    return terms.sum() if weights is None else (weights * terms).sum()


def check_sigmas(sigmas: Any, name: str = "sigmas") -> torch.Tensor:
    """A float64 CPU copy of a strictly decreasing, finite, non-negative schedule of >= 1 step."""
    sig = torch.as_tensor(sigmas, dtype=torch.float64).detach().flatten().cpu()
    if sig.numel() < 2:
        fail(name, "at least two sigmas (one step)", tuple(sig.tolist()))
    if not bool(torch.isfinite(sig).all()) or bool((sig < 0).any()):
        fail(name, "finite non-negative sigmas", tuple(sig.tolist()))
    if bool((sig[1:] >= sig[:-1]).any()) or float(sig[-2]) <= 0.0:
        fail(name, "a strictly decreasing schedule (only the last sigma may be 0)",
             tuple(round(v, 6) for v in sig.tolist()))
    return sig


def spectral_kl(sigmas: Any, law: PowerLaw, size: tuple[int, int], *, frame: str | Frame = "const",
                sampler: str = "euler", start: str = "noise") -> float:
    """The spectral error of a schedule: KL (nats, per channel) of the sampler's output law to the
    Gaussian data law with power spectrum ``law`` on a ``size`` DCT grid, in closed form."""
    sig = check_sigmas(sigmas)
    power, weights = frequency_weights(law, size)
    var = transfer_gain(sig, power, frame, sampler) ** 2 * start_variance(start, sig[0], power, frame)
    return float(gaussian_kl(var, power, weights))

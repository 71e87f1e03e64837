"""Per-coefficient reference for progressive runs on exact Gaussian models.

With a diagonal (per-DCT-coefficient) exact denoiser every sampler step is elementwise, so a
progressive run can be computed on the coefficients alone, with no transform, no band crop in space
and no frame code from the pack: stage i runs the sampler on the low block of coefficients,
expansion multiplies the block by g kappa and sets the new band to t~ E (E = DCT of the unit noise).
"""
from __future__ import annotations

import math

import torch

from spectral_progressive.spectral_core import transforms


def _t(sig, frame):
    return sig / (1 + sig) if frame == "eps" else sig


def _scale(sig, frame):
    return 1 / (1 + sig) if frame == "eps" else 1.0 + 0 * sig


def reference_run(plan, power_full: torch.Tensor, sampler, noise: torch.Tensor, frame: str) -> torch.Tensor:
    """Final latent (model frame) of the plan's progressive run, computed coefficient-wise."""
    E = transforms.forward(noise.double(), "dct")
    H, W = plan.full_size
    st0 = plan.stages[0]
    t0 = float(_t(plan.user_sigmas[0], frame))
    cur = t0 * E[..., : st0.size[0], : st0.size[1]]
    for i, st in enumerate(plan.stages):
        h, w = st.size
        p = power_full[:h, :w] * (h * w) / (H * W)

        def model(x, sigma, p=p):
            sg = sigma.reshape(-1)[0]
            t = _t(sg, frame)
            return (1 - t) * p / ((1 - t) ** 2 * p + t ** 2) * x * _scale(sg, frame)

        sig = st.sigmas
        out = sampler(model, cur / _scale(sig[0], frame), sig)
        if st.switch_time is None:
            return out
        cur = out * _scale(sig[-1], frame)
        nh, nw = plan.stages[i + 1].size
        g = math.sqrt(nh * nw / (h * w))
        ts = st.switch_time
        kappa = 1 / (1 + (g - 1) * ts)
        new = g * ts * kappa * E[..., :nh, :nw].clone()
        new[..., :h, :w] = g * kappa * cur
        cur = new
    raise AssertionError


def euler_gain_closed_form(plan, power_full: torch.Tensor) -> torch.Tensor:
    """CONST frame, Euler, pure-noise start at t0: X_final = G * E with G a product of step factors
    (1 + (t' - t)(1 - a_t) / t), a_t the Wiener gain, times g kappa at each expansion."""
    H, W = plan.full_size
    G = torch.zeros(H, W, dtype=torch.float64)
    born = torch.full((H, W), -1, dtype=torch.int64)
    for i, st in enumerate(plan.stages):
        h, w = st.size
        blk = born[:h, :w]
        blk[blk < 0] = i
    for ky in range(H):
        for kx in range(W):
            i0 = int(born[ky, kx])
            g_val = plan.stages[0].times[0] if i0 == 0 else None
            for i in range(i0, len(plan.stages)):
                st = plan.stages[i]
                h, w = st.size
                if i > i0 or i0 > 0 and g_val is None:
                    pass
                if i == i0 and i0 > 0:
                    prev = plan.stages[i - 1]
                    g = math.sqrt(h * w / (prev.size[0] * prev.size[1]))
                    ts = prev.switch_time
                    g_val = g * ts / (1 + (g - 1) * ts)
                p = float(power_full[ky, kx]) * (h * w) / (H * W)
                for t, tn in zip(st.times, st.times[1:]):
                    a = (1 - t) * p / ((1 - t) ** 2 * p + t ** 2)
                    g_val *= 1 + (tn - t) * (1 - a) / t
                if st.switch_time is not None:
                    nxt = plan.stages[i + 1]
                    g = math.sqrt(nxt.size[0] * nxt.size[1] / (h * w))
                    g_val *= g / (1 + (g - 1) * st.switch_time)
            G[ky, kx] = g_val
    return G

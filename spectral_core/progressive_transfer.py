"""Closed-form spectral transfer of a progressive run (formulation 1) under Gaussian data (seeds 001 + 002).

With the exact per-coefficient denoiser every operation of ``progressive.sample_progressive`` is
per-coefficient and linear in the one full-size unit noise E (DCT), so the final coefficient is
X_k = G_k E_k with G_k a product of (flow frame, DESIGN.md):

* the start: the first stage's low band of x_flow = a E (a = t0 for a pure-noise start x = sigma_0 eps);
* each stage's sampler run on its own sigmas with the stage's Gaussian model P_k h w / (H W)
  (``spectral_transfer.transfer_gain``, model frame: divided/multiplied by the frame scale at its ends);
* each expansion by g at t*: kappa = 1 / (1 + (g - 1) t*), t~ = g t* kappa; kept coefficients times g kappa,
  new ones born as r(t~) (a / t0) E_k (the refill noise is x_flow / t0), r = t~ ("paper") or
  sqrt((1 - t~)^2 P' + t~^2) with P' the plan's spectrum on the new stage's grid ("matched").

The output law is N(0, G^2) per coefficient and its KL to N(0, P) is exact.
"""
from __future__ import annotations

from typing import Any

import torch

from .expansion import growth
from .spectra import PowerLaw
from .spectral_transfer import gaussian_kl, transfer_gain
from .validation import fail


def _check_plan(plan: Any) -> None:
    if not hasattr(plan, "stages") or not hasattr(plan, "full_size"):
        fail("plan", "a StagePlan from schedules.plan_stages", type(plan).__name__)
    if plan.transform != "dct" or plan.entry != "noise":
        fail("plan", "a DCT plan with a pure-noise entry (the closed form covers txt2img runs)",
             (plan.transform, plan.entry))


def _refill(plan: Any, size: tuple[int, int], t_new: float) -> torch.Tensor | float:
    """r(t~) on the new stage's grid: t~ ('paper') or sqrt((1 - t~)^2 P' + t~^2) ('matched')."""
    if plan.refill != "matched":
        return t_new
    g2 = growth(size, plan.full_size) ** 2
    law = PowerLaw(plan.spectrum.A / g2, plan.spectrum.beta, plan.spectrum.w_min)
    return torch.sqrt((1.0 - t_new) ** 2 * law.coefficient_power(size[0], size[1]) + t_new ** 2)


def progressive_gain(plan: Any, law: PowerLaw, sampler: str = "euler", start_std: float | None = None) -> torch.Tensor:
    """G (H, W), float64: the final model-frame DCT coefficients of the plan's run are G * E, for data
    with spectrum ``law``.  ``start_std``: x_flow at the start is start_std * E (default t0: x = sigma_0 eps)."""
    _check_plan(plan)
    fr = plan.frame
    H, W = plan.full_size
    p_full = law.coefficient_power(H, W)
    t0 = float(fr.t_of_sigma(float(plan.user_sigmas[0])))
    a = t0 if start_std is None else float(start_std)
    g_flow = torch.zeros(H, W, dtype=torch.float64)
    h, w = plan.stages[0].size
    g_flow[:h, :w] = a
    for i, st in enumerate(plan.stages):
        h, w = st.size
        sig = st.sigmas.to(torch.float64)
        p = p_full[:h, :w] * (h * w) / (H * W)
        block = g_flow[:h, :w] / fr.scale_of_sigma(sig[0]) * transfer_gain(sig, p, fr, sampler)
        if st.switch_time is None:
            return block
        nh, nw = plan.stages[i + 1].size
        g = growth((h, w), (nh, nw))
        kappa = 1.0 / (1.0 + (g - 1.0) * st.switch_time)
        t_new = g * st.switch_time * kappa
        born = torch.ones(nh, nw, dtype=torch.float64) * _refill(plan, (nh, nw), t_new) * (a / t0)
        born[:h, :w] = g * kappa * block * fr.scale_of_sigma(sig[-1])
        g_flow[:nh, :nw] = born
    raise AssertionError("a plan always ends with a full-size stage")


def progressive_kl(plan: Any, law: PowerLaw, sampler: str = "euler", start_std: float | None = None) -> float:
    """KL (nats per channel) of the plan's output law to the data law N(0, P) on the full grid."""
    H, W = plan.full_size if hasattr(plan, "full_size") else (0, 0)
    gain = progressive_gain(plan, law, sampler, start_std)
    return float(gaussian_kl(gain ** 2, law.coefficient_power(H, W)))

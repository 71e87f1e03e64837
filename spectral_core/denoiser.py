"""Formulation 2: progressive sampling as a denoiser wrapper (DESIGN.md "Two formulations").

The latent stays full size.  While the full-size flow time t is above stage i's aligned switch time
T_i, the wrapper contracts x to the stage size (s = t kappa'(t), kappa' = 1 / (g (1 - t) + t)), calls
the network there, and lifts the prediction of x_0 back: the low band is g U D_lo, the bands the
stage does not hold get

* ``high="zero"``:   0 (the paper's assumption that they are pure noise), or
* ``high="wiener"``: the Wiener estimate (1 - t) P / ((1 - t)^2 P + t^2) X_t from the spectrum prior
  (seeds 003/004: the optimal denoiser of a Gaussian with spectrum P).

Every sampler, scheduler, mask and multistep history works unchanged because nothing the sampler
holds changes size.  Choosing the stage needs the current sigma on the host: one scalar read per
model call (the network's input shape depends on it, so it cannot be avoided).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from . import transforms
from .frames import get_frame
from .spectra import PowerLaw
from .validation import fail

HIGH_MODES = ("zero", "wiener")


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1))) if v.ndim == 1 and v.shape[0] == x.shape[0] else v


def wiener_gain(t: torch.Tensor | float, power: torch.Tensor) -> torch.Tensor:
    """Per-coefficient E[X_0 | X_t] / X_t = (1 - t) P / ((1 - t)^2 P + t^2) for X_0 ~ N(0, P)."""
    return (1.0 - t) * power / ((1.0 - t) ** 2 * power + t ** 2)


def progressive_denoiser(model: Callable[..., torch.Tensor], plan: Any, *, frame: str = "const",
                         high: str = "zero", spectrum: PowerLaw | None = None,
                         on_stage: Callable[[int, Any], None] | None = None) -> Callable[..., torch.Tensor]:
    """Wrap a k-diffusion denoiser ``model(x, sigma, **kw)`` into its progressive counterpart.

    ``spectrum`` (P on the full-size grid) is needed for ``high="wiener"``; the plan's own spectrum
    is used when None.  ``on_stage(i, stage)`` is told the stage of each call (for logs and for
    resizing spatial conditioning).
    """
    if not hasattr(plan, "stages"):
        fail("plan", "a StagePlan from schedules.plan_stages", type(plan).__name__)
    fr = get_frame(frame)
    if fr.name != plan.frame.name:
        fail("frame", f"the plan's frame {plan.frame.name!r}", frame)
    if high not in HIGH_MODES:
        fail("high", f"one of {HIGH_MODES}", high)
    law = spectrum if spectrum is not None else plan.spectrum
    if high == "wiener" and not isinstance(law, PowerLaw):
        fail("spectrum", "a PowerLaw for high='wiener'", spectrum)
    full = tuple(plan.full_size)
    last = len(plan.stages) - 1
    power_cache: dict[tuple, torch.Tensor] = {}

    def denoise(x: torch.Tensor, sigma: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if tuple(x.shape[-2:]) != full:
            fail("x", f"a latent of spatial size {full} (the plan's)", tuple(x.shape[-2:]))
        sig = torch.as_tensor(sigma, device=x.device)
        sig_flat = sig.reshape(-1)
        t = fr.t_of_sigma(sig_flat.to(transforms.compute_dtype(x.dtype)))
        idx = plan.stage_index(float(t[0]))  # the one host read per call
        if on_stage is not None:
            on_stage(idx, plan.stages[idx])
        if idx == last:
            return model(x, sigma, **kwargs)
        st = plan.stages[idx]
        g = st.growth
        tb = _bcast(t, x)
        x_flow = x.to(tb.dtype) * _bcast(fr.scale_of_sigma(sig_flat.to(tb.dtype)), x)
        kappa_c = 1.0 / (g * (1.0 - tb) + tb)
        s = t / (g * (1.0 - t) + t)
        x_lo = kappa_c * transforms.down(x_flow, st.size, plan.transform)
        sig_lo = fr.sigma_of_t(s)
        x_lo_model = x_lo / _bcast(fr.scale_of_sigma(sig_lo), x_lo)
        d_lo = model(x_lo_model.to(x.dtype), sig_lo.to(sig.dtype) if sig.ndim else sig_lo[0].to(sig.dtype), **kwargs)
        out = g * transforms.up(d_lo, full, plan.transform)
        if high == "wiener":
            key = (str(x.device), x.dtype)
            if key not in power_cache:
                power_cache[key] = law.coefficient_power(full[0], full[1], plan.transform, x.device).to(tb.dtype)
            est = transforms.apply_gain(x_flow, wiener_gain(tb, power_cache[key]), plan.transform)
            out = out + est - transforms.project_low(est, st.size, plan.transform)
        return out.to(x.dtype)

    return denoise

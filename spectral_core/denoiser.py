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

``BandRouter`` exposes the two halves (``enter``: contract; ``lift``: expand the prediction) so a
host that evaluates several predictions per call (ComfyUI's cond batches) can use them directly;
``progressive_denoiser`` is the k-diffusion denoiser built from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from . import transforms
from .frames import append_dims, get_frame
from .plan import Stage, StagePlan
from .spectra import PowerLaw, resolve_spectrum
from .validation import fail

HIGH_MODES = ("zero", "wiener")


def wiener_gain(t: torch.Tensor | float, power: torch.Tensor) -> torch.Tensor:
    """Per-coefficient E[X_0 | X_t] / X_t = (1 - t) P / ((1 - t)^2 P + t^2) for X_0 ~ N(0, P)."""
    return (1.0 - t) * power / ((1.0 - t) ** 2 * power + t ** 2)


@dataclass
class Entered:
    """One contracted call: the stage, the stage-size input and sigma, and what ``lift`` needs."""

    index: int
    stage: Stage
    x: torch.Tensor  # stage-size latent in the model frame
    sigma: torch.Tensor  # stage sigma, shaped like the caller's sigma
    t: torch.Tensor  # full-size flow time, broadcastable against the latent
    x_flow: torch.Tensor  # full-size latent in the flow frame (for the Wiener high band)
    dtype: torch.dtype


class BandRouter:
    """Routes full-size denoiser calls to the plan's stage sizes (formulation 2)."""

    def __init__(self, plan: StagePlan, *, frame: str = "const", high: str = "zero",
                 spectrum: PowerLaw | str | None = None):
        if not isinstance(plan, StagePlan):
            fail("plan", "a StagePlan from schedules.plan_stages", type(plan).__name__)
        self.frame = get_frame(frame)
        if self.frame.name != plan.frame.name:
            fail("frame", f"the plan's frame {plan.frame.name!r}", frame)
        if high not in HIGH_MODES:
            fail("high", f"one of {HIGH_MODES}", high)
        self.law = resolve_spectrum(spectrum) if spectrum is not None else plan.spectrum
        if high == "wiener" and not isinstance(self.law, PowerLaw):
            fail("spectrum", "a PowerLaw, a preset name or (A, beta) for high='wiener'", spectrum)
        self.plan = plan
        self.high = high
        self.full = tuple(plan.full_size)
        self._power: dict[tuple, torch.Tensor] = {}

    def stage_of(self, sigma: torch.Tensor | float) -> int:
        """Index of the stage active at this sigma (reads one scalar on the host)."""
        s = float(torch.as_tensor(sigma).reshape(-1)[0])
        return self.plan.stage_index(float(self.frame.t_of_sigma(s)))

    def is_low(self, sigma: torch.Tensor | float) -> bool:
        return self.stage_of(sigma) < len(self.plan.stages) - 1

    def enter(self, x: torch.Tensor, sigma: torch.Tensor) -> Entered | None:
        """Contract a full-size model-frame x at sigma to the active stage; None at the last stage."""
        if tuple(x.shape[-2:]) != self.full:
            fail("x", f"a latent of spatial size {self.full} (the plan's)", tuple(x.shape[-2:]))
        idx = self.stage_of(sigma)
        if idx == len(self.plan.stages) - 1:
            return None
        st = self.plan.stages[idx]
        fr, g = self.frame, st.growth
        cdt = transforms.compute_dtype(x.dtype)
        sig = torch.as_tensor(sigma, device=x.device)
        sig_flat = sig.reshape(-1).to(cdt)
        t = fr.t_of_sigma(sig_flat)
        tb = append_dims(t, x.ndim)
        x_flow = x.to(cdt) * append_dims(fr.scale_of_sigma(sig_flat), x.ndim)
        x_lo = (1.0 / (g * (1.0 - tb) + tb)) * transforms.down(x_flow, st.size, self.plan.transform)
        sig_lo = fr.sigma_of_t(t / (g * (1.0 - t) + t))
        x_lo_model = x_lo / append_dims(fr.scale_of_sigma(sig_lo), x_lo.ndim)
        sig_out = sig_lo.to(sig.dtype).reshape(sig.shape) if sig.ndim else sig_lo[0].to(sig.dtype)
        return Entered(idx, st, x_lo_model.to(x.dtype), sig_out, tb, x_flow, x.dtype)

    def lift(self, d_lo: torch.Tensor, e: Entered) -> torch.Tensor:
        """Full-size prediction of x_0 from the stage's: g U D_lo (+ Wiener high band)."""
        out = e.stage.growth * transforms.up(d_lo, self.full, self.plan.transform)
        if self.high == "wiener":
            key = (str(d_lo.device), e.t.dtype)
            if key not in self._power:
                self._power[key] = self.law.coefficient_power(self.full[0], self.full[1], self.plan.transform,
                                                              d_lo.device).to(e.t.dtype)
            xf = e.x_flow if e.x_flow.shape[0] == d_lo.shape[0] else e.x_flow[: d_lo.shape[0]]
            est = transforms.apply_gain(xf, wiener_gain(e.t[: d_lo.shape[0]] if e.t.ndim else e.t, self._power[key]),
                                        self.plan.transform)
            out = out + est - transforms.project_low(est, e.stage.size, self.plan.transform)
        return out.to(e.dtype)


def progressive_denoiser(model: Callable[..., torch.Tensor], plan: StagePlan, *, frame: str = "const",
                         high: str = "zero", spectrum: PowerLaw | str | None = None,
                         on_stage: Callable[[int, Stage], None] | None = None) -> Callable[..., torch.Tensor]:
    """Wrap a k-diffusion denoiser ``model(x, sigma, **kw)`` into its progressive counterpart.

    ``spectrum`` (P on the full-size grid: a PowerLaw, a preset name such as "flux" or (A, beta), as
    ``plan_stages`` takes it) is needed for ``high="wiener"``; the plan's own spectrum is used when None.
    ``on_stage(i, stage)`` is told the stage of each call (for logs).
    """
    router = BandRouter(plan, frame=frame, high=high, spectrum=spectrum)

    def denoise(x: torch.Tensor, sigma: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        e = router.enter(x, sigma)
        if on_stage is not None:
            idx = len(plan.stages) - 1 if e is None else e.index
            on_stage(idx, plan.stages[idx])
        if e is None:
            return model(x, sigma, **kwargs)
        return router.lift(model(e.x, e.sigma, **kwargs), e)

    return denoise

"""Few-step calibration of the spectrum prior from the user's own model and latent (issue 13 item 2).

Instead of a preset (seed 001 App. C, Table 4), measure what the model itself does: the spectral noise
passthrough criterion of seed 001 App. B.  For the user's clean latent x_0, a few flow times t and one
noise draw eps per time (seeded),

    x_t = (1 - t) x_0 + t eps                                   (flow frame, DESIGN.md)
    v_hat = (x_t - D(x_t, t)) / t                               (velocity from the x_0 prediction D)
    v_hat - eps = ((1 - t) x_0 - D(x_t, t)) / t

and per radial DCT band b (coefficients with round(w) == b, w in cycles per image) the normalised error

    e_b(t) = mean_{w in b} |T_DCT(v_hat - eps)_w|^2             (eps has unit variance per coefficient,
                                                                 so this is relative to the band's noise)

is the deviation of the model's velocity from the pure-noise passthrough (seed 001 App. B,
bench/activation.py).  For Gaussian data x_0^(w) ~ N(0, P_w) and the Bayes denoiser, Lemma 1
(seed 001 Eq. 35) gives

    e(t) = (1 - t)^2 P (1 + P) / ((1 - t)^2 P + t^2),

which is inverted in closed form for the band's effective power (r = t^2 / (1 - t)^2):

    (1 - t)^2 P^2 + (1 - t)^2 (1 - e) P - e t^2 = 0
    P = 2 e r / ((1 - e) + sqrt((1 - e)^2 + 4 e r))            (the positive root, cancellation-free).

Per band the estimates of all times are pooled geometrically (mean of log P), and P(w) = A w^-beta is
fitted by least squares of log P on log w (``spectra.fit_power_law``: DC excluded, bins equally weighted,
as seed 001 App. C), w being each band's mean coefficient frequency.  With that law Prop. 1

    t_w = 1 / (1 + sqrt(delta / (P_w (1 + P_w - delta))))

reproduces the measured activation times (the t where e_b(t) = delta), and Prop. 2 gives the switch of a
stage at scale s on an (H, W) latent at w = s min(H, W) / 2.

The denoiser follows the k-diffusion protocol ``denoiser(x, sigma) -> x_0 prediction`` in its own frame:
"const" (sigma = t, x = x_t) or "eps" (sigma = t / (1 - t), x = x_t (1 + sigma)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import transforms
from .frames import get_frame
from .spectra import PowerLaw, PowerLawFit, fit_power_law
from .validation import check_finite, check_open_unit, check_size, check_spatial_tensor, fail

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def prop1_time(delta: float, power: torch.Tensor) -> torch.Tensor:
    """Prop. 1 (seed 001 Eq. 9) for a tensor of powers P_w > 0 (float64)."""
    p = power.to(torch.float64)
    return 1.0 / (1.0 + torch.sqrt(delta / (p * (1.0 + p - delta))))


def bayes_error(t: float, power: torch.Tensor) -> torch.Tensor:
    """Lemma 1 (seed 001 Eq. 35): E|v* - eps|^2 = (1-t)^2 P (1+P) / ((1-t)^2 P + t^2)."""
    p = power.to(torch.float64)
    a = (1.0 - t) ** 2 * p
    return a * (1.0 + p) / (a + t * t)


def power_from_error(error: torch.Tensor, t: float) -> torch.Tensor:
    """Inverse of ``bayes_error`` in P for a fixed t in (0, 1): the positive root (error >= 0)."""
    e = error.to(torch.float64).clamp_min(0.0)
    r = (t / (1.0 - t)) ** 2
    b = 1.0 - e
    q = torch.sqrt(b * b + 4.0 * e * r)
    return torch.where(b >= 0, 2.0 * e * r / (q + b).clamp_min(1e-300), (q - b) / 2.0)


@dataclass(frozen=True)
class Calibration:
    """Result of ``calibrate``.

    times: the flow times measured; freqs: mean frequency of each radial band (cycles/image, band 0 = DC);
    counts: coefficients per band; error: e_b(t), shape (len(times), bands); band_power: the pooled
    effective P per band; fit: the power-law fit (``law`` = fit.law); size: the calibrated (H, W);
    frame: the denoiser's frame name.
    """

    times: tuple[float, ...]
    freqs: torch.Tensor
    counts: torch.Tensor
    error: torch.Tensor
    band_power: torch.Tensor
    fit: PowerLawFit
    size: tuple[int, int]
    frame: str

    @property
    def law(self) -> PowerLaw:
        return self.fit.law

    def activation_times(self, delta: float, source: str = "bands") -> torch.Tensor:
        """Activation time t_w of every band for ``delta`` by Prop. 1, from the measured band powers
        (``source="bands"``) or from the fitted law at the band frequencies (``"fit"``).  Band 0 (DC)
        included (the law clamps w at its ``w_min``)."""
        delta = check_open_unit(delta, "delta")
        if source == "bands":
            p = self.band_power
        elif source == "fit":
            p = self.law.power(self.freqs.to(torch.float64))
        else:
            fail("source", "'bands' or 'fit'", source)
        return prop1_time(delta, p)

    def measured_activation(self, delta: float) -> torch.Tensor:
        """Grid activation time per band (bench/activation.py): the smallest measured t such that
        e_b(t') <= delta at every measured t' >= t; NaN where even the largest t exceeds delta."""
        delta = check_open_unit(delta, "delta")
        order = sorted(range(len(self.times)), key=lambda i: self.times[i], reverse=True)
        out = torch.full((self.error.shape[1],), float("nan"), dtype=torch.float64)
        alive = torch.ones(self.error.shape[1], dtype=torch.bool)
        for i in order:
            alive &= self.error[i] <= delta
            out = torch.where(alive, torch.tensor(self.times[i], dtype=torch.float64), out)
        return out

    def switch_time(self, delta: float, size: Sequence[int] | None = None, scale: float = 0.5) -> float:
        """Prop. 2 with the fitted law: t* = t_w at w = scale * min(H, W) / 2 of the target ``size``
        (default: the calibrated latent's size)."""
        delta = check_open_unit(delta, "delta")
        H, W = self.size if size is None else check_size(tuple(size) if isinstance(size, (list, torch.Size))
                                                         else size, "size")
        try:
            s = float(scale)
        except (TypeError, ValueError):
            fail("scale", "a number in (0, 1)", scale)
        if not (math.isfinite(s) and 0.0 < s < 1.0):
            fail("scale", "a number in (0, 1) (the last stage, scale 1, has no switch)", scale)
        w = s * min(H, W) / 2.0
        return float(prop1_time(delta, self.law.power(torch.tensor([w], dtype=torch.float64)))[0])

    def switch_sigma(self, delta: float, size: Sequence[int] | None = None, scale: float = 0.5,
                     frame: str | None = None) -> float:
        """``switch_time`` as a model sigma in ``frame`` (default: the calibrated denoiser's frame)."""
        t = self.switch_time(delta, size, scale)
        return float(get_frame(self.frame if frame is None else frame).sigma_of_t(t))

    def summary(self, delta: float = 0.01, scale: float = 0.5) -> str:
        H, W = self.size
        return (f"calibrated on {H}x{W} at t = {', '.join(f'{t:.3f}' for t in self.times)}: "
                f"A = {self.law.A:.4g}, beta = {self.law.beta:.4f} (rms log error {self.fit.rms_log_error:.3f}); "
                f"delta {delta:g}, scale {scale:g}: switch t* = {self.switch_time(delta, None, scale):.4f}, "
                f"sigma = {self.switch_sigma(delta, None, scale):.4f} ({self.frame})")


def _check_times(times: object) -> tuple[float, ...]:
    msg = "a non-empty sequence of distinct flow times in (0, 1)"
    if isinstance(times, torch.Tensor):
        times = times.flatten().tolist()
    if isinstance(times, (str, bytes)) or not isinstance(times, Sequence) or len(times) == 0:
        fail("times", msg, times)
    try:
        vals = tuple(float(t) for t in times)
    except (TypeError, ValueError):
        fail("times", msg, times)
    if any(not (math.isfinite(t) and 0.0 < t < 1.0) for t in vals) or len(set(vals)) != len(vals):
        fail("times", msg, times)
    return vals


def calibrate(denoiser: Denoiser, x0: torch.Tensor, times: Sequence[float] | torch.Tensor, *,
              frame: str = "const", seed: int = 0) -> Calibration:
    """Measure the per-band passthrough error of ``denoiser`` on the clean latent ``x0`` noised at the
    flow ``times`` and fit the power law that makes Prop. 1 reproduce it (see the module docstring).

    x0: (B,C,H,W) or (B,C,T,H,W) clean latent in the model's latent space (video frames count as samples);
    times: flow times in (0, 1); frame: "const" or "eps"; seed: the noise draws (deterministic per seed).
    Raises ValueError naming the argument on bad input or a denoiser output of the wrong shape / non-finite.
    """
    if not callable(denoiser):
        fail("denoiser", "a callable denoiser(x, sigma) -> x0 prediction", type(denoiser).__name__)
    check_spatial_tensor(x0, "x0")
    check_finite(x0, "x0")
    ts = _check_times(times)
    fr = get_frame(frame)
    if not isinstance(seed, int) or isinstance(seed, bool):
        fail("seed", "an int", seed)
    H, W = int(x0.shape[-2]), int(x0.shape[-1])
    if max(H, W) < 3:
        fail("x0", "a latent of at least 3 pixels on its longer side (two non-DC bands)", tuple(x0.shape))
    dev = x0.device
    w = transforms.radial_frequency(H, W, "dct", dev)
    bins = w.round().to(torch.int64).flatten()
    nb = int(bins.max()) + 1
    ones = torch.ones_like(bins, dtype=torch.float64)
    counts = torch.zeros(nb, dtype=torch.float64, device=dev).index_add_(0, bins, ones)
    wsum = torch.zeros(nb, dtype=torch.float64, device=dev).index_add_(0, bins, w.flatten().to(torch.float64))
    keep = counts > 0
    gen = torch.Generator(device=dev).manual_seed(seed)
    x0d = x0.to(torch.float64)
    errs, powers = [], []
    with torch.no_grad():
        for t in ts:
            eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64, device=dev)
            xt = (1.0 - t) * x0d + t * eps
            sigma_v = float(fr.sigma_of_t(t))
            sigma = torch.full((x0.shape[0],), sigma_v, dtype=x0.dtype, device=dev)
            x_in = (xt / fr.scale_of_sigma(sigma_v)).to(x0.dtype)
            pred = denoiser(x_in, sigma)
            if not isinstance(pred, torch.Tensor) or pred.shape != x0.shape:
                fail("denoiser", f"an x0 prediction of shape {tuple(x0.shape)}",
                     tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__)
            check_finite(pred, "denoiser")
            diff = ((1.0 - t) * x0d - pred.to(torch.float64)) / t
            e = transforms.forward(diff, "dct") ** 2
            e = e.reshape(-1, H * W).mean(dim=0)
            eb = torch.zeros(nb, dtype=torch.float64, device=dev).index_add_(0, bins, e) / counts.clamp_min(1)
            errs.append(eb)
            powers.append(power_from_error(eb, t))
    error = torch.stack(errs)[:, keep].cpu()
    pw = torch.stack(powers)[:, keep].cpu()
    logp = torch.where(pw > 0, pw.clamp_min(1e-300).log(), torch.nan)
    band_power = torch.nanmean(logp, dim=0).exp()  # geometric pooling over times; NaN if no time > 0
    freqs = (wsum[keep] / counts[keep]).cpu()
    fit = fit_power_law(freqs, band_power)
    return Calibration(ts, freqs, counts[keep].cpu(), error, band_power, fit, (H, W), fr.name)

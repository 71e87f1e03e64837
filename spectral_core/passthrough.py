"""Spectral noise passthrough (seed 001 App. B): full-size sampling with the not-yet-active frequencies
held at pure noise, to see which tolerance delta a model and prompt survive.

Flow frame x_t = (1 - t) x_0 + t eps (DESIGN.md); X = T_Phi(x_t), E = T_Phi(eps) with eps the run's own
initial noise.  Prop. 1 (seed 001 Eq. 9) gives each coefficient w its activation time

    t_w = 1 / (1 + sqrt(delta / (P_w (1 + P_w - delta)))),     P_w = A w^-beta (w in cycles per image).

App. B: at every step, each frequency with t > t_w is replaced by t E_w and the step is taken from there.
Here this is a denoiser wrapper (every sampler and scheduler runs unchanged).  For a call at sigma (flow
time t) let t' be the next time of the run's schedule below it, M = [t > t_w] and M' = [t' > t_w]:

* the state the network sees:       X_in = (1 - M) X + M t E              (App. B's replacement);
* the x_0 prediction it returns:    D_out = T^-1((1 - M') T(D))           (0 where the band stays replaced).

D_out = 0 on a band whose state is t E is the prediction of a pure-noise band: the velocity there is
(x_t - D)/t = E, so a deterministic sampler's own state moves to t' E, exactly the replaced state of the
next step (Euler/DDIM exactly, every solver that is exact for a constant x_0 prediction alike).  At the
step that crosses t_w (t > t_w >= t') the network's own prediction on the replaced state is kept, so the
band leaves t E with the model's velocity, as in App. B; with delta -> 0 (t_w -> 1) only the start t = 1,
where the state already is E, is "replaced" and the run is the plain run.  Midpoint evaluations of
multi-stage solvers (Heun, DPM-2, ...) use the next schedule time below their own sigma.  Ancestral / SDE
samplers inject their own noise into the state; the network still sees t E there.  Both corrections are
added as differences (x + T^-1(M (t E - X)), D - T^-1(M' T(D))), so with no band replaced the call is the
plain call, bit for bit.  Frames convert through ``frames`` (x_t = x * scale(sigma)); transforms from
``transforms``.  No host sync: t' and the masks are tensor operations.

Closed form (exact Gaussian data x_0^(w) ~ N(0, P_w) and the Bayes denoiser).  The probability-flow ODE
is linear per coefficient, x_t = sqrt(V_t) x_1 / sqrt(V_1) with V_t = (1 - t)^2 P + t^2.  A band released
from passthrough at time t_r (state t_r E; on a grid, the last schedule time above t_w) against the plain
run from the start t_s (state t_s E) ends at

    x_0(passthrough) / x_0(plain) = rho(t_r) / rho(t_s),      rho(t) = t / sqrt((1 - t)^2 P + t^2)
                                                               = 1 / sqrt(1 + SNR(t)).

At t_r = t_w, SNR = delta / (1 + P - delta) (seed 001 Eq. 39), so rho^2 = (1 + P - delta) / (1 + P) and the
relative change of every released coefficient is bounded by Prop. 1's tolerance (on a grid t_r > t_w,
and rho decreases as t falls, so the bound holds there too):

    1 - rho(t_r) <= 1 - rho(t_w) <= 1 - rho(t_w)^2 = delta / (1 + P_w) < delta.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from . import transforms
from .calibration import prop1_time
from .frames import get_frame
from .spectra import PowerLaw
from .validation import check_open_unit, check_size, check_spatial_tensor, fail

Denoiser = Callable[..., torch.Tensor]


def activation_times(spectrum: PowerLaw | torch.Tensor, size: Sequence[int], delta: float,
                     transform: str = "dct") -> torch.Tensor:
    """Prop. 1 per coefficient of an (H, W) grid (float64, CPU): t_w from P_w = A w^-beta at the DESIGN.md
    radial frequency of each coefficient, or from an explicit (H, W) tensor of coefficient powers."""
    delta = check_open_unit(delta, "delta")
    H, W = check_size(tuple(size) if isinstance(size, (list, torch.Size)) else size, "size")
    if isinstance(spectrum, PowerLaw):
        power = spectrum.coefficient_power(H, W, transform)
    elif isinstance(spectrum, torch.Tensor) and tuple(spectrum.shape) == (H, W) and bool((spectrum > 0).all()):
        power = spectrum.detach().to("cpu", torch.float64)
    else:
        fail("spectrum", f"a PowerLaw or a positive ({H}, {W}) tensor of coefficient powers",
             tuple(spectrum.shape) if isinstance(spectrum, torch.Tensor) else type(spectrum).__name__)
    return prop1_time(delta, power)


class PassthroughDenoiser:
    """k-diffusion denoiser ``D(x, sigma, **kw)`` with App. B's passthrough (see the module docstring).

    denoiser: the model (x_0 prediction in its own frame); noise: the run's initial unit noise, shaped like
    the latent; activation: (H, W) activation times t_w (``activation_times``); sigmas: the run's schedule
    (model sigmas, decreasing; gives each call its next time t'); frame: "const" or "eps"; transform: a name
    in ``transforms.TRANSFORMS``.
    """

    def __init__(self, denoiser: Denoiser, noise: torch.Tensor, activation: torch.Tensor, sigmas: torch.Tensor, *,
                 frame: str = "const", transform: str = "dct") -> None:
        if not callable(denoiser):
            fail("denoiser", "a callable denoiser(x, sigma) -> x0 prediction", type(denoiser).__name__)
        check_spatial_tensor(noise, "noise")
        transforms.get_transform(transform)
        if not isinstance(activation, torch.Tensor) or tuple(activation.shape) != tuple(noise.shape[-2:]):
            fail("activation", f"an {tuple(noise.shape[-2:])} tensor of activation times (the latent's H, W)",
                 tuple(activation.shape) if isinstance(activation, torch.Tensor) else type(activation).__name__)
        if not isinstance(sigmas, torch.Tensor) or sigmas.ndim != 1 or len(sigmas) < 2:
            fail("sigmas", "the run's schedule, a 1-D tensor of at least 2 sigmas",
                 tuple(sigmas.shape) if isinstance(sigmas, torch.Tensor) else type(sigmas).__name__)
        self.denoiser = denoiser
        self.noise = noise
        self.activation = activation
        self.sigmas = sigmas
        self.frame = get_frame(frame)
        self.transform = transform
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _prepared(self, x: torch.Tensor, dt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(T(eps), t_w, schedule) on x's device in the compute dtype, built once per device."""
        key = (str(x.device), dt)
        if key not in self._cache:
            eps = self.noise.to(device=x.device, dtype=dt)
            self._cache[key] = (transforms.forward(eps, self.transform), self.activation.to(device=x.device, dtype=dt),
                                self.sigmas.to(device=x.device, dtype=dt))
        return self._cache[key]

    def next_time(self, sig: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """t' per sample: the flow time of the largest schedule sigma strictly below ``sig`` (0 if none)."""
        below = torch.where(grid[None, :] < sig[:, None], grid[None, :], torch.zeros_like(grid[None, :]))
        return self.frame.t_of_sigma(below.amax(dim=1).clamp_min(0.0))

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if tuple(x.shape) != tuple(self.noise.shape):
            fail("x", f"a latent shaped like the run's noise {tuple(self.noise.shape)}", tuple(x.shape))
        dt = transforms.compute_dtype(x.dtype)
        coef_eps, act, grid = self._prepared(x, dt)
        sig = torch.as_tensor(sigma, device=x.device).to(dt).reshape(-1)
        bshape = (-1,) + (1,) * (x.ndim - 1)
        t = self.frame.t_of_sigma(sig).reshape(bshape)
        scale = self.frame.scale_of_sigma(sig).reshape(bshape)
        m_in = (t > act).to(dt)
        m_out = (self.next_time(sig, grid).reshape(bshape) > act).to(dt)
        xc = x.to(dt)
        coef_x = transforms.forward(xc * scale, self.transform)
        x_in = xc + transforms.inverse(m_in * (t * coef_eps - coef_x), self.transform) / scale
        d = self.denoiser(x_in.to(x.dtype), sigma, **kwargs)
        dc = d.to(dt)
        return (dc - transforms.inverse(m_out * transforms.forward(dc, self.transform), self.transform)).to(d.dtype)


def passthrough_gain(t_release: float | torch.Tensor, power: torch.Tensor, t_start: float = 1.0) -> torch.Tensor:
    """Closed form for exact Gaussian data: x_0(passthrough) / x_0(plain) = rho(t_r) / rho(t_s) per
    coefficient, rho(t) = t / sqrt((1 - t)^2 P + t^2) (module docstring)."""
    p = power.to(torch.float64)
    tr = torch.as_tensor(t_release, dtype=torch.float64)

    def rho(t: torch.Tensor) -> torch.Tensor:
        return t / torch.sqrt((1.0 - t) ** 2 * p + t * t)

    return rho(tr) / rho(torch.as_tensor(t_start, dtype=torch.float64))


def release_times(activation: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Per coefficient the flow time t_r where the passthrough lets it go on a schedule of flow ``times``
    (decreasing): the last schedule time above t_w, or the start t_0 if t_w >= t_0 (never replaced)."""
    tt = times.detach().to("cpu", torch.float64).reshape(-1)
    act = activation.detach().to("cpu", torch.float64)
    above = torch.where(tt > act[..., None], tt, torch.full_like(tt, math.inf))
    return above.amin(dim=-1).clamp_max(float(tt[0]))


def gaussian_change(power: torch.Tensor, activation: torch.Tensor, times: torch.Tensor) -> float:
    """Closed-form expected relative change ||x_pt - x_plain|| / ||x_plain|| of a passthrough run for exact
    Gaussian data with coefficient powers ``power`` (continuous-time ODE after the release):
    sqrt(sum_w P_w (1 - g_w)^2 / sum_w P_w), g_w = ``passthrough_gain(t_r, P_w, t_0)``."""
    p = power.detach().to("cpu", torch.float64)
    g = passthrough_gain(release_times(activation, times), p, float(times.reshape(-1)[0]))
    return float(torch.sqrt((p * (1.0 - g) ** 2).sum() / p.sum()))


def relative_change(x: torch.Tensor, reference: torch.Tensor) -> float:
    """||x - ref|| / ||ref|| over the whole tensor (the sweep's change against the plain run)."""
    if not isinstance(x, torch.Tensor) or not isinstance(reference, torch.Tensor) or x.shape != reference.shape:
        fail("x", "a tensor shaped like the reference",
             (tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__))
    xd, rd = x.detach().to(torch.float64), reference.detach().to(torch.float64)
    return float(torch.linalg.vector_norm(xd - rd) / torch.linalg.vector_norm(rd).clamp_min(1e-300))


def tolerated_delta(deltas: Sequence[float], changes: Sequence[float], tolerance: float) -> float | None:
    """The largest swept delta whose change, and that of every smaller swept delta, is <= ``tolerance``;
    None if even the smallest exceeds it.  (Few-step calibration: the delta to give DeltaSchedule.)"""
    if len(deltas) != len(changes) or not deltas:
        fail("changes", f"one change per delta ({len(deltas)} deltas)", len(changes))
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        fail("tolerance", "a finite number >= 0", tolerance)
    best = None
    for d, c in sorted(zip((float(v) for v in deltas), (float(v) for v in changes))):
        if not (math.isfinite(c) and c <= tolerance):
            break
        best = d
    return best

"""Stage-specific training pairs of the spectral fine-tuning (seed 001 Sec. 4.3, Eqs. 11-14).

Pure math, no training loop: given clean full-size samples x0 (B, C, H, W), unit noise, the stage
schedule (a ``StagePlan`` or the stage sizes and switch times) and a stage index, build the stage's
input exactly as inference builds it (``expansion.contract`` / ``expansion.expand`` and the alignment
of Eq. 6, the same calls ``progressive.sample_progressive`` makes) and the velocity target.

Notation (Sec. 4.3).  Stages i = 1..S (index ``i - 1`` here) run on grids s_i (H, W); t_i is the
stage's own switch time (t_S = 0), t~_{i-1} = aligned_time(t_{i-1}, r) the aligned time after the
expansion into stage i (Eq. 6, r = size ratio; t~_0 = 1: the first stage starts from pure noise).
Stage i integrates over its own times t in (t_i, t~_{i-1}].

* clean sample at scale s_i: x0^{s_i} = contract(x0, s_i, t=0) = C x0 / g_i (the orthonormal
  identification of spectra across resolutions, App. A.2: coefficients scale by the size ratio);
* noise at scale s_i: eps^{s_i} = the s_i low band of one unit noise (``transforms.down``), as the
  inference refill takes the band of the full-size seed noise; a unit Gaussian on the s_i grid;
* endpoint (Eq. 11):   x_{t_i}^{s_i} = (1 - t_i) x0^{s_i} + t_i eps^{s_i};
* stage input: the previous stage's flow state x_{t_{i-1}}^{s_{i-1}} = (1 - t_{i-1}) x0^{s_{i-1}}
  + t_{i-1} eps^{s_{i-1}} (Eq. 11 for stage i-1, the same noise realisation read on the smaller grid)
  grown by spectral noise expansion + timestep alignment (Eqs. 5-6) with the new band filled from
  eps^{s_i}:  x~_{t~_{i-1}}^{s_i} = expand(x_{t_{i-1}}^{s_{i-1}}, s_i, t_{i-1}, noise=eps^{s_i});
  for the first stage it is eps^{s_1} at t~_0 = 1;
* target velocity (Eq. 12):  v^{s_i} = (x~_{t~_{i-1}}^{s_i} - x_{t_i}^{s_i}) / (t~_{i-1} - t_i);
* training input (Eq. 13):   x_t^{s_i} = x_{t_i}^{s_i} + (t - t_i) v^{s_i};
* loss (Eq. 14):             L = E || v_theta(x_t^{s_i}, t) - v^{s_i} ||^2,
  with t ~ U(0, 1) assigned to the stage i whose (t_i, t_{i-1}] contains it (``stage_of_time``).

Closed form (refill "paper", shared noise; ``tests/unit/test_stage_targets.py``).  With P the projector
on the s_{i-1} low band of the s_i grid, the expansion gives x~ = (1 - t~) P x0^{s_i} + t~ eps^{s_i}
(A.2: a valid flow state of the band-limited sample), hence

    v^{s_i} = eps^{s_i} - P x0^{s_i} - (1 - t_i) / (t~_{i-1} - t_i) (I - P) x0^{s_i}:

on the band the previous stage already carried, the plain flow velocity eps - x0; on the new band
the high frequencies of x0 are grown from zero at t~_{i-1} to (1 - t_i) x0 at t_i.  The first stage
(t~_0 = 1) is plain flow matching on the contracted data; a one-stage schedule is plain flow matching.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import transforms
from .expansion import REFILLS, aligned_time, contract, expand, growth
from .frames import append_dims
from .plan import StagePlan, refill_spectrum
from .spectra import PowerLaw
from .validation import check_size, fail


@dataclass(frozen=True)
class StageSchedule:
    """The stages of a progressive run as plain data: ``sizes`` (one (h, w) per stage, the last the
    full size), ``switch_times`` (t_1 > ... > t_{S-1}, each in its own stage's frame), the transform
    and the refill rule of the expansion (``spectrum`` on the full grid for refill "matched")."""

    sizes: tuple[tuple[int, int], ...]
    switch_times: tuple[float, ...]
    transform: str = "dct"
    refill: str = "paper"
    spectrum: PowerLaw | None = None

    def __post_init__(self) -> None:
        sizes = tuple(check_size(tuple(int(v) for v in s), "sizes") for s in self.sizes)
        if not sizes:
            fail("sizes", "at least one stage size", self.sizes)
        object.__setattr__(self, "sizes", sizes)
        sw = tuple(float(v) for v in self.switch_times)
        object.__setattr__(self, "switch_times", sw)
        if len(sw) != len(sizes) - 1:
            fail("switch_times", f"{len(sizes) - 1} switch times (one per stage but the last)", sw)
        if any(not 0.0 < v < 1.0 for v in sw) or any(b >= a for a, b in zip(sw, sw[1:])):
            fail("switch_times", "decreasing flow times in (0, 1)", sw)
        tr = transforms.get_transform(self.transform)
        for a, b in zip(sizes, sizes[1:]):
            if a[0] > b[0] or a[1] > b[1] or a == b:
                fail("sizes", "strictly growing stage sizes", sizes)
            tr.check_sizes(a, b, "sizes")
        if self.refill not in REFILLS:
            fail("refill", f"one of {REFILLS}", self.refill)
        if self.refill == "matched" and not isinstance(self.spectrum, PowerLaw):
            fail("spectrum", "a PowerLaw when refill='matched'", self.spectrum)

    @classmethod
    def from_plan(cls, plan: Any) -> "StageSchedule":
        """The stages of a ``schedules.StagePlan`` (its sizes, own-frame switch times t_i*, transform,
        refill and spectrum)."""
        if not isinstance(plan, StagePlan):
            fail("plan", "a StagePlan from schedules.plan_stages", type(plan).__name__)
        return cls(tuple(tuple(s.size) for s in plan.stages),
                   tuple(float(s.switch_time) for s in plan.stages[:-1]),
                   plan.transform, plan.refill, plan.spectrum)

    @property
    def num_stages(self) -> int:
        return len(self.sizes)

    @property
    def full_size(self) -> tuple[int, int]:
        return self.sizes[-1]

    def _check_stage(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.num_stages:
            fail("stage", f"a stage index in [0, {self.num_stages - 1}]", i)
        return i

    def growth(self, i: int) -> float:
        """g_i = sqrt(H W / (h_i w_i)): stage i's size ratio to the full grid."""
        return growth(self.sizes[self._check_stage(i)], self.full_size)

    def end_time(self, i: int) -> float:
        """t_i: the own-frame time at which stage i ends (0 for the last stage)."""
        i = self._check_stage(i)
        return 0.0 if i == self.num_stages - 1 else self.switch_times[i]

    def start_time(self, i: int) -> float:
        """t~_{i-1}: the aligned time at which stage i starts (Eq. 6; 1 for the first stage)."""
        i = self._check_stage(i)
        if i == 0:
            return 1.0
        return float(aligned_time(self.switch_times[i - 1], growth(self.sizes[i - 1], self.sizes[i])))

    def stage_of_time(self, t: torch.Tensor | float) -> torch.Tensor:
        """Sec. 4.3: the stage i with t in (t_i, t_{i-1}] (t_0 = 1, t_S = 0), as int64 indices."""
        tt = torch.as_tensor(t, dtype=torch.float64)
        idx = torch.zeros(tt.shape, dtype=torch.int64)
        for sw in self.switch_times:
            idx += (tt <= sw).to(torch.int64)
        return idx

    def stage_spectrum(self, i: int) -> PowerLaw | None:
        """The power law on stage i's grid (P / g_i^2), as ``sample_progressive`` refills with it."""
        return refill_spectrum(self.refill, self.spectrum, self.growth(i))


def as_schedule(plan: Any) -> StageSchedule:
    """A ``StageSchedule`` from a ``StagePlan`` (or the schedule itself)."""
    return plan if isinstance(plan, StageSchedule) else StageSchedule.from_plan(plan)


def _check_x0(x0: torch.Tensor, sched: StageSchedule) -> None:
    if not isinstance(x0, torch.Tensor) or x0.ndim < 3 or not x0.is_floating_point():
        fail("x0", "a floating tensor (..., H, W)", type(x0).__name__ if not isinstance(x0, torch.Tensor)
             else tuple(x0.shape))
    if tuple(x0.shape[-2:]) != sched.full_size:
        fail("x0", f"clean samples of the full size {sched.full_size}", tuple(x0.shape[-2:]))


def clean_at_stage(x0: torch.Tensor, plan: Any, i: int) -> torch.Tensor:
    """x0^{s_i} = contract(x0, s_i, t=0) = C x0 / g_i: the clean full-size sample on stage i's grid
    (App. A.2: x0^{s_{i+1}} = (s_{i+1} / s_i) x0^{s_i} on the shared band)."""
    sched = as_schedule(plan)
    _check_x0(x0, sched)
    size = sched.sizes[sched._check_stage(i)]
    if size == sched.full_size:
        return x0
    return contract(x0, size, 0.0, transform=sched.transform)[0]


def noise_at_stage(noise: torch.Tensor, plan: Any, i: int) -> torch.Tensor:
    """eps^{s_i}: ``noise`` on stage i's grid.  Full-size (or any larger) unit noise gives its s_i low
    band (``transforms.down``, as the inference refill does); noise already of stage i's size is
    returned as is."""
    sched = as_schedule(plan)
    size = sched.sizes[sched._check_stage(i)]
    if not isinstance(noise, torch.Tensor) or noise.ndim < 3:
        fail("noise", "a tensor (..., H, W)", type(noise).__name__)
    have = tuple(noise.shape[-2:])
    if have == size:
        return noise
    if have[0] < size[0] or have[1] < size[1]:
        fail("noise", f"unit noise of stage {i}'s size {size} or larger", have)
    return transforms.down(noise, size, sched.transform).to(noise.dtype)


def _check_noise(x0: torch.Tensor, noise: torch.Tensor) -> None:
    if not isinstance(noise, torch.Tensor) or tuple(noise.shape[:-2]) != tuple(x0.shape[:-2]):
        fail("noise", f"a tensor with the leading dims of x0 {tuple(x0.shape[:-2])}",
             tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__)


def stage_endpoint(x0: torch.Tensor, noise: torch.Tensor, plan: Any, i: int) -> tuple[torch.Tensor, float]:
    """Eq. 11: x_{t_i}^{s_i} = (1 - t_i) x0^{s_i} + t_i eps^{s_i}; returns (x, t_i)."""
    sched = as_schedule(plan)
    _check_noise(x0, noise)
    t_end = sched.end_time(i)
    x_lo = clean_at_stage(x0, sched, i)
    eps = noise_at_stage(noise, sched, i).to(x_lo.dtype)
    return (1.0 - t_end) * x_lo + t_end * eps, t_end


def stage_input(x0: torch.Tensor, noise: torch.Tensor, plan: Any, i: int) -> tuple[torch.Tensor, float]:
    """The state at the beginning of stage i, x~_{t~_{i-1}}^{s_i}, and its time t~_{i-1} (Sec. 4.3).

    Stage 0: the pure noise eps^{s_1} at t = 1.  Stage i >= 1: the previous stage's endpoint
    (Eq. 11 with the same noise realisation) grown by ``expansion.expand`` (Eqs. 5-6) at t_{i-1},
    the new band filled from eps^{s_i} (t_{i-1} T(eps^{s_i}) before the alignment rescale, i.e.
    t~_{i-1} T(eps^{s_i}) after it; the spectrum-matched fill for refill "matched")."""
    sched = as_schedule(plan)
    _check_noise(x0, noise)
    i = sched._check_stage(i)
    eps = noise_at_stage(noise, sched, i).to(x0.dtype)
    if i == 0:
        return eps, 1.0
    prev, t_prev = stage_endpoint(x0, eps, sched, i - 1)
    out, t_new = expand(prev, sched.sizes[i], t_prev, transform=sched.transform, noise=eps,
                        refill=sched.refill, spectrum=sched.stage_spectrum(i), validate=False)
    return out, float(t_new)


def stage_velocity(x0: torch.Tensor, noise: torch.Tensor, plan: Any, i: int) -> torch.Tensor:
    """Eq. 12: v^{s_i} = (x~_{t~_{i-1}}^{s_i} - x_{t_i}^{s_i}) / (t~_{i-1} - t_i)."""
    return stage_pair(x0, noise, plan, i, None).v


@dataclass(frozen=True)
class StagePair:
    """One stage's training pair: the model input ``x_t`` at times ``t`` (B,) and the target ``v``
    (Eqs. 12-13), with the path's ends ``x_start`` at ``t_start`` = t~_{i-1} and ``x_end`` at
    ``t_end`` = t_i, all on the stage's grid ``size``."""

    stage: int
    size: tuple[int, int]
    t: torch.Tensor | None
    x_t: torch.Tensor | None
    v: torch.Tensor
    x_start: torch.Tensor
    t_start: float
    x_end: torch.Tensor
    t_end: float


def stage_pair(x0: torch.Tensor, noise: torch.Tensor, plan: Any, i: int,
               t: torch.Tensor | float | None) -> StagePair:
    """Stage i's training pair at times ``t`` (a float or (B,) tensor in [t_i, t~_{i-1}]; None: only
    the target).  Eq. 12 for ``v``, Eq. 13 for x_t = x_{t_i} + (t - t_i) v."""
    sched = as_schedule(plan)
    i = sched._check_stage(i)
    x_start, t_start = stage_input(x0, noise, sched, i)
    x_end, t_end = stage_endpoint(x0, noise, sched, i)
    v = (x_start - x_end) / (t_start - t_end)
    if t is None:
        return StagePair(i, sched.sizes[i], None, None, v, x_start, t_start, x_end, t_end)
    tt = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
    if tt.ndim == 0:
        tt = tt.expand(x0.shape[0])
    if tt.ndim != 1 or tt.shape[0] != x0.shape[0]:
        fail("t", f"a float or one time per sample ({x0.shape[0]})", tuple(tt.shape))
    lo, hi = t_end - 1e-6, t_start + 1e-6
    if bool(((tt < lo) | (tt > hi)).any()):
        fail("t", f"times in stage {i}'s interval [{t_end:.4f}, {t_start:.4f}]", (float(tt.min()), float(tt.max())))
    x_t = x_end + append_dims(tt - t_end, x_end.ndim) * v
    return StagePair(i, sched.sizes[i], tt, x_t, v, x_start, t_start, x_end, t_end)


def flow_velocity(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The plain flow-matching velocity eps - x0 (Sec. 3.1), for comparison."""
    return noise - x0


__all__ = ["StagePair", "StageSchedule", "as_schedule", "clean_at_stage",
           "flow_velocity", "noise_at_stage", "stage_endpoint", "stage_input", "stage_pair", "stage_velocity"]

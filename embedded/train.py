"""Train the embedded default model (flow matching) within a wall-time budget.

    python -m spectral_progressive.embedded.train --out <dir> --minutes M --seed 0 [--threads 1]
        [--data dead_leaves|photos] [--res-probs 0.5,0.3,0.2] [--tail-fraction 0.2 | F64,F32,F16]
        [--tail-window LO,HI]
        [--time-shift resolution|none] [--spectral-forcing [--forcing-law A,BETA]]
        [--loss-weighting none|spectral [--weight-alpha -1] [--weight-transform dct|dwt]]
        [--schedule-steps N]

Objective: x_t = (1 - t) x0 + t eps, the network predicts v = eps - x0, loss = MSE(v_pred, v).

Data (``--data``). ``dead_leaves`` (default): the exact, unlimited dead-leaves generator of
``dead_leaves.py`` (64 x 64 RGB, colours of scikit-image photos, P(w) ~ w^-2), a fresh batch every
step; held-out evaluation uses disjoint generator seeds. ``photos``: random crops of the
scikit-image photographs (``data.py``; the held-out photo is never trained on).

Every stage resolution from the start (``--res-probs p64,p32,p16``). Each batch is drawn at one
resolution: the 64 x 64 images themselves, or their DCT contraction to 32 x 32 (g = 2) or 16 x 16
(g = 4) by the pack's own ``spectral_core.expansion.contract`` at t = 0,

    x0_lo = kappa' C x0,   kappa' = 1 / (g (1 - 0) + 0) = 1 / g,

i.e. the orthonormal-DCT low band with pixel values preserved. This is exactly what a progressive
run's low stage holds of the data: contraction maps the flow path of x0 at time t to the flow path
of x0_lo at time t' = t / (g (1 - t) + t) (DESIGN.md), so a low stage sees x_t' = (1 - t') x0_lo +
t' eps with fresh unit noise, which is the training pair at that resolution.

Time distribution (documented choice). A draw is, with probability ``--tail-fraction`` (default
0.2), uniform in [0.9, 1] (the pure-noise end, where every sampling run starts and where a low
stage spends all of its steps), and otherwise a bulk draw u: sigmoid(N(0, 1)) (logit-normal) with
probability 0.9, uniform in [0, 1] with probability 0.1. With ``--time-shift resolution`` the bulk
draw is then shifted by the resolution's contraction factor g (1 at 64 x 64, 2 at 32 x 32, 4 at
16 x 16) with the paper's alignment map (seed 001 Eq. 6, the SD3/FLUX shift with s = g):

    t = g u / (1 + (g - 1) u),   i.e.  logit(t) = logit(u) + log g,

so the logit-normal part becomes N(log g, 1) in logit space: the lower the resolution, the more
high-noise times it sees. Reason: a low stage only ever runs at high noise (from t = 1 down to its
switch time t_i*, seed 001 Sec. 4.2), so its capacity belongs there; the 64 x 64 model keeps the
plain logit-normal bulk. The tail draws are not shifted, so the fraction of draws that come from
the tail is exactly ``--tail-fraction`` at every resolution, or, given three numbers F64,F32,F16,
exactly that resolution's own fraction (e.g. ``0,0.25,0.25``: oversample the pure-noise end only
where low stages run, and leave the 64 x 64 model's time distribution, hence its low-noise detail,
as in plain training), and

    P(t > 0.9) = f + (1 - f) [0.9 (1 - Phi(logit(c))) + 0.1 (1 - c)],   c = 0.9 / (0.1 g + 0.9),

(f = tail fraction, c the bulk value that the shift maps to 0.9; ``prob_time_above``).

``--tail-window LO,HI`` moves the tail to an interval of full-size (64 x 64) time: a batch at
contraction factor g draws its tail uniformly in [t'(LO), t'(HI)], t' = t / (g (1 - t) + t) (the
stage time at which a progressive run's low stage holds full-size time t, ``tail_window_at``). Why:
the oracle benchmark puts the training-free gap in the 32 x 32 model's calls at full-size t 0.9-0.95
(its own 0.82-0.905), which the default tail, [0.9, 1] of the 32 x 32 model's own time, mostly misses;
the 64 x 64 model's plain logit-normal puts under 2% of its draws there.

Adam, linear warm-up then a cosine decay over the time budget, an exponential moving average (EMA)
of the weights. The run stops before the budget is spent and writes to ``--out``:

Options (off by default; module ``spectral_core.forcing`` / ``spectral_core.loss_weighting``):

- ``--spectral-forcing`` (seed 004): the network sees F_t(x_t), the DCT low-pass that keeps the
  coefficients above the data-to-noise contour (1 - t)^2 A w^-beta >= t^2, in training and at
  inference; the removed band's velocity is its noise, (x_t - F_t x_t) / t, through the skip term
  (``spectral_core.forcing`` Eq. 3: the denoiser is a function of F_t x_t alone). The law is ``--forcing-law A,BETA`` or the data spectrum of embedded/spectrum.json,
  measured on 64 x 64 (the reference grid: a 32 x 32 or 16 x 16 batch holds the contraction and
  gets A hw / 4096, so its contour at its own time is the full grid's at the aligned time). It is
  recorded in the log's config and in the weights' metadata, so ``load_default_model`` applies it.
- ``--loss-weighting spectral`` (seed 003 Eq. 11): the velocity error is weighted per dyadic
  DCT/Haar band by the batch's clean spectral magnitude |X|_band^alpha (``--weight-alpha``, < 0),
  weights normalised to mean 1 over the coefficients (a white error costs the plain MSE, so the
  learning rate means the same); it replaces the plain MSE.
- ``--schedule-steps N``: a budget in optimizer steps instead of wall time: the cosine decay runs
  over N steps and training stops after N (``--minutes`` stays a cap). Runs that must compare at
  the same budget on a shared machine use it: their steps and learning rates are then identical.

- weights.safetensors  the EMA weights (what ``model.load_default_model`` loads)
- train_log.json       config (with the exact command line), seed, versions, steps, wall time,
                       downsampled loss curve, final losses per resolution, held-out evaluation
- loss_curve.png       the loss curve, drawn with PIL
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..spectral_core.forcing import SpectralForcing
from ..spectral_core.loss_weighting import WEIGHTED_TRANSFORMS, SpectralLossWeighting
from ..spectral_core.spectra import PowerLaw
from . import data, dead_leaves
from .model import DEFAULT_CONFIG, FORCING_METADATA_KEY, IMAGE_SIZE, FlowUNet, count_parameters

LOGIT_NORMAL_MEAN = 0.0
LOGIT_NORMAL_STD = 1.0
UNIFORM_FRACTION = 0.1
TAIL_FRACTION = 0.2  # default share of draws uniform in [TAIL_START, 1]
TAIL_START = 0.9
RES_FACTORS: tuple[int, ...] = (1, 2, 4)  # 64 x 64 and its DCT contractions to 32 x 32, 16 x 16
DEFAULT_RES_PROBS: tuple[float, float, float] = (0.5, 0.3, 0.2)
DATA_SOURCES = ("dead_leaves", "photos")
TIME_SHIFTS = ("resolution", "none")
CURVE_POINTS = 200
GRAD_CLIP = 1.0  # max global gradient norm
SAVE_RESERVE_S = 10.0  # seconds kept free at the end for the final evaluation and writing
LOSS_WEIGHTINGS = ("none", "spectral")
SPECTRUM_JSON = Path(__file__).resolve().parent / "spectrum.json"  # the data spectrum on 64 x 64


def data_spectrum() -> PowerLaw:
    """The embedded data's power law (embedded/spectrum.json, measured on 64 x 64 crops)."""
    rec = json.loads(SPECTRUM_JSON.read_text())
    return PowerLaw(float(rec["A"]), float(rec["beta"]))


def make_forcing(law: PowerLaw | None = None) -> SpectralForcing:
    """The trainer's forcing: DCT, ``law`` (default ``data_spectrum()``) on the 64 x 64 reference grid."""
    return SpectralForcing(law if law is not None else data_spectrum(), "dct", (IMAGE_SIZE, IMAGE_SIZE))


def _positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return v


def _nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def _law(text: str) -> PowerLaw:
    """argparse type: 'A,BETA' with A > 0 and BETA >= 0."""
    try:
        a, b = (float(v) for v in text.split(","))
        return PowerLaw(a, b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'A,BETA' with A > 0 and BETA >= 0, got {text!r}") from None


def add_weighting_options(p: argparse.ArgumentParser, what: str) -> None:
    """--loss-weighting / --weight-alpha / --weight-transform (seed 003), shared with the fine-tuning command."""
    p.add_argument("--loss-weighting", choices=LOSS_WEIGHTINGS, default="none",
                   help=f"spectral: weight {what} per DCT/Haar band by |X|^alpha of the clean data "
                        "(seed 003 Eq. 11), weights mean 1")
    p.add_argument("--weight-alpha", type=_alpha, default=None,
                   help="alpha < 0 of --loss-weighting spectral (default -1, seed 003's value)")
    p.add_argument("--weight-transform", choices=WEIGHTED_TRANSFORMS, default=None,
                   help="bands of --loss-weighting spectral: dyadic DCT blocks or Haar subbands (default dct)")


def _alpha(text: str) -> float:
    """argparse type: a finite number < 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v >= 0:
        raise argparse.ArgumentTypeError(f"must be a negative number (seed 003: alpha < 0), got {text}")
    return v


def _tail_fractions(text: str) -> tuple[float, float, float]:
    """argparse type: one fraction in [0, 1) for every resolution, or three (64x64, 32x32, 16x16);
    the range and the count are ``tail_by_factor``'s checks."""
    try:
        v = [float(x) for x in text.split(",")]
        tails = tail_by_factor(v[0] if len(v) == 1 else tuple(v))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one or three fractions in [0, 1) (64x64,32x32,16x16), got {text!r}") from None
    return tuple(tails.values())


def tail_by_factor(tail: float | tuple[float, ...]) -> dict[int, float]:
    """The tail fraction of each contraction factor in RES_FACTORS: ``tail`` is one fraction for every
    resolution or one per resolution (64x64, 32x32, 16x16); each must lie in [0, 1)."""
    fractions = (float(tail),) * len(RES_FACTORS) if isinstance(tail, (int, float)) else tuple(map(float, tail))
    if len(fractions) != len(RES_FACTORS) or not all(0.0 <= f < 1.0 for f in fractions):
        raise ValueError(f"tail must be a fraction in [0, 1) or {len(RES_FACTORS)} of them "
                         f"(64x64, 32x32, 16x16), got {tail!r}")
    return dict(zip(RES_FACTORS, fractions))


def _tail_window(text: str) -> tuple[float, float]:
    """argparse type: 'LO,HI' with 0 <= LO < HI <= 1 (``check_tail_window``)."""
    try:
        return check_tail_window(tuple(float(v) for v in text.split(",")))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected 'LO,HI' with 0 <= LO < HI <= 1, got {text!r} ({e})") from None


def _res_probs(text: str) -> tuple[float, float, float]:
    """argparse type: three comma-separated non-negative numbers with a positive sum, normalised."""
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(v) != 3 or not all(math.isfinite(x) and x >= 0 for x in v) or sum(v) <= 0:
        raise argparse.ArgumentTypeError(f"expected three non-negative numbers with a positive sum, got {text!r}")
    total = sum(v)
    return (v[0] / total, v[1] / total, v[2] / total)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the trainer."""
    p = argparse.ArgumentParser(prog="python -m spectral_progressive.embedded.train",
                                description="Train the embedded flow-matching default model (dead leaves or "
                                            "skimage crops).")
    p.add_argument("--out", required=True, help="output directory (created if missing; must be writable)")
    p.add_argument("--minutes", type=_positive_float, required=True, help="wall-time budget in minutes (> 0)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of weights, data and noise (>= 0)")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="crops per step")
    p.add_argument("--lr", type=_positive_float, default=5e-4, help="peak Adam learning rate")
    p.add_argument("--warmup", type=_nonnegative_int, default=200, help="linear warm-up steps")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay in [0, 1)")
    p.add_argument("--init", default=None, help="start from these weights (safetensors) instead of a random init")
    p.add_argument("--multires", type=float, default=0.0,
                   help="fraction of batches trained at 1/2 or 1/4 size on the spectrally contracted crops "
                        "(seed 001 Sec. 4.3: the model learns to be the low band of itself), in [0, 1]; "
                        "legacy spelling of --res-probs 1-m,0.7m,0.3m (only used when --res-probs is not given)")
    p.add_argument("--max-steps", type=_positive_int, default=None,
                   help="stop after this many steps even if time is left (tests, sanity runs)")
    p.add_argument("--eval-images", type=_nonnegative_int, default=32,
                   help="held-out images for the final velocity-MSE evaluation (0 skips it)")
    p.add_argument("--data", choices=DATA_SOURCES, default="dead_leaves",
                   help="training data: the exact dead-leaves generator or skimage photo crops")
    p.add_argument("--res-probs", type=_res_probs, default=None,
                   help="probabilities of a batch at 64x64, 32x32, 16x16 (DCT-contracted), e.g. 0.5,0.3,0.2 "
                        f"(default {','.join(map(str, DEFAULT_RES_PROBS))}, or from --multires)")
    p.add_argument("--tail-fraction", type=_tail_fractions, default=(TAIL_FRACTION,) * len(RES_FACTORS),
                   help=f"fraction of flow times drawn uniformly in [{TAIL_START}, 1], in [0, 1): one for every "
                        "resolution or three for 64x64,32x32,16x16 (e.g. 0,0.25,0.25: only where low stages run)")
    p.add_argument("--tail-window", type=_tail_window, default=None, metavar="LO,HI",
                   help="draw the tail uniformly in [LO, HI] of full-size (64x64) time instead of "
                        f"[{TAIL_START}, 1] of each resolution's own time; a 32x32 or 16x16 batch gets the "
                        "aligned interval t / (g (1 - t) + t), where a progressive run's low stage meets "
                        "those full-size times (e.g. 0.86,0.96)")
    p.add_argument("--time-shift", choices=TIME_SHIFTS, default="resolution",
                   help="shift the bulk time draw by the contraction factor g: t = g u / (1 + (g-1) u)")
    p.add_argument("--spectral-forcing", action="store_true",
                   help="seed 004: the network sees the DCT low-pass of x_t that keeps what lies above the "
                        "data-to-noise contour (1-t)^2 A w^-beta >= t^2; recorded so inference applies it too")
    p.add_argument("--forcing-law", type=_law, default=None,
                   help="A,BETA of the forcing contour on 64x64 (default: embedded/spectrum.json)")
    add_weighting_options(p, "the velocity error")
    p.add_argument("--schedule-steps", type=_positive_int, default=None,
                   help="budget in optimizer steps: the cosine decay runs over N steps and training stops after "
                        "N (--minutes stays a cap); for comparisons at the same budget on a shared machine")
    return p


def _check_out_dir(parser: argparse.ArgumentParser, out: str) -> Path:
    """Create ``out`` if needed and prove it is writable; otherwise exit through ``parser.error``."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_", delete=True):
            pass
    except OSError as e:
        parser.error(f"--out {out!r} is not a writable directory ({e.strerror or e})")
    return path


def shift_time(u: torch.Tensor, g: float) -> torch.Tensor:
    """The resolution shift t = g u / (1 + (g - 1) u) (seed 001 Eq. 6; logit(t) = logit(u) + log g)."""
    return g * u / (1.0 + (g - 1.0) * u)


def sample_times(n: int, generator: torch.Generator, shift: float = 1.0, tail: float = 0.0,
                 window: tuple[float, float] = (TAIL_START, 1.0)) -> torch.Tensor:
    """Flow times in (0, 1): a bulk draw u (logit-normal, a fraction UNIFORM_FRACTION uniform) shifted
    by ``shift`` (``shift_time``), replaced with probability ``tail`` by a draw uniform in
    ``window`` (default [TAIL_START, 1], not shifted). ``shift=1, tail=0`` is the original
    distribution (same draws)."""
    ln = torch.sigmoid(LOGIT_NORMAL_MEAN + LOGIT_NORMAL_STD * torch.randn(n, generator=generator))
    un = torch.rand(n, generator=generator)
    pick = torch.rand(n, generator=generator) < UNIFORM_FRACTION
    t = torch.where(pick, un, ln)
    if shift != 1.0:
        t = shift_time(t, shift)
    if tail > 0:
        lo, hi = window
        drawn = lo + (hi - lo) * torch.rand(n, generator=generator)
        t = torch.where(torch.rand(n, generator=generator) < tail, drawn, t)
    return t


def tail_window_at(window: tuple[float, float] | None, factor: int) -> tuple[float, float]:
    """The tail's interval in the own time of a batch at contraction factor g = ``factor``.
    ``window`` is given in full-size (64 x 64) time, where a progressive run's stages line up: a
    stage at factor g holds full-size time t at its own time t' = t / (g (1 - t) + t)
    (``expansion.contracted_time``, the inverse of seed 001 Eq. 6), so

        window_g = [t'(lo), t'(hi)].

    None keeps the original tail, [TAIL_START, 1] in every resolution's own time."""
    if window is None:
        return (TAIL_START, 1.0)
    from ..spectral_core.expansion import contracted_time
    lo, hi = window
    return (contracted_time(lo, float(factor)), contracted_time(hi, float(factor)))


def check_tail_window(window: tuple[float, float] | None) -> tuple[float, float] | None:
    """``window`` as a pair of floats 0 <= lo < hi <= 1, or None; ValueError naming it otherwise."""
    if window is None:
        return None
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"tail window must be two numbers LO,HI, got {window!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"tail window must satisfy 0 <= LO < HI <= 1 (full-size time), got {window!r}")
    return (lo, hi)


def batch_times(n: int, generator: torch.Generator, factor: int, time_shift: str,
                tails: dict[int, float], window: tuple[float, float] | None = None) -> torch.Tensor:
    """The flow times of one batch at contraction factor ``factor``: ``sample_times`` with the bulk
    shifted by g = factor under ``time_shift == "resolution"``, that resolution's tail fraction
    ``tails[factor]`` (``tail_by_factor``) and tail interval ``tail_window_at(window, factor)``."""
    return sample_times(n, generator, shift=float(factor) if time_shift == "resolution" else 1.0,
                        tail=tails[factor], window=tail_window_at(window, factor))


def prob_time_above(x: float, shift: float = 1.0, tail: float = 0.0,
                    window: tuple[float, float] = (TAIL_START, 1.0)) -> float:
    """P(t > x) under ``sample_times(., shift, tail, window)`` for x in (0, 1):
    tail clip((hi - x) / (hi - lo), 0, 1) + (1 - tail) [(1 - UNIFORM_FRACTION) (1 - Phi(logit c)) + UNIFORM_FRACTION (1 - c)]
    with [lo, hi] = window, c = x / (shift (1 - x) + x) (the bulk value mapped to x) and mu, sigma of
    the logit-normal."""
    if not (0.0 < x < 1.0):
        raise ValueError(f"x must be in (0, 1), got {x}")
    c = x / (shift * (1.0 - x) + x)
    z = (math.log(c / (1.0 - c)) - LOGIT_NORMAL_MEAN) / LOGIT_NORMAL_STD
    bulk = (1.0 - UNIFORM_FRACTION) * 0.5 * math.erfc(z / math.sqrt(2.0)) + UNIFORM_FRACTION * (1.0 - c)
    lo, hi = window
    return tail * min(max((hi - x) / (hi - lo), 0.0), 1.0) + (1.0 - tail) * bulk


def sample_factor(generator: torch.Generator, probs: tuple[float, ...]) -> int:
    """One contraction factor from RES_FACTORS with probabilities ``probs``."""
    u = float(torch.rand((), generator=generator))
    acc = 0.0
    for f, p in zip(RES_FACTORS, probs):
        acc += p
        if u < acc:
            return f
    return next(f for f, p in zip(reversed(RES_FACTORS), reversed(probs)) if p > 0)


def multires_batch(stream, batch_size: int, generator: torch.Generator, probs: tuple[float, ...]
                   ) -> tuple[torch.Tensor, int]:
    """The next batch of ``stream`` (64 x 64) at a resolution drawn from ``probs`` over RES_FACTORS,
    DCT-contracted by ``contract_batch``; returns (x0, factor)."""
    factor = sample_factor(generator, probs) if probs[0] < 1.0 else 1
    x0 = stream.next_batch(batch_size)
    if factor > 1:
        x0 = contract_batch(x0, factor)
    return x0, factor


def flow_loss(net: FlowUNet, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
              forcing: SpectralForcing | None = None, weighting: SpectralLossWeighting | None = None) -> torch.Tensor:
    """MSE between the predicted and the true velocity eps - x0 at x_t = (1 - t) x0 + t eps; with
    ``forcing`` the prediction is net(F_t x_t, t) + (x_t - F_t x_t) / t (forcing.py Eq. 3), with
    ``weighting`` the error is band-weighted (module docstring)."""
    tt = t.reshape(-1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * eps
    pred = net(xt, t) if forcing is None else forcing.velocity(net, xt, t)
    if weighting is not None:
        return weighting.loss(pred, eps - x0, x0).mean()
    return torch.mean((pred - (eps - x0)) ** 2)


@torch.no_grad()
def evaluate(net: FlowUNet, crops: torch.Tensor, seed: int,
             times: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9),
             forcing: SpectralForcing | None = None) -> dict[str, float]:
    """Velocity MSE of ``net`` (on the forced input with ``forcing``) on ``crops`` at fixed times with
    seeded noise, per time and mean (always the plain MSE, whatever the training weighting)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, float] = {}
    for t in times:
        eps = torch.randn(crops.shape, generator=g)
        out[f"t={t:g}"] = float(flow_loss(net, crops, eps, torch.full((crops.shape[0],), t), forcing))
    out["mean"] = sum(out.values()) / len(times)
    return out


def downsample_curve(losses: list[float], points: int = CURVE_POINTS) -> list[list[float]]:
    """[[step, mean loss over the bin]] for at most ``points`` equal bins of the per-step losses
    (step is the bin's last step, 1-based)."""
    n = len(losses)
    if n == 0:
        return []
    bins = min(points, n)
    curve = []
    for b in range(bins):
        lo, hi = b * n // bins, (b + 1) * n // bins
        curve.append([hi, sum(losses[lo:hi]) / (hi - lo)])
    return curve


def draw_loss_curve(curve: list[list[float]], path: Path, title: str) -> None:
    """Draw the loss curve (log-scale y) as a PNG with PIL."""
    from PIL import Image, ImageDraw

    W, H, L, R, T, B = 800, 500, 80, 20, 40, 50
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.text((L, 12), title, fill="black")
    d.rectangle([L, T, W - R, H - B], outline="black")
    if len(curve) >= 1:
        steps = [c[0] for c in curve]
        logs = [math.log10(max(c[1], 1e-12)) for c in curve]
        lo, hi = math.floor(min(logs) * 10) / 10, math.ceil(max(logs) * 10) / 10
        if hi - lo < 0.1:
            hi = lo + 0.1
        smax = max(steps)

        def xy(s: float, lv: float) -> tuple[float, float]:
            return (L + (W - R - L) * s / max(smax, 1), H - B - (H - B - T) * (lv - lo) / (hi - lo))

        for k in range(5):  # y grid with labels
            lv = lo + (hi - lo) * k / 4
            y = xy(0, lv)[1]
            d.line([L, y, W - R, y], fill=(220, 220, 220))
            d.text((5, y - 6), f"{10 ** lv:.4f}", fill="black")
        for k in range(5):  # x labels
            s = smax * k / 4
            x = xy(s, lo)[0]
            d.text((x - 10, H - B + 8), f"{int(s)}", fill="black")
        d.text((W // 2 - 20, H - 20), "step", fill="black")
        pts = [xy(s, lv) for s, lv in zip(steps, logs)]
        if len(pts) > 1:
            d.line(pts, fill=(30, 90, 200), width=2)
        else:
            d.ellipse([pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2], fill=(30, 90, 200))
    img.save(path)


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".tmp_{path.name}")  # keep the suffix (PIL picks the format by it)
    write(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # some writers create 0600 files; ship them readable like any other
    os.replace(tmp, path)


def save_outputs(out: Path, ema: FlowUNet, log: dict) -> None:
    """Write weights.safetensors (EMA, float32), train_log.json and loss_curve.png into ``out``."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in ema.state_dict().items()}
    meta = {"format": "pt", "config": json.dumps(log["config"]["model"]), "steps": str(log["steps"])}
    if log["config"].get("spectral_forcing"):
        meta[FORCING_METADATA_KEY] = json.dumps(log["config"]["spectral_forcing"])
    _atomic_write(out / "weights.safetensors", lambda p: save_file(state, str(p), metadata=meta))
    _atomic_write(out / "train_log.json", lambda p: p.write_text(json.dumps(log, indent=2) + "\n"))
    title = f"embedded flow model: velocity MSE per step (log scale), {log['steps']} steps, " \
            f"{log['wall_time_s'] / 60:.1f} min"
    _atomic_write(out / "loss_curve.png", lambda p: draw_loss_curve(log["loss_curve"], p, title))


def _tail_record(tails: dict[int, float]) -> tuple[float | dict[str, float], str]:
    """The log's ``tail_fraction`` and its wording: (0.2, '20%') when every resolution shares the
    fraction, else ({'64x64': 0.0, ...}, '0% at 64x64, 25% at 32x32, ...')."""
    if len(set(tails.values())) == 1:
        return tails[1], f"{tails[1]:.0%}"
    return ({f"{64 // f}x{64 // f}": v for f, v in tails.items()},
            ", ".join(f"{v:.0%} at {64 // f}x{64 // f}" for f, v in tails.items()))


def contract_batch(x0: torch.Tensor, factor: int) -> torch.Tensor:
    """Clean crops seen on a grid ``factor`` times smaller per side: C x / g (the DCT low band,
    pixel values preserved), exactly what a progressive run's low stage holds of the data."""
    from ..spectral_core.expansion import contract
    h, w = x0.shape[-2] // factor, x0.shape[-1] // factor
    return contract(x0, (h, w), 0.0)[0]


def train(out: Path, minutes: float, seed: int, threads: int, batch_size: int = 32, lr: float = 5e-4,
          warmup: int = 200, ema_decay: float = 0.999, checkpoint_every_s: float = 600.0,
          init: str | None = None, multires: float = 0.0, data_source: str = "dead_leaves",
          res_probs: tuple[float, float, float] | None = None,
          tail: float | tuple[float, float, float] = TAIL_FRACTION,
          time_shift: str = "resolution", argv: list[str] | None = None,
          max_steps: int | None = None, eval_images: int = 32, forcing: SpectralForcing | None = None,
          weighting: SpectralLossWeighting | None = None, schedule_steps: int | None = None,
          tail_window: tuple[float, float] | None = None) -> dict:
    """Train within ``minutes`` of wall time (and at most ``max_steps`` steps) and write the outputs
    into ``out``; returns the log. ``init``: weights to start from; ``res_probs``: probabilities of
    64/32/16 batches (None: from ``multires`` if > 0, else DEFAULT_RES_PROBS); ``tail`` (one fraction
    or one per 64/32/16 resolution), ``time_shift``: the time distribution (module docstring);
    ``argv``: the command line, recorded in the log;
    ``eval_images``: held-out images of the final evaluation (0 skips it); ``forcing``, ``weighting``,
    ``schedule_steps``, ``tail_window`` (full-size time, ``tail_window_at``): the options of the
    module docstring (None: off)."""
    if data_source not in DATA_SOURCES:
        raise ValueError(f"data_source must be one of {DATA_SOURCES}, got {data_source!r}")
    if time_shift not in TIME_SHIFTS:
        raise ValueError(f"time_shift must be one of {TIME_SHIFTS}, got {time_shift!r}")
    tails = tail_by_factor(tail)
    tail_fraction, tail_text = _tail_record(tails)
    tail_window = check_tail_window(tail_window)
    window_text = (f"[{TAIL_START}, 1] in each resolution's own time" if tail_window is None else
                   f"[{tail_window[0]}, {tail_window[1]}] in full-size time ("
                   + ", ".join(f"[{a:.3f}, {b:.3f}] at {64 // f}x{64 // f}"
                               for f in RES_FACTORS for a, b in [tail_window_at(tail_window, f)]) + ")")
    if res_probs is None:
        res_probs = (1.0 - multires, 0.7 * multires, 0.3 * multires) if multires > 0 else DEFAULT_RES_PROBS
    start = time.monotonic()
    budget = minutes * 60.0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = FlowUNet(**DEFAULT_CONFIG)
    if init is not None:
        from safetensors.torch import load_file
        net.load_state_dict({k: v.to(torch.float32) for k, v in load_file(str(init)).items()})
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    stream = dead_leaves.DeadLeavesStream(seed) if data_source == "dead_leaves" else data.CropStream(seed)
    g = torch.Generator().manual_seed(seed + 1)
    if data_source == "dead_leaves":
        data_config = {"source": "dead_leaves", "size": dead_leaves.IMAGE_SIZE, "r_min": dead_leaves.R_MIN,
                       "r_max": dead_leaves.R_MAX, "density": "r^-3", "depth": dead_leaves.DEPTH,
                       "supersample": dead_leaves.SUPERSAMPLE, "shape_probs": list(dead_leaves.SHAPE_PROBS),
                       "max_aspect": dead_leaves.MAX_ASPECT, "shade": dead_leaves.SHADE,
                       "palette_images": list(dead_leaves.PALETTE_IMAGES), "train_seed": seed,
                       "heldout_seed_offset": dead_leaves.HELDOUT_SEED_OFFSET}
    else:
        data_config = {"source": "photos", "train_images": list(data.TRAIN_IMAGES),
                       "heldout_images": list(data.HELDOUT_IMAGES),
                       "crop": {"size": data.CROP_SIZE, "scale": [data.MIN_SCALE, data.MAX_SCALE], "hflip": 0.5}}
    config = {
        "argv": list(argv) if argv is not None else None,
        "command": None if argv is None else "python -m spectral_progressive.embedded.train " + " ".join(argv),
        "model": {k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULT_CONFIG.items()},
        "parameters": count_parameters(net),
        "batch_size": batch_size, "lr": lr, "warmup_steps": warmup, "lr_schedule": "linear warm-up, cosine "
        "decay to 0.1x over the wall-time budget", "ema_decay": ema_decay, "optimizer": "Adam", "grad_clip_norm": GRAD_CLIP,
        "time_distribution": f"tail {tail_text} uniform in {window_text}; "
        f"bulk sigmoid(N({LOGIT_NORMAL_MEAN}, "
        f"{LOGIT_NORMAL_STD}^2)) with {UNIFORM_FRACTION:.0%} uniform"
        + (", bulk shifted t = g u / (1 + (g-1) u) by the contraction factor g" if time_shift == "resolution" else ""),
        "tail_fraction": tail_fraction, "time_shift": time_shift,
        "tail_window_full_size": None if tail_window is None else list(tail_window),
        "objective": "MSE(v_pred, eps - x0), x_t = (1-t) x0 + t eps",
        "data": data_config,
        "resolutions": {f"{64 // f}x{64 // f}": p for f, p in zip(RES_FACTORS, res_probs)},
        "low_res_x0": "spectral_core.expansion.contract(x0, size, t=0): DCT low band / g (pixel values preserved)",
        "minutes": minutes, "threads": threads, "init": None if init is None else Path(init).name,
        "multires": multires,
        "spectral_forcing": None if forcing is None else forcing.to_dict(),
        "loss_weighting": None if weighting is None else weighting.to_dict(),
        "schedule_steps": schedule_steps,
    }
    if schedule_steps is not None:
        config["lr_schedule"] = f"linear warm-up, cosine decay to 0.1x over {schedule_steps} steps"
    if data_source == "photos":  # keys of the earlier logs
        config["train_images"] = data_config["train_images"]
        config["heldout_images"] = data_config["heldout_images"]
        config["crop"] = data_config["crop"]
    losses: list[float] = []
    factors: list[int] = []
    step_times: list[float] = []
    data_time = 0.0
    last_ckpt = time.monotonic()

    def make_log(final: bool) -> dict:
        by_size = {}
        for f in RES_FACTORS:
            ls = [l for l, ff in zip(losses, factors) if ff == f][-300:]
            by_size[f"{64 // f}x{64 // f}"] = (sum(ls) / len(ls)) if ls else None
        return {"config": config, "seed": seed, "torch_version": torch.__version__,
                "python_version": platform.python_version(), "steps": len(losses),
                "steps_by_size": {f"{64 // f}x{64 // f}": factors.count(f) for f in RES_FACTORS},
                "wall_time_s": round(time.monotonic() - start, 2), "finished": final,
                "data_time_s": round(data_time, 2),
                "final_loss_last100": (sum(losses[-100:]) / len(losses[-100:])) if losses else None,
                "final_loss_last300_by_size": by_size,
                "loss_curve": downsample_curve(losses)}

    net.train()
    while True:
        elapsed = time.monotonic() - start
        est = max(step_times[-20:]) if step_times else 0.0
        if elapsed + 1.5 * est + SAVE_RESERVE_S > budget and losses:
            break
        if elapsed > budget:  # even the first step did not fit
            break
        if max_steps is not None and len(losses) >= max_steps:
            break
        if schedule_steps is not None and len(losses) >= schedule_steps:
            break
        t0 = time.monotonic()
        step = len(losses)
        frac = min(elapsed / budget if schedule_steps is None else step / schedule_steps, 1.0)
        cur_lr = lr * min(1.0, (step + 1) / max(warmup, 1)) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = cur_lr
        x0, factor = multires_batch(stream, batch_size, g, res_probs)
        data_time += time.monotonic() - t0
        eps = torch.randn(x0.shape, generator=g)
        t = batch_times(batch_size, g, factor, time_shift, tails, tail_window)
        with torch.enable_grad():  # robust to a caller that turned autograd off globally
            loss = flow_loss(net, x0, eps, t, forcing, weighting)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.lerp_(pn, 1 - d)
        losses.append(float(loss.detach()))
        factors.append(factor)
        step_times.append(time.monotonic() - t0)
        if step % 100 == 0:
            print(f"step {step:6d}  size {64 // factor:2d}  loss {losses[-1]:.4f}  lr {cur_lr:.2e}  "
                  f"elapsed {time.monotonic() - start:7.1f}s  data {data_time:6.1f}s", flush=True)
        if time.monotonic() - last_ckpt > checkpoint_every_s:
            save_outputs(out, ema, make_log(False))
            last_ckpt = time.monotonic()

    ema.eval()
    log = make_log(True)
    if eval_images > 0 and \
            time.monotonic() - start + 4 * (sum(step_times[-20:]) / max(len(step_times[-20:]), 1)) < budget:
        if data_source == "dead_leaves":
            held = dead_leaves.heldout_batch(eval_images, seed)
            log["eval_velocity_mse"] = {
                f"heldout_dead_leaves_{64 // f}x{64 // f}": evaluate(ema, held if f == 1 else contract_batch(held, f),
                                                                      seed + 2000, forcing=forcing)
                for f in RES_FACTORS}
        else:
            log["eval_velocity_mse"] = {
                "train_crops": evaluate(ema, data.training_crops(eval_images, seed + 1000), seed + 2000,
                                        forcing=forcing),
                "heldout_crops": evaluate(ema, data.heldout_crops(eval_images, seed + 1000), seed + 2000,
                                          forcing=forcing),
            }
    log["wall_time_s"] = round(time.monotonic() - start, 2)
    save_outputs(out, ema, log)
    return log


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, validate them (argparse errors exit with status 2 and a message), train."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (0.0 <= args.ema < 1.0):
        parser.error(f"--ema must be in [0, 1), got {args.ema}")
    out = _check_out_dir(parser, args.out)
    if not (0.0 <= args.multires <= 1.0):
        parser.error(f"--multires must be in [0, 1], got {args.multires}")
    if args.init is not None and not Path(args.init).is_file():
        parser.error(f"--init {args.init!r} is not a file")
    if args.forcing_law is not None and not args.spectral_forcing:
        parser.error("--forcing-law only applies with --spectral-forcing")
    weighted = args.loss_weighting == "spectral"
    if not weighted and (args.weight_alpha is not None or args.weight_transform is not None):
        parser.error("--weight-alpha / --weight-transform only apply with --loss-weighting spectral")
    log = train(out, args.minutes, args.seed, args.threads, args.batch_size, args.lr, args.warmup, args.ema,
                init=args.init, multires=args.multires, data_source=args.data, res_probs=args.res_probs,
                tail=args.tail_fraction, time_shift=args.time_shift,
                argv=list(sys.argv[1:] if argv is None else argv), max_steps=args.max_steps,
                eval_images=args.eval_images,
                forcing=make_forcing(args.forcing_law) if args.spectral_forcing else None,
                weighting=SpectralLossWeighting(-1.0 if args.weight_alpha is None else args.weight_alpha,
                                                args.weight_transform or "dct") if weighted else None,
                schedule_steps=args.schedule_steps, tail_window=args.tail_window)
    print(f"done: {log['steps']} steps in {log['wall_time_s']:.1f}s, final loss (last 100 steps) "
          f"{log['final_loss_last100']:.4f}; wrote {out / 'weights.safetensors'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

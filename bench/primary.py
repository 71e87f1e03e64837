"""The primary quality metric: how far a method's samples are from the model's own high-step samples.

DESIGN.md "Measuring quality": a user asks whether progressive sampling beats fewer full-size steps at
the same cost, so every method is scored against the SAME model's 50-step full-size samples on
disjoint seeds (not against training data: a model's own samples are the target it can reach).

Features. Every 8 x 8 patch (stride 4) of each image at three scales: the image and its 2x and 4x
average-pooled versions (so a 64 x 64 image gives 225 + 49 + 9 patches of 192 values; the coarse
scales see composition, the fine scale texture).

* Patch Frechet distance, per scale s, between Gaussians fitted to the two patch sets,

      F_s = |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a^(1/2) C_b C_a^(1/2))^(1/2)),

  reported as the mean over the scales (the FID formula on patch features instead of Inception ones).
* Patch sliced Wasserstein-1 distance at the finest scale: the patches projected on 64 fixed random
  unit directions, SW1 = mean over directions of the 1-D W1 between the two sorted projections (read
  at equal ranks when the sets differ in size).

Seed bootstrap. Images (seeds), not patches, are the independent units: each bootstrap draw resamples
the images of both sets with replacement and recomputes both distances. Both distances are biased
upward by finite samples, and a resample with repeated images has fewer distinct ones, so the
bootstrap distribution sits above the point estimate and its percentiles would not contain it; the
interval is therefore the normal one, estimate +- 1.96 bootstrap standard deviations. The Frechet
statistics are sums of per-image moments and the projections are computed once, so a draw costs
weighted sums, one eigendecomposition per scale and one sort.

Paired difference. Two methods run on the same seeds are compared by the difference of their
distances to the reference, bootstrapped with one resample of seeds shared by both methods
(``paired_difference``): the seed-to-seed variation they share cancels, so the interval of the
difference is narrower than the two marginal intervals suggest.

Floor. The distance between two independent sets of reference samples (``reference_floor``) is what
a perfect method scores: the finite-sample bias of both distances. A method is "within the floor"
when its point estimate is at most the floor's upper interval bound.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCALES = (1, 2, 4)
PROJECTIONS = 64
Z95 = 1.959964
PATCH = 8
STRIDE = 4
MIN_SAMPLES = 2


def _image_patches(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, C PATCH^2): the patches of each image at one pooling scale."""
    y = F.avg_pool2d(x.double(), scale) if scale > 1 else x.double()
    p = F.unfold(y, kernel_size=PATCH, stride=STRIDE)  # (B, D, L)
    return p.transpose(1, 2)


def _moments(x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """Per image and scale: (sum of features (B, D), sum of outer products (B, D, D), patches per image)."""
    out = []
    for s in SCALES:
        p = _image_patches(x, s)
        out.append((p.sum(1), torch.einsum("bld,ble->bde", p, p), p.shape[1]))
    return out


def _gauss(m: tuple[torch.Tensor, torch.Tensor, int], w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the patches of images weighted by w (bootstrap counts)."""
    s1, s2, per = m
    n = w.sum() * per
    mu = (w[:, None] * s1).sum(0) / n
    cov = (w[:, None, None] * s2).sum(0) / n - torch.outer(mu, mu)
    return mu, cov


def _psd_sqrt(c: torch.Tensor) -> torch.Tensor:
    e, v = torch.linalg.eigh(c)
    return (v * e.clamp_min(0).sqrt()) @ v.T


def frechet(mu_a: torch.Tensor, cov_a: torch.Tensor, mu_b: torch.Tensor, cov_b: torch.Tensor) -> float:
    """|mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a^(1/2) C_b C_a^(1/2))^(1/2)) (Frechet distance of Gaussians)."""
    ra = _psd_sqrt(cov_a)
    cross = torch.linalg.eigvalsh(ra @ cov_b @ ra).clamp_min(0).sqrt().sum()
    return float(((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross)


def _frechet_mean(ma, mb, wa: torch.Tensor, wb: torch.Tensor) -> float:
    return sum(frechet(*_gauss(a, wa), *_gauss(b, wb)) for a, b in zip(ma, mb)) / len(SCALES)


def _projected(x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """(B, L, P): every finest-scale patch of each image projected on the unit directions."""
    return (_image_patches(x, 1) @ directions).float()


def _sorted_rows(p: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    """The projections of the images idx, sorted per direction, read at n evenly spaced ranks."""
    v, _ = torch.sort(p[idx].reshape(-1, p.shape[-1]).T.contiguous(), dim=1)
    ranks = torch.linspace(0, v.shape[1] - 1, n).round().long()
    return v[:, ranks]


def _swd(pa: torch.Tensor, pb: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor) -> float:
    """Sliced W1: mean over directions of the 1-D W1 between the sorted projections (equal ranks)."""
    n = min(len(ia) * pa.shape[1], len(ib) * pb.shape[1])
    return float((_sorted_rows(pa, ia, n) - _sorted_rows(pb, ib, n)).abs().mean())


def _check(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] < MIN_SAMPLES:
        raise ValueError(f"{name} must be a (N, C, H, W) image batch with N >= {MIN_SAMPLES}, "
                         f"got {getattr(x, 'shape', type(x).__name__)}")
    if min(x.shape[-2:]) < PATCH * max(SCALES):
        raise ValueError(f"{name} images must be at least {PATCH * max(SCALES)} pixels on each side, got {tuple(x.shape[-2:])}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x.detach().double().cpu()


def _directions(channels: int, seed: int) -> torch.Tensor:
    d = torch.randn(channels * PATCH * PATCH, PROJECTIONS, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    return d / d.norm(dim=0, keepdim=True)


def _interval(out: dict, key: str, draws: list[float], clamp: bool) -> None:
    """out[key_sd], out[key_ci] = bootstrap sd and the normal interval estimate +- 1.96 sd."""
    sd = float(torch.tensor(draws, dtype=torch.float64).std()) if len(draws) > 1 else 0.0
    lo = out[key] - Z95 * sd
    out[f"{key}_sd"] = sd
    out[f"{key}_ci"] = (max(0.0, lo) if clamp else lo, out[key] + Z95 * sd)


def _counts(idx: torch.Tensor, n: int) -> torch.Tensor:
    return torch.bincount(idx, minlength=n).double()


def distribution_distance(samples: torch.Tensor, reference: torch.Tensor, *, bootstrap: int = 200,
                          seed: int = 0) -> dict:
    """Patch Frechet and patch sliced-Wasserstein distance of ``samples`` to ``reference`` (both (N, C, H, W)
    in [-1, 1]), with seed-bootstrap 95% intervals:
    {"frechet", "frechet_sd", "frechet_ci", "swd", "swd_sd", "swd_ci", "n", "n_ref"}."""
    a, b = _check("samples", samples), _check("reference", reference)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"samples {tuple(a.shape[1:])} and reference {tuple(b.shape[1:])} differ in (C, H, W)")
    ma, mb = _moments(a), _moments(b)
    d = _directions(a.shape[1], seed)
    pa, pb = _projected(a, d), _projected(b, d)
    na, nb = a.shape[0], b.shape[0]
    out = {"frechet": _frechet_mean(ma, mb, torch.ones(na, dtype=torch.float64), torch.ones(nb, dtype=torch.float64)),
           "swd": _swd(pa, pb, torch.arange(na), torch.arange(nb)), "n": na, "n_ref": nb}
    g = torch.Generator().manual_seed(seed)
    fr, sw = [], []
    for i in range(bootstrap):
        ia, ib = torch.randint(na, (na,), generator=g), torch.randint(nb, (nb,), generator=g)
        fr.append(_frechet_mean(ma, mb, _counts(ia, na), _counts(ib, nb)))
        sw.append(_swd(pa, pb, ia, ib))
    _interval(out, "frechet", fr, clamp=True)  # a distance is >= 0
    _interval(out, "swd", sw, clamp=True)
    return out


def paired_difference(samples: torch.Tensor, baseline: torch.Tensor, reference: torch.Tensor, *,
                      bootstrap: int = 200, seed: int = 0) -> dict:
    """D(samples, reference) - D(baseline, reference) for both distances, with a PAIRED seed bootstrap.

    ``samples`` and ``baseline`` are two methods run on the same seeds (row i of each from the same
    noise). Each draw resamples one set of seed indices for both methods and one for the reference,
    so the seed-to-seed variation the two methods share cancels in the difference; the interval is
    the normal one, difference +- 1.96 bootstrap sd. A difference whose interval lies above 0 is a
    significant loss for ``samples``, below 0 a significant win; an interval containing 0 means the
    two cannot be told apart on these seeds. Returns {"frechet", "frechet_sd", "frechet_ci", "swd",
    "swd_sd", "swd_ci", "n", "n_ref"} of the differences."""
    a, c, b = _check("samples", samples), _check("baseline", baseline), _check("reference", reference)
    if a.shape != c.shape:
        raise ValueError(f"samples {tuple(a.shape)} and baseline {tuple(c.shape)} must be the same seeds (same shape)")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"samples {tuple(a.shape[1:])} and reference {tuple(b.shape[1:])} differ in (C, H, W)")
    ma, mc, mb = _moments(a), _moments(c), _moments(b)
    d = _directions(a.shape[1], seed)
    pa, pc, pb = _projected(a, d), _projected(c, d), _projected(b, d)
    na, nb = a.shape[0], b.shape[0]

    def diff(ia: torch.Tensor, ib: torch.Tensor) -> tuple[float, float]:
        wa, wb = _counts(ia, na), _counts(ib, nb)
        return (_frechet_mean(ma, mb, wa, wb) - _frechet_mean(mc, mb, wa, wb),
                _swd(pa, pb, ia, ib) - _swd(pc, pb, ia, ib))

    fr0, sw0 = diff(torch.arange(na), torch.arange(nb))
    out = {"frechet": fr0, "swd": sw0, "n": na, "n_ref": nb}
    g = torch.Generator().manual_seed(seed)
    draws = [diff(torch.randint(na, (na,), generator=g), torch.randint(nb, (nb,), generator=g)) for _ in range(bootstrap)]
    _interval(out, "frechet", [x[0] for x in draws], clamp=False)  # a difference may be negative
    _interval(out, "swd", [x[1] for x in draws], clamp=False)
    return out


def reference_floor(reference_a: torch.Tensor, reference_b: torch.Tensor, *, bootstrap: int = 200,
                    seed: int = 0) -> dict:
    """The distance between two independent reference sets (what a perfect method scores)."""
    return distribution_distance(reference_a, reference_b, bootstrap=bootstrap, seed=seed)


def within_floor(score: dict, floor: dict, key: str = "frechet") -> bool:
    """The method's point estimate is at most the floor's upper 95% bound."""
    return score[key] <= floor[f"{key}_ci"][1]


__all__ = ["distribution_distance", "frechet", "paired_difference", "reference_floor", "within_floor"]

"""Image-quality metrics for the benchmarks (pure torch; images (B, C, H, W) in [-1, 1]).

* PSNR against a reference, peak-to-peak range 2.
* SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 2,
  averaged over channels and positions.
* Radially averaged log-spectrum error: mean |log P_a(w) - log P_b(w)| over non-DC radial bins.
* Sliced Wasserstein distance between two sets of image patches (random unit projections, 1-D
  Wasserstein-1 per projection from sorted samples).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from ..spectral_core.spectra import radial_power


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image PSNR in dB."""
    mse = ((x.double() - ref.double()) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range ** 2 / mse.clamp_min(1e-20))


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image mean SSIM (valid positions of an 11x11 Gaussian window)."""
    x, ref = x.double(), ref.double()
    c = x.shape[1]
    w = _gauss().to(x.device)[None, None].repeat(c, 1, 1, 1)
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(ref, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x ** 2
    syy = F.conv2d(ref * ref, w, groups=c) - mu_y ** 2
    sxy = F.conv2d(x * ref, w, groups=c) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def log_spectrum_error(x: torch.Tensor, data: torch.Tensor) -> float:
    """Mean absolute difference of the pooled log radial power of two image sets (non-DC bins)."""
    f1, p1, _ = radial_power(x.double())
    f2, p2, _ = radial_power(data.double())
    n = min(len(f1), len(f2))
    a, b = p1.mean(0)[1:n], p2.mean(0)[1:n]
    return float((torch.log(a.clamp_min(1e-20)) - torch.log(b.clamp_min(1e-20))).abs().mean())


def patches(x: torch.Tensor, size: int = 8, stride: int = 4) -> torch.Tensor:
    """All size x size patches (stride) of a batch, flattened: (N, C size^2)."""
    p = F.unfold(x.double(), kernel_size=size, stride=stride)  # (B, C s^2, L)
    return p.transpose(1, 2).reshape(-1, p.shape[1])


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 128, seed: int = 0) -> float:
    """SW1 between point sets a (N, D) and b (M, D); the larger set is subsampled to the smaller."""
    g = torch.Generator().manual_seed(seed)
    n = min(a.shape[0], b.shape[0])
    a = a[torch.randperm(a.shape[0], generator=g)[:n]].double()
    b = b[torch.randperm(b.shape[0], generator=g)[:n]].double()
    d = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ d, dim=0)
    pb, _ = torch.sort(b @ d, dim=0)
    return float((pa - pb).abs().mean())


def gaussian_kl(mean_a: torch.Tensor, var_a: torch.Tensor, var_b: torch.Tensor) -> float:
    """KL(N(mean_a, diag var_a) || N(0, diag var_b)), summed over coordinates (nats)."""
    return float(0.5 * (var_a / var_b + mean_a ** 2 / var_b - 1.0 + torch.log(var_b / var_a)).sum())


__all__ = ["gaussian_kl", "log_spectrum_error", "patches", "psnr", "sliced_wasserstein", "ssim"]

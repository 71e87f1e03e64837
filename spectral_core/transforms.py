"""Orthonormal spectral transforms behind one registry (seed 001 Sec. 4.1 and Sec. 5.4).

Every transform acts on the last two (spatial) axes of a tensor, so image latents (B,C,H,W) and
video latents (B,C,T,H,W) are handled alike and T is never touched. Each one provides

* ``forward`` / ``inverse``: the orthonormal analysis T_Phi and synthesis T_Phi^{-1};
* ``up(x, size)``: the band embedding U = T_N^{-1} E T_n, an isometry from an (h, w) grid to an
  (H, W) grid that places the h x w low band of coefficients and leaves the rest zero;
* ``down(x, size)``: its adjoint C = U^T, the low band of an (H, W) signal read back on the
  (h, w) grid.  C U = I exactly, and U C is the orthogonal projector on the low band.

U and C are separable, real matrices (one per axis), built once per size and device and cached, so
expansion and contraction are two small batched matmuls on the latent's own device.

Transforms:

* ``dct``: orthonormal DCT-II (inverse DCT-III); the low band is the top-left h x w block.
* ``dwt``: orthonormal Haar, full separable decomposition (standard layout, one level per 2x);
  the low band of an (H/2^a, W/2^b) grid is the top-left block.  Ratios must be powers of two.
* ``fft``: orthonormal FFT with a centred crop.  A low band of even length keeps its Nyquist bin
  split evenly between +n/2 and -n/2 of the larger grid, so U maps real signals to real signals,
  stays an isometry and keeps DC on DC for odd and even sizes alike.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .validation import check_size, fail


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; half precision and float32 compute in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# ----------------------------------------------------------------------------------------------
# 1-D building blocks, float64 on the CPU (cached, then moved to the caller's device once).

def _dct_matrix(n: int) -> torch.Tensor:
    """D[k, j] = sqrt(2/n) c_k cos(pi (2j+1) k / (2n)), c_0 = 1/sqrt(2): orthonormal DCT-II."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    d = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * j + 1) * k / (2 * n))
    d[0] /= math.sqrt(2.0)
    return d


def haar_levels(n: int) -> int:
    """Number of Haar levels of a length-n axis: how often n halves evenly."""
    levels = 0
    while n % 2 == 0 and n > 1:
        n //= 2
        levels += 1
    return levels


def _haar_matrix(n: int) -> torch.Tensor:
    """Multi-level orthonormal Haar analysis, layout [cA_L, cD_L, ..., cD_1] (as pywt.wavedec)."""
    if n % 2 or n == 1:
        return torch.eye(n, dtype=torch.float64)
    half = n // 2
    avg = torch.zeros(half, n, dtype=torch.float64)
    dif = torch.zeros(half, n, dtype=torch.float64)
    r = 1.0 / math.sqrt(2.0)
    idx = torch.arange(half)
    avg[idx, 2 * idx] = r
    avg[idx, 2 * idx + 1] = r
    dif[idx, 2 * idx] = r
    dif[idx, 2 * idx + 1] = -r
    return torch.cat([_haar_matrix(half) @ avg, dif], dim=0)


def _fft_freqs(n: int) -> torch.Tensor:
    """Integer frequencies of an n-point FFT in FFT order: 0, 1, ..., -1."""
    return torch.fft.fftfreq(n, d=1.0 / n).round().to(torch.int64)


def _fft_up_matrix(n: int, big: int) -> torch.Tensor:
    """Real (big x n) isometry: centred FFT band embedding with the Nyquist bin split in two."""
    eye = torch.eye(n, dtype=torch.float64)
    coef = torch.fft.fft(eye, dim=0, norm="ortho")  # column j: spectrum of basis vector j
    out = torch.zeros(big, n, dtype=torch.complex128)
    for i, f in enumerate(_fft_freqs(n).tolist()):
        if n % 2 == 0 and f == -(n // 2):
            out[f % big] += coef[i] / math.sqrt(2.0)
            out[(-f) % big] += coef[i] / math.sqrt(2.0)
        else:
            out[f % big] += coef[i]
    return torch.fft.ifft(out, dim=0, norm="ortho").real.contiguous()


def _any_ratio(n: int, big: int) -> bool:
    return True


def _dyadic(n: int, big: int) -> bool:
    """Haar bands exist only where the big grid halves down to n: a power-of-two ratio with enough levels."""
    ratio = big // n
    return not (big % n or ratio & (ratio - 1) or haar_levels(big) < haar_levels(n) + int(math.log2(ratio)))


@dataclass(frozen=True)
class Transform:
    """One spectral transform: everything the pack needs of it, so adding one is one ``REGISTRY`` entry.

    ``analysis``: the real n x n orthonormal matrix, or None for complex (FFT) coefficients;
    ``up_1d(n, big)``: the (big x n) band embedding; ``axis_index``: DCT-equivalent frequency per
    coefficient; ``fits(n, big)``: whether a length-n low band sits in a length-big grid (the size
    rule, ``rule`` in words); ``label``: how the GUI names it."""

    name: str
    analysis: Callable[[int], torch.Tensor] | None
    up_1d: Callable[[int, int], torch.Tensor]
    axis_index: Callable[[int], torch.Tensor]
    label: str
    fits: Callable[[int, int], bool] = _any_ratio
    rule: str = "any sizes"

    @property
    def real(self) -> bool:
        """Real coefficients (a diagonal Gaussian model is exact in them); False for the FFT."""
        return self.analysis is not None

    def check_sizes(self, small: tuple[int, int], big: tuple[int, int], name: str) -> None:
        for n, N in zip(small, big):
            if n > N:
                fail(name, f"a size no larger than {big} per axis", small)
            if n != N and not self.fits(n, N):
                fail(name, f"{self.rule} for transform {self.name!r} ({big} -> {small})", small)


def _dct_up(n: int, big: int) -> torch.Tensor:
    return _dct_matrix(big)[:n].T @ _dct_matrix(n)


def _haar_up(n: int, big: int) -> torch.Tensor:
    return _haar_matrix(big)[:n].T @ _haar_matrix(n)


def _index(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float64)


REGISTRY: dict[str, Transform] = {t.name: t for t in (
    Transform("dct", _dct_matrix, _dct_up, _index, "DCT (default)"),
    Transform("dwt", _haar_matrix, _haar_up, _index, "Haar DWT (power-of-two sizes)", _dyadic,
              "sizes related by powers of two"),
    Transform("fft", None, _fft_up_matrix, lambda n: 2.0 * _fft_freqs(n).abs().to(torch.float64), "FFT"),
)}
TRANSFORMS = tuple(REGISTRY)


def get_transform(name: str) -> Transform:
    if name not in REGISTRY:
        fail("transform", f"one of {sorted(REGISTRY)}", name)
    return REGISTRY[name]


@functools.lru_cache(maxsize=512)
def _cached(kind: str, name: str, n: int, big: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    tr = REGISTRY[name]
    if kind == "analysis":
        mat = tr.analysis(n)  # type: ignore[misc]
    elif n == big:
        mat = torch.eye(n, dtype=torch.float64)
    else:
        mat = tr.up_1d(n, big)
    return mat.to(device=device, dtype=dtype)


def _matrix(kind: str, name: str, n: int, big: int, like: torch.Tensor) -> torch.Tensor:
    return _cached(kind, name, n, big, str(like.device), compute_dtype(like.dtype))


def _separable(x: torch.Tensor, mh: torch.Tensor, mw: torch.Tensor) -> torch.Tensor:
    """mh @ x @ mw^T over the last two axes."""
    return torch.matmul(torch.matmul(mh, x), mw.transpose(0, 1))


def forward(x: torch.Tensor, transform: str = "dct") -> torch.Tensor:
    """T_Phi(x) over the last two axes (float32/64 result; complex for 'fft')."""
    tr = get_transform(transform)
    xc = x.to(compute_dtype(x.dtype))
    if not tr.real:
        return torch.fft.fft2(xc, norm="ortho")
    h, w = x.shape[-2:]
    return _separable(xc, _matrix("analysis", tr.name, h, h, xc), _matrix("analysis", tr.name, w, w, xc))


def inverse(coef: torch.Tensor, transform: str = "dct", dtype: torch.dtype | None = None) -> torch.Tensor:
    """T_Phi^{-1}(coef) over the last two axes; real output, cast to ``dtype`` if given."""
    tr = get_transform(transform)
    if not tr.real:
        out = torch.fft.ifft2(coef, norm="ortho").real
    else:
        h, w = coef.shape[-2:]
        ah = _matrix("analysis", tr.name, h, h, coef)
        aw = _matrix("analysis", tr.name, w, w, coef)
        out = torch.matmul(torch.matmul(ah.transpose(0, 1), coef), aw)
    return out if dtype is None else out.to(dtype)


def up(x: torch.Tensor, size: tuple[int, int], transform: str = "dct") -> torch.Tensor:
    """U x: embed the spectrum of x (on its own grid) as the low band of a ``size`` grid.

    Isometric (||U x|| = ||x||); computed in float32/64, returned in that compute dtype.
    """
    tr = get_transform(transform)
    H, W = check_size(size)
    small = (int(x.shape[-2]), int(x.shape[-1]))
    tr.check_sizes(small, (H, W), "size")
    xc = x.to(compute_dtype(x.dtype))
    return _separable(xc, _matrix("up", tr.name, small[0], H, xc), _matrix("up", tr.name, small[1], W, xc))


def down(x: torch.Tensor, size: tuple[int, int], transform: str = "dct") -> torch.Tensor:
    """C x = U^T x: the low band of x read back on a ``size`` grid (no rescaling)."""
    tr = get_transform(transform)
    h, w = check_size(size)
    big = (int(x.shape[-2]), int(x.shape[-1]))
    tr.check_sizes((h, w), big, "size")
    xc = x.to(compute_dtype(x.dtype))
    mh = _matrix("up", tr.name, h, big[0], xc).transpose(0, 1)
    mw = _matrix("up", tr.name, w, big[1], xc).transpose(0, 1)
    return _separable(xc, mh, mw)


def project_low(x: torch.Tensor, size: tuple[int, int], transform: str = "dct") -> torch.Tensor:
    """U C x: the part of x that lives in the low band of a ``size`` grid, kept on x's grid."""
    return up(down(x, size, transform), (int(x.shape[-2]), int(x.shape[-1])), transform)


def radial_frequency(height: int, width: int, transform: str = "dct",
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Radial frequency of each coefficient in cycles per image (DESIGN.md radial grid).

    w = min(H, W) * sqrt((ky / 2H)^2 + (kx / 2W)^2), with (ky, kx) the DCT index (for 'dwt' the
    coefficient's position in the standard layout, for 'fft' twice the absolute integer frequency).
    The DC coefficient has w = 0.
    """
    tr = get_transform(transform)
    H, W = check_size((height, width), "size")
    ky = tr.axis_index(H)[:, None] / (2.0 * H)
    kx = tr.axis_index(W)[None, :] / (2.0 * W)
    w = min(H, W) * torch.sqrt(ky ** 2 + kx ** 2)
    return w.to(device=device) if device is not None else w


def apply_gain(x: torch.Tensor, gain: torch.Tensor, transform: str = "dct") -> torch.Tensor:
    """T^{-1}(gain * T(x)): a per-coefficient filter; ``gain`` broadcasts against (H, W)."""
    coef = forward(x, transform)
    return inverse(coef * gain.to(device=coef.device, dtype=compute_dtype(x.dtype)), transform)

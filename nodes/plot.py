"""Log-log spectrum plots drawn with PIL (ComfyUI already ships it; no plotting stack)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def font(size: int):
    """PIL's built-in font at ``size`` px (Pillow >= 10.1), else the small bitmap default."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # older Pillow
        return ImageFont.load_default()



COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


@dataclass(frozen=True)
class LogAxes:
    """A log-log plot frame in pixels: decades lo..hi on each axis."""

    left: float
    right: float
    top: float
    bottom: float
    lo_x: float
    hi_x: float
    lo_y: float
    hi_y: float

    def px(self, xv: float, yv: float) -> tuple[float, float]:
        X = self.left + (math.log10(xv) - self.lo_x) / (self.hi_x - self.lo_x) * (self.right - self.left)
        Y = self.bottom - ((math.log10(max(yv, 1e-300)) - self.lo_y) / (self.hi_y - self.lo_y)
                           * (self.bottom - self.top))
        return X, Y

    def has_x(self, v: float) -> bool:
        return 10 ** self.lo_x <= v <= 10 ** self.hi_x


def _grid(d: ImageDraw.ImageDraw, ax: LogAxes) -> None:
    d.rectangle([ax.left, ax.top, ax.right, ax.bottom], outline=(0, 0, 0))
    for k in range(math.floor(ax.lo_y), math.ceil(ax.hi_y) + 1):
        if ax.lo_y <= k <= ax.hi_y:
            _, Y = ax.px(10 ** ax.lo_x, 10.0 ** k)
            d.line([ax.left, Y, ax.right, Y], fill=(225, 225, 225))
            d.text((4, Y - 6), f"1e{k}", fill=(0, 0, 0))
    for k in range(math.floor(ax.lo_x), math.ceil(ax.hi_x) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** k
            if ax.has_x(v):
                X, _ = ax.px(v, 10 ** ax.lo_y)
                d.line([X, ax.top, X, ax.bottom], fill=(235, 235, 235))
                d.text((X - 6, ax.bottom + 4), f"{v:g}", fill=(0, 0, 0))


def _fit_and_markers(d: ImageDraw.ImageDraw, ax: LogAxes, fx: np.ndarray, fit: tuple[float, float] | None,
                     markers: Sequence[tuple[str, float]], fh: int) -> None:
    if fit is not None:
        A, beta = fit
        pts = [ax.px(v, A * v ** -beta) for v in np.geomspace(fx.min(), fx.max(), 40)]
        for a, b in zip(pts[::2], pts[1::2]):
            d.line([a, b], fill=(0, 0, 0), width=1)
        label = f"fit A={A:.4g} beta={beta:.4g}"
        d.text((ax.right - d.textlength(label) - 6, ax.top + 6), label, fill=(0, 0, 0))
    for j, (label, w) in enumerate(markers):
        if ax.has_x(w):
            X, _ = ax.px(w, 10 ** ax.lo_y)
            d.line([X, ax.top, X, ax.bottom], fill=(200, 0, 0), width=1)
            tx = min(X + 3, ax.right - d.textlength(label) - 3)  # keep the label inside the frame
            d.text((tx, ax.top + 6 + fh * (j + 1)), label, fill=(200, 0, 0))


def spectrum_plot(freqs: Sequence[float], curves: Sequence[tuple[str, Sequence[float]]], fit: tuple[float, float] | None,
                  markers: Sequence[tuple[str, float]] = (), size: tuple[int, int] = (640, 400),
                  title: str = "radially averaged power") -> Image.Image:
    """curves: (label, power per freq); fit: (A, beta) drawn as a dashed line; markers: vertical lines
    (label, frequency) such as the stage switch frequencies."""
    W, H = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.font = font(max(12, H // 28))
    fh = max(12, H // 28) + 2
    left, right, top, bottom = 64, W - 16, 28, H - 40
    f = np.asarray(freqs, dtype=float)
    sel = f > 0
    ys = [np.asarray(c, dtype=float)[sel] for _, c in curves]
    fx = f[sel]
    if fx.size == 0:
        d.text((left, top), "no non-DC frequencies to plot", fill=(0, 0, 0))
        return img
    pos = [y[y > 0] for y in ys if np.any(y > 0)]
    allv = np.concatenate(pos) if pos else np.array([1e-12, 1.0])
    lo_y, hi_y = math.log10(max(allv.min(), 1e-300)), math.log10(max(allv.max(), 1e-300))
    if hi_y - lo_y < 1e-6:
        hi_y = lo_y + 1
    ax = LogAxes(left, right, top, bottom, math.log10(fx.min()),
                 math.log10(fx.max() if fx.max() > fx.min() else fx.min() * 10), lo_y, hi_y)
    _grid(d, ax)
    for i, (label, _) in enumerate(curves):
        col = COLORS[i % len(COLORS)]
        pts = [ax.px(a, b) for a, b in zip(fx, ys[i]) if b > 0]
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        d.text((left + 8, bottom - 6 - fh * (len(curves) - i)), label, fill=col)  # legend, lower left
    _fit_and_markers(d, ax, fx, fit, markers, fh)
    d.text((left, 8), title, fill=(0, 0, 0))
    d.text(((left + right) // 2 - 60, H - 18), "frequency (cycles/image)", fill=(0, 0, 0))
    return img


def to_image_tensor(img: Image.Image):
    """PIL -> ComfyUI IMAGE (1, H, W, 3) float in [0, 1]."""
    import torch
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)[None]

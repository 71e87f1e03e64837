"""Argument checks shared by every public function of the core.

Every failure is a ``ValueError`` whose message starts with the argument's name, so a node can
forward it to the user unchanged ("size: expected ...").
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


def fail(name: str, expected: str, got: object) -> None:
    raise ValueError(f"{name}: expected {expected}, got {got!r}")


def check_spatial_tensor(x: object, name: str = "x") -> torch.Tensor:
    """An image (B,C,H,W) or video (B,C,T,H,W) latent, floating point, finite."""
    if not isinstance(x, torch.Tensor):
        fail(name, "a torch.Tensor", type(x).__name__)
    if x.ndim not in (4, 5):
        fail(name, "a 4-D (B,C,H,W) or 5-D (B,C,T,H,W) tensor", tuple(x.shape))
    if not x.is_floating_point():
        fail(name, "a floating point tensor", x.dtype)
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        fail(name, "non-empty spatial dims", tuple(x.shape))
    return x


def check_finite(x: torch.Tensor, name: str = "x") -> None:
    """Rejects NaN/inf. This is a host sync: call it at API boundaries, never inside a step loop."""
    if not bool(torch.isfinite(x).all()):
        fail(name, "finite values (no NaN or inf)", "a tensor with NaN/inf")


def check_size(size: object, name: str = "size") -> tuple[int, int]:
    if (not isinstance(size, (tuple, list, torch.Size)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)):
        fail(name, "a pair of positive ints (H, W)", size)
    return int(size[0]), int(size[1])


def check_time(t: object, name: str = "t") -> float:
    try:
        tv = float(t)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        fail(name, "a number in [0, 1]", t)
    if not math.isfinite(tv) or tv < 0.0 or tv > 1.0:
        fail(name, "a number in [0, 1]", t)
    return tv


def check_open_unit(v: object, name: str) -> float:
    try:
        fv = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        fail(name, "a number in (0, 1)", v)
    if not math.isfinite(fv) or not 0.0 < fv < 1.0:
        fail(name, "a number in (0, 1)", v)
    return fv


def check_scales(scales: Sequence[float], name: str = "scales") -> tuple[float, ...]:
    """Resolution scales 0 < s_1 < ... < s_S = 1 (seed 001 Sec. 4.1)."""
    try:
        vals = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        fail(name, "a sequence of numbers in (0, 1], strictly increasing, ending at 1", scales)
    if (len(vals) < 1 or any(not math.isfinite(s) or s <= 0.0 or s > 1.0 for s in vals)
            or any(b <= a for a, b in zip(vals, vals[1:])) or vals[-1] != 1.0):
        fail(name, "a sequence of numbers in (0, 1], strictly increasing, ending at 1", scales)
    return vals

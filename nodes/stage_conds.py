"""Spatial conditioning at a stage's size.

Noise-shaped model conditions (inpaint/concat latents and masks, ``CONDNoiseShape``) are made at
the full latent size; a low stage needs them at its own size.  They are resized by the same
band-limited map that contracts the data (C x / g, seed 001 Sec. 4.1), so their low band matches
the stage latent's exactly.  ControlNet hints need nothing: ComfyUI resizes them to each call's x.
Regional conditions (area, mask) are defined on the full grid and are refused in low stages.
"""
from __future__ import annotations

from typing import Any

import comfy.conds
import torch

from ..spectral_core import transforms
from ..spectral_core.expansion import growth
from ..spectral_core.validation import fail

_REGIONAL = ("area", "mask")


def data_to_size(x: torch.Tensor, size: tuple[int, int], transform: str = "dct") -> torch.Tensor:
    """Band-limited resize of clean data (values preserved): C x / g, or g U x upwards."""
    src = (int(x.shape[-2]), int(x.shape[-1]))
    if src == tuple(size):
        return x
    if size[0] <= src[0] and size[1] <= src[1]:
        return (transforms.down(x, size, transform) / growth(size, src)).to(x.dtype)
    return (growth(src, size) * transforms.up(x, size, transform)).to(x.dtype)


def mask_to_size(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average a mask to ``size`` over its last two axes (stays in [0, 1])."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    lead = mask.shape[:-2]
    flat = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float()
    out = torch.nn.functional.interpolate(flat, size=tuple(size), mode="area")
    return out.reshape(*lead, *size).to(mask.dtype)


def has_regional(conds: Any) -> bool:
    for group in (conds.values() if isinstance(conds, dict) else conds) or []:
        for c in group or []:
            if isinstance(c, dict) and any(c.get(k) is not None for k in _REGIONAL):
                return True
    return False


def refuse_regional(conds: Any, node: str) -> None:
    if has_regional(conds):
        fail(node, "conditioning without area or mask (regional prompts are defined on the full-size grid and "
             "cannot run in a low-resolution stage; use them without progression)", "area/mask conditioning")


def resize_conds(conds: list, size: tuple[int, int], transform: str = "dct") -> list:
    """Copies of ComfyUI cond lists whose noise-shaped model conds are at ``size``."""
    out = []
    for group in conds:
        if group is None:
            out.append(None)
            continue
        new_group = []
        for c in group:
            mc = c.get("model_conds", {})
            new_mc = {}
            for k, v in mc.items():
                if isinstance(v, comfy.conds.CONDNoiseShape) and tuple(v.cond.shape[-2:]) != tuple(size):
                    v = v._copy_with(data_to_size(v.cond, size, transform))
                new_mc[k] = v
            c2 = c.copy()
            c2["model_conds"] = new_mc
            new_group.append(c2)
        out.append(new_group)
    return out


def cond_resize_wrapper(executor, model, conds, x_in, timestep, model_options):
    """CALC_COND_BATCH wrapper for the sampler formulation: conds follow x_in's (stage) size."""
    size = (int(x_in.shape[-2]), int(x_in.shape[-1]))
    return executor(model, resize_conds(conds, size), x_in, timestep, model_options)

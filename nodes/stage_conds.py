"""Spatial conditioning at a stage's size.

Noise-shaped model conditions (inpaint/concat latents and masks, ``CONDNoiseShape``) are made at
the full latent size; a low stage needs them at its own size.  They are resized by the same
band-limited map that contracts the data (C x / g, seed 001 Sec. 4.1), so their low band matches
the stage latent's exactly.  ControlNet hints need nothing: ComfyUI resizes them to each call's x.
Reference latents (FLUX Kontext-style ``ReferenceLatent``: extra images the model appends as tokens)
are contracted by the stage's own scale per axis, so reference and latent keep the relative scale the
model sees at full size (their token grids stay aligned) and a low stage also saves the reference's
tokens.  Regional conditions (area, mask) are defined on the full grid and are refused in low stages.

Step caches (ComfyUI's EasyCache / LazyCache nodes) keep tensors of the previous step's size.  On a
size change the core nodes reset themselves, and their reset sets the measured transformation rate to
0, so the steps right after a stage switch were skipped without being measured (a stale cached
difference reused).  ``stage_step_cache`` gives every low stage size its own fresh cache state (the
full size keeps the node's own), so a cache never sees a size change and each stage caches within itself.
"""
from __future__ import annotations

from typing import Any

import comfy.conds
import torch

from ..spectral_core import transforms
from ..spectral_core.expansion import growth
from ..spectral_core.validation import fail

_REGIONAL = ("area", "mask")
_REFERENCES = ("ref_latents",)  # model conds holding a list of reference latents (Flux Kontext, Qwen edit, ...)
STEP_CACHE_KEY = "easycache"  # where ComfyUI's EasyCache and LazyCache nodes keep their per-run state
STEP_CACHE_NODES = "EasyCache / LazyCache"


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


def scaled_size(src: tuple[int, int], size: tuple[int, int], full: tuple[int, int]) -> tuple[int, int]:
    """``src`` scaled per axis by size / full (at least 1)."""
    return tuple(max(1, int(round(s * a / b))) for s, a, b in zip(src, size, full))


def _reference_to_size(v: Any, size: tuple[int, int], full: tuple[int, int] | None, transform: str) -> Any:
    if full is None or tuple(size) == tuple(full) or not isinstance(getattr(v, "cond", None), list):
        return v
    refs = []
    for r in v.cond:
        if isinstance(r, torch.Tensor) and r.ndim >= 4 and r.is_floating_point():
            target = scaled_size((int(r.shape[-2]), int(r.shape[-1])), size, full)
            if target[0] <= r.shape[-2] and target[1] <= r.shape[-1]:
                r = data_to_size(r, target, transform)
        refs.append(r)
    return v._copy_with(refs)


def resize_conds(conds: list, size: tuple[int, int], transform: str = "dct",
                 full: tuple[int, int] | None = None) -> list:
    """Copies of ComfyUI cond lists whose noise-shaped model conds are at ``size`` and whose reference
    latents are scaled by size / ``full`` (left alone when ``full`` is not given)."""
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
                elif k in _REFERENCES:
                    v = _reference_to_size(v, size, full, transform)
                new_mc[k] = v
            c2 = c.copy()
            c2["model_conds"] = new_mc
            new_group.append(c2)
        out.append(new_group)
    return out


def check_step_cache(model_options: dict | None, node: str = "model") -> None:
    """Before sampling: a step cache under transformer_options["easycache"] must be one that can be
    cloned per stage size (ComfyUI's EasyCache / LazyCache holders can); anything else is refused."""
    holder = ((model_options or {}).get("transformer_options") or {}).get(STEP_CACHE_KEY)
    if holder is None:
        return
    if not (callable(getattr(holder, "clone", None)) and callable(getattr(holder, "prepare_timesteps", None))):
        fail(node, f"a model without an unknown step cache (remove the {STEP_CACHE_NODES} node: its state "
             "cannot follow the latent's size change)", type(holder).__name__)


def stage_step_cache(model_options: dict, size: tuple[int, int], full: tuple[int, int], store: dict,
                     model_sampling: Any) -> dict:
    """``model_options`` with the step cache of ``size``: the node's own at the full size, a fresh clone
    (timesteps prepared as the cache node's OUTER_SAMPLE wrapper does) per low stage size, kept in ``store``
    for the run.  Unchanged when no step cache is installed."""
    to = model_options.get("transformer_options") or {}
    holder = to.get(STEP_CACHE_KEY)
    size = tuple(int(v) for v in size)
    if holder is None or size == tuple(full):
        return model_options
    h = store.get(size)
    if h is None:
        check_step_cache(model_options)
        h = holder.clone().prepare_timesteps(model_sampling)
        store[size] = h
    if hasattr(h, "skip_current_step"):
        h.skip_current_step = False  # per cond batch, as EasyCache's own CALC_COND_BATCH wrapper does
    mo = dict(model_options)
    mo["transformer_options"] = dict(to)
    mo["transformer_options"][STEP_CACHE_KEY] = h
    return mo


class CondResizeWrapper:
    """CALC_COND_BATCH wrapper for the sampler formulation: conds follow x_in's (stage) size, reference
    latents scale by stage / ``full``."""

    def __init__(self, full: tuple[int, int], transform: str = "dct"):
        self.full, self.transform = tuple(full), transform

    def __call__(self, executor, model, conds, x_in, timestep, model_options):
        size = (int(x_in.shape[-2]), int(x_in.shape[-1]))
        return executor(model, resize_conds(conds, size, self.transform, self.full), x_in, timestep, model_options)


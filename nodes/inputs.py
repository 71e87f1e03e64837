"""Socket values checked at the node boundary.

ComfyUI's prompt validation checks links between sockets, but an API prompt may put a raw value
(a number, a string, null) where a socket is expected, and ComfyUI passes it to the node as is.
These checks turn that into an error naming the input instead of a traceback from deep inside."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..spectral_core.validation import fail


def schedule(v: Any, name: str = "schedule") -> Any:
    """A SPECTRAL_SCHEDULE from DeltaSchedule, or the default schedule when the input is not connected."""
    from ..schedules.spec import DEFAULT_SPEC, ScheduleSpec
    if v is None:
        return DEFAULT_SPEC
    if not isinstance(v, ScheduleSpec):
        fail(name, "a SPECTRAL_SCHEDULE from DeltaSchedule", type(v).__name__)
    return v


def guidance(model_: Any, positive: Any, negative: Any, cfg: Any) -> None:
    """The model, both conditionings and cfg of a sampling node."""
    model(model_)
    conditioning(positive, "positive")
    conditioning(negative, "negative")
    finite_number(cfg, "cfg")


def model(v: Any, name: str = "model") -> Any:
    if not hasattr(getattr(v, "model", None), "model_sampling"):
        fail(name, "a MODEL (from a loader or a model node)", type(v).__name__)
    return v


def latent(v: Any, name: str, nested_ok: bool = False) -> dict:
    """A LATENT dict.  A multi-part latent (ComfyUI's NestedTensor, e.g. LTX-2 audio+video) passes only with
    ``nested_ok``, where the node's model check explains why it cannot be sampled progressively."""
    samples = v.get("samples") if isinstance(v, dict) else None
    if getattr(samples, "is_nested", False) and not isinstance(samples, torch.Tensor):
        if not nested_ok:
            fail(name, "a single image or video latent (multi-part latents are not supported)",
                 f"a nested latent of {len(samples.unbind())} parts")
        return v
    if not isinstance(samples, torch.Tensor):
        fail(name, "a LATENT (a dict holding a 'samples' tensor)", type(v).__name__)
    return v


def conditioning(v: Any, name: str) -> list:
    if not isinstance(v, list) or not all(isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[1], dict)
                                          for c in v):
        fail(name, "a CONDITIONING (a list of [tensor, options] pairs)", type(v).__name__)
    return v


def sigmas(v: Any, name: str = "sigmas") -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.ndim != 1:
        fail(name, "SIGMAS (a 1-D tensor)", tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__)
    return v


def image(v: Any, name: str) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.ndim != 4:
        fail(name, "an IMAGE (a (B,H,W,C) tensor)", tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__)
    return v


def spectrum(v: Any, name: str = "probe_spectrum") -> dict:
    from ..spectral_core.spectra import PowerLaw
    if not isinstance(v, dict) or not isinstance(v.get("law"), PowerLaw):
        fail(name, "a SPECTRUM from PowerSpectrumProbe", type(v).__name__)
    return v


def finite(v: torch.Tensor, name: str) -> torch.Tensor:
    """NaN/inf refused (one host sync: call once per node, never per step)."""
    if not bool(torch.isfinite(v).all()):
        fail(name, "finite values (no NaN or inf)", "a tensor with NaN/inf")
    return v


def finite_number(v: Any, name: str, lo: float | None = None, hi: float | None = None) -> float:
    """A widget number: NaN passes ComfyUI's min/max validation, so the node checks it."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        fail(name, "a number", v)
    if not math.isfinite(f) or (lo is not None and f < lo) or (hi is not None and f > hi):
        rng = "" if lo is None and hi is None else f" in [{lo}, {hi}]"
        fail(name, f"a finite number{rng}", v)
    return f

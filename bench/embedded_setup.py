"""The embedded default model with its measured spectrum and plans: shared by the demo and the
benchmarks so that every one of them runs the same thing."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..embedded.source import heldout_data
from ..embedded.model import IMAGE_SIZE, SPATIAL_MULTIPLE, load_default_model
from ..schedules import plan_stages
from ..spectral_core.plan import call_cost
from ..spectral_core.spectra import PowerLaw, measure_spectrum

SPECTRUM_JSON = Path(__file__).resolve().parent.parent / "embedded" / "spectrum.json"
ADAPTER_PATH = Path(__file__).resolve().parent.parent / "embedded" / "adapter.safetensors"  # Sec. 4.3 fine-tune


class CountingModel:
    """Wraps a denoiser and records the spatial size of every call."""

    def __init__(self, model):
        self.model = model
        self.calls: list[tuple[int, int]] = []

    def __call__(self, x, sigma, **kw):
        self.calls.append((int(x.shape[-2]), int(x.shape[-1])))
        return self.model(x, sigma, **kw)

    def tokens(self, power: int = 1) -> float:
        """sum (h w)^p over the recorded calls (``call_cost`` in units of a 1 x 1 call)."""
        return call_cost(self.calls, (1, 1), power)


@dataclass
class Embedded:
    model: torch.nn.Module
    law: PowerLaw
    size: int = IMAGE_SIZE
    multiple: int = SPATIAL_MULTIPLE

    def plan(self, sigmas: torch.Tensor, scales=(0.5, 1.0), delta: float = 0.01, **kw):
        return plan_stages(sigmas, (self.size, self.size), delta=delta, scales=scales, spectrum=self.law,
                           spatial_multiple=self.multiple, **kw)


def load_spectrum() -> PowerLaw:
    """The embedded model's data spectrum: spectrum.json, or measured now on held-out data."""
    if SPECTRUM_JSON.is_file():
        rec = json.loads(SPECTRUM_JSON.read_text())
        return PowerLaw(float(rec["A"]), float(rec["beta"]))
    return measure_spectrum(heldout_data(256, seed=0)).fit.law


def load_embedded(device: str = "cpu", weights: str | None = None) -> Embedded:
    """The shipped model (or ``weights``, a safetensors file of the same architecture)."""
    try:
        model = load_default_model(device=device, path=weights)
    except FileNotFoundError as exc:
        from .common import die
        die(str(exc))
    return Embedded(model, load_spectrum())


def load_finetuned(adapter: str | Path = ADAPTER_PATH, device: str = "cpu",
                   weights: str | None = None) -> torch.nn.Module:
    """The shipped model (or ``weights``) with a LoRA adapter of ``python -m spectral_progressive.finetune``
    applied."""
    from ..finetune import load_adapter
    model = load_default_model(device=device, path=weights)
    load_adapter(model.net, adapter)
    model.requires_grad_(False)
    return model.eval()


def linear_sigmas(steps: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The embedded model's schedule: t from 1 to 0 in equal steps (CONST frame)."""
    return torch.linspace(1.0, 0.0, steps + 1, dtype=dtype)


def adapter_plan(emb: Embedded, sigmas: torch.Tensor, adapter: str | Path):
    """The stage plan an adapter of ``python -m spectral_progressive.finetune`` was trained for: its
    stage sizes and switch times (the adapter's metadata) on ``sigmas``."""
    from ..finetune import read_adapter
    meta = read_adapter(adapter)[1]
    if "stages" not in meta or "switch_times" not in meta:
        raise ValueError(f"adapter: {adapter} does not record the stages it was trained for")
    sizes = json.loads(meta["stages"])
    scales = tuple(s[0] / emb.size for s in sizes)
    return emb.plan(sigmas, scales, switch_at=[float(t) for t in json.loads(meta["switch_times"])], respace="affine")

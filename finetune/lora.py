"""A minimal LoRA (low-rank adaptation, Hu et al. 2022; seed 001 Sec. 5.2 / App. D.2 fine-tune with it)
for ``nn.Linear`` and ``nn.Conv2d`` layers of any torch module.

Each adapted layer computes  y = base(x) + (alpha / r) B(A(x)):

* Linear:  A: in -> r (Linear, no bias), B: r -> out (Linear, no bias);
* Conv2d:  A: a Conv2d in -> r with the base's kernel, stride, padding, dilation (no bias),
           B: a 1x1 Conv2d r -> out (no bias);  grouped convolutions are left alone.

A is initialised like the base layers (Kaiming-uniform), B = 0, so an adapted model equals the base
model exactly until B trains.  The base weights are frozen; only A and B train.  ``save_adapter``
writes only A and B (safetensors) with the rank, alpha and the adapted layer names in the metadata;
``load_adapter`` re-creates the adapters on a fresh model and loads them; ``merge_lora`` folds them
into the base weights (W + (alpha / r) B A) and returns a plain module.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

ADAPTER_FORMAT = "spectral_progressive.lora/1"


class _LoRABase(nn.Module):
    base: nn.Module
    lora_A: nn.Module
    lora_B: nn.Module

    def __init__(self, base: nn.Module, rank: int, alpha: float) -> None:
        super().__init__()
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise ValueError(f"rank: expected an integer >= 1, got {rank!r}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha: expected a positive number, got {alpha!r}")
        self.base = base
        self.rank = rank
        self.alpha = float(alpha)
        self.scale = self.alpha / rank
        base.requires_grad_(False)

    def _init(self) -> None:
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.lora_B(self.lora_A(x))

    def delta_weight(self) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def merged(self) -> nn.Module:
        """The base layer with the adapter folded into its weight (a new module)."""
        import copy
        out = copy.deepcopy(self.base)
        with torch.no_grad():
            out.weight += self.delta_weight().to(out.weight.dtype)
        return out


class LoRALinear(_LoRABase):
    """y = W x + b + (alpha / r) B A x for a frozen ``nn.Linear``."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float | None = None) -> None:
        super().__init__(base, rank, float(rank) if alpha is None else alpha)
        kw = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, **kw)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, **kw)
        self._init()

    def delta_weight(self) -> torch.Tensor:
        return self.scale * self.lora_B.weight @ self.lora_A.weight


class LoRAConv2d(_LoRABase):
    """y = conv(x; W) + b + (alpha / r) B conv(x; A) for a frozen ``nn.Conv2d`` (groups = 1)."""

    def __init__(self, base: nn.Conv2d, rank: int = 4, alpha: float | None = None) -> None:
        if base.groups != 1:
            raise ValueError(f"LoRAConv2d: grouped convolutions (groups={base.groups}) are not supported")
        super().__init__(base, rank, float(rank) if alpha is None else alpha)
        kw = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Conv2d(base.in_channels, rank, base.kernel_size, stride=base.stride, padding=base.padding,
                                dilation=base.dilation, bias=False, padding_mode=base.padding_mode, **kw)
        self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False, **kw)
        self._init()

    def delta_weight(self) -> torch.Tensor:
        return self.scale * torch.einsum("or,rikl->oikl", self.lora_B.weight[:, :, 0, 0], self.lora_A.weight)


def _adaptable(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, new)


def lora_layers(model: nn.Module) -> dict[str, _LoRABase]:
    """The adapted layers of ``model`` by module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, _LoRABase)}


def apply_lora(model: nn.Module, rank: int = 4, alpha: float | None = None,
               targets: Sequence[str] | None = None) -> list[str]:
    """Wrap every ``nn.Linear`` and (ungrouped) ``nn.Conv2d`` of ``model`` in place (only those whose
    name is in ``targets`` when given), freeze all base parameters; returns the adapted names.
    ``alpha`` defaults to ``rank`` (scale 1)."""
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank: expected an integer >= 1, got {rank!r}")
    if lora_layers(model):
        raise ValueError("model: already has LoRA adapters (merge_lora or use a fresh model)")
    names = [n for n, m in model.named_modules() if n and _adaptable(m)]
    if targets is not None:
        wanted = set(targets)
        missing = wanted - set(names)
        if missing:
            raise ValueError(f"targets: no Linear/Conv2d layer named {sorted(missing)} in the model")
        names = [n for n in names if n in wanted]
    if not names:
        raise ValueError("model: has no nn.Linear or nn.Conv2d layer to adapt")
    model.requires_grad_(False)
    for n in names:
        base = model.get_submodule(n)
        wrapper = LoRALinear(base, rank, alpha) if isinstance(base, nn.Linear) else LoRAConv2d(base, rank, alpha)
        _set_submodule(model, n, wrapper)
    return names


def adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The LoRA A and B parameters of ``model``."""
    return [p for m in lora_layers(model).values() for p in (*m.lora_A.parameters(), *m.lora_B.parameters())]


def count_trainable(model: nn.Module) -> int:
    """Number of parameters with requires_grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors: ``<layer>.lora_A.weight`` and ``<layer>.lora_B.weight``."""
    out: dict[str, torch.Tensor] = {}
    for n, m in lora_layers(model).items():
        out[f"{n}.lora_A.weight"] = m.lora_A.weight.detach()
        out[f"{n}.lora_B.weight"] = m.lora_B.weight.detach()
    return out


def adapter_metadata(model: nn.Module, extra: dict[str, str] | None = None) -> dict[str, str]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model: has no LoRA adapters")
    first = next(iter(layers.values()))
    meta = {"format": ADAPTER_FORMAT, "rank": str(first.rank), "alpha": repr(first.alpha),
            "targets": json.dumps(list(layers))}
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    return meta


def save_adapter(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write only the adapter tensors (float32) and their metadata to ``path`` (safetensors)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.to(torch.float32).contiguous().cpu() for k, v in adapter_state_dict(model).items()}
    save_file(state, str(path), metadata=adapter_metadata(model, metadata))
    return path


def read_adapter(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of an adapter file written by ``save_adapter``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != ADAPTER_FORMAT:
        raise ValueError(f"adapter: {path} is not a LoRA adapter of this pack (format {meta.get('format')!r})")
    return tensors, meta


def load_adapter(model: nn.Module, path: str | Path) -> nn.Module:
    """Add the adapters saved in ``path`` to ``model`` (in place) and load their weights; returns it."""
    tensors, meta = read_adapter(path)
    targets = json.loads(meta["targets"])
    apply_lora(model, int(meta["rank"]), float(meta["alpha"]), targets=targets)
    layers = lora_layers(model)
    expected = {f"{n}.lora_{ab}.weight" for n in layers for ab in "AB"}
    if set(tensors) != expected:
        raise ValueError(f"adapter: tensors do not match the model's layers (missing "
                         f"{sorted(expected - set(tensors))[:3]}, unexpected {sorted(set(tensors) - expected)[:3]})")
    with torch.no_grad():
        for n, m in layers.items():
            for ab, lin in (("A", m.lora_A), ("B", m.lora_B)):
                t = tensors[f"{n}.lora_{ab}.weight"]
                if tuple(t.shape) != tuple(lin.weight.shape):
                    raise ValueError(f"adapter: {n}.lora_{ab}.weight has shape {tuple(t.shape)}, "
                                     f"the model needs {tuple(lin.weight.shape)}")
                lin.weight.copy_(t.to(lin.weight.dtype))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base layer (W + (alpha / r) B A), in place; returns the model, whose
    state dict is again the base architecture's."""
    for n, m in list(lora_layers(model).items()):
        _set_submodule(model, n, m.merged())
    return model


def average_adapters(paths: Sequence[str | Path]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """One adapter whose update is the mean of the given adapters' updates, exactly:

        Delta W = (1/n) sum_k (alpha_k / r_k) B_k A_k = B A   with A = [A_1; ...; A_n] (rank sum r_k),
        B = [c_1 B_1, ..., c_n B_n], c_k = alpha_k / (r_k n), alpha = rank (scale 1).

    The adapters must adapt the same layers and, when they record them, the same stages and switch
    times (a fine-tune's plan).  Returns (tensors, metadata) in ``save_adapter``'s format; the
    metadata is the first adapter's, with the new rank and alpha and the sources in "averaged"."""
    if len(paths) < 2:
        raise ValueError(f"paths: expected at least two adapters to average, got {len(paths)}")
    read = [read_adapter(p) for p in paths]
    first_meta = read[0][1]
    for p, (_, meta) in zip(paths[1:], read[1:]):
        for key in ("targets", "stages", "switch_times"):
            if meta.get(key) != first_meta.get(key):
                raise ValueError(f"adapter: {p} differs from {paths[0]} in {key!r} ({meta.get(key)!r} vs "
                                 f"{first_meta.get(key)!r}); only adapters of one model and plan can be averaged")
    n = len(read)
    rank = sum(int(meta["rank"]) for _, meta in read)
    out: dict[str, torch.Tensor] = {}
    for name in json.loads(first_meta["targets"]):
        a_parts, b_parts = [], []
        for tensors, meta in read:
            c = float(meta["alpha"]) / (int(meta["rank"]) * n)
            a_parts.append(tensors[f"{name}.lora_A.weight"].to(torch.float32))
            b_parts.append(c * tensors[f"{name}.lora_B.weight"].to(torch.float32))
        out[f"{name}.lora_A.weight"] = torch.cat(a_parts, dim=0).contiguous()
        out[f"{name}.lora_B.weight"] = torch.cat(b_parts, dim=1).contiguous()
    meta = dict(first_meta, rank=str(rank), alpha=repr(float(rank)), averaged=json.dumps([str(p) for p in paths]))
    return out, meta

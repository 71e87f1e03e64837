"""Which data the shipped embedded model was trained on, and held-out / training images of it.

The trainer records its data source in ``train_log.json`` (``config.data``): the dead-leaves generator
(``dead_leaves.py``, exact and unlimited) or the scikit-image photo crops (``data.py``, older models).
Benchmarks, the demo and the samples grid draw their reference images from the same source, so a
metric "against held-out data" always means the model's own data law.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

TRAIN_LOG = Path(__file__).resolve().parent / "train_log.json"
SOURCES = ("dead_leaves", "photos")


def data_source(train_log: Path = TRAIN_LOG) -> str:
    """"dead_leaves" or "photos", from the train log (logs without the field are the photo models)."""
    try:
        rec = json.loads(Path(train_log).read_text())
    except (OSError, ValueError):
        return "photos"
    src = rec.get("config", {}).get("data")
    src = src.get("source") if isinstance(src, dict) else src
    return src if src in SOURCES else "photos"


def heldout_data(n: int, seed: int = 0, source: str | None = None) -> torch.Tensor:
    """``n`` held-out 64 x 64 RGB images in [-1, 1] of the model's data (never seen in training)."""
    if (source or data_source()) == "dead_leaves":
        from . import dead_leaves
        return dead_leaves.heldout_batch(n, seed)
    from . import data
    return data.heldout_crops(n, seed=seed)


def training_data(n: int, seed: int = 0, source: str | None = None) -> torch.Tensor:
    """``n`` 64 x 64 images drawn as in training."""
    if (source or data_source()) == "dead_leaves":
        from . import dead_leaves
        return dead_leaves.training_batch(n, seed)
    from . import data
    return data.training_crops(n, seed=seed)

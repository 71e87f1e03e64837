"""Sample the embedded model and save a 4 x 4 grid of images.

    python -m spectral_progressive.embedded.sample_grid [--steps 50] [--seed 0] [--out PATH]

16 samples from Gaussian noise (fixed generator) with the pack's Euler sampler on
sigmas = linspace(1, 0, steps + 1) (flow frame, t = sigma). Also prints the power-law fit of the
samples' spectrum next to that of held-out data crops, as a quick check of the model's statistics.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..spectral_core.samplers import sample_euler
from ..spectral_core.spectra import measure_spectrum
from .source import heldout_data, training_data
from .model import CHANNELS, IMAGE_SIZE, load_default_model

DEFAULT_OUT = Path(__file__).resolve().parent / "samples_grid.png"


@torch.no_grad()
def generate(n: int = 16, steps: int = 50, seed: int = 0, height: int = IMAGE_SIZE,
             width: int = IMAGE_SIZE, weights: str | Path | None = None) -> torch.Tensor:
    """``n`` samples of the default model (or of ``weights``), (n, 3, height, width), roughly in [-1, 1]."""
    model = load_default_model(path=weights)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, CHANNELS, height, width, generator=g)
    sigmas = torch.linspace(1, 0, steps + 1)
    return sample_euler(model, x, sigmas, disable=True)


def save_grid(images: torch.Tensor, path: str | Path, cols: int = 4, scale: int = 2, pad: int = 2) -> None:
    """Save images (N, 3, H, W) in [-1, 1] as a PNG grid (``cols`` columns, each image upscaled by
    ``scale`` with nearest neighbour, ``pad`` white pixels between)."""
    from PIL import Image

    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    arr = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    H, W = h * scale, w * scale
    grid = Image.new("RGB", (cols * W + (cols + 1) * pad, rows * H + (rows + 1) * pad), "white")
    for i in range(n):
        tile = Image.fromarray(arr[i]).resize((W, H), Image.NEAREST)
        grid.paste(tile, (pad + (i % cols) * (W + pad), pad + (i // cols) * (H + pad)))
    grid.save(path)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, sample, save the grid and print the spectral comparison."""
    p = argparse.ArgumentParser(prog="python -m spectral_progressive.embedded.sample_grid",
                                description="Sample a 4x4 grid from the embedded default model.")
    p.add_argument("--steps", type=int, default=50, help="Euler steps (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (>= 0)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output PNG path")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--weights", default=None, help="weights file (default: the shipped embedded weights)")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0, got {args.seed}")
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    x = generate(16, args.steps, args.seed, weights=args.weights)
    save_grid(x, args.out)
    s = measure_spectrum(x.clamp(-1, 1)).fit
    d = measure_spectrum(heldout_data(256, 0)).fit
    dt = measure_spectrum(training_data(256, 0)).fit
    print(f"samples: A={s.law.A:.3f} beta={s.law.beta:.4f} r2={s.r2:.4f}; range [{float(x.min()):.2f}, "
          f"{float(x.max()):.2f}], mean {float(x.mean()):.3f}, std {float(x.std()):.3f}")
    print(f"held-out crops: A={d.law.A:.3f} beta={d.law.beta:.4f}; training crops: A={dt.law.A:.3f} "
          f"beta={dt.law.beta:.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

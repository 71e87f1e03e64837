"""Natural-image crops for the embedded default model.

The only images available offline are the sample photographs that scikit-image ships. The
colour photographs of real scenes among them are split into a training set and a held-out set
(the held-out image is never seen in training; it serves distribution metrics such as the data
spectrum in ``measure_spectrum.py``).

Every crop is RGB, float32, scaled to [-1, 1], 64 x 64. A crop is taken at a random position and
a random scale: a square region of side ``64 * s`` pixels (``s`` log-uniform in [1, 4]) is cut out
and resized to 64 x 64 with an antialiased bilinear filter, which is the same as downsampling the
whole image by ``s`` and then cropping 64 x 64. Half the crops are flipped horizontally. Crops are
deterministic given a seed (all randomness comes from one ``torch.Generator``).

skimage is used only to load the pixels; everything else is torch.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

CROP_SIZE = 64
MIN_SCALE = 1.0
MAX_SCALE = 4.0

# Colour photographs of real scenes (skimage.data names). Excluded on purpose: colorwheel
# (synthetic), hubble_deep_field (mostly empty black sky), retina (medical fundus image with a
# black border), and every grayscale image (camera, moon, grass, ...), since the model is RGB.
# "cat" is the same picture as "chelsea", so it is excluded from training together with it.
TRAIN_IMAGES: tuple[str, ...] = ("astronaut", "coffee", "rocket", "immunohistochemistry")
HELDOUT_IMAGES: tuple[str, ...] = ("chelsea",)


@functools.lru_cache(maxsize=None)
def _load_image(name: str) -> torch.Tensor:
    """Load one skimage sample image as a (3, H, W) float32 tensor in [-1, 1]."""
    import skimage.data  # imported lazily: only needed to read the pixels

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.ndim != 3 or arr.shape[-1] < 3:
        raise ValueError(f"skimage.data.{name} is not an RGB image (shape {arr.shape})")
    if arr.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name} has dtype {arr.dtype}, expected uint8")
    t = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).to(torch.float32)
    return t / 127.5 - 1.0


def load_images(names: tuple[str, ...]) -> list[torch.Tensor]:
    """Return the named skimage sample images as (3, H, W) float32 tensors in [-1, 1]."""
    return [_load_image(n) for n in names]


def random_crops(images: list[torch.Tensor], n: int, generator: torch.Generator,
                 size: int = CROP_SIZE, min_scale: float = MIN_SCALE,
                 max_scale: float = MAX_SCALE) -> torch.Tensor:
    """Draw ``n`` random crops of ``size`` x ``size`` from ``images``.

    For each crop: an image is chosen with probability proportional to its area, a scale ``s`` is
    drawn log-uniformly in [min_scale, max_scale] (capped so the region fits in the image), a
    square region of side round(size * s) is cut at a uniformly random position and resized to
    ``size`` with antialiased bilinear filtering, then flipped horizontally with probability 1/2.
    Returns an (n, 3, size, size) float32 tensor in [-1, 1].
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not (0 < min_scale <= max_scale):
        raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
    if not images:
        raise ValueError("no images to crop from")
    areas = torch.tensor([float(im.shape[-2] * im.shape[-1]) for im in images], dtype=torch.float64)
    which = torch.multinomial(areas / areas.sum(), n, replacement=True, generator=generator) if n else \
        torch.zeros(0, dtype=torch.int64)
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    out = torch.empty(n, 3, size, size, dtype=torch.float32)
    log_lo, log_hi = np.log(min_scale), np.log(max_scale)
    for i in range(n):
        im = images[int(which[i])]
        H, W = im.shape[-2:]
        s = float(np.exp(log_lo + (log_hi - log_lo) * float(u[i, 0])))
        side = min(max(int(round(size * s)), size), H, W)
        top = int(float(u[i, 1]) * (H - side + 1))
        left = int(float(u[i, 2]) * (W - side + 1))
        region = im[:, top:top + side, left:left + side].unsqueeze(0)
        if side != size:
            region = F.interpolate(region, size=(size, size), mode="bilinear", align_corners=False,
                                   antialias=True)
        crop = region[0]
        if float(u[i, 3]) < 0.5:
            crop = crop.flip(-1)
        out[i] = crop
    return out.clamp_(-1.0, 1.0)


def _generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator seeded with ``seed``."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g


def training_crops(n: int, seed: int) -> torch.Tensor:
    """``n`` random 64 x 64 RGB crops in [-1, 1] from the training images, deterministic in ``seed``.
    Shape (n, 3, 64, 64), float32."""
    return random_crops(load_images(TRAIN_IMAGES), n, _generator(seed))


def heldout_crops(n: int, seed: int) -> torch.Tensor:
    """``n`` random 64 x 64 RGB crops in [-1, 1] from the held-out images only (never used in
    training), deterministic in ``seed``. Shape (n, 3, 64, 64), float32."""
    return random_crops(load_images(HELDOUT_IMAGES), n, _generator(seed))


class CropStream:
    """An endless, seeded stream of training batches (each call to ``next_batch`` continues the
    same generator, so a training run is reproducible from its seed)."""

    def __init__(self, seed: int, images: tuple[str, ...] = TRAIN_IMAGES) -> None:
        self.images = load_images(images)
        self.generator = _generator(seed)

    def next_batch(self, n: int) -> torch.Tensor:
        """The next ``n`` crops of the stream, (n, 3, 64, 64) float32 in [-1, 1]."""
        return random_crops(self.images, n, self.generator)

"""An exact, unlimited data generator with natural-image statistics: the dead-leaves model.

Model (Matheron's dead leaves; Lee, Mumford & Huang 2001). Opaque shapes ("leaves") fall one after
another onto the plane; the image is what is seen from above, so a pixel shows the FIRST leaf that
covers it (earlier leaves occlude later ones). Each leaf has

- a size r (the radius of the disc of the same area, in output pixels) with density
  p(r) ~ r^-3 on [r_min, r_max]: scale invariance between r_min and r_max, which gives a radially
  averaged power spectrum P(w) ~ w^-2 (beta ~ 2) between the frequencies of r_max and r_min;
- a shape: a disc, an ellipse (semi-axes r sqrt(a), r / sqrt(a)) or a rotated rectangle
  (half-sides c r sqrt(a), c r / sqrt(a), c = sqrt(pi) / 2), so every shape has area pi r^2;
  a is log-uniform in [1 / MAX_ASPECT, MAX_ASPECT], the angle uniform;
- a colour: one pixel of a scikit-image colour photograph (downsampled 4x), so the colour
  distribution is that of real photos; plus a small linear shading
  c(x) = colour + s . (x - centre) / r, s ~ N(0, shade^2 I_2), the same on every channel.

Exact sampling on a finite canvas. Only leaves that can touch the H x W canvas matter. A leaf of
size r touches it only if its centre lies in the canvas dilated by e r (e = MAX_EXTENT, the largest
centre-to-boundary distance per unit r), so the leaves that matter form a Poisson process whose
size density is

    q(r) ~ r^-3 (W + 2 e r)(H + 2 e r) = W H r^-3 + 2 e (W + H) r^-2 + 4 e^2 r^-1,

a mixture of three power laws, each sampled by its inverse CDF; the centre is uniform in the
dilated canvas and the order of the leaves is the order of the draws (i.i.d.). A leaf covers on
average the fraction pi E_q[r^2 restricted] / area; after K leaves a pixel is still uncovered with
probability exp(-D), D = K pi int r^-1 dr / int q(r) dr (the optical depth). The renderer draws K
leaves with D = ``depth`` (default 6: 0.25 % of the pixels) and paints the rest with one more
leaf colour (an infinitely large leaf behind everything): the only truncation of the model.

Rendering. Every leaf is rasterised on the ``supersample``-times finer grid inside its own
bounding box (leaves are grouped by box size, one batched tensor op per group), and the nearest
leaf per sub-pixel is kept by a scatter-min of the leaf index into a depth buffer. Leaves are
processed in passes of increasing depth (PASS_DEPTHS); before a later pass, a summed-area table of
the still-uncovered sub-pixels drops every leaf whose box holds none of them (it is hidden behind
the earlier leaves everywhere), which changes nothing in the image and saves time. The colour is
then gathered and the sub-pixels are averaged (box filter = area coverage), which is the
antialiasing: edge pixels get the area-weighted mix of the leaves they straddle.

Everything is torch and deterministic given a ``torch.Generator`` (scatter-min is order
independent). Output: (n, 3, H, W) float32 in [-1, 1]. Held-out sets are different seeds: the
generator is exact, there is nothing to memorise (``heldout_batch`` uses seeds disjoint from
``training_stream``'s).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

IMAGE_SIZE = 64
R_MIN = 1.0  # output pixels
R_MAX = 40.0
MAX_ASPECT = 3.0
RECT_C = math.sqrt(math.pi) / 2.0  # rectangle half-sides c r sqrt(a), c r / sqrt(a): area pi r^2
MAX_EXTENT = max(math.sqrt(MAX_ASPECT), RECT_C * math.sqrt(MAX_ASPECT + 1.0 / MAX_ASPECT))
SHAPE_PROBS = (0.5, 0.25, 0.25)  # disc, ellipse, rectangle
DEPTH = 6.0
SHADE = 0.15
SUPERSAMPLE = 2
PALETTE_IMAGES: tuple[str, ...] = ("astronaut", "coffee", "rocket", "immunohistochemistry", "chelsea")
PASS_DEPTHS: tuple[float, ...] = (0.5, 1.0)  # culling passes (fractions of the leaves)
BOX_EDGES: tuple[int, ...] = (3, 5, 8, 12, 20, 32, 52, 84, 128, 208, 336)  # sub-pixels
RENDER_CHUNK = 64  # larger requests are rendered as consecutive chunks of this many images
HELDOUT_SEED_OFFSET = 1_000_003  # held-out seeds never coincide with training seeds below this


@functools.lru_cache(maxsize=None)
def palette() -> torch.Tensor:
    """Colours of the scikit-image colour photographs: every pixel of each image downsampled 4x
    (antialiased), as an (N, 3) float32 tensor in [-1, 1]."""
    from . import data

    cols = []
    for im in data.load_images(PALETTE_IMAGES):
        small = F.avg_pool2d(im.unsqueeze(0), 4)[0]
        cols.append(small.reshape(3, -1).t())
    return torch.cat(cols).contiguous()


def _mixture_terms(H: int, W: int, r_min: float, r_max: float, e: float) -> tuple[list[float], float]:
    """Weights of the r^-3, r^-2, r^-1 terms of q(r) on [r_min, r_max] and int r^-1 dr."""
    i3 = 0.5 * (r_min ** -2 - r_max ** -2)
    i2 = 1.0 / r_min - 1.0 / r_max
    i1 = math.log(r_max / r_min)
    return [W * H * i3, 2.0 * e * (W + H) * i2, 4.0 * e * e * i1], i1


def leaves_for_depth(size: tuple[int, int], r_min: float = R_MIN, r_max: float = R_MAX,
                     depth: float = DEPTH) -> int:
    """K such that K leaves reach optical depth ``depth``: K = ceil(depth int q / (pi int r^-1))."""
    w, i1 = _mixture_terms(size[0], size[1], r_min, r_max, MAX_EXTENT)
    return int(math.ceil(depth * sum(w) / (math.pi * i1)))


def sample_radii(n: int, generator: torch.Generator, size: tuple[int, int], r_min: float = R_MIN,
                 r_max: float = R_MAX) -> torch.Tensor:
    """``n`` sizes from q(r) ~ r^-3 (W + 2 e r)(H + 2 e r) on [r_min, r_max] (float64).

    Component r^-p is drawn by inverting its CDF with u ~ U(0, 1):
    p=3: r = (r0^-2 - u (r0^-2 - r1^-2))^-1/2;  p=2: r = 1 / (r0^-1 - u (r0^-1 - r1^-1));
    p=1: r = r0 (r1 / r0)^u."""
    w, _ = _mixture_terms(size[0], size[1], r_min, r_max, MAX_EXTENT)
    comp = torch.multinomial(torch.tensor(w, dtype=torch.float64), n, replacement=True, generator=generator)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    r3 = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5
    r2 = 1.0 / (1.0 / r_min - u * (1.0 / r_min - 1.0 / r_max))
    r1 = r_min * (r_max / r_min) ** u
    return torch.where(comp == 0, r3, torch.where(comp == 1, r2, r1))


def render(n: int, generator: torch.Generator, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE), *,
           r_min: float = R_MIN, r_max: float = R_MAX, depth: float = DEPTH, shade: float = SHADE,
           supersample: int = SUPERSAMPLE, shape_probs: tuple[float, float, float] = SHAPE_PROBS
           ) -> torch.Tensor:
    """``n`` dead-leaves images of ``size`` = (H, W), (n, 3, H, W) float32 in [-1, 1].

    All randomness comes from ``generator`` (CPU), so the output is a deterministic function of its
    state. See the module docstring for the model; ``depth`` sets the number of leaves per image
    (``leaves_for_depth``), ``supersample`` the sub-pixel grid (s x s sub-pixels per pixel).
    More than RENDER_CHUNK images are rendered as consecutive chunks drawn from the same generator."""
    H, W = int(size[0]), int(size[1])
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if H < 1 or W < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not (0 < r_min < r_max):
        raise ValueError(f"need 0 < r_min < r_max, got {r_min}, {r_max}")
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    if depth <= 0:
        raise ValueError(f"depth must be > 0, got {depth}")
    if n == 0:
        return torch.zeros(0, 3, H, W)
    if n > RENDER_CHUNK:  # bounded memory: consecutive chunks from the same generator
        kw = dict(r_min=r_min, r_max=r_max, depth=depth, shade=shade, supersample=supersample,
                  shape_probs=shape_probs)
        return torch.cat([render(min(RENDER_CHUNK, n - i), generator, (H, W), **kw)
                          for i in range(0, n, RENDER_CHUNK)])
    S = int(supersample)
    K = leaves_for_depth((H, W), r_min, r_max, depth)
    N = n * K
    e = MAX_EXTENT
    f64 = torch.float64
    # --- the leaves, in falling order (index k = depth order: smaller is in front) ---
    r = sample_radii(N, generator, (H, W), r_min, r_max)
    u = torch.rand(N, 2, generator=generator, dtype=f64)
    cy = -e * r + u[:, 0] * (H + 2 * e * r)
    cx = -e * r + u[:, 1] * (W + 2 * e * r)
    kind = torch.multinomial(torch.tensor(shape_probs, dtype=f64), N, replacement=True, generator=generator)
    log_a = (torch.rand(N, generator=generator, dtype=f64) * 2 - 1) * math.log(MAX_ASPECT)
    a = torch.where(kind == 0, torch.ones_like(log_a), torch.exp(log_a))
    ang = torch.rand(N, generator=generator, dtype=f64) * math.pi
    pal = palette()
    col_idx = torch.randint(0, pal.shape[0], (N + n,), generator=generator)
    shade_vec = torch.randn(N, 2, generator=generator, dtype=f64) * shade
    is_rect = kind == 2
    half1 = torch.where(is_rect, RECT_C * r * a.sqrt(), r * a.sqrt())  # along the rotated u axis
    half2 = torch.where(is_rect, RECT_C * r / a.sqrt(), r / a.sqrt())
    extent = torch.where(is_rect, torch.sqrt(half1 ** 2 + half2 ** 2), torch.maximum(half1, half2))
    # --- rasterise on the fine grid (sub-pixel centres at (i + 0.5) / S output pixels) ---
    Hs, Ws = H * S, W * S
    img = torch.arange(N) // K
    key = torch.arange(N) % K
    buf = torch.full((n * Hs * Ws + 1,), K, dtype=torch.int64)  # last slot: dump for off-canvas
    dump = n * Hs * Ws
    # the leaf's bounding box on the fine grid, clipped to the canvas; leaves outside are dropped
    y0 = torch.floor((cy - extent) * S).clamp_min(0).to(torch.int64)
    y1 = torch.ceil((cy + extent) * S).clamp_max(Hs).to(torch.int64)
    x0 = torch.floor((cx - extent) * S).clamp_min(0).to(torch.int64)
    x1 = torch.ceil((cx + extent) * S).clamp_max(Ws).to(torch.int64)
    edges = torch.tensor(BOX_EDGES, dtype=torch.int64)
    by = torch.bucketize(y1 - y0, edges)  # box sides rounded up to an edge: one tensor op per (by, bx)
    bx = torch.bucketize(x1 - x0, edges)

    def _rasterise(sel: torch.Tensor, iy: int, ix: int) -> None:
        """Scatter-min the keys of leaves ``sel`` (all with box sides in bucket (iy, ix)) into buf."""
        side_y = min(BOX_EDGES[iy], Hs) if iy < len(BOX_EDGES) else Hs
        side_x = min(BOX_EDGES[ix], Ws) if ix < len(BOX_EDGES) else Ws
        top = y0[sel].clamp_max(Hs - side_y)
        left = x0[sel].clamp_max(Ws - side_x)
        ys = top[:, None] + torch.arange(side_y)  # (m, side_y) sub-pixel rows
        xs = left[:, None] + torch.arange(side_x)
        dy = ((ys.to(f64) + 0.5) / S - cy[sel, None]).to(torch.float32)[:, :, None]
        dx = ((xs.to(f64) + 0.5) / S - cx[sel, None]).to(torch.float32)[:, None, :]
        c, s_ = cos[sel][:, None, None], sin[sel][:, None, None]
        pu = (dx * c + dy * s_) * inv1[sel][:, None, None]
        pv = (dy * c - dx * s_) * inv2[sel][:, None, None]
        rect = is_rect[sel][:, None, None]
        inside = torch.where(rect, torch.maximum(pu.abs(), pv.abs()), pu * pu + pv * pv) <= 1
        flat = img[sel, None, None] * (Hs * Ws) + ys[:, :, None] * Ws + xs[:, None, :]
        flat = flat.masked_fill_(~inside, dump)
        vals = key[sel, None, None].expand_as(flat)
        buf.scatter_reduce_(0, flat.reshape(-1), vals.reshape(-1), reduce="amin")

    visible = (y1 > y0) & (x1 > x0)
    nb = len(BOX_EDGES) + 1
    group_all = by * nb + bx
    y0c, y1c, x0c, x1c = y0.clamp(0, Hs), y1.clamp(0, Hs), x0.clamp(0, Ws), x1.clamp(0, Ws)
    cos, sin = torch.cos(ang).to(torch.float32), torch.sin(ang).to(torch.float32)
    inv1, inv2 = (1.0 / half1).to(torch.float32), (1.0 / half2).to(torch.float32)
    start = 0
    for frac in PASS_DEPTHS:
        end = K if frac >= 1.0 else int(math.ceil(K * frac))
        todo = visible & (key >= start) & (key < end)
        if start > 0:  # cull: a leaf behind all of the previous passes only shows where they left holes
            free = torch.zeros(n, Hs + 1, Ws + 1, dtype=torch.int32)
            free[:, 1:, 1:] = (buf[:dump].reshape(n, Hs, Ws) == K).to(torch.int32).cumsum(1).cumsum(2)
            holes = free[img, y1c, x1c] - free[img, y0c, x1c] - free[img, y1c, x0c] + free[img, y0c, x0c]
            todo &= holes > 0
        start = end
        group = torch.where(todo, group_all, torch.full_like(group_all, -1))
        for gid in torch.unique(group).tolist():
            if gid >= 0:
                _rasterise(torch.nonzero(group == gid).flatten(), gid // nb, gid % nb)
    first = buf[:dump].reshape(n, Hs, Ws)  # the front leaf per sub-pixel; K = none (background)
    # --- colours: gather per sub-pixel, add the leaf's shading ---
    # per-leaf table (colour + offset of the shading, shading slopes): colour(y, x) = T0 + Ty y + Tx x
    # with Ty = s_y / r, Tx = s_x / r, T0 = colour - (s_y c_y + s_x c_x) / r; row n K + b = background of b
    sl = (shade_vec / r[:, None]).to(torch.float32)
    off = -(sl[:, 0].double() * cy + sl[:, 1].double() * cx).to(torch.float32)
    table = torch.cat([torch.cat([pal[col_idx[:N]] + off[:, None], sl], 1),
                       torch.cat([pal[col_idx[N:]], torch.zeros(n, 2)], 1)])
    gidx = torch.where(first < K, torch.arange(n)[:, None, None] * K + first, N + torch.arange(n)[:, None, None])
    px = table.index_select(0, gidx.reshape(-1)).reshape(n, Hs, Ws, 5)
    yy = ((torch.arange(Hs, dtype=torch.float32) + 0.5) / S)[None, :, None, None]
    xx = ((torch.arange(Ws, dtype=torch.float32) + 0.5) / S)[None, None, :, None]
    colour = px[..., :3] + px[..., 3:4] * yy + px[..., 4:5] * xx
    out = colour.permute(0, 3, 1, 2)
    if S > 1:
        out = F.avg_pool2d(out, S)
    return out.clamp(-1.0, 1.0).contiguous()


def _generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator seeded with ``seed``."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g


def heldout_batch(n: int, seed: int, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> torch.Tensor:
    """``n`` held-out dead-leaves images, deterministic in ``seed``; drawn from a generator seeded
    with HELDOUT_SEED_OFFSET + seed, which no training stream (seed < HELDOUT_SEED_OFFSET) uses."""
    return render(n, _generator(HELDOUT_SEED_OFFSET + int(seed)), size)


def training_batch(n: int, seed: int, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> torch.Tensor:
    """``n`` dead-leaves images from a generator seeded with ``seed`` (the first batch of the
    training stream of that seed)."""
    return render(n, _generator(seed), size)


class DeadLeavesStream:
    """An endless, seeded stream of dead-leaves batches (each ``next_batch`` continues the same
    generator, so a training run is reproducible from its seed). Same interface as ``data.CropStream``."""

    def __init__(self, seed: int, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> None:
        if not (0 <= int(seed) < HELDOUT_SEED_OFFSET):
            raise ValueError(f"training seed must be in [0, {HELDOUT_SEED_OFFSET}), got {seed}")
        self.size = (int(size[0]), int(size[1]))
        self.generator = _generator(seed)

    def next_batch(self, n: int) -> torch.Tensor:
        """The next ``n`` images of the stream, (n, 3, H, W) float32 in [-1, 1]."""
        return render(n, self.generator, self.size)

"""The embedded default model: a small flow-matching UNet on 64 x 64 RGB natural-image crops.

Flow frame (DESIGN.md): x_t = (1 - t) x0 + t eps, t in [0, 1], t = 1 is pure noise. The network
predicts the velocity v = eps - x0. Wrapped as a k-diffusion denoiser for a CONST-frame model
(sigma = t), it returns the x0 prediction x - sigma * v, so at sigma = 0 it returns its input.

The UNet is fully convolutional (two 2x downsamplings, one self-attention on the lowest grid), so
it runs at any spatial size whose sides are divisible by 4, square or not. Pure torch; no ComfyUI.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_SIZE = 64
CHANNELS = 3
SPATIAL_MULTIPLE = 4  # two 2x downsamplings
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"

DEFAULT_CONFIG: dict = {
    "in_channels": CHANNELS,
    "channels": (32, 64, 128),
    "time_dim": 128,
    "groups": 8,
    "attention": True,
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of flow times ``t`` (shape (B,), values in [0, 1]) -> (B, dim).

    Times are multiplied by 1000 so the lowest frequencies still vary across [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.to(torch.float32) * 1000.0)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added as a per-channel shift in between."""

    def __init__(self, cin: int, cout: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(time_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x`` (B, cin, H, W) conditioned on ``emb`` (B, time_dim)."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over all spatial positions, residual, output projection zero-initialised."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + attention(x) for x of shape (B, C, H, W)."""
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


class FlowUNet(nn.Module):
    """UNet predicting the flow velocity v = eps - x0 from (x_t, t).

    Levels: full size (c0), 1/2 (c1), 1/4 (c2, with optional self-attention). One residual block
    per level on the way down, two at the bottom, one per level on the way up after concatenating
    the skip connection. Stride-2 convolutions down, nearest upsampling + conv up.
    """

    def __init__(self, in_channels: int = CHANNELS, channels: tuple[int, int, int] = (32, 64, 128),
                 time_dim: int = 128, groups: int = 8, attention: bool = True) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv2d(in_channels, c0, 3, padding=1)
        self.down0 = ResBlock(c0, c0, time_dim, groups)
        self.pool0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.down1 = ResBlock(c1, c1, time_dim, groups)
        self.pool1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c2, c2, time_dim, groups)
        self.attn = SelfAttention(c2, groups) if attention else nn.Identity()
        self.mid2 = ResBlock(c2, c2, time_dim, groups)
        self.up1 = nn.Conv2d(c2, c1, 3, padding=1)
        self.dec1 = ResBlock(2 * c1, c1, time_dim, groups)
        self.up0 = nn.Conv2d(c1, c0, 3, padding=1)
        self.dec0 = ResBlock(2 * c0, c0, time_dim, groups)
        self.norm_out = nn.GroupNorm(groups, c0)
        self.conv_out = nn.Conv2d(c0, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity prediction for x of shape (B, C, H, W) (H, W divisible by 4) at times t (B,)."""
        if x.shape[-2] % SPATIAL_MULTIPLE or x.shape[-1] % SPATIAL_MULTIPLE:
            raise ValueError(f"spatial size must be divisible by {SPATIAL_MULTIPLE}, got {tuple(x.shape[-2:])}")
        emb = self.time_mlp(timestep_embedding(t, self.time_dim).to(x.dtype))
        h0 = self.down0(self.conv_in(x), emb)
        h1 = self.down1(self.pool0(h0), emb)
        h = self.mid1(self.pool1(h1), emb)
        h = self.mid2(self.attn(h), emb)
        h = self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec1(torch.cat([h, h1], dim=1), emb)
        h = self.up0(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec0(torch.cat([h, h0], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


class EmbeddedDenoiser(nn.Module):
    """k-diffusion denoiser of a CONST-frame (flow) model: ``forward(x, sigma)`` with sigma = t
    returns the x0 prediction x - sigma * v(x, sigma).

    ``forcing`` (a ``spectral_core.forcing.SpectralForcing``, seed 004): the denoiser is a function of
    the low-passed input alone, D(x, t) = F_t x - t v_theta(F_t x, t), i.e. the velocity is
    v = v_theta(F_t x, t) + (x - F_t x) / t (forcing.py Eq. 3), exactly as a model trained with
    ``train.py --spectral-forcing`` was trained (``load_default_model`` sets it from the weights' metadata)."""

    def __init__(self, net: FlowUNet | None = None, forcing=None) -> None:
        super().__init__()
        self.net = net if net is not None else FlowUNet(**DEFAULT_CONFIG)
        self.forcing = forcing

    def _net(self, x: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
        p = next(self.net.parameters())
        v = self.net(x.to(device=p.device, dtype=p.dtype), sig.to(device=p.device, dtype=p.dtype))
        return v.to(device=x.device, dtype=x.dtype)

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """v = eps - x0 predicted at flow time sigma (with ``forcing``: Eq. 3 of forcing.py), in x's dtype."""
        sig = self._batch_sigma(x, sigma)
        if self.forcing is None:
            return self._net(x, sig)
        return self.forcing.velocity(self._net, x, sig.to(x.dtype))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, **kwargs) -> torch.Tensor:
        """x0 prediction x - sigma * v for x (B, 3, H, W) and sigma (B,) (a scalar is broadcast).
        Extra keyword arguments (cond, model_options, ...) are accepted and ignored: the model is
        unconditional."""
        sig = self._batch_sigma(x, sigma)
        st = sig.to(dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
        if self.forcing is not None:
            fx = self.forcing(x, sig)
            return fx - st * self._net(fx, sig)
        return x - st * self._net(x, sig)

    @staticmethod
    def _batch_sigma(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """sigma as a (B,) tensor on x's device."""
        s = torch.as_tensor(sigma, device=x.device)
        if s.ndim == 0:
            s = s.expand(x.shape[0])
        s = s.reshape(-1)
        if s.shape[0] != x.shape[0]:
            raise ValueError(f"sigma must be a scalar or have one value per sample ({x.shape[0]}), got {s.shape[0]}")
        return s


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


FORCING_METADATA_KEY = "spectral_forcing"  # safetensors metadata of weights trained with --spectral-forcing


def forcing_of(path: str | Path):
    """The ``SpectralForcing`` a weights file was trained with (its metadata, written by ``train.py
    --spectral-forcing``), or None."""
    import json

    from safetensors import safe_open

    from ..spectral_core.forcing import SpectralForcing
    with safe_open(str(path), framework="pt") as f:
        rec = (f.metadata() or {}).get(FORCING_METADATA_KEY)
    return None if rec in (None, "", "null") else SpectralForcing.from_dict(json.loads(rec))


def load_default_model(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                       path: str | Path | None = None) -> EmbeddedDenoiser:
    """Build the default EmbeddedDenoiser and load its shipped weights (embedded/weights.safetensors,
    the EMA weights written by ``train.py``), in eval mode on ``device`` / ``dtype``. Weights trained
    with spectral forcing carry it in their metadata and get it applied at inference (``forcing_of``)."""
    from safetensors.torch import load_file

    p = Path(path) if path is not None else WEIGHTS_PATH
    if not p.is_file():
        raise FileNotFoundError(f"embedded model weights not found at {p}; train them with "
                                "`python -m spectral_progressive.embedded.train --out <dir>`")
    model = EmbeddedDenoiser(forcing=forcing_of(p))
    state = load_file(str(p))
    model.net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()

"""Plain k-diffusion-protocol samplers: ``sampler(model, x, sigmas, extra_args, callback, disable)``.

``model(x, sigma_batch, **extra_args)`` returns the denoised prediction D(x, sigma) of x_0.
Both integrate the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma, which holds in the
variance-exploding frame (x = x_0 + sigma eps) and in the flow frame (x = (1-sigma) x_0 + sigma eps)
alike, so they run unchanged for EPS and CONST models, as ComfyUI's samplers do.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

Denoiser = Callable[..., torch.Tensor]


def progress_bar(total: int, disable: bool | None) -> Any:
    """The one console progress bar of the core: a tqdm bar over ``total`` steps when ``disable`` is
    False (as ComfyUI's samplers), else None.  Call ``update(1)`` per step and ``close()`` at the end."""
    if disable is not False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with ComfyUI and most installs
        return None
    return tqdm(total=total)


def _steps(n: int, disable: bool | None) -> Iterator[int]:
    bar = progress_bar(n, disable)
    for i in range(n):
        yield i
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()


def _batch_sigma(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return sigma * x.new_ones([x.shape[0]])


@torch.no_grad()
def sample_euler(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict[str, Any] | None = None,
                 callback: Callable[[dict], None] | None = None, disable: bool | None = None) -> torch.Tensor:
    """Euler: x_{n+1} = x_n + (sigma_{n+1} - sigma_n) (x_n - D_n) / sigma_n (DDIM in either frame)."""
    extra_args = {} if extra_args is None else extra_args
    for i in _steps(len(sigmas) - 1, disable):
        denoised = model(x, _batch_sigma(x, sigmas[i]), **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_ab2(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict[str, Any] | None = None,
               callback: Callable[[dict], None] | None = None, disable: bool | None = None) -> torch.Tensor:
    """Second-order Adams-Bashforth (a linear multistep method) with variable steps.

    d_n = (x_n - D_n) / sigma_n, h_n = sigma_{n+1} - sigma_n, r = h_n / h_{n-1}:
    x_{n+1} = x_n + h_n ((1 + r/2) d_n - (r/2) d_{n-1});  the first step is Euler.
    """
    extra_args = {} if extra_args is None else extra_args
    d_prev, h_prev = None, None
    for i in _steps(len(sigmas) - 1, disable):
        denoised = model(x, _batch_sigma(x, sigmas[i]), **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        d = (x - denoised) / sigmas[i]
        h = sigmas[i + 1] - sigmas[i]
        if d_prev is None:
            x = x + h * d
        else:
            r = h / h_prev
            x = x + h * ((1 + r / 2) * d - (r / 2) * d_prev)
        d_prev, h_prev = d, h
    return x

"""SpectralCalibrate: fit the spectrum prior from the user's own model on the user's own latent.

The measurement and the fit are ``spectral_core.calibration.calibrate`` (seed 001 App. B passthrough error,
inverted through Lemma 1 / Prop. 1); this node only builds the k-diffusion denoiser from the MODEL (through
ComfyUI's own sampling path, so patches, LoRAs and the conditioning apply), caches the result per model and
latent, and returns it as the pack's SPECTRUM (the input DeltaSchedule's probe_spectrum takes).
"""
from __future__ import annotations

import weakref
from collections import OrderedDict

import torch
from comfy_api.latest import io

from ..spectral_core.calibration import Calibration, calibrate
from ..spectral_core.frames import get_frame
from ..spectral_core.validation import check_open_unit, fail
from . import inputs, model_adapter
from .types import CATEGORY, Spectrum

T_LOW, T_HIGH = 0.3, 0.95  # the measured flow times: n points evenly in [T_LOW, T_HIGH]
_CACHE: "OrderedDict[tuple, tuple[weakref.ref, Calibration]]" = OrderedDict()
_CACHE_SIZE = 8


def calibration_times(n: int) -> tuple[float, ...]:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        fail("times", "a positive whole number of flow times", n)
    if n == 1:
        return (0.85,)
    return tuple(float(v) for v in torch.linspace(T_LOW, T_HIGH, n, dtype=torch.float64))


def _fingerprint(x: torch.Tensor) -> tuple[float, float]:
    xd = x.detach().to(torch.float64)
    return float(xd.sum()), float((xd * xd).sum())


def _run(model, positive, user_latent: torch.Tensor, x0: torch.Tensor, times: tuple[float, ...], seed: int,
         frame: str) -> Calibration:
    """Runs ``calibrate`` inside ComfyUI's sampling path: a one-off KSAMPLER whose function receives the
    k-diffusion denoiser (cfg 1: the positive conditioning only) and calls the library with it."""
    import comfy.sample
    import comfy.samplers

    result: dict = {}

    def sampler_fn(kmodel, x, sigmas, extra_args=None, callback=None, disable=None):
        extra = extra_args or {}
        result["cal"] = calibrate(lambda xx, ss: kmodel(xx, ss, **extra), x0.to(x.device, x.dtype), times,
                                  frame=frame, seed=seed)
        return x

    sampler = comfy.samplers.KSAMPLER(sampler_fn)
    s_hi = float(get_frame(frame).sigma_of_t(max(times)))
    sigmas = torch.tensor([s_hi, 0.0])
    comfy.sample.sample_custom(model, torch.zeros_like(user_latent), 1.0, sampler, sigmas, positive, positive,
                               user_latent, disable_pbar=True, seed=seed)
    if "cal" not in result:
        fail("model", "a model ComfyUI can sample", "sampling did not reach the calibration")
    return result["cal"]


def _cached(model, positive, x: torch.Tensor, ts: tuple[float, ...], seed: int) -> Calibration:
    """The calibration of ``model`` on latent ``x``: from the cache (same network, latent and settings) or
    measured now (``_run``); errors name the latent."""
    bm = model_adapter.base_model(model)
    dm = getattr(bm, "diffusion_model", bm)
    key = (id(dm), id(model), tuple(x.shape), ts, seed, _fingerprint(x))
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is dm:
        _CACHE.move_to_end(key)
        return hit[1]
    try:
        cal = _run(model, positive, x, model_adapter.clean_to_flow(model, x), ts, seed, model_adapter.frame_of(model))
    except ValueError as exc:
        raise ValueError(f"latent: {exc}") from None
    _CACHE[key] = (weakref.ref(dm), cal)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return cal


class SpectralCalibrate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpectralCalibrate",
            display_name="Spectral Calibrate (few-step)",
            category=CATEGORY,
            description="Calibrates the spectrum prior from YOUR model on YOUR latent: noises the latent at a few "
                        "flow times, measures per frequency band how far the model's prediction departs from pure "
                        "noise (seed 001 App. B), and fits P(w) = A w^-beta so that Prop. 1 reproduces the measured "
                        "activation times. Useful for distilled / few-step models whose behaviour differs from the "
                        "presets. Connect the spectrum to DeltaSchedule's probe_spectrum. Cached per model and latent.",
            inputs=[io.Model.Input("model", tooltip="The model to calibrate (the one you sample with)."),
                    io.Conditioning.Input("positive", tooltip="Conditioning for the model calls (the prompt you use)."),
                    io.Latent.Input("latent", tooltip="A CLEAN latent (e.g. a VAE-encoded image of the kind you "
                                                      "generate), not an empty latent."),
                    io.Float.Input("delta", default=0.01, min=0.0001, max=0.5, step=0.001,
                                   tooltip="Tolerance delta for the switch reported in the summary."),
                    io.Int.Input("times", default=4, min=1, max=16,
                                 tooltip=f"How many flow times to measure (evenly in [{T_LOW}, {T_HIGH}]); "
                                         "one model call each."),
                    io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF,
                                 tooltip="Seed of the calibration noise (the result is deterministic per seed).")],
            outputs=[Spectrum.Output("spectrum", tooltip="The calibrated spectrum (A, beta); plug into DeltaSchedule."),
                     io.String.Output("summary", tooltip="Fitted A, beta and the switch time/sigma at scale 0.5.")],
        )

    @classmethod
    def execute(cls, model, positive, latent, delta=0.01, times=4, seed=0) -> io.NodeOutput:
        inputs.model(model)
        inputs.conditioning(positive, "positive")
        x = inputs.latent(latent, "latent")["samples"]
        model_adapter.check_latent(model, x, "latent")
        if x.numel() == 0:
            fail("latent", "a non-empty latent", tuple(x.shape))
        inputs.finite(x, "latent")
        delta = check_open_unit(delta, "delta")
        cal = _cached(model, positive, x, calibration_times(int(times)), int(seed))
        law = cal.law
        value = {"law": law, "channel_laws": [law] * int(x.shape[1]), "r2": cal.fit.r2, "size": cal.size,
                 "freqs": cal.freqs.tolist(), "power": cal.band_power.tolist()}
        return io.NodeOutput(value, cal.summary(delta, 0.5))

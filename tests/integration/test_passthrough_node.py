"""SpectralPassthroughSweep in real ComfyUI (seed 001 App. B as a diagnostic node), tiny models of two
families and frames (FLUX: CONST, SD1.5: EPS) decoded by ComfyUI's own TAEF1 / TAESD with random weights.

* the plain run of the sweep is ComfyUI's KSampler + VAEDecode (same seed, steps, sampler), pixel for pixel
  below the label strip; the network calls are 1 + len(deltas) runs of ``steps`` calls;
* a vanishing delta is the plain run (change 0), a large one changes the result, and changes grow with delta;
* batches and non-square latents run; the tolerated delta feeds DeltaSchedule with SpectralCalibrate's
  spectrum (the few-step calibration path); bad deltas, video and masked latents get errors naming the input.
The math (closed form, Prop. 1 bound) is pinned on exact Gaussian models in tests/unit/test_passthrough.py."""
from __future__ import annotations

import os
import re

import pytest
import torch

from . import harness as H
from .test_bad_input import assert_node_error
from .test_sampling import ran_ok

H.require_comfyui()

from ..browser import tiny_examples  # noqa: E402

VAE = {"flux": "taef1", "sd15": "taesd"}
STEPS = 6


@pytest.fixture(scope="module")
def env(comfy):
    """Random-weight TAESD / TAEF1 in a vae_approx folder (ComfyUI's own tiny VAE classes)."""
    import folder_paths
    vae_dir = os.path.join(comfy.root, "vae_approx")
    if not os.path.isdir(vae_dir):
        tiny_examples.write_taesd(vae_dir)
    folder_paths.add_model_folder_path("vae_approx", vae_dir)
    return comfy


def _sweep(fam_name: str, deltas: str, *, h: int = 16, w: int = 16, batch: int = 1, plain: bool = True,
           sampler: str = "euler", scheduler: str = "simple", steps: int = STEPS, latent=None, **kw):
    """model -> recorder -> SpectralPassthroughSweep (+ the same run through KSampler + VAEDecode)."""
    wf = H.workflow(H.FAMILIES[fam_name])
    g = wf.graph
    lat = latent if latent is not None else H.empty_latent(g, wf.fam, h, w, batch)
    vae = g.add("VAELoader", vae_name=VAE[fam_name])
    args = dict(seed=5, steps=steps, cfg=2.0, sampler_name=sampler, scheduler=scheduler)
    inputs = dict(deltas=deltas, spectrum="auto", transform="dct", tolerance=0.05)
    inputs.update(kw)
    sw = g.add("SpectralPassthroughSweep", model=wf.recorded, positive=wf.pos, negative=wf.neg, latent=lat, vae=vae,
               **args, **inputs)
    wf.nodes["sweep"] = sw
    if plain:
        ks = g.add("KSampler", model=wf.model, positive=wf.pos, negative=wf.neg, latent_image=lat, denoise=1.0, **args)
        wf.nodes["plain"] = g.add("VAEDecode", samples=ks, vae=vae)
        g.add("PreviewImage", images=wf.nodes["plain"])
    g.add("PreviewImage", images=sw[0])
    return wf


def _changes(text: str) -> dict[float, float]:
    return {float(d): float(c) for d, c in re.findall(r"delta ([0-9.e+-]+): latent change ([0-9.e+-]+)", text)}


@pytest.mark.parametrize("fam", ["flux", "sd15"])
def test_sweep_is_plain_first_then_one_run_per_delta(env, fam):
    deltas = "1e-9, 0.05, 0.3"
    wf = _sweep(fam, deltas)
    r = ran_ok(env.run(wf.prompt()))
    images = r.out(wf.nodes["sweep"], 0)
    plain = r.out(wf.nodes["plain"], 0)
    assert images.shape == (4, 128, 128, 3) and bool(images.isfinite().all())
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # the plain run is KSampler's own result; labels only cover the top strip
    strip = 40
    assert torch.equal(images[0, strip:], plain[0, strip:])
    assert float((images[0, :10] - plain[0, :10]).abs().max()) > 0.1, "the label is printed on the image"
    calls = env.calls(wf.key)
    # 4 runs x STEPS calls, each with the positive and the negative row (cfg 2)
    assert sum(c["shape"][0] for c in calls) == 4 * STEPS * 2, [c["shape"] for c in calls]
    ch = _changes(r.out(wf.nodes["sweep"], 1))
    assert list(ch) == [1e-9, 0.05, 0.3], r.out(wf.nodes["sweep"], 1)
    assert ch[1e-9] == 0.0, "a vanishing delta replaces only the start, where the state already is the noise"
    assert torch.equal(images[1, strip:], images[0, strip:])
    assert 0.0 < ch[0.05] < ch[0.3], ch
    assert float((images[3, strip:] - images[0, strip:]).abs().max()) > 1e-3
    assert r.out(wf.nodes["sweep"], 2) == pytest.approx(0.05 if ch[0.05] <= 0.05 else 1e-9)


def test_batch_and_non_square_latents(env):
    wf = _sweep("flux", "0.01, 0.3", h=16, w=24, batch=2, plain=False, sampler="dpmpp_2m", steps=12)
    r = ran_ok(env.run(wf.prompt()))
    images = r.out(wf.nodes["sweep"], 0)
    assert images.shape == (6, 128, 192, 3) and bool(images.isfinite().all())  # 3 runs x 2 images
    ch = _changes(r.out(wf.nodes["sweep"], 1))
    assert set(ch) == {0.01, 0.3} and 0.0 <= ch[0.01] < ch[0.3], ch


def test_progress_bar_spans_every_run(env):
    wf = _sweep("sd15", "0.01, 0.1", plain=False)
    r = ran_ok(env.run(wf.prompt()))
    total = 3 * STEPS
    mine = [(v, t) for v, t, _ in r.progress if t == total]
    assert [v for v, _ in mine] == list(range(1, total + 1)), r.progress


def test_tolerated_delta_feeds_deltaschedule_with_the_calibrated_spectrum(env):
    """Few-step calibration path: SpectralCalibrate's spectrum drives the sweep's activation times, and the
    sweep's tolerated delta (FLOAT) is DeltaSchedule's delta next to the same spectrum."""
    wf = _sweep("flux", "0.001, 0.3", plain=False, tolerance=10.0)
    g = wf.graph
    clean = {"__value__": {"samples": torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(3)) * 0.5}}
    cal = g.add("SpectralCalibrate", model=wf.model, positive=wf.pos, latent=clean, delta=0.01, times=2, seed=0)
    g.nodes[wf.nodes["sweep"].id]["inputs"]["probe_spectrum"] = cal[0].link()
    sched = H.schedule_node(g, probe_spectrum=cal[0], delta=wf.nodes["sweep"][2])
    out = g.add("SpectralProgressiveSampler", model=wf.model, seed=0, steps=STEPS, cfg=2.0, sampler_name="euler",
                scheduler="simple", positive=wf.pos, negative=wf.neg, latent_image=H.empty_latent(g, wf.fam, 16, 16),
                schedule=sched[0], denoise=1.0)
    wf.keep(out)
    r = ran_ok(env.run(wf.prompt()))
    assert r.out(wf.nodes["sweep"], 2) == pytest.approx(0.3)  # tolerance 10: the largest swept delta
    assert "delta=0.3" in r.out(sched, 2), r.out(sched, 2)


@pytest.mark.parametrize("deltas,why", [("", "deltas"), ("0.01, abc", "deltas"), ("0.5, 1.5", "deltas"),
                                        ("0.01, 0.01", "deltas"), (",".join(["0.01"] * 13), "deltas")])
def test_bad_deltas_are_refused_before_sampling(env, deltas, why):
    wf = _sweep("flux", deltas, plain=False)
    r = env.run(wf.prompt())
    assert_node_error(env, r, "SpectralPassthroughSweep", f"{why}: expected", wf.key)


def test_video_and_masked_latents_are_refused(env):
    wf = _sweep("flux", "0.01", plain=False)
    g = wf.graph
    g.nodes[wf.nodes["sweep"].id]["inputs"]["latent"] = g.add("EmptyHunyuanLatentVideo", width=128, height=128,
                                                               length=9, batch_size=1).link()
    assert_node_error(env, env.run(wf.prompt()), "SpectralPassthroughSweep", "latent: expected", wf.key)
    wf = _sweep("flux", "0.01", plain=False)
    g = wf.graph
    lat = g.nodes[wf.nodes["sweep"].id]["inputs"]["latent"]
    mask = g.add("SolidMask", value=1.0, width=128, height=128)
    masked = g.add("SetLatentNoiseMask", samples=lat, mask=mask)
    g.nodes[wf.nodes["sweep"].id]["inputs"]["latent"] = masked.link()
    assert_node_error(env, env.run(wf.prompt()), "SpectralPassthroughSweep", "noise mask", wf.key)

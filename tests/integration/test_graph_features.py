"""Issue 4 "Must work", graph features: img2img (denoise 0.6), noise-mask inpainting, a
concat-conditioned model (SD1.5-style inpainting UNet, 9 input channels), and a model-sampling
patch node in front (ModelSamplingSD3 / ModelSamplingFlux / ModelSamplingDiscrete), each with the
SAMPLER formulation (SamplerCustomAdvanced and the all-in-one) and the MODEL patch (KSampler).

The source latents of img2img and inpainting are made in the same graph by a plain KSampler
(txt2img on the same tiny model), so every workflow is built from ComfyUI's own nodes.
"""
from __future__ import annotations

import pytest
import torch

from . import harness as H
from .test_sampling import FORMULATIONS, assert_progressive, check_calls, ran_ok, user_sigmas

H.require_comfyui()


def source_latent(wf: H.Workflow, h: int, w: int, seed: int = 3):
    """A model-made latent (plain KSampler txt2img, not recorded) to start img2img / inpainting from."""
    g = wf.graph
    empty = H.empty_latent(g, wf.fam, h, w)
    src = g.add("KSampler", model=wf.model, seed=seed, steps=4, cfg=1.0, sampler_name="euler", scheduler="simple",
                positive=wf.pos, negative=wf.neg, latent_image=empty, denoise=1.0)
    wf.nodes["source"] = src
    return src


def block_mask(g: H.Graph, h: int, w: int, y0: int, x0: int, bh: int, bw: int):
    """A pixel-space MASK (latent size x 8) that is 1 on a latent-aligned block and 0 elsewhere."""
    zero = g.add("SolidMask", value=0.0, width=w * 8, height=h * 8)
    one = g.add("SolidMask", value=1.0, width=bw * 8, height=bh * 8)
    return g.add("MaskComposite", destination=zero, source=one, x=x0 * 8, y=y0 * 8, operation="add")


def region(x: torch.Tensor, y0: int, x0: int, bh: int, bw: int) -> torch.Tensor:
    m = torch.zeros(x.shape[-2:], dtype=torch.bool)
    m[y0:y0 + bh, x0:x0 + bw] = True
    return m


# ------------------------------------------------------------------------------------------------
# img2img, denoise 0.6
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_img2img_default_schedule_skips_the_low_stage(comfy, fam, path):
    """With the default schedule (delta 0.01) the tiny latent's low stage ends at t* ~ 0.99: a
    denoise-0.6 start enters below it, so the run is the plain full-size run (plan and result)."""
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    src = source_latent(wf, 16, 16)
    out = wf.sample(path, src, schedule="default", steps=10, denoise=0.6, seed=5)
    plain = wf.keep(wf.sample("plain", src, schedule=None, steps=10, denoise=0.6, seed=5, record=False))
    wf.finish(out)
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=10, denoise=0.6)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2, schedule="default", entry="signal")
    assert len(plan.stages) == 1 and tuple(plan.stages[0].size) == (16, 16), plan.summary()
    if path != "patch":
        assert any("skipped" in n for n in plan.notes), plan.notes
    a, b = r.out(out)["samples"], r.out(plain)["samples"]
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_img2img_enters_the_low_stage_by_contraction(comfy, fam, path):
    """A manual switch late enough (step 5 of 10) keeps the low stage: the sampler enters it at the
    contracted time t0 kappa' (formulation 1); the patch contracts while t > T_0 (formulation 2)."""
    from spectral_progressive.spectral_core.expansion import contracted_time
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    src = source_latent(wf, 16, 16)
    schedule = {"mode": "manual", "manual_switch": "5", "manual_unit": "step"}
    wf.finish(wf.sample(path, src, schedule=schedule, steps=10, denoise=0.6, seed=5))
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=10, denoise=0.6)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2, schedule=schedule, entry="signal")
    assert_progressive(plan, (16, 16), f)
    t0 = H.t_of_sigma(f.frame, float(sig[0]))
    if path != "patch":
        assert plan.entry == "signal"
        assert plan.stages[0].times[0] == pytest.approx(contracted_time(t0, plan.stages[0].growth), rel=1e-6)
    calls = r.ui[wf.report.id]["calls"]
    assert tuple(calls[0]["shape"][-2:]) == tuple(plan.stages[0].size)  # the run starts in the low stage
    out = r.out(wf.out)["samples"]
    assert bool(torch.isfinite(out).all()) and tuple(out.shape[-2:]) == (16, 16)


# ------------------------------------------------------------------------------------------------
# noise-mask inpainting
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_noise_mask_inpainting_preserves_the_unmasked_region(comfy, fam, path):
    f = H.FAMILIES[fam]
    h, w, blk = 16, 20, (4, 6, 8, 8)
    wf = H.workflow(f)
    src = source_latent(wf, h, w)
    masked = wf.graph.add("SetLatentNoiseMask", samples=src, mask=block_mask(wf.graph, h, w, *blk))
    wf.finish(wf.sample(path, masked, schedule="manual", steps=10, seed=11, sampler="dpmpp_2m"))
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=10)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2)
    assert_progressive(plan, (h, w), f)
    out, source = r.out(wf.out)["samples"], r.out(wf.nodes["source"])["samples"]
    assert out.shape == source.shape
    inside = region(out, *blk)
    keep = ~inside
    scale = float(source.abs().max())
    torch.testing.assert_close(out[..., keep], source[..., keep], rtol=0, atol=1e-5 * scale)
    assert (out[..., inside] - source[..., inside]).abs().max() > 1e-2 * scale  # the masked block was resampled


# ------------------------------------------------------------------------------------------------
# concat-conditioned model: SD1.5-style inpainting UNet (in_channels 9: latent + mask + masked image)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
def test_concat_inpaint_model_gets_stage_size_concat(comfy, path):
    f = H.FAMILIES["sd15_inpaint"]
    h, w, blk = 16, 16, (2, 4, 8, 10)
    wf = H.workflow(f)
    src = source_latent(wf, h, w)
    masked = wf.graph.add("SetLatentNoiseMask", samples=src, mask=block_mask(wf.graph, h, w, *blk))
    wf.finish(wf.sample(path, masked, schedule="manual", steps=10, seed=2))
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=10)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2)
    assert_progressive(plan, (h, w), f)
    calls = r.ui[wf.report.id]["calls"]
    # every call got the model's concat (mask 1 ch + masked image 4 ch) at the call's own size
    for c in calls:
        assert c["concat"] is not None, "the inpainting model must get its concat condition"
        assert c["concat"][1] == 5 and c["concat"][-2:] == c["shape"][-2:] and c["concat"][0] == c["shape"][0], c
    assert any(tuple(c["shape"][-2:]) == tuple(plan.stages[0].size) for c in calls)
    # ... resized (band-limited, mean-preserving), not cropped: the mask channel covers the same 80 of 256
    # latent pixels at every size (a top-left 8x8 crop of the full-size concat would cover 24 of 64)
    for c in calls:
        assert c["concat_mean"][0] == pytest.approx(80 / 256, abs=1e-4), c
        assert c["concat_mean"][1:] == pytest.approx(calls[-1]["concat_mean"][1:], rel=1e-3, abs=1e-4), c
    out, source = r.out(wf.out)["samples"], r.out(wf.nodes["source"])["samples"]
    keep = ~region(out, *blk)
    torch.testing.assert_close(out[..., keep], source[..., keep], rtol=0, atol=1e-5 * float(source.abs().max()))


# ------------------------------------------------------------------------------------------------
# a model-sampling patch node in front
# ------------------------------------------------------------------------------------------------

MODEL_PATCHES = {
    "sd3": {"class_type": "ModelSamplingSD3", "shift": 6.0},
    "wan": {"class_type": "ModelSamplingSD3", "shift": 2.0},
    "flux": {"class_type": "ModelSamplingFlux", "max_shift": 2.5, "base_shift": 0.5, "width": 128, "height": 128},
    "sd15": {"class_type": "ModelSamplingDiscrete", "sampling": "v_prediction", "zsnr": True},
}


@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_model_sampling_patch_in_front(comfy, fam, path):
    """The plan follows the patched model's sigmas (shift / zero-terminal-SNR), not the checkpoint's."""
    f = H.FAMILIES[fam]
    wf = H.txt2img(f, path, model_patch=MODEL_PATCHES[fam], steps=10, h=16, w=12)
    loader = H.Ref(next(k for k, v in wf.graph.nodes.items() if v["class_type"] in ("UNETLoader", "SpectralTestModelLoader")))
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=10)
    unpatched = user_sigmas(comfy, r.out(loader), steps=10)
    assert not torch.allclose(sig, unpatched), "the patch node must change the sigmas"
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2)
    assert_progressive(plan, (16, 12), f)
    assert bool(torch.isfinite(r.out(wf.out)["samples"]).all())


@pytest.mark.parametrize("path", FORMULATIONS)
def test_inpainting_with_differential_diffusion_in_front(comfy, path):
    """A denoise_mask_function (DifferentialDiffusion) is applied at each stage's size too."""
    f = H.FAMILIES["sd3"]
    h, w, blk = 16, 16, (4, 4, 8, 8)
    wf = H.workflow(f, model_patch={"class_type": "DifferentialDiffusion", "strength": 1.0})
    src = source_latent(wf, h, w)
    masked = wf.graph.add("SetLatentNoiseMask", samples=src, mask=block_mask(wf.graph, h, w, *blk))
    wf.finish(wf.sample(path, masked, schedule="manual", steps=10, seed=11))
    r = ran_ok(comfy.run(wf.prompt()))
    plan = check_calls(comfy, r, wf, path, sigmas=user_sigmas(comfy, r.out(wf.model), steps=10), rows=2)
    assert_progressive(plan, (h, w), f)
    out, source = r.out(wf.out)["samples"], r.out(wf.nodes["source"])["samples"]
    keep = ~region(out, *blk)
    torch.testing.assert_close(out[..., keep], source[..., keep], rtol=0, atol=1e-5 * float(source.abs().max()))
    assert bool(torch.isfinite(out).all())

"""Issue 13 item 3 "Families": tiny random-weight models of real architectures (built with ComfyUI's own
classes, tiny_models.py) for SDXL (EPS UNet with adm), SD3.5 (MMDiT-X), Qwen-Image, Z-Image (Lumina 2),
HunyuanVideo, LTX-Video and WAN 2.2 (TI2V-5B; and the A14B two-expert setup), each through the three
paths (SamplerSpectralProgressive in SamplerCustomAdvanced, the all-in-one SpectralProgressiveSampler,
the SpectralProgressiveModel patch in front of KSampler), txt2img and img2img at denoise 0.6.

What is checked, from the network calls recorded by the test node SpectralTestCallRecorder:
* the pack's model adapter reads the family right: frame (CONST / EPS), spatial multiple (patch size or
  2^(UNet levels - 1)), spectrum preset, latent rank and channels (harness.FAMILIES is the truth);
* the calls are exactly the plan the pack's planner makes with that frame / multiple / preset (so a wrong
  frame shows up as wrong sigmas, a wrong multiple as wrong sizes);
* the output is the requested size; the model compute (spatial tokens of the recorded calls) is never
  above the plain run's steps x H x W; the first call is below full size where a low stage is planned.

A family whose class (or an option of it) the running ComfyUI lacks is skipped with the reason
(tiny_models.unsupported).  ``test_token_ratio_s2`` prints one default S=2 (delta 0.01) run's measured
token ratio per family (plain tokens / recorded tokens) and the planned ratio at the family's real latent
size; ``pytest -s`` shows the lines (FAMILY-RATIO ...).
"""
from __future__ import annotations

import pytest
import torch

from . import harness as H
from .test_graph_features import source_latent
from .test_sampling import FORMULATIONS, assert_progressive, check_calls, ran_ok, user_sigmas

H.require_comfyui()

FAMS = H.NEW_FAMILIES
FRAMES = 2  # latent frames of the video families (the frame axis is never resized)


def family(comfy, name: str) -> H.Family:
    f = H.FAMILIES[name]
    why = comfy.tiny.unsupported(f.name)
    if why:
        pytest.skip(f"{name}: {why}")
    return f


def want_shape(f: H.Family, h: int, w: int, batch: int = 1) -> tuple:
    if f.video:
        return (batch, f.channels, FRAMES, h, w)
    if f.latent_5d:
        return (batch, f.channels, 1, h, w)
    return (batch, f.channels, h, w)


def spatial_tokens(calls: list[dict]) -> int:
    return sum(c["shape"][-2] * c["shape"][-1] for c in calls)


def assert_cost_and_sizes(calls: list[dict], steps: int, h: int, w: int, low_planned: bool) -> None:
    assert calls, "the network was never called"
    sizes = [tuple(c["shape"][-2:]) for c in calls]
    assert sizes[-1] == (h, w), f"the last network call is not at full size: {sizes}"
    assert spatial_tokens(calls) <= steps * h * w, f"calls {sizes} cost more than {steps} plain steps at {h}x{w}"
    if low_planned:
        assert sizes[0][0] < h and sizes[0][1] < w, f"a low stage is planned but the first call is full size: {sizes}"


# ------------------------------------------------------------------------------------------------
# the model adapter
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fam", FAMS + ("wan22_high",))
def test_adapter_reads_frame_multiple_preset_and_latent(comfy, fam):
    from spectral_progressive.nodes import model_adapter as A
    f = family(comfy, fam)
    mp = comfy.tiny.build(f.name)
    assert A.frame_of(mp) == f.frame
    assert A.spatial_multiple_of(mp) == f.multiple
    assert A.auto_spectrum(mp) == H.auto_spectrum(f)
    fmt = mp.model.latent_format
    assert fmt.latent_channels == f.channels
    assert getattr(fmt, "latent_dimensions", 2) == (3 if (f.video or f.latent_5d) else 2)
    A.check_latent(mp, torch.zeros(want_shape(f, 8, 8)))  # the family's own latent passes
    print(f"FAMILY-ADAPTER {fam}: class {type(mp.model.model_config).__name__}, frame {A.frame_of(mp)}, "
          f"multiple {A.spatial_multiple_of(mp)}, latent {A.latent_format_name(mp)}, preset {A.auto_spectrum(mp)}, "
          f"params {sum(p.numel() for p in mp.model.diffusion_model.parameters())}")


# ------------------------------------------------------------------------------------------------
# txt2img / t2v and img2img / v2v at denoise 0.6 through the three paths
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", FAMS)
def test_txt2img(comfy, fam, path):
    f = family(comfy, fam)
    h, w, steps = 16, 16, 8
    wf = H.txt2img(f, path, h=h, w=w, frames=FRAMES, steps=steps, cfg=2.0)  # manual schedule: switch at step 4
    r = ran_ok(comfy.run(wf.prompt()))
    out = r.out(wf.out)["samples"]
    assert tuple(out.shape) == want_shape(f, h, w) and bool(torch.isfinite(out).all())
    sig = user_sigmas(comfy, r.out(wf.model), steps=steps)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2)
    assert_progressive(plan, (h, w), f)
    calls = r.ui[wf.report.id]["calls"]
    assert_cost_and_sizes(calls, steps, h, w, low_planned=True)
    if f.video:
        assert all(c["shape"][2] == FRAMES for c in calls)


@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", FAMS)
def test_img2img_denoise_06(comfy, fam, path):
    """A model-made source latent resampled at denoise 0.6 with a low stage that is still open at the
    start (switch at step 5 of 10): the run enters it by contraction, then finishes at full size."""
    f = family(comfy, fam)
    h, w, steps = 16, 16, 10
    wf = H.workflow(f)
    src = source_latent(wf, h, w)  # (video: 3 latent frames)
    schedule = {"mode": "manual", "manual_switch": "5", "manual_unit": "step"}
    wf.finish(wf.sample(path, src, schedule=schedule, steps=steps, denoise=0.6, seed=5))
    r = ran_ok(comfy.run(wf.prompt()))
    out, source = r.out(wf.out)["samples"], r.out(wf.nodes["source"])["samples"]
    assert out.shape == source.shape and tuple(out.shape[-2:]) == (h, w) and bool(torch.isfinite(out).all())
    sig = user_sigmas(comfy, r.out(wf.model), steps=steps, denoise=0.6)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2, schedule=schedule, entry="signal")
    assert_progressive(plan, (h, w), f)
    assert_cost_and_sizes(r.ui[wf.report.id]["calls"], len(sig) - 1, h, w, low_planned=True)


# ------------------------------------------------------------------------------------------------
# the default schedule (delta 0.01, S=2): measured token ratio, and the plan at the real latent size
# ------------------------------------------------------------------------------------------------

# the family's real latent (H, W) at its usual resolution: 1024^2 images (Qwen-Image 1328^2), 720p video
# (LTX-Video 768x512 through its 32x VAE, WAN 2.2 TI2V-5B 1280x704 through its 16x VAE)
REAL_SIZE = {"sdxl": (128, 128), "sd35": (128, 128), "qwen_image": (166, 166), "zimage": (128, 128),
             "hunyuan_video": (90, 160), "ltxv": (16, 24), "wan22_5b": (44, 80), "wan22_high": (90, 160)}


@pytest.mark.parametrize("fam", FAMS)
def test_token_ratio_s2(comfy, fam):
    """Sampler path, default DeltaSchedule (delta 0.01, S=2, auto preset), 20 simple steps on a 32x32
    latent: the recorded calls are the plan, cost <= plain, and their token ratio is printed together with
    the plan's ratio at the family's real latent size (50 simple steps on the model's own sigmas)."""
    f = family(comfy, fam)
    h, w, steps = 32, 32, 20
    schedule = {"delta": 0.01, "stages": 2}
    wf = H.txt2img(f, "sampler", h=h, w=w, frames=FRAMES, steps=steps, cfg=1.0, schedule=schedule)
    r = ran_ok(comfy.run(wf.prompt()))
    assert tuple(r.out(wf.out)["samples"].shape) == want_shape(f, h, w)
    sig = user_sigmas(comfy, r.out(wf.model), steps=steps)
    plan = check_calls(comfy, r, wf, "sampler", sigmas=sig, rows=1, schedule=schedule)
    calls = r.ui[wf.report.id]["calls"]
    assert_cost_and_sizes(calls, steps, h, w, low_planned=len(plan.stages) > 1)
    measured = steps * h * w / spatial_tokens(calls)
    assert measured == pytest.approx(plan.compute_ratio("tokens"), rel=1e-6)
    real = REAL_SIZE[fam]
    sig50 = user_sigmas(comfy, r.out(wf.model), steps=50)
    real_plan = H.plan_for(H.spec_from(schedule), sig50, real, f)
    print(f"FAMILY-RATIO {fam}: {h}x{w} {steps} steps measured {measured:.3f} "
          f"({[tuple(s.size) for s in plan.stages]}, steps {[s.steps for s in plan.stages]}); "
          f"real {real[0]}x{real[1]} 50 steps planned {real_plan.compute_ratio('tokens'):.3f} "
          f"({[tuple(s.size) for s in real_plan.stages]}, steps {[s.steps for s in real_plan.stages]})")


# ------------------------------------------------------------------------------------------------
# WAN 2.2 A14B: high-noise expert, then low-noise expert; the low stage inside the first expert's run
# ------------------------------------------------------------------------------------------------

def _expert(g: H.Graph, name: str, seed: int, key: str) -> H.Ref:
    m = g.add("SpectralTestModelLoader", family=name, seed=seed)
    m = g.add("ModelSamplingSD3", model=m, shift=8.0)
    return g.add("SpectralTestCallRecorder", model=m, key=key)


@pytest.mark.parametrize("path", ("sampler", "patch", "plain"))
def test_wan22_two_experts(comfy, path):
    """The ComfyUI WAN 2.2 A14B template: 10 steps, the high-noise expert runs steps 0-5 and returns
    with leftover noise, the low-noise expert finishes 5-10 without adding noise.  The pack runs only in
    the first: "patch" = SpectralProgressiveModel on the high expert in KSamplerAdvanced; "sampler" =
    SamplerSpectralProgressive in the first of two SamplerCustomAdvanced (SplitSigmas at step 5);
    "plain" = the same graph without the pack (the baseline).  Low stage: manual switch at step 3 of the
    high expert's 5.  The all-in-one has no start/end step inputs, so it cannot split a run in two."""
    hi_f, lo_f = family(comfy, "wan22_high"), family(comfy, "wan22_low")
    h, w, steps, split = 16, 16, 10, 5
    g = H.Graph()
    k = next(H._keys)
    hi, lo = _expert(g, "wan22_high", 0, f"hi-{k}"), _expert(g, "wan22_low", 1, f"lo-{k}")
    pos, neg = H.cond_nodes(g, hi_f)
    lat = H.empty_latent(g, hi_f, h, w, frames=FRAMES)
    sch = None if path == "plain" else H.manual_schedule(g, "3", "step")
    if path == "sampler":
        sig = g.add("BasicScheduler", model=hi, scheduler="simple", steps=steps, denoise=1.0)
        split_sig = g.add("SplitSigmas", sigmas=sig, step=split)
        base = g.add("KSamplerSelect", sampler_name="euler")
        prog = g.add("SamplerSpectralProgressive", sampler=base, schedule=sch)
        first = g.add("SamplerCustomAdvanced", noise=g.add("RandomNoise", noise_seed=0),
                      guider=g.add("CFGGuider", model=hi, positive=pos, negative=neg, cfg=2.0), sampler=prog,
                      sigmas=split_sig[0], latent_image=lat)
        out = g.add("SamplerCustomAdvanced", noise=g.add("DisableNoise"),
                    guider=g.add("CFGGuider", model=lo, positive=pos, negative=neg, cfg=2.0), sampler=base,
                    sigmas=split_sig[1], latent_image=first[0])
    else:
        model = hi if path == "plain" else g.add("SpectralProgressiveModel", model=hi, high_band="zero", schedule=sch)
        common = dict(noise_seed=0, steps=steps, cfg=2.0, sampler_name="euler", scheduler="simple", positive=pos,
                      negative=neg)
        first = g.add("KSamplerAdvanced", model=model, add_noise="enable", latent_image=lat, start_at_step=0,
                      end_at_step=split, return_with_leftover_noise="enable", **common)
        out = g.add("KSamplerAdvanced", model=lo, add_noise="disable", latent_image=first, start_at_step=split,
                    end_at_step=10000, return_with_leftover_noise="disable", **common)
    rep_hi = g.add("SpectralTestReport", samples=first, key=f"hi-{k}")
    rep_lo = g.add("SpectralTestReport", samples=out, key=f"lo-{k}")
    r = ran_ok(comfy.run(g.prompt()))
    assert tuple(r.out(out)["samples"].shape) == want_shape(lo_f, h, w)
    assert bool(torch.isfinite(r.out(out)["samples"]).all())
    hi_calls, lo_calls = r.ui[rep_hi.id]["calls"], r.ui[rep_lo.id]["calls"]
    hi_sizes = [tuple(c["shape"][-2:]) for c in hi_calls]
    assert len(hi_calls) == split and len(lo_calls) == steps - split, (hi_sizes, len(lo_calls))
    assert all(tuple(c["shape"][-2:]) == (h, w) for c in lo_calls), "the low-noise expert runs at full size"
    assert hi_sizes[-1] == (h, w), f"the high-noise expert must hand over a full-size latent: {hi_sizes}"
    if path == "plain":
        assert all(s == (h, w) for s in hi_sizes)
        return
    # the low stage lies inside the first expert's run: it starts below full size and ends at full size
    # (the sampler switches at step 3; the patch, on the user's sigmas, where t falls below the aligned time)
    n_low = sum(s != (h, w) for s in hi_sizes)
    assert n_low >= 1 and all(s[0] < h and s[1] < w for s in hi_sizes[:n_low]), hi_sizes
    assert all(s == (h, w) for s in hi_sizes[n_low:]), hi_sizes
    if path == "sampler":
        assert n_low == 3, hi_sizes
    assert spatial_tokens(hi_calls) + spatial_tokens(lo_calls) < steps * h * w
    # and they are the plan made on the high expert's own sigmas
    sig = user_sigmas(comfy, r.out(hi), steps=steps)[: split + 1]
    plan = H.plan_for(H.spec_from({"mode": "manual", "manual_switch": "3", "manual_unit": "step"}), sig, (h, w), hi_f)
    calls = H.observed_calls(hi_calls)
    if path == "patch":
        H.assert_calls(calls, H.expected_patch_calls(plan, sig, hi_f.frame, 2))
    else:
        H.assert_calls(calls, H.expected_sampler_calls(plan, 2))
    # the low-noise expert continues exactly where the high one stopped
    want_lo = [float(v) for v in user_sigmas(comfy, r.out(lo), steps=steps)[split:-1]]
    assert [c["sigma"][0] for c in lo_calls] == pytest.approx(want_lo, rel=1e-5)


# ------------------------------------------------------------------------------------------------
# an empty latent made for another VAE ratio (ComfyUI 0.33 rescales it to the model's ratio)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
def test_empty_latent_of_another_ratio_gets_the_plain_size(comfy, path):
    """WAN 2.2 TI2V-5B (16x VAE) fed by EmptyHunyuanLatentVideo (an 8x latent): ComfyUI 0.33's samplers
    rescale an empty latent to the model's ratio (``downscale_ratio_spacial``); older ones keep it.
    Every path must give the latent the plain KSampler gives, never at more cost."""
    f = family(comfy, "wan22_5b")
    wf = H.workflow(f)
    lat = wf.graph.add("EmptyHunyuanLatentVideo", width=32 * 8, height=32 * 8, length=(FRAMES - 1) * 4 + 1,
                       batch_size=1)
    out = wf.sample(path, lat, steps=6)
    plain = wf.keep(wf.sample("plain", lat, schedule=None, steps=6, record=False))
    wf.finish(out)
    r = ran_ok(comfy.run(wf.prompt()))
    want = tuple(r.out(plain)["samples"].shape)
    got = tuple(r.out(out)["samples"].shape)
    assert got == want
    calls = r.ui[wf.report.id]["calls"]
    assert tuple(calls[-1]["shape"][-2:]) == want[-2:]
    assert spatial_tokens(calls) <= 6 * want[-2] * want[-1]


# ------------------------------------------------------------------------------------------------
# few steps: never more compute than plain, the last call at full size (issue 13 item 1 on these families)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", FAMS)
def test_few_steps_never_cost_more(comfy, fam, path, steps):
    f = family(comfy, fam)
    h, w = 16, 24
    # a large delta makes the switch fire early even on these tiny latents
    wf = H.txt2img(f, path, h=h, w=w, frames=FRAMES, steps=steps, schedule={"delta": 0.5})
    r = ran_ok(comfy.run(wf.prompt()))
    assert tuple(r.out(wf.out)["samples"].shape) == want_shape(f, h, w)
    calls = r.ui[wf.report.id]["calls"]
    assert_cost_and_sizes(calls, steps, h, w, low_planned=False)
    if steps == 1:
        assert len(calls) == 1, "a 1-step run is plain"
    if steps >= 4 and f.frame == "const":  # where there is room, the flow models really run progressively
        assert min(c["shape"][-2] * c["shape"][-1] for c in calls) < h * w, [c["shape"] for c in calls]

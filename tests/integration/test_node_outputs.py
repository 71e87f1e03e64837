"""The other nodes' outputs, through ComfyUI's executor: DeltaSchedule's mapped_sigmas (and the model
patch on them reproducing formulation 1), PowerSpectrumProbe (spectrum, plot, summary; probe ->
schedule), SpectralNoiseExpand (expand/contract round trip, aligned sigmas, a hand-built two-stage
graph), and the all-in-one sampler's sigmas against KSampler's own for every sampler family."""
from __future__ import annotations

import re

import pytest
import torch

from . import harness as H
from .test_sampling import ran_ok, user_sigmas

H.require_comfyui()


# ------------------------------------------------------------------------------------------------
# DeltaSchedule: mapped_sigmas
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", [{"mode": "manual", "manual_switch": "4", "manual_unit": "step"},
                                      {"mode": "delta", "delta": 0.2, "spectrum": "custom", "custom_A": 2.0,
                                       "custom_beta": 2.0}])
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_mapped_sigmas_give_the_patch_the_paper_allocation(comfy, fam, schedule):
    """mapped_sigmas == plan.full_sigmas(); the MODEL patch run on them calls the network at exactly
    the sizes and sigmas of formulation 1 (SamplerSpectralProgressive on the user's sigmas), and with
    euler + high band "zero" gives the same latent (CONST models: float precision)."""
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    g = wf.graph
    lat = H.empty_latent(g, f, 16, 16)
    sig = g.add("BasicScheduler", model=wf.model, scheduler="simple", steps=10, denoise=1.0)
    ds = H.schedule_node(g, model=wf.model, sigmas=sig, latent=lat, **schedule)
    ks = g.add("KSamplerSelect", sampler_name="euler")
    noise = g.add("RandomNoise", noise_seed=4)
    patched = g.add("SpectralProgressiveModel", model=wf.recorded, schedule=ds[0], high_band="zero")
    f2 = g.add("SamplerCustomAdvanced", noise=noise, guider=g.add("CFGGuider", model=patched, positive=wf.pos,
               negative=wf.neg, cfg=2.0), sampler=ks, sigmas=ds[1], latent_image=lat)
    f1 = wf.keep(g.add("SamplerCustomAdvanced", noise=noise, guider=g.add("CFGGuider", model=wf.model, positive=wf.pos,
                       negative=wf.neg, cfg=2.0), sampler=g.add("SamplerSpectralProgressive", sampler=ks, schedule=ds[0]),
                       sigmas=sig, latent_image=lat))
    wf.finish(f2)
    r = ran_ok(comfy.run(wf.prompt()))
    user = r.out(sig)
    plan = H.plan_for(H.spec_from(schedule), user, (16, 16), f)
    assert len(plan.stages) == 2 and tuple(plan.stages[0].size) == (8, 8), plan.summary()
    mapped = r.out(ds, 1)
    torch.testing.assert_close(mapped, plan.full_sigmas().to(torch.float32), rtol=1e-6, atol=1e-7)
    assert len(mapped) == plan.steps + 1 and float(mapped[-1]) == 0.0
    # the first stage's own start t0 seen on the full grid: t~ = g t0 / (1 + (g - 1) t0) (= 1 for CONST; above
    # sigma_max for an EPS model, whose max-denoise start t0 = sigma_max / (1 + sigma_max) < 1)
    from spectral_progressive.spectral_core.expansion import aligned_time
    t0 = H.t_of_sigma(f.frame, float(user[0]))
    assert float(mapped[0]) == pytest.approx(H.sigma_of_t(f.frame, aligned_time(t0, plan.stages[0].growth)), rel=1e-5)
    assert bool((mapped[1:] < mapped[:-1]).all())
    assert len(mapped) != len(user) or not torch.allclose(mapped, user), "the mapped grid must differ from the user's"
    summary = r.out(ds, 2)
    assert "stage 1: 8x8" in summary and "on mapped_sigmas" in summary, summary
    # the patch on mapped sigmas evaluates what formulation 1 evaluates
    H.assert_calls(H.observed_calls(r.ui[wf.report.id]["calls"]), H.expected_sampler_calls(plan, rows=2))
    a, b = r.out(f1)["samples"], r.out(f2)["samples"]
    scale = float(a.abs().max())
    if f.frame == "const":
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5 * scale)
    else:
        # EPS: ComfyUI's max-denoise start scales the noise by sqrt(1 + sigma^2) / sigma at the run's
        # first sigma, which is sigma_max for formulation 1 and the aligned (larger) sigma for the
        # patch on mapped sigmas; the starts differ by that ratio (measured gap 0.18% of the range).
        torch.testing.assert_close(b, a, rtol=0, atol=5e-3 * scale)


def test_mapped_sigmas_without_model_or_latent(comfy):
    """Not computable without model, sigmas and latent: the user's sigmas come back unchanged
    (empty without sigmas), and the summary describes the schedule."""
    fam = H.FAMILIES["sd3"]
    g = H.Graph()
    model = H.model_node(g, fam)
    sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=6, denoise=1.0)
    a = H.schedule_node(g, sigmas=sig)
    b = H.schedule_node(g, stages=3)
    for ref in (a, b):
        g.add("PreviewAny", source=ref[2])
    r = ran_ok(comfy.run(g.prompt()))
    torch.testing.assert_close(r.out(a, 1), r.out(sig))
    assert r.out(b, 1).numel() == 0
    assert "scales=(0.25, 0.5, 1.0)" in r.out(b, 2)


# ------------------------------------------------------------------------------------------------
# PowerSpectrumProbe
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("A,beta", [(203.62, 1.9155), (50.0, 2.5)])
def test_probe_recovers_a_power_law_and_feeds_the_schedule(comfy, A, beta):
    """A latent batch drawn with a known spectrum P(w) = A w^-beta (the pack's exact Gaussian model):
    the probe's fit, plot and summary, and DeltaSchedule using the probe's spectrum."""
    from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
    from spectral_progressive.spectral_core.spectra import PowerLaw
    x = GaussianSpectrumModel.power_law(PowerLaw(A, beta), (32, 32)).sample(
        (4, 16), generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    g = H.Graph()
    probe = g.add("PowerSpectrumProbe", latent={"__value__": {"samples": x}}, delta=0.01, stages=2)
    ds = H.schedule_node(g, probe_spectrum=probe[0])
    g.add("PreviewAny", source=ds[2])
    r = ran_ok(comfy.run(g.prompt()))
    spectrum, plot, text = r.out(probe, 0), r.out(probe, 1), r.out(probe, 2)
    law = spectrum["law"]
    assert law.beta == pytest.approx(beta, abs=0.1) and law.A == pytest.approx(A, rel=0.15), law
    assert len(spectrum["channel_laws"]) == 16
    # plot: one RGB IMAGE, (1, H, W, 3) in [0, 1], not blank; also shown in the UI (PreviewImage)
    assert tuple(plot.shape) == (1, 400, 640, 3) and plot.dtype == torch.float32
    assert float(plot.min()) >= 0.0 and float(plot.max()) <= 1.0 and float(plot.std()) > 0.05
    assert r.ui[probe.id]["images"][0]["type"] == "temp"
    # summary: the fit with A and beta as numbers, and the switch time of the marked stage
    m = re.search(r"P\(w\) = ([0-9.e+-]+) \* w\^-([0-9.e+-]+)", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(law.A, rel=1e-4) and float(m.group(2)) == pytest.approx(law.beta, rel=1e-4)
    assert "32x32" in text and "stage at scale 0.5 ends at t*=" in text
    # the schedule carries the measured law
    assert r.out(ds, 0).spectrum == law


def test_probe_on_an_image_and_a_model_latent(comfy):
    """IMAGE input (no VAE: measured on the pixels) from a textured image file via LoadImage, and a
    LATENT made by a sampler; both give finite fits and a plot.  The integrated-noise image is a
    steep power law (beta near 4); the random network's latent is close to white (beta near 0)."""
    import numpy as np
    from PIL import Image
    import folder_paths
    rng = np.random.default_rng(0)
    img = np.cumsum(np.cumsum(rng.standard_normal((64, 64, 3)), 0), 1)
    img = ((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)
    Image.fromarray(img).save(f"{folder_paths.get_input_directory()}/spectral_probe_test.png")
    fam = H.FAMILIES["sd3"]
    wf = H.txt2img(fam, "plain", schedule=None, steps=4)
    g = wf.graph
    loaded = g.add("LoadImage", image="spectral_probe_test.png")
    p_img = g.add("PowerSpectrumProbe", image=loaded[0], delta=0.01, stages=3)
    p_lat = g.add("PowerSpectrumProbe", latent=wf.out, delta=0.05, stages=2)
    r = ran_ok(comfy.run(wf.prompt()))
    for p, size, ch, beta in ((p_img, "64x64", 3, (2.5, 5.0)), (p_lat, "16x16", 16, (0.0, 1.0))):
        spectrum, plot, text = r.out(p, 0), r.out(p, 1), r.out(p, 2)
        assert tuple(plot.shape) == (1, 400, 640, 3)
        assert spectrum["law"].A > 0 and beta[0] <= spectrum["law"].beta < beta[1], spectrum["law"]
        assert f"{size}, {ch} channel(s)" in text, text
    assert "stage at scale 0.25" in r.out(p_img, 2) and "stage at scale 0.5" in r.out(p_img, 2)


# ------------------------------------------------------------------------------------------------
# SpectralNoiseExpand
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fam", ("sd3", "sd15", "wan"))
def test_noise_expand_contract_round_trip_and_two_stage_graph(comfy, fam):
    """Stage 1 (SamplerCustomAdvanced on an 8x12 latent, first 4 of 10 steps) -> expand x2 ->
    contract x0.5 returns stage 1's latent; the aligned sigmas start at the aligned time
    t~ = 2 t / (1 + t) of the remaining sigmas' first; stage 2 continues at 16x24 from them."""
    from spectral_progressive.spectral_core.expansion import aligned_time
    f = H.FAMILIES[fam]
    g = H.Graph()
    model = H.model_node(g, f)
    pos, neg = H.cond_nodes(g, f)
    lat = H.empty_latent(g, f, 8, 12)
    sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=10, denoise=1.0)
    split = g.add("SplitSigmas", sigmas=sig, step=4)
    ks = g.add("KSamplerSelect", sampler_name="euler")
    guider = g.add("CFGGuider", model=model, positive=pos, negative=neg, cfg=2.0)
    s1 = g.add("SamplerCustomAdvanced", noise=g.add("RandomNoise", noise_seed=1), guider=guider, sampler=ks,
               sigmas=split[0], latent_image=lat)
    ex = g.add("SpectralNoiseExpand", model=model, samples=s1[0], sigmas=split[1], direction="expand", scale=2.0,
               transform="dct", seed=1, respace="affine")
    co = g.add("SpectralNoiseExpand", model=model, samples=ex[0], sigmas=ex[1], direction="contract", scale=0.5,
               transform="dct", seed=1, respace="affine")
    s2 = g.add("SamplerCustomAdvanced", noise=g.add("DisableNoise"), guider=guider, sampler=ks, sigmas=ex[1],
               latent_image=ex[0])
    g.add("SpectralTestReport", samples=co[0], key="unused-co")
    g.add("SpectralTestReport", samples=s2[0], key="unused-s2")
    r = ran_ok(comfy.run(g.prompt()))
    x1, expanded, back = r.out(s1)["samples"], r.out(ex)["samples"], r.out(co)["samples"]
    lead = x1.shape[:-2]
    assert tuple(expanded.shape) == (*lead, 16, 24) and tuple(back.shape) == tuple(x1.shape)
    torch.testing.assert_close(back, x1, rtol=0, atol=2e-6 * float(x1.abs().max()))
    rest, aligned, realigned = r.out(split, 1), r.out(ex, 1), r.out(co, 1)
    t = H.t_of_sigma(f.frame, float(rest[0]))
    assert float(aligned[0]) == pytest.approx(H.sigma_of_t(f.frame, aligned_time(t, 2.0)), rel=1e-5)
    assert len(aligned) == len(rest) and float(aligned[-1]) == 0.0  # affine: same step count, same end
    assert bool((aligned[1:] < aligned[:-1]).all())
    torch.testing.assert_close(realigned, rest, rtol=1e-5, atol=1e-6)  # contract undoes the alignment
    out = r.out(s2)["samples"]
    assert tuple(out.shape) == (*lead, 16, 24) and bool(torch.isfinite(out).all())


# ------------------------------------------------------------------------------------------------
# the all-in-one runs exactly KSampler's sigmas
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fam,sampler", [("sd3", "euler"), ("sd3", "dpm_2"), ("sd3", "heun"), ("sd3", "ddim"),
                                         ("sd15", "dpm_2_ancestral"), ("sd15", "uni_pc")])
def test_allinone_without_progression_equals_ksampler(comfy, fam, sampler):
    """Default schedule + denoise 0.6 on a tiny latent: no low stage, so the all-in-one must be
    ComfyUI's KSampler, including the samplers whose KSampler sigmas drop the penultimate step.
    (uni_pc runs on SD1.5 here: ComfyUI's sample_unipc overwrites the caller's last sigma with 0.001 in
    place, so a plain KSampler rescales a CONST model's output by 1/0.999 at the end; the progressive
    sampler hands the base sampler a copy and does not.)"""
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    g = wf.graph
    src = g.add("KSampler", model=wf.model, seed=3, steps=4, cfg=1.0, sampler_name="euler", scheduler="simple",
                positive=wf.pos, negative=wf.neg, latent_image=H.empty_latent(g, f, 16, 16), denoise=1.0)
    ours = wf.sample("allinone", src, schedule="default", steps=8, denoise=0.6, seed=5, sampler=sampler)
    plain = wf.keep(wf.sample("plain", src, schedule=None, steps=8, denoise=0.6, seed=5, sampler=sampler, record=False))
    wf.finish(ours)
    r = ran_ok(comfy.run(wf.prompt()))
    a, b = r.out(ours)["samples"], r.out(plain)["samples"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=8, denoise=0.6, sampler=sampler)
    calls = r.ui[wf.report.id]["calls"]
    assert {tuple(c["shape"][-2:]) for c in calls} == {(16, 16)}
    assert float(calls[0]["sigma"][0]) == pytest.approx(float(sig[0]), rel=1e-5)

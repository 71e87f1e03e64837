"""SpectralScheduler (seed 002 spectrum-designed sigmas) in real ComfyUI, tiny FLUX (CONST), SD1.5 (EPS),
SDXL (EPS, 4x multiple) and WAN 2.1 (video) models:

* its SIGMAS are the library's design for what the model says (frame, sigma range, latent format's preset,
  ComfyUI's start: pure noise, sqrt(1 + sigma^2) noise for EPS, a noised image for denoise < 1), and
  SamplerCustomAdvanced calls the network exactly at them;
* they drive progressive sampling: SamplerSpectralProgressive plans its stages on them, and DeltaSchedule's
  mapped_sigmas is the plan of them;
* denoise < 1 starts where ComfyUI's own schedulers start; a connected SPECTRUM replaces the preset;
* bad input gets errors naming the input.
The math (closed form = the actual run's KL, the design beats simple/karras/beta) is pinned on exact
Gaussian models in tests/unit/test_schedule_design.py."""
from __future__ import annotations

import pytest
import torch

from . import harness as H
from .test_bad_input import assert_node_error
from .test_sampling import ran_ok, user_sigmas

H.require_comfyui()

STEPS = 6


def _expected(model, fam: H.Family, steps: int, size, *, sampler: str = "euler", denoise: float = 1.0, law=None):
    """The library's design for this model, its frame, range and start read here from ComfyUI's model."""
    from spectral_progressive.schedules.presets import PRESETS
    from spectral_progressive.spectral_core.schedule_design import design_sigmas
    ms = model.get_model_object("model_sampling")
    smax = float(ms.sigma_max) if denoise >= 1.0 else float(ms.percent_to_sigma(1.0 - denoise))
    start = "marginal" if denoise < 1.0 else ("noise" if fam.frame == "const" else "unit_marginal")
    from spectral_progressive.spectral_core.spectra import PowerLaw
    # (the pack ComfyUI loaded is another module than the pip-installed one: rebuild its law here)
    law = PRESETS[H.auto_spectrum(fam)] if law is None else PowerLaw(law.A, law.beta, law.w_min)
    return design_sigmas(law, size, steps, frame=fam.frame, sampler=sampler, start=start, sigma_max=smax,
                         sigma_min=float(ms.sigma_min)).sigmas.float()


def _scheduler(g: H.Graph, model, **kw):
    inputs = dict(steps=STEPS, denoise=1.0, design_for="euler", spectrum="auto", width=1024, height=1024)
    inputs.update(kw)
    return g.add("SpectralScheduler", model=model, **inputs)


def _custom_advanced(wf: H.Workflow, sampler, sigmas, latent, seed: int = 0):
    g = wf.graph
    guider = g.add("CFGGuider", model=wf.recorded, positive=wf.pos, negative=wf.neg, cfg=2.0)
    return g.add("SamplerCustomAdvanced", noise=g.add("RandomNoise", noise_seed=seed), guider=guider, sampler=sampler,
                 sigmas=sigmas, latent_image=latent)


@pytest.mark.parametrize("fam,design_for", [("flux", "euler"), ("sd15", "euler"), ("sdxl", "ab2"), ("wan", "euler")])
def test_designed_sigmas_drive_sampler_custom_advanced(comfy, fam, design_for):
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    g = wf.graph
    lat = H.empty_latent(g, f, 16, 24)
    sched = _scheduler(g, wf.model, latent=lat, design_for=design_for)
    out = _custom_advanced(wf, g.add("KSamplerSelect", sampler_name="euler"), sched[0], lat)
    wf.finish(out)
    r = ran_ok(comfy.run(wf.prompt()))
    sig = r.out(sched[0])
    want = _expected(r.out(wf.model), f, STEPS, (16, 24), sampler=design_for)
    assert sig.dtype == torch.float32 and torch.equal(sig, want)
    ms = r.out(wf.model).get_model_object("model_sampling")
    assert float(sig[0]) == pytest.approx(float(ms.sigma_max)) and float(sig[-1]) == 0.0
    assert bool((sig[1:] < sig[:-1]).all()) and len(sig) == STEPS + 1
    assert not torch.allclose(sig, user_sigmas(comfy, r.out(wf.model), steps=STEPS)), "not ComfyUI's own schedule"
    calls = H.observed_calls(r.ui[wf.report.id]["calls"])
    H.assert_calls(calls, [((16, 24), float(s), 2) for s in sig[:-1]])
    assert "spectral KL" in r.out(sched[1]) and f"{f.frame} frame" in r.out(sched[1])
    samples = r.out(out)["samples"]
    assert bool(torch.isfinite(samples).all()) and samples.shape[-2:] == (16, 24)


@pytest.mark.parametrize("fam", ["flux", "sd15"])
def test_progressive_sampler_plans_on_the_designed_sigmas(comfy, fam):
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    g = wf.graph
    lat = H.empty_latent(g, f, 16, 16)
    sched = _scheduler(g, wf.model, latent=lat, steps=10)
    spec = H.manual_schedule(g, "4", "step")
    sampler = g.add("SamplerSpectralProgressive", sampler=g.add("KSamplerSelect", sampler_name="euler"), schedule=spec)
    wf.finish(_custom_advanced(wf, sampler, sched[0], lat))
    delta = H.schedule_node(g, model=wf.model, sigmas=sched[0], latent=lat)  # its mapped_sigmas, for the patch
    wf.keep(_plain(wf, delta[1], lat))
    r = ran_ok(comfy.run(wf.prompt()))
    sig = r.out(sched[0])
    plan = H.plan_for(H.spec_from("manual"), sig, (16, 16), f)
    assert len(plan.stages) == 2 and plan.stages[0].size[0] < 16
    H.assert_calls(H.observed_calls(r.ui[wf.report.id]["calls"]), H.expected_sampler_calls(plan, 2))
    delta_plan = H.plan_for(H.spec_from({}), sig, (16, 16), f)
    assert torch.allclose(r.out(delta[1]), delta_plan.full_sigmas().float())


def _plain(wf: H.Workflow, sigmas, latent):
    """SamplerCustomAdvanced with euler on the unrecorded model (to make ``sigmas`` a dependency)."""
    g = wf.graph
    return g.add("SamplerCustomAdvanced", noise=g.add("RandomNoise", noise_seed=0),
                 sampler=g.add("KSamplerSelect", sampler_name="euler"),
                 guider=g.add("CFGGuider", model=wf.model, positive=wf.pos, negative=wf.neg, cfg=2.0), sigmas=sigmas,
                 latent_image=latent)


@pytest.mark.parametrize("fam", ["flux", "sd15"])
def test_denoise_starts_where_comfy_schedulers_start(comfy, fam):
    f = H.FAMILIES[fam]
    wf = H.workflow(f)
    g = wf.graph
    src = g.add("KSampler", model=wf.model, seed=3, steps=2, cfg=1.0, sampler_name="euler", scheduler="simple",
                positive=wf.pos, negative=wf.neg, latent_image=H.empty_latent(g, f, 16, 16), denoise=1.0)
    sched = _scheduler(g, wf.model, latent=src, denoise=0.5, steps=4)
    wf.finish(_custom_advanced(wf, g.add("KSamplerSelect", sampler_name="euler"), sched[0], src))
    r = ran_ok(comfy.run(wf.prompt()))
    sig = r.out(sched[0])
    model = r.out(wf.model)
    assert torch.equal(sig, _expected(model, f, 4, (16, 16), denoise=0.5))
    basic = user_sigmas(comfy, model, steps=4, denoise=0.5)
    assert float(sig[0]) == pytest.approx(float(basic[0]), rel=0.02) and len(sig) == len(basic)
    assert "(marginal)" in r.out(sched[1])
    assert len(r.ui[wf.report.id]["calls"]) == 4


def test_probe_spectrum_replaces_the_preset(comfy):
    f = H.FAMILIES["flux"]
    wf = H.workflow(f)
    g = wf.graph
    x = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    probe = g.add("PowerSpectrumProbe", latent={"__value__": {"samples": x}}, delta=0.01, stages=2)
    with_probe = _scheduler(g, wf.model, probe_spectrum=probe[0], width=128, height=128)
    preset = _scheduler(g, wf.model, width=128, height=128)
    wf.finish(_custom_advanced(wf, g.add("KSamplerSelect", sampler_name="euler"), with_probe[0],
                               H.empty_latent(g, f, 16, 16)))
    wf.keep(_plain(wf, preset[0], H.empty_latent(g, f, 16, 16)))
    r = ran_ok(comfy.run(wf.prompt()))
    law = r.out(probe[0])["law"]
    model = r.out(wf.model)
    size = (128 // _ratio(model), 128 // _ratio(model))
    assert torch.equal(r.out(with_probe[0]), _expected(model, f, STEPS, size, law=law))
    assert torch.equal(r.out(preset[0]), _expected(model, f, STEPS, size))
    assert not torch.allclose(r.out(with_probe[0]), r.out(preset[0]))


def _ratio(model) -> int:
    return int(getattr(model.model.latent_format, "spacial_downscale_ratio", 8))


@pytest.mark.parametrize("kw,message", [
    ({"latent": {"__value__": "not a latent"}}, "latent: expected a LATENT"),
    ({"denoise": float("nan")}, "denoise: expected a finite number"),
    ({"probe_spectrum": {"__value__": {"law": None}}}, "probe_spectrum: expected a SPECTRUM"),
])
def test_bad_input_names_the_input(comfy, kw, message):
    f = H.FAMILIES["sd15"]
    wf = H.workflow(f)
    g = wf.graph
    lat = H.empty_latent(g, f, 16, 16)
    sched = _scheduler(g, wf.model, **kw)
    wf.finish(_custom_advanced(wf, g.add("KSamplerSelect", sampler_name="euler"), sched[0], lat))
    assert_node_error(comfy, comfy.run(wf.prompt()), "SpectralScheduler", message, wf.key)


def test_denoise_zero_gives_no_steps_like_basic_scheduler(comfy):
    f = H.FAMILIES["flux"]
    wf = H.workflow(f)
    sched = _scheduler(wf.graph, wf.model, denoise=0.0)
    wf.keep(_plain(wf, sched[0], H.empty_latent(wf.graph, f, 16, 16)))
    r = ran_ok(comfy.run(wf.prompt()))
    assert r.out(sched[0]).numel() == 0

"""Issue 4 "Bad input": each case is a clear error that names the node input, reported by ComfyUI's
executor (execution_error status message) or by its prompt validation (node_errors), raised before
sampling starts (no model call recorded), and the next prompt still runs."""
from __future__ import annotations

import pytest
import torch

from . import harness as H
from .test_sampling import FORMULATIONS, ran_ok

H.require_comfyui()


def next_prompt_works(comfy):
    wf = H.txt2img(H.FAMILIES["sd3"], "sampler", steps=5)
    r = ran_ok(comfy.run(wf.prompt()))
    assert len(r.ui[wf.report.id]["calls"]) == 5


def assert_node_error(comfy, r, node_type: str, message: str, key: str | None = None):
    assert not r.ok and r.validation_error is None, (r.validation_error, r.node_errors)
    err = r.error
    assert err is not None, r.messages
    assert err["node_type"] == node_type, err
    assert message in err["exception_message"], err["exception_message"]
    if key is not None:
        assert comfy.calls(key) == [], "the error must come before the first model call"
    next_prompt_works(comfy)


def sampler_node(path: str) -> str:
    return {"sampler": "SamplerCustomAdvanced", "allinone": "SpectralProgressiveSampler", "patch": "KSampler"}[path]


def foreign_latent(wf: H.Workflow, kind: str):
    """A latent the workflow's model cannot take: "sd15" = a non-empty 4-channel image latent (made
    by a tiny SD1.5 KSampler), "video" = an empty 5-D video latent."""
    g = wf.graph
    if kind == "video":
        return g.add("EmptyHunyuanLatentVideo", width=128, height=128, length=9, batch_size=1)
    sd15 = g.add("SpectralTestModelLoader", family="sd15", seed=0)
    cond = g.add("SpectralTestConditioning", family="sd15", seed=1, batch_size=1, tokens=0)
    empty = g.add("EmptyLatentImage", width=128, height=128, batch_size=1)
    return g.add("KSampler", model=sd15, seed=0, steps=2, cfg=1.0, sampler_name="euler", scheduler="simple",
                 positive=cond, negative=cond, latent_image=empty, denoise=1.0)


# ------------------------------------------------------------------------------------------------
# wrong latent for the model
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fam,kind,message", [
    ("sd3", "sd15", "latent_image: expected 16 channels for this SD3 model, got 4"),
    ("sd3", "video", "latent_image: expected an image latent (B,C,H,W) for this SD3 model, got (1, 16, 3, 16, 16)"),
    ("wan", "sd15", "latent_image: expected 16 channels for this Wan21 model, got 4"),
])
@pytest.mark.parametrize("path", FORMULATIONS)
def test_wrong_latent_for_the_model(comfy, path, fam, kind, message):
    wf = H.workflow(H.FAMILIES[fam])
    wf.finish(wf.sample(path, foreign_latent(wf, kind)))
    r = comfy.run(wf.prompt())
    if path == "sampler" and fam == "wan":
        # A SAMPLER cannot see the latent before ComfyUI's guider does: CFGGuider.inner_sample runs the
        # WAN latent format's process_in on the 4-channel latent (a broadcasting error) before any
        # sampler is called -- exactly what a plain KSampler reports.  The all-in-one and the patch
        # check first (above).  Pinned: it fails before any model call and nothing else breaks.
        assert not r.ok and r.error["node_type"] == "SamplerCustomAdvanced"
        assert comfy.calls(wf.key) == []
        next_prompt_works(comfy)
        return
    assert_node_error(comfy, r, sampler_node(path), message, wf.key)


@pytest.mark.parametrize("path", FORMULATIONS)
def test_latent_smaller_than_one_patch(comfy, path):
    """ComfyUI's Empty*Latent nodes cannot make a latent below 2x2; an in-process 1x1 latent can."""
    wf = H.workflow(H.FAMILIES["sd3"])
    wf.finish(wf.sample(path, {"__value__": {"samples": torch.zeros(1, 16, 1, 1)}}))
    r = comfy.run(wf.prompt())
    assert_node_error(comfy, r, sampler_node(path), "latent_image: expected a latent at least one patch (2) on each side",
                      wf.key)


# ------------------------------------------------------------------------------------------------
# schedules
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
def test_first_stage_smaller_than_one_patch(comfy, path):
    wf = H.txt2img(H.FAMILIES["sd3"], path, schedule={"scales": "0.05, 1"})
    r = comfy.run(wf.prompt())
    assert_node_error(comfy, r, sampler_node(path), "scales: expected a first stage of at least one patch (2 latent pixels)",
                      wf.key)


@pytest.mark.parametrize("kw,name", [({"delta": 0.9}, "delta"), ({"delta": 0.0}, "delta"), ({"stages": 9}, "stages")])
def test_widget_out_of_range_fails_validation(comfy, kw, name):
    wf = H.txt2img(H.FAMILIES["sd3"], "sampler", schedule=kw)
    r = comfy.run(wf.prompt())
    assert not r.ok and r.validation_error is not None
    errors = [e for ne in r.node_errors.values() if ne["class_type"] == "DeltaSchedule" for e in ne["errors"]]
    assert errors and errors[0]["extra_info"]["input_name"] == name, r.node_errors
    assert comfy.calls(wf.key) == []
    next_prompt_works(comfy)


@pytest.mark.parametrize("scales", ["0, 1", "1.5, 1", "0.5, 0.8", "0.5, 0.5, 1", "-0.5, 1"])
def test_scales_out_of_range(comfy, scales):
    wf = H.txt2img(H.FAMILIES["sd3"], "patch", schedule={"scales": scales})
    r = comfy.run(wf.prompt())
    assert_node_error(comfy, r, "DeltaSchedule", "scales: expected a sequence of numbers in (0, 1], strictly increasing, "
                                                 "ending at 1", wf.key)


def test_scales_not_numbers(comfy):
    wf = H.txt2img(H.FAMILIES["sd3"], "allinone", schedule={"scales": "half, 1"})
    r = comfy.run(wf.prompt())
    assert_node_error(comfy, r, "DeltaSchedule", "scales: expected comma-separated numbers", wf.key)


@pytest.mark.parametrize("path", FORMULATIONS)
def test_manual_switch_errors_name_the_widget(comfy, path):
    wf = H.txt2img(H.FAMILIES["sd3"], path, schedule={"mode": "manual", "manual_switch": ""})
    assert_node_error(comfy, comfy.run(wf.prompt()), "DeltaSchedule",
                      "manual_switch: expected 1 values (one per stage but the last)", wf.key)
    wf = H.txt2img(H.FAMILIES["sd3"], path, steps=10, schedule={"mode": "manual", "manual_switch": "50", "manual_unit": "step"})
    assert_node_error(comfy, comfy.run(wf.prompt()), sampler_node(path),
                      "manual_switch: expected step numbers below the schedule's 10 steps", wf.key)


# ------------------------------------------------------------------------------------------------
# combinations that cannot work: refused before sampling
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
def test_regional_conditioning_is_refused(comfy, path):
    wf = H.workflow(H.FAMILIES["sd3"])
    wf.pos = wf.graph.add("ConditioningSetArea", conditioning=wf.pos, width=64, height=64, x=0, y=0, strength=1.0)
    wf.finish(wf.sample(path, H.empty_latent(wf.graph, wf.fam, 16, 16)))
    assert_node_error(comfy, comfy.run(wf.prompt()), sampler_node(path),
                      "positive/negative: expected conditioning without area or mask", wf.key)


@pytest.mark.parametrize("path", ("sampler", "allinone"))
def test_patched_model_into_the_progressive_sampler_is_refused(comfy, path):
    """Both formulations at once would nest the progression (the patch would plan again on each
    stage's latent): refused."""
    wf = H.workflow(H.FAMILIES["sd3"])
    patched = wf.graph.add("SpectralProgressiveModel", model=wf.recorded, high_band="zero")
    lat = H.empty_latent(wf.graph, wf.fam, 16, 16)
    wf.finish(H.sampling_nodes(wf.graph, path, patched, wf.pos, wf.neg, lat, schedule=H.manual_schedule(wf.graph)))
    assert_node_error(comfy, comfy.run(wf.prompt()), sampler_node(path),
                      "model: expected a model without the SpectralProgressiveModel patch", wf.key)


# ------------------------------------------------------------------------------------------------
# PowerSpectrumProbe on nothing to measure
# ------------------------------------------------------------------------------------------------

def _probe(g: H.Graph, **inputs):
    return g.add("PowerSpectrumProbe", delta=0.01, stages=2, **inputs)


@pytest.mark.parametrize("case,message", [
    ("constant image", "image: spectrum: expected at least two non-DC frequencies with positive power"),
    ("tiny image", "image: spectrum: expected at least two non-DC frequencies with positive power"),
    ("empty image", "image: expected a non-empty IMAGE batch"),
    ("zero latent", "latent: spectrum: expected at least two non-DC frequencies with positive power"),
    ("empty latent", "latent: expected a non-empty input"),
    ("nothing", "latent: expected a LATENT or an IMAGE to measure"),
])
def test_probe_on_nothing_to_measure(comfy, case, message):
    g = H.Graph()
    if case == "constant image":
        _probe(g, image=g.add("EmptyImage", width=64, height=64, batch_size=1, color=0x808080))
    elif case == "tiny image":
        _probe(g, image=g.add("EmptyImage", width=1, height=1, batch_size=1, color=0))
    elif case == "empty image":
        _probe(g, image={"__value__": torch.zeros(0, 8, 8, 3)})
    elif case == "zero latent":
        _probe(g, latent=g.add("EmptySD3LatentImage", width=128, height=128, batch_size=1))
    elif case == "empty latent":
        _probe(g, latent={"__value__": {"samples": torch.zeros(0, 16, 8, 8)}})
    else:
        _probe(g)
    assert_node_error(comfy, comfy.run(g.prompt()), "PowerSpectrumProbe", message)


# ------------------------------------------------------------------------------------------------
# SpectralNoiseExpand
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("direction,scale,message", [
    ("expand", 0.5, "scale: expected above 1 to expand, below 1 to contract"),
    ("contract", 2.0, "scale: expected above 1 to expand, below 1 to contract"),
    ("contract", 0.1, "scale: expected a size of at least one patch (2)"),
])
def test_noise_expand_bad_scale(comfy, direction, scale, message):
    fam = H.FAMILIES["sd3"]
    g = H.Graph()
    model = H.model_node(g, fam)
    lat = H.empty_latent(g, fam, 8, 8)
    sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=6, denoise=1.0)
    ex = g.add("SpectralNoiseExpand", model=model, samples=lat, sigmas=sig, direction=direction, scale=scale,
               transform="dct", seed=0, respace="affine")
    g.add("SpectralTestReport", samples=ex, key="unused")
    assert_node_error(comfy, comfy.run(g.prompt()), "SpectralNoiseExpand", message)

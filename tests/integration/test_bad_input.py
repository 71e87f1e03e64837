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


# ------------------------------------------------------------------------------------------------
# found by the HTTP fuzz (tests/load/fuzz.py): tracebacks from inside the pack instead of an error
# that names the input
# ------------------------------------------------------------------------------------------------

def _latent_with(value: float, shape=(1, 16, 16, 16)) -> dict:
    t = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    t[0, 0, 3, 5] = value
    return {"__value__": {"samples": t}}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("path", FORMULATIONS)
def test_nonfinite_latent_is_refused(comfy, path, value):
    """Was: the sampler formulation failed with the core's "x: expected finite values", the patch
    sampled NaN silently."""
    wf = H.workflow(H.FAMILIES["sd3"])
    wf.finish(wf.sample(path, _latent_with(value), denoise=0.6))
    assert_node_error(comfy, comfy.run(wf.prompt()), sampler_node(path),
                      "latent_image: expected finite values (no NaN or inf)", wf.key)


def test_probe_on_a_nonfinite_latent(comfy):
    """Was: "latent: x: expected finite values" (the core's argument name inside the node's)."""
    g = H.Graph()
    _probe(g, latent=_latent_with(float("nan")))
    assert_node_error(comfy, comfy.run(g.prompt()), "PowerSpectrumProbe", "latent: expected finite values (no NaN or inf)")


def test_band_transfer_second_latent_of_another_shape(comfy):
    """Was: "high_from: expected the same shape" (the core's argument name, not the node input)."""
    g = H.Graph()
    a = g.add("EmptySD3LatentImage", width=128, height=128, batch_size=1)
    b = g.add("EmptySD3LatentImage", width=128, height=144, batch_size=2)
    e = g.add("FrequencyBandGain", mode="transfer", cut_low=0.25, cut_high=0.6, gain_low=1.0, gain_mid=1.0, gain_high=1.5,
              soft=0.05, latent=a, latent_b=b)
    g.add("SpectralTestReport", samples=e[1], key="unused")
    assert_node_error(comfy, comfy.run(g.prompt()), "FrequencyBandGain",
                      "latent_b: expected the shape of the first input (1, 16, 16, 16), got (2, 16, 18, 16)")


@pytest.mark.parametrize("name,value,message", [
    ("latent_image", None, "latent_image: expected a LATENT"),  # was: TypeError 'NoneType' object is not subscriptable
    ("positive", True, "positive: expected a CONDITIONING"),  # was: TypeError inside comfy.sampler_helpers
    ("negative", "delta", "negative: expected a CONDITIONING"),  # was: IndexError inside comfy.sampler_helpers
    ("model", 5, "model: expected a MODEL"),
])
def test_raw_value_where_a_socket_is_expected(comfy, name, value, message):
    """An API prompt may put a raw value on a socket input; ComfyUI's validation passes it on."""
    wf = H.txt2img(H.FAMILIES["sd3"], "allinone", steps=5)
    prompt = wf.prompt()
    node = [v for v in prompt.values() if v["class_type"] == "SpectralProgressiveSampler"][0]
    node["inputs"][name] = value
    assert_node_error(comfy, comfy.run(prompt), "SpectralProgressiveSampler", message, wf.key)


@pytest.mark.parametrize("name,message", [("cfg", "cfg: expected a finite number"),
                                          ("denoise", "denoise: expected a finite number in [0.0, 1.0]")])
def test_nan_widget_of_the_allinone(comfy, name, message):
    """NaN passes ComfyUI's min/max validation (no comparison with NaN is true)."""
    wf = H.txt2img(H.FAMILIES["sd3"], "allinone", steps=5, **{name: float("nan")})
    assert_node_error(comfy, comfy.run(wf.prompt()), "SpectralProgressiveSampler", message, wf.key)


def test_nan_custom_spectrum_names_the_widget(comfy):
    """Was: "spectrum.A: expected a positive finite number" (the core's field name)."""
    wf = H.txt2img(H.FAMILIES["sd3"], "sampler", schedule={"spectrum": "custom", "custom_A": float("nan")})
    assert_node_error(comfy, comfy.run(wf.prompt()), "DeltaSchedule", "custom_A: expected a positive finite number", wf.key)


@pytest.mark.parametrize("widgets,message", [
    ({"cut_low": float("nan")}, "cut_low: expected a finite number"),  # was: "cuts: expected increasing cut frequencies"
    ({"cut_low": 0.7, "cut_high": 0.6}, "cut_high: expected a cut above cut_low (0.7)"),  # was: the same "cuts: ..."
    ({"soft": float("nan")}, "soft: expected a finite number"),
])
def test_band_gain_widgets_name_themselves(comfy, widgets, message):
    g = H.Graph()
    lat = g.add("EmptySD3LatentImage", width=128, height=128, batch_size=1)
    vals = dict(mode="gains", cut_low=0.25, cut_high=0.6, gain_low=1.0, gain_mid=1.0, gain_high=1.5, soft=0.05)
    vals.update(widgets)
    e = g.add("FrequencyBandGain", latent=lat, **vals)
    g.add("SpectralTestReport", samples=e[1], key="unused")
    assert_node_error(comfy, comfy.run(g.prompt()), "FrequencyBandGain", message)


@pytest.mark.parametrize("case,message", [
    # was: success with an infinite latent (a flow latent at sigma 1 in ComfyUI's leftover-noise form is x / 0)
    ("pure noise", "sigmas: expected a first sigma that leaves some signal"),
    # was: ValueError "cannot convert float NaN to integer" from round() inside the node
    ("nan scale", "scale: expected a finite number"),
])
def test_noise_expand_refuses_what_it_cannot_represent(comfy, case, message):
    fam = H.FAMILIES["sd3"]
    g = H.Graph()
    model = H.model_node(g, fam)
    lat = H.empty_latent(g, fam, 8, 8)
    sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=6, denoise=1.0)  # starts at sigma 1
    ex = g.add("SpectralNoiseExpand", model=model, samples=lat, sigmas=sig, direction="expand",
               scale=float("nan") if case == "nan scale" else 2.0, transform="dct", seed=0, respace="affine")
    g.add("SpectralTestReport", samples=ex, key="unused")
    assert_node_error(comfy, comfy.run(g.prompt()), "SpectralNoiseExpand", message)

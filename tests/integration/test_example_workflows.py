"""The example workflows (example_workflows/) run in real ComfyUI with tiny models substituted.

* every API-format example (example_workflows/api/*.json) is the one tests/browser/examples_src.py
  builds, and runs through ComfyUI's own executor (validate_prompt + PromptExecutor, the harness's
  ``comfy`` fixture) with tiny random-weight models, conditioning and VAEs substituted
  (tests/browser/tiny_examples.py) and sizes/steps shrunk; the sampled latents and decoded images
  have the expected shapes and are finite;
* every UI-format example (example_workflows/*.json, what ComfyUI's template browser lists and
  loads) parses, holds the same node types, node count, links and widget values as its API twin,
  and has its template thumbnail (.jpg).

Run: COMFYUI_PATH=/path/to/ComfyUI python -m pytest -q tests/integration/test_example_workflows.py
"""
from __future__ import annotations

import json
import math
import os

import pytest

from . import harness

harness.require_comfyui()

from ..browser import examples_src, tiny_examples  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES_DIR = os.path.join(REPO, "example_workflows")
API_DIR = os.path.join(EXAMPLES_DIR, "api")
NAMES = list(examples_src.EXAMPLES)
UI_ONLY_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}

# What each tiny run must produce: (class_type, output slot, shape).  Tiny sizes: 128 px on the
# longest side of the example's largest size node (latents /8), 6 steps; see tiny_examples.tiny_variant.
EXPECTED = {
    "flux_txt2img_spectral_sampler": [("SamplerCustomAdvanced", 0, (1, 16, 16, 16)), ("VAEDecode", 0, (1, 128, 128, 3))],
    "sd15_spectral_ksampler": [("SpectralProgressiveSampler", 0, (1, 4, 16, 16)), ("VAEDecode", 0, (1, 128, 128, 3))],
    "wan21_t2v_model_patch": [("KSampler", 0, (1, 16, 2, 10, 16))],
    "sd15_txt2img_model_patch": [("KSampler", 0, (1, 4, 16, 10)), ("VAEDecode", 0, (1, 128, 80, 3))],
    "flux_manual_stages_noise_expand": [("KSamplerAdvanced", 0, (1, 16, 16, 16)), ("SpectralNoiseExpand", 0, (1, 16, 32, 32)),
                                        ("SamplerCustomAdvanced", 0, (1, 16, 32, 32)), ("VAEDecode", 0, (1, 256, 256, 3))],
    "flux_probe_schedule_sampler": [("VAEEncode", 0, (1, 16, 16, 16)), ("SamplerCustomAdvanced", 0, (1, 16, 16, 16)),
                                    ("VAEDecode", 0, (1, 128, 128, 3))],
    "flux_frequency_edit": [("FrequencyEdit", 0, (1, 16, 16, 16)), ("VAEDecode", 0, (1, 128, 128, 3))],
    "frequency_band_transfer": [("FrequencyBandGain", 0, (1, 128, 128, 3))],
    "flux_passthrough_sweep": [("SpectralPassthroughSweep", 0, (5, 128, 128, 3))],  # plain + 4 deltas
    "sd15_forcing_diagnostic": [("KSampler", 0, (1, 4, 16, 16)), ("VAEDecode", 0, (1, 128, 128, 3))],
    "flux_spectral_scheduler": [("SpectralScheduler", 0, (29,)), ("SamplerCustomAdvanced", 0, (1, 16, 16, 16)),
                                ("VAEDecode", 0, (1, 128, 128, 3))],
}


def load_api(name: str) -> dict:
    with open(os.path.join(API_DIR, name + ".json")) as f:
        return json.load(f)


def load_ui(name: str) -> dict:
    with open(os.path.join(EXAMPLES_DIR, name + ".json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def env(comfy):
    """The harness's in-process ComfyUI plus the examples' extra assets: random-weight TAESD/TAEF1
    in a vae_approx folder, and the example input images in ComfyUI's input folder."""
    import folder_paths
    vae_dir = os.path.join(comfy.root, "vae_approx")
    if not os.path.isdir(vae_dir):
        tiny_examples.write_taesd(vae_dir)
    folder_paths.add_model_folder_path("vae_approx", vae_dir)
    tiny_examples.write_images(folder_paths.get_input_directory(), comfy_dir=comfy.comfy_dir)
    return comfy


def test_every_example_has_both_formats():
    assert set(NAMES) == {f[:-5] for f in os.listdir(API_DIR) if f.endswith(".json")}
    assert set(NAMES) == {f[:-5] for f in os.listdir(EXAMPLES_DIR) if f.endswith(".json")}


@pytest.mark.parametrize("name", NAMES)
def test_api_file_is_generated_from_source(name):
    """example_workflows/api is written by tests/browser/build_examples.py from examples_src: no drift."""
    assert load_api(name) == examples_src.EXAMPLES[name][0]()


@pytest.mark.parametrize("name", NAMES)
def test_api_example_runs_with_tiny_models(env, name):
    family = examples_src.EXAMPLES[name][1]
    prompt = tiny_examples.tiny_variant(load_api(name), family)
    print(f"{name}: running the tiny variant ({len(prompt)} nodes)")
    res = env.run(prompt)
    assert res.validation_error is None, f"{name}: validation failed: {res.validation_error} {res.node_errors}"
    assert res.ok, f"{name}: execution failed: {res.error}"
    by_class: dict[str, list[str]] = {}
    for nid, n in prompt.items():
        by_class.setdefault(n["class_type"], []).append(nid)
    for class_type, slot, shape in EXPECTED[name]:
        assert len(by_class.get(class_type, [])) == 1, f"{name}: expected one {class_type}"
        out = res.outputs[by_class[class_type][0]][slot][0]
        t = out["samples"] if isinstance(out, dict) else out
        assert tuple(t.shape) == shape, f"{name}: {class_type}[{slot}] has shape {tuple(t.shape)}, expected {shape}"
        assert bool(t.isfinite().all()), f"{name}: {class_type}[{slot}] is not finite"
    # the output nodes really wrote/showed something
    for nid in by_class.get("SaveImage", []):
        imgs = res.ui[nid]["images"]
        assert imgs and all(os.path.isfile(os.path.join(env.root, "output", i["subfolder"], i["filename"])) for i in imgs)
    for nid in by_class.get("PowerSpectrumProbe", []):
        assert res.ui[nid]["images"], "the probe shows its plot in the node"
        plot = res.outputs[nid][1][0]
        assert plot.ndim == 4 and plot.shape[-1] == 3
    for nid in by_class.get("SpectralTestReport", []):
        assert res.ui[nid]["latent"][0]["finite"]


# ------------------------------------------------------------------------------------------------
# UI format: what the template browser loads
# ------------------------------------------------------------------------------------------------

def _ui_nodes(ui: dict) -> list[dict]:
    return [n for n in ui["nodes"] if n["type"] not in UI_ONLY_TYPES]


@pytest.mark.parametrize("name", NAMES)
def test_ui_example_matches_api(name):
    ui, api = load_ui(name), load_api(name)
    assert ui.get("version") is not None and isinstance(ui.get("nodes"), list) and isinstance(ui.get("links"), list)
    nodes = _ui_nodes(ui)
    assert sorted(n["type"] for n in nodes) == sorted(n["class_type"] for n in api.values()), \
        f"{name}: UI and API list different node types"
    by_id = {str(n["id"]): n for n in nodes}
    assert set(by_id) == set(api), f"{name}: node ids differ"
    n_links = sum(1 for n in api.values() for v in n["inputs"].values() if isinstance(v, list))
    assert len(ui["links"]) == n_links, f"{name}: {len(ui['links'])} links in the UI file, {n_links} in the API file"
    links = {ln[0]: ln for ln in ui["links"]}  # [id, origin_id, origin_slot, target_id, target_slot, type]
    for nid, n in api.items():
        un = by_id[nid]
        assert un["type"] == n["class_type"]
        # every API link is a UI link into the input of the same name
        for key, v in n["inputs"].items():
            if isinstance(v, list):
                inp = next((i for i in un.get("inputs", []) if i["name"] == key), None)
                assert inp is not None and inp.get("link") is not None, f"{name}: node {nid} input {key} not linked"
                ln = links[inp["link"]]
                assert (str(ln[1]), ln[2]) == (str(v[0]), v[1]), f"{name}: node {nid}.{key} linked from {ln[1:3]}, not {v}"
        # every API widget value appears among the node's widget values (in order)
        wv = un.get("widgets_values") or []
        wv = list(wv.values()) if isinstance(wv, dict) else list(wv)
        scalars = [v for v in n["inputs"].values() if not isinstance(v, list)]
        it = iter(wv)
        for v in scalars:
            assert any(_same(v, w) for w in it), f"{name}: node {nid} ({n['class_type']}) lacks widget value {v!r}: {wv}"


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:  # the frontend rounds FLOAT widgets to their step's precision (custom_beta 1.9155 -> 1.916)
            return math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


@pytest.mark.parametrize("name", NAMES)
def test_ui_example_has_thumbnail(name):
    """ComfyUI's template browser shows /api/workflow_templates/<pack>/<name>.jpg for each template."""
    path = os.path.join(EXAMPLES_DIR, name + ".jpg")
    assert os.path.isfile(path), f"missing thumbnail {path}"
    with open(path, "rb") as f:
        assert f.read(3) == b"\xff\xd8\xff", "not a JPEG"

"""What changed in ComfyUI between 0.3.64 and 0.33, each pinned where it can run on this CPU machine.

* Wrapper signatures: 0.8 and 0.33 pass ``latent_shapes`` to OUTER_SAMPLE wrappers and to the guider's sample
  functions.  The patch's OUTER_SAMPLE wrapper must take it (a fixed signature raises TypeError on every
  patched run); the packed-latent test below also needs it to see the shapes.
* Nested latents (LTX-2 audio+video): 0.8 and 0.33 pack them into one flat (B, 1, N) tensor before any sampler
  runs.  A sampler or patch that resizes the latent cannot work on that: all three paths refuse it with
  one named error before the model is called.
* ``ModelPatcherDynamic`` (dynamic VRAM): the pack patches and samples a model wrapped by it.  On a CPU
  load device ComfyUI's constructor itself returns a plain ModelPatcher, so the GPU-only behaviour of the
  dynamic patcher is not exercised here.
* Multi-GPU cond batching (``multigpu_clones``): with a work-unit clone, ComfyUI evaluates cond batches in
  ``_calc_cond_batch_multigpu``, behind the patch's CALC_COND_BATCH wrapper; the result must equal the
  single-device run.  The clone is made on the CPU (this machine's only device) with ComfyUI's own
  ``deepclone_multigpu``.
* Too old a ComfyUI (no V3 node API): the pack refuses to load with a readable ImportError.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from . import harness as H
from .test_bad_input import assert_node_error, sampler_node
from .test_sampling import FORMULATIONS, ran_ok

H.require_comfyui()


def _has_node(name: str) -> bool:
    import nodes
    return name in nodes.NODE_CLASS_MAPPINGS


@pytest.mark.parametrize("path", FORMULATIONS)
def test_packed_audio_video_latent_is_refused(comfy, path):
    if not _has_node("LTXVConcatAVLatent"):
        pytest.skip("this ComfyUI has no nested (audio+video) latents")
    wf = H.workflow(H.FAMILIES["wan"])
    g = wf.graph
    video = H.empty_latent(g, wf.fam, 8, 8)
    audio = g.add("EmptyLatentImage", width=32, height=32, batch_size=1)
    av = g.add("LTXVConcatAVLatent", video_latent=video, audio_latent=audio)
    wf.finish(wf.sample(path, av))
    r = comfy.run(wf.prompt())
    assert_node_error(comfy, r, sampler_node(path), "latent_image: expected one image or video latent", wf.key)
    assert "LTX-2" in r.error["exception_message"]


@pytest.mark.parametrize("path", FORMULATIONS)
def test_model_from_the_dynamic_vram_patcher(comfy, path):
    import comfy.model_patcher as cmp
    if not hasattr(cmp, "ModelPatcherDynamic"):
        pytest.skip("this ComfyUI has no ModelPatcherDynamic")
    results = []
    for dynamic in (False, True):
        wf = H.workflow(H.FAMILIES["sd3"])
        model = wf.recorded
        if dynamic:  # loader -> dynamic patcher -> call recorder (the new patcher starts without wrappers)
            dyn = wf.graph.add("SpectralTestDynamicPatcher", model=wf.model)
            model = wf.graph.add("SpectralTestCallRecorder", model=dyn, key=wf.key)
        latent = H.empty_latent(wf.graph, wf.fam, 16, 16)
        sch = H.make_schedule(wf.graph, "manual")
        wf.finish(H.sampling_nodes(wf.graph, path, model, wf.pos, wf.neg, latent, schedule=sch, steps=8))
        r = ran_ok(comfy.run(wf.prompt()))
        calls = r.ui[wf.report.id]["calls"]
        assert [c["shape"][-1] for c in calls][0] < 16, "the first stage must run below full size"
        results.append(r.out(wf.out)["samples"])
    torch.testing.assert_close(results[1], results[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ("patch", "sampler"))
def test_multigpu_cond_batching_passes_through_the_patch(comfy, path):
    import comfy.model_patcher as cmp
    if not hasattr(cmp.ModelPatcher, "deepclone_multigpu"):
        pytest.skip("this ComfyUI has no multi-GPU cond batching")
    seen = comfy.test_nodes.MULTIGPU_SEEN
    results = []
    for multigpu in (False, True):
        seen.clear()
        wf = H.workflow(H.FAMILIES["sd3"])  # UNETLoader: the loader factory deepclone_multigpu needs
        model = wf.graph.add("SpectralTestMultiGPUOnCPU", model=wf.recorded) if multigpu else wf.recorded
        latent = H.empty_latent(wf.graph, wf.fam, 16, 16)
        sch = H.make_schedule(wf.graph, "manual")
        wf.finish(H.sampling_nodes(wf.graph, path, model, wf.pos, wf.neg, latent, schedule=sch, steps=8))
        r = ran_ok(comfy.run(wf.prompt()))
        calls = r.ui[wf.report.id]["calls"]
        assert calls and calls[0]["shape"][-1] < 16, "the first stage must run below full size"
        if multigpu:
            assert seen and all(n == 1 for n in seen), f"cond batches did not take the multi-GPU path: {seen}"
        results.append(r.out(wf.out)["samples"])
    torch.testing.assert_close(results[1], results[0], rtol=1e-4, atol=1e-4)


_REFUSAL_CODE = r"""
import asyncio, sys, importlib.util
spec = importlib.util.spec_from_file_location("t", sys.argv[1]); m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m); m.setup_comfy(sys.argv[2])
import nodes
sys.modules["comfy_api.latest"] = None   # from here on, as in a ComfyUI without the V3 node API: no comfy_api.latest
ok = asyncio.run(nodes.load_custom_node(sys.argv[3]))
print("LOADED" if ok else "REFUSED", [n for n in nodes.NODE_CLASS_MAPPINGS if n.startswith("Spectral")])
"""


def test_refuses_to_load_without_the_v3_node_api(comfy):
    """A ComfyUI too old for the V3 API lists the pack as IMPORT FAILED with a message that says why,
    and registers none of its nodes."""
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", _REFUSAL_CODE, os.path.join(here, "tiny_models.py"), comfy.comfy_dir,
                        comfy.pack_path], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "REFUSED []" in r.stdout, out[-3000:]
    assert "needs ComfyUI's V3 node API, and this ComfyUI is too old" in out, out[-3000:]
    assert "Update ComfyUI (tested with 0.3.64 to 0.33.0)" in out, out[-3000:]


def test_no_deprecation_warnings_from_the_pack(comfy, caplog):
    """Every formulation once, with every warning recorded: none is raised from the pack's own files, and
    ComfyUI logs no deprecation naming the pack."""
    import logging
    import warnings
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ours = [os.path.join(repo, d) for d in ("nodes", "spectral_core", "schedules", "__init__.py")]
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in FORMULATIONS:
            ran_ok(comfy.run(H.txt2img(H.FAMILIES["flux"], path, steps=6).prompt()))
    from_pack = [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught
                 if any(os.path.realpath(w.filename).startswith(p) for p in ours)]
    assert not from_pack, from_pack
    logged = [r.getMessage() for r in caplog.records
              if "deprecat" in r.getMessage().lower() and "spectral" in r.getMessage().lower()]
    assert not logged, logged

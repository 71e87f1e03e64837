"""SpectralCalibrate in real ComfyUI (issue 13, few-step calibration): it runs the user's model on their own
clean latent, its spectrum plugs into DeltaSchedule, a second run with the same inputs is served from
the cache (no network call), and a wrong latent gets an error naming it.  The fit itself is pinned on
exact Gaussian models in tests/unit/test_calibration.py (tiny random-weight models have no spectrum)."""
from __future__ import annotations

import torch

from . import harness as H
from .test_bad_input import assert_node_error
from .test_sampling import ran_ok

H.require_comfyui()


def _clean_latent(seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    return {"__value__": {"samples": torch.randn(1, 16, 16, 16, generator=g) * 0.5}}


def _graph(latent=None, times: int = 3, seed: int = 0, copies: int = 1):
    """``copies`` x (Calibrate (recorded model) -> DeltaSchedule -> all-in-one sampler (unrecorded model)),
    the first sampler reported, the others kept."""
    wf = H.workflow(H.FAMILIES["flux"])
    g = wf.graph
    lat = H.empty_latent(g, wf.fam, 16, 16)
    cals, outs = [], []
    for _ in range(copies):
        cal = g.add("SpectralCalibrate", model=wf.recorded, positive=wf.pos, latent=latent or _clean_latent(),
                    delta=0.01, times=times, seed=seed)
        sched = H.schedule_node(g, probe_spectrum=cal[0])
        outs.append(g.add("SpectralProgressiveSampler", model=wf.model, seed=0, steps=6, cfg=2.0,
                          sampler_name="euler", scheduler="simple", positive=wf.pos, negative=wf.neg,
                          latent_image=lat, schedule=sched[0], denoise=1.0))
        cals.append(cal)
    for o in outs[1:]:
        wf.keep(o)
    wf.finish(outs[0])
    return wf, cals


def test_calibration_feeds_the_schedule_and_is_cached(comfy):
    """Two calibrations of the same model on the same latent, times and seed in one prompt: the network
    runs once per time, the second is served from the cache (ComfyUI keeps a loaded model between
    prompts, so the same holds across prompts)."""
    wf, cals = _graph(times=3, seed=11, copies=2)
    r = ran_ok(comfy.run(wf.prompt()))
    reported = r.ui[wf.report.id]["calls"]
    late = comfy.calls(wf.key)  # calls made after the report node ran (if the copy ran late)
    assert len(reported) + len(late) == 3, "one model call per calibration time, the copy from the cache"
    summary = r.out(cals[0], 1)
    assert "A = " in summary and "beta = " in summary and "switch t* = " in summary, summary
    assert r.out(cals[1], 1) == summary


def test_calibration_refuses_a_latent_of_the_wrong_kind(comfy):
    wf, _ = _graph(latent={"__value__": {"samples": torch.zeros(1, 4, 16, 16)}})
    r = comfy.run(wf.prompt())
    assert_node_error(comfy, r, "SpectralCalibrate", "latent", wf.key)

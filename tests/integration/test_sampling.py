"""Issue 4 "Must work": every case with the SAMPLER formulation (SamplerSpectralProgressive in
SamplerCustomAdvanced, and the all-in-one SpectralProgressiveSampler) and with the MODEL patch
(SpectralProgressiveModel in front of KSampler), on tiny FLUX, SD3, SD1.5 (EPS) and WAN 2.1 (video),
run through ComfyUI's own executor.

Model calls are recorded by an APPLY_MODEL wrapper (test node SpectralTestCallRecorder) and compared
with the plan recomputed by the pack's ScheduleSpec.plan on the sigmas the sampler ran:
formulation 1 runs stage i's own sigmas at stage i's size; formulation 2 runs the user's sigmas,
contracted to stage i's size while the full-size time is above the stage's aligned switch time.
ComfyUI batches cond and uncond into one call, so with CFG > 1 each step is ONE call of 2 x batch
rows (cfg == 1 skips the uncond: batch rows).  The samplers used take one model evaluation per step.
The manual schedule (switch at step 4) makes a real low stage on these tiny latents.
"""
from __future__ import annotations

import pytest
import torch

from . import harness as H

H.require_comfyui()

FORMULATIONS = ("sampler", "allinone", "patch")
SAMPLERS = ("euler", "dpmpp_2m", "euler_ancestral")


def user_sigmas(comfy, model, steps: int = 10, scheduler: str = "simple", denoise: float = 1.0, sampler: str = "euler"):
    """The sigmas ComfyUI's KSampler (and BasicScheduler) run for this model."""
    import comfy.samplers
    return comfy.samplers.KSampler(model, steps, "cpu", sampler, scheduler, denoise).sigmas.cpu()


def check_calls(comfy, r, wf, path, *, sigmas, rows, schedule="manual", entry="noise", evals=H.one_eval):
    """Assert the recorded calls are the plan's and return the plan."""
    size = tuple(r.out(wf.out)["samples"].shape[-2:])
    plan = H.plan_for(H.spec_from(schedule), sigmas, size, wf.fam, entry=entry if path != "patch" else "noise")
    calls = H.observed_calls(r.ui[wf.report.id]["calls"])
    if path == "patch":
        H.assert_calls(calls, H.expected_patch_calls(plan, sigmas, wf.fam.frame, rows, evals))
    else:
        H.assert_calls(calls, H.expected_sampler_calls(plan, rows, evals))
    return plan


def ran_ok(r):
    assert r.ok, f"validation: {r.validation_error} {r.node_errors}\nexecution: {r.error}"
    return r


def assert_progressive(plan, size, fam):
    """The plan really has a low stage: smaller, on the model's multiple; the last stage is the full size."""
    assert len(plan.stages) >= 2, plan.summary()
    lo = plan.stages[0].size
    assert lo[0] < size[0] and lo[1] < size[1], plan.summary()
    assert lo[0] % fam.multiple == 0 and lo[1] % fam.multiple == 0, plan.summary()
    assert tuple(plan.stages[-1].size) == tuple(size)


# ------------------------------------------------------------------------------------------------
# txt2img / t2v with three base samplers
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_txt2img_runs_the_planned_stages(comfy, fam, path, sampler):
    f = H.FAMILIES[fam]
    wf = H.txt2img(f, path, sampler=sampler, h=16, w=16, steps=10, cfg=2.0)
    r = ran_ok(comfy.run(wf.prompt()))
    out = r.out(wf.out)["samples"]
    want = (1, f.channels, 3, 16, 16) if f.video else (1, f.channels, 16, 16)
    assert tuple(out.shape) == want and bool(torch.isfinite(out).all())
    sig = user_sigmas(comfy, r.out(wf.model))
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2)
    assert_progressive(plan, (16, 16), f)
    assert plan.steps == 10
    if path == "sampler":  # the SAMPLER object kept the plan it ran
        node_sampler = r.out(H.Ref(_find(wf, "SamplerSpectralProgressive")))
        ran = node_sampler.last_plan
        assert [tuple(s.size) for s in ran.stages] == [tuple(s.size) for s in plan.stages]
        assert [s.steps for s in ran.stages] == [s.steps for s in plan.stages]
    if path == "allinone":  # the plan output names the stages that ran
        text = r.out(wf.out, 1)
        for s in plan.stages:
            assert f"{s.size[0]}x{s.size[1]}, {s.steps} steps" in text, text
    if f.video:  # the frame axis is untouched in every stage
        assert all(c["shape"][2] == 3 for c in r.ui[wf.report.id]["calls"])


def _find(wf, class_type):
    ids = [k for k, v in wf.graph.nodes.items() if v["class_type"] == class_type]
    assert len(ids) == 1, (class_type, ids)
    return ids[0]


@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", ("sd3", "sd15"))
def test_two_evaluations_per_step_heun(comfy, fam, path):
    """Heun calls the model twice per step (at sigma_i and sigma_{i+1}, once on the last step to 0):
    formulation 1 does so inside every stage on the stage's own sigmas; the patch routes each of the
    two calls by its own sigma.  The progress bar still counts steps."""
    f = H.FAMILIES[fam]
    wf = H.txt2img(f, path, sampler="heun", steps=8)
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=8, sampler="heun")
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2, evals=H.heun_evals)
    assert_progressive(plan, (16, 16), f)
    assert [p[0] for p in r.progress] == list(range(1, 9))


# ------------------------------------------------------------------------------------------------
# CFG with a negative, batch 2, non-square odd sizes
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_cfg_batch2_odd_nonsquare(comfy, fam, path):
    f = H.FAMILIES[fam]
    h, w = 13, 22
    wf = H.txt2img(f, path, h=h, w=w, batch=2, steps=8, cfg=4.5, sampler="dpmpp_2m")
    r = ran_ok(comfy.run(wf.prompt()))
    out = r.out(wf.out)["samples"]
    want = (2, f.channels, 3, h, w) if f.video else (2, f.channels, h, w)
    assert tuple(out.shape) == want, "output must be exactly the requested size"
    assert bool(torch.isfinite(out).all())
    assert not torch.allclose(out[0], out[1]), "batch items got the same noise"
    sig = user_sigmas(comfy, r.out(wf.model), steps=8)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=4)  # cond + uncond batched, 2 each
    assert_progressive(plan, (h, w), f)


@pytest.mark.parametrize("path", FORMULATIONS)
def test_cfg_changes_the_result_and_cfg1_skips_uncond(comfy, path):
    """The negative is really used: cfg 1 skips the uncond (batch rows per call = 1) and differs from cfg 3."""
    f = H.FAMILIES["sd3"]
    results = {}
    for cfg in (1.0, 3.0):
        wf = H.txt2img(f, path, cfg=cfg, steps=6)
        r = ran_ok(comfy.run(wf.prompt()))
        results[cfg] = r.out(wf.out)["samples"]
        check_calls(comfy, r, wf, path, sigmas=user_sigmas(comfy, r.out(wf.model), steps=6), rows=1 if cfg == 1.0 else 2)
    assert not torch.allclose(results[1.0], results[3.0], atol=1e-4)


# ------------------------------------------------------------------------------------------------
# same seed twice -> identical; another seed -> different
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_same_seed_same_output(comfy, fam, path):
    f = H.FAMILIES[fam]
    outs = []
    for seed in (7, 7, 8):
        wf = H.txt2img(f, path, seed=seed, sampler="euler_ancestral", steps=6)
        r = ran_ok(comfy.run(wf.prompt()))
        outs.append(r.out(wf.out)["samples"])
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2], atol=1e-3)


# ------------------------------------------------------------------------------------------------
# latent preview callback and progress bar over all stages
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
def test_preview_and_progress_over_all_stages(comfy, fam, path):
    f = H.FAMILIES[fam]
    h, w = 12, 20
    wf = H.txt2img(f, path, h=h, w=w, steps=9)
    r = ran_ok(comfy.run(wf.prompt()))
    sig = user_sigmas(comfy, r.out(wf.model), steps=9)
    plan = check_calls(comfy, r, wf, path, sigmas=sig, rows=2)
    n = plan.steps if path != "patch" else len(sig) - 1
    values = [p[0] for p in r.progress]
    totals = {p[1] for p in r.progress}
    assert values == list(range(1, n + 1)), f"progress values {values}, plan steps {n}"
    assert totals == {n}, f"progress totals {totals}, plan steps {n}"
    # every step has a latent preview (Latent2RGB), of the full-size latent even in a low stage
    previews = [p[2] for p in r.progress]
    assert all(p is not None for p in previews)
    assert {p[1].size for p in previews} == {(w, h)}

"""Interrupt in the middle of a low stage leaves ComfyUI healthy, in-process (the progress hook asks
for the interrupt, as the server's /interrupt does through comfy.model_management) for both
formulations.  The HTTP variant (POST /interrupt on a real server) is in test_http.py."""
from __future__ import annotations

import pytest
import torch

from . import harness as H
from .test_sampling import FORMULATIONS, ran_ok, user_sigmas

H.require_comfyui()


@pytest.mark.parametrize("path", FORMULATIONS)
@pytest.mark.parametrize("fam", ("sd3", "wan"))
def test_interrupt_mid_low_stage_then_run_again(comfy, fam, path):
    f = H.FAMILIES[fam]
    before = H.txt2img(f, path, steps=10, seed=9)
    r0 = ran_ok(comfy.run(before.prompt()))
    sig = user_sigmas(comfy, r0.out(before.model), steps=10)
    plan = H.plan_for(H.spec_from("manual"), sig, (16, 16), f)
    low = tuple(plan.stages[0].size)

    wf = H.txt2img(f, path, steps=10, seed=9)
    r = comfy.run(wf.prompt(), interrupt_at=2)
    assert not r.ok and r.interrupted, r.messages
    assert not any(ev == "execution_error" for ev, _ in r.messages)
    calls = comfy.calls(wf.key)
    assert len(calls) == 2 and all(tuple(c["shape"][-2:]) == low for c in calls), calls  # stopped inside stage 1
    assert [p[0] for p in r.progress] == [1]  # the update that asked for the interrupt raised before reporting

    again = H.txt2img(f, path, steps=10, seed=9)
    r2 = ran_ok(comfy.run(again.prompt()))
    assert torch.equal(r2.out(again.out)["samples"], r0.out(before.out)["samples"])
    assert len(r2.ui[again.report.id]["calls"]) == 10

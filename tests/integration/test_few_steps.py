"""Issue 13 "never cost more, never skip the full size": 1, 2, 4 and 8 steps on every family through all
three paths, in real ComfyUI.  The network calls recorded by the test node (APPLY_MODEL) cost no more
model compute (tokens) than the plain run's steps at full size, and the last call is at full size.
Before the fix, FLUX at 1 step cost 1.25x through the sampler (a 32x32 and a 64x64 call) and the patch
never ran the network at full size."""
from __future__ import annotations

import pytest

from . import harness as H
from .test_sampling import FORMULATIONS, ran_ok

H.require_comfyui()


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("fam", H.MAIN_FAMILIES)
@pytest.mark.parametrize("path", FORMULATIONS)
def test_few_steps_never_cost_more_and_end_at_full_size(comfy, path, fam, steps):
    f = H.FAMILIES[fam]
    h, w = 16, 24
    # a large delta makes the switch fire early even on these tiny latents: the low stage is real
    wf = H.txt2img(f, path, h=h, w=w, steps=steps, schedule={"delta": 0.5})
    r = ran_ok(comfy.run(wf.prompt()))
    assert tuple(r.out(wf.out)["samples"].shape[-2:]) == (h, w)
    calls = [tuple(c["shape"][-2:]) for c in r.ui[wf.report.id]["calls"]]
    assert calls, "the network was never called"
    assert calls[-1] == (h, w), f"the last network call is not at full size: {calls}"
    tokens = sum(a * b for a, b in calls)
    assert tokens <= steps * h * w, f"{len(calls)} calls {calls} cost more than {steps} plain steps"
    if steps >= 4 and f.frame == "const":  # where there is room, the flow models really run progressively
        # (SD1.5's max-denoise start, t = 0.936, is not above its first switch on a 16x24 latent: see README)
        assert min(a * b for a, b in calls) < h * w, calls

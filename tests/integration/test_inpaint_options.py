"""The sampler formulation inpaints through ComfyUI's own KSamplerX0Inpaint and honours the base
sampler's inpaint options (issue 12: the stage denoiser used to copy that wrapper and always blended
the kept region with the run's noise).  With a one-stage schedule the progressive sampler is exactly
ComfyUI's own sampler, for euler and for ddim, whose inpaint noise is fresh noise from seed + 1."""
from __future__ import annotations

import pytest
import torch

from . import harness as H
from .test_graph_features import block_mask, source_latent
from .test_sampling import ran_ok

H.require_comfyui()


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_one_stage_inpainting_is_comfyuis_own_sampler(comfy, sampler):
    fam = H.FAMILIES["sd3"]
    h, w, blk = 16, 20, (4, 6, 8, 8)
    wf = H.workflow(fam)
    src = source_latent(wf, h, w)
    masked = wf.graph.add("SetLatentNoiseMask", samples=src, mask=block_mask(wf.graph, h, w, *blk))
    ours = wf.keep(wf.sample("sampler", masked, schedule={"stages": 1}, steps=6, seed=11, sampler=sampler,
                             record=False))
    plain = wf.keep(wf.sample("plain_custom", masked, schedule=None, steps=6, seed=11, sampler=sampler, record=False))
    r = ran_ok(comfy.run(wf.prompt()))
    a, b = r.out(ours)["samples"], r.out(plain)["samples"]
    assert a.shape == (1, fam.channels, h, w)
    torch.testing.assert_close(a, b, rtol=0, atol=0)

"""SpectralForcingPatch (seed 004 at inference, a diagnostic) in real ComfyUI with tiny models of a
CONST family (FLUX) and an EPS family (SD1.5): the node runs in graphs next to KSampler, and inside
ComfyUI's sampler the model really denoises F_t(x) at the model's flow time (D(x) = D_model(F x))."""
from __future__ import annotations

import math

import pytest
import torch

from . import harness as H
from .test_sampling import ran_ok

H.require_comfyui()

FAMILIES = ("flux", "sd15")
LAW = {"spectrum": "custom", "custom_A": 4.0, "custom_beta": 2.0}  # contour inside a 16x16 latent at mid noise


def _graph(fam: H.Family, **patch):
    """Model, conds, a 16x16 latent, the patch node, and KSampler on the patched and on the plain model."""
    wf = H.workflow(fam)
    g = wf.graph
    lat = H.empty_latent(g, fam, 16, 16)
    patched = g.add("SpectralForcingPatch", model=wf.model, **{"transform": "dct", **LAW, **patch})
    ks = dict(seed=3, steps=4, cfg=2.0, sampler_name="euler", scheduler="simple", positive=wf.pos, negative=wf.neg,
              latent_image=lat, denoise=1.0)
    plain = wf.keep(g.add("KSampler", model=wf.model, **ks))
    forced = g.add("KSampler", model=g.add("SpectralTestCallRecorder", model=patched, key=wf.key), **ks)
    wf.finish(forced)
    return wf, patched, plain, forced


@pytest.mark.parametrize("fam", FAMILIES)
def test_patch_runs_in_a_graph_and_changes_the_result(comfy, fam):
    f = H.FAMILIES[fam]
    wf, patched, plain, forced = _graph(f)
    r = ran_ok(comfy.run(wf.prompt()))
    a, b = r.out(plain)["samples"], r.out(forced)["samples"]
    assert a.shape == b.shape == (1, f.channels, 16, 16) and bool(torch.isfinite(b).all())
    assert float((a - b).abs().max()) > 1e-4 * float(a.abs().max())
    calls = r.ui[wf.report.id]["calls"]
    assert len(calls) == 4 and all(c["shape"][-2:] == [16, 16] for c in calls)


def _recorders(model_patcher):
    """A clone recording the cond batch (x_in, outputs) outside and the network call (x, return) inside
    every other wrapper (APPLY_MODEL wrappers run in the order their keys were added)."""
    import comfy.patcher_extension as pe
    log = {"batch": [], "net": []}

    def outer(executor, model, conds, x_in, timestep, model_options):
        outs = executor(model, conds, x_in, timestep, model_options)
        log["batch"].append((x_in.clone(), [o.clone() for o in outs], timestep.clone()))
        return outs

    def inner(executor, x, t, *args, **kwargs):
        out = executor(x, t, *args, **kwargs)
        log["net"].append((x.clone(), out.clone()))
        return out

    m = model_patcher.clone()
    m.add_wrapper_with_key(pe.WrappersMP.CALC_COND_BATCH, "it_forcing_outer", outer)
    m.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "it_forcing_inner", inner)
    return m, log


def _one_step(model, pos, neg, sigma: float):
    """One Euler step from ``sigma`` to 0 through ComfyUI's own sampler (cfg 2, fixed noise)."""
    import comfy.sample
    import comfy.samplers
    noise = torch.randn((1, model.model.latent_format.latent_channels, 16, 16), generator=torch.Generator().manual_seed(5))
    return comfy.sample.sample_custom(model, noise, 2.0, comfy.samplers.sampler_object("euler"),
                                      torch.tensor([sigma, 0.0]), pos, neg, torch.zeros_like(noise),
                                      disable_pbar=True, seed=5)


@pytest.mark.parametrize("fam, sigma", [("flux", 0.6), ("sd15", 1.5)])
def test_the_model_denoises_the_forced_input(comfy, fam, sigma):
    """Inside ComfyUI's sampler: the model's input is spectral_forcing(x, t(sigma)) of the cond batch's x
    (t = sigma for CONST, sigma / (1 + sigma) for EPS), and each cond's prediction is the model's
    prediction on F x (nothing of the removed band added back). The plain model sees x itself."""
    from spectral_progressive.spectral_core.forcing import spectral_forcing
    from spectral_progressive.spectral_core.spectra import PowerLaw
    f = H.FAMILIES[fam]
    wf, patched, plain, forced = _graph(f)
    r = ran_ok(comfy.run(wf.prompt()))
    pos, neg = r.out(wf.pos), r.out(wf.neg)
    t = H.t_of_sigma(f.frame, sigma)
    for model, is_forced in ((r.out(patched), True), (r.out(wf.model), False)):
        rec, log = _recorders(model)
        _one_step(rec, pos, neg, sigma)
        assert len(log["batch"]) == 1 and log["net"]
        x_in, outs, ts = log["batch"][0]
        assert float(ts[0]) == pytest.approx(sigma, rel=1e-6) and len(outs) == 2
        net_x = torch.cat([x for x, _ in log["net"]]).split(x_in.shape[0])
        net_out = torch.cat([o for _, o in log["net"]]).split(x_in.shape[0])
        assert len(net_x) == 2  # cond and uncond
        fx = spectral_forcing(x_in, t, PowerLaw(LAW["custom_A"], LAW["custom_beta"])) if is_forced else x_in
        for c in net_x:
            torch.testing.assert_close(c, fx, rtol=1e-5, atol=1e-5)
        if is_forced:
            removed = float((x_in - fx).norm() / x_in.norm())
            assert 0.05 < removed < 0.999, removed  # something removed, something kept
        # each cond's prediction is one of the model's outputs on the forced input
        for o in outs:
            gaps = [float((o - p).abs().max()) for p in net_out]
            assert min(gaps) < 1e-4 * max(1.0, float(o.abs().max())), gaps


def test_bad_inputs_are_named(comfy):
    f = H.FAMILIES["sd15"]
    for patch, word in (({"custom_A": math.nan}, "custom_A"), ({"probe_spectrum": 3}, "probe_spectrum")):
        wf, *_ = _graph(f, **patch)
        r = comfy.run(wf.prompt())
        err = r.error or {}
        assert not r.ok and word in str(err.get("exception_message", r.node_errors)), (err, r.node_errors)

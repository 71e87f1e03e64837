"""Spectrum-designed schedules (seed 002) on exact Gaussian models: the closed-form spectral KL against the
KL of the sampler's actual output law (exact covariance from impulse responses), the design against the
standard schedules, its shape, and bad input."""
import math

import pytest
import torch

from spectral_progressive.bench.quality import FLUX_SHIFT, GAUSS_LAW, GAUSS_SIZE, gaussian_kl_of_linear_map
from spectral_progressive.bench.schedule_design import baseline_sigmas, flow_table, plan_s2
from spectral_progressive.schedules import plan_stages
from spectral_progressive.spectral_core import PowerLaw, sample_ab2, sample_euler, sample_progressive, transforms
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.progressive_transfer import progressive_gain, progressive_kl
from spectral_progressive.spectral_core.schedule_design import design_for_plan, design_sigmas
from spectral_progressive.spectral_core.spectral_transfer import (STARTS, binned_weights, frequency_weights,
                                                                  spectral_kl, start_variance)

pytestmark = pytest.mark.usefixtures("single_thread")

LAW = PowerLaw(20.0, 2.0)
SAMPLERS = {"euler": sample_euler, "ab2": sample_ab2}
EPS_MAX, EPS_MIN = 14.6146, 0.0292  # SD1.5's sigma range


def _basis(size):
    d = size[0] * size[1]
    return transforms.inverse(torch.eye(d, dtype=torch.float64).reshape(d, 1, *size), "dct")


def _measured_kl(model, sigmas, sampler, v_in):
    """KL of the actual run's output law: the run is linear in its input, so its impulse responses give
    the exact output covariance C = M^T diag(v_in) M (any correlation between coefficients counts)."""
    d = v_in.numel()
    out = SAMPLERS[sampler](model, _basis(model.size), sigmas)
    m = transforms.forward(out, "dct").reshape(d, d) * v_in.flatten().sqrt()[:, None]
    return gaussian_kl_of_linear_map(model, m, None)


def _eps_sigmas(n):
    return torch.cat([torch.exp(torch.linspace(math.log(EPS_MAX), math.log(EPS_MIN), n, dtype=torch.float64)),
                      torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("sampler", ["euler", "ab2"])
@pytest.mark.parametrize("frame", ["const", "eps"])
@pytest.mark.parametrize("start", STARTS)
def test_closed_form_kl_equals_kl_of_the_actual_run(sampler, frame, start):
    size = (12, 10)
    model = GaussianSpectrumModel.power_law(LAW, size, frame=frame)
    for sig in (baseline_sigmas("karras", 9) if frame == "const" else _eps_sigmas(9),
                design_sigmas(LAW, size, 7, frame=frame, sampler=sampler, start=start,
                              sigma_max=1.0 if frame == "const" else EPS_MAX,
                              sigma_min=1e-3 if frame == "const" else EPS_MIN).sigmas):
        v_in = start_variance(start, sig[0], model.power, frame)
        measured = _measured_kl(model, sig, sampler, v_in)
        closed = spectral_kl(sig, LAW, size, frame=frame, sampler=sampler, start=start)
        assert closed == pytest.approx(measured, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("refill", ["paper", "matched"])
@pytest.mark.parametrize("sampler", ["euler", "ab2"])
@pytest.mark.parametrize("frame", ["const", "eps"])
def test_progressive_closed_form_equals_the_actual_progressive_run(refill, sampler, frame):
    size = (16, 12)
    sig = baseline_sigmas("simple", 12).clamp_min(0) if frame == "const" else _eps_sigmas(12)
    plan = plan_stages(sig, size, scales=(0.25, 0.5, 1.0), spectrum=LAW, frame=frame, refill=refill,
                       respace="affine", delta=0.05)
    assert len(plan.stages) >= 2
    model = GaussianSpectrumModel.power_law(LAW, size, frame=frame)
    out = sample_progressive(model, _basis(size) * sig[0], sig, plan=plan, sampler=SAMPLERS[sampler], frame=frame)
    response = transforms.forward(out, "dct").reshape(size[0] * size[1], -1)
    gain = progressive_gain(plan, LAW, sampler)
    assert torch.allclose(response, torch.diag(gain.flatten()), atol=1e-11)
    measured = gaussian_kl_of_linear_map(model, response, None)
    assert progressive_kl(plan, LAW, sampler) == pytest.approx(measured, rel=1e-9)


@pytest.mark.parametrize("sampler", ["euler", "ab2"])
@pytest.mark.parametrize("steps", [8, 20, 50])
def test_designed_schedule_beats_simple_karras_beta_and_default(sampler, steps):
    size = (GAUSS_SIZE, GAUSS_SIZE)
    design = design_sigmas(GAUSS_LAW, size, steps, sampler=sampler, sigma_min=float(flow_table(FLUX_SHIFT)[0]))
    assert design.kl == pytest.approx(spectral_kl(design.sigmas, GAUSS_LAW, size, sampler=sampler), rel=1e-12)
    for name in ("simple", "karras", "beta", "default"):
        other = spectral_kl(baseline_sigmas(name, steps, FLUX_SHIFT), GAUSS_LAW, size, sampler=sampler)
        assert design.kl < other, name


def test_design_is_a_local_minimum():
    """No small move of any interior time lowers the exact KL (the optimiser reached a minimum)."""
    size = (GAUSS_SIZE, GAUSS_SIZE)
    design = design_sigmas(GAUSS_LAW, size, 8)
    for k in range(1, design.steps):
        for move in (1e-3, -1e-3):
            sig = design.sigmas.clone()
            sig[k] += move * (sig[k - 1] - sig[k + 1])
            assert spectral_kl(sig, GAUSS_LAW, size) >= design.kl - 1e-9


@pytest.mark.parametrize("frame,smax,smin", [("const", 1.0, 1e-3), ("const", 0.7, 0.01), ("eps", EPS_MAX, EPS_MIN)])
def test_design_shape_endpoints_and_frame(frame, smax, smin):
    d = design_sigmas(LAW, (16, 16), 10, frame=frame, sigma_max=smax, sigma_min=smin)
    s = d.sigmas
    assert len(s) == 11 and d.steps == 10
    assert float(s[0]) == pytest.approx(smax, rel=1e-12) and float(s[-1]) == 0.0
    assert bool((s[1:] < s[:-1]).all()) and float(s[-2]) > smin
    t = s / (1 + s) if frame == "eps" else s
    assert torch.allclose(t, d.times, rtol=1e-12, atol=0)
    assert d.kl <= d.kl_linear
    again = design_sigmas(LAW, (16, 16), 10, frame=frame, sigma_max=smax, sigma_min=smin)
    assert torch.equal(again.sigmas, s)


def test_one_step_schedule():
    d = design_sigmas(LAW, (8, 8), 1)
    assert d.sigmas.tolist() == [1.0, 0.0] and d.iterations == 0


def test_binned_weights_keep_the_total_and_nearly_the_kl():
    power, weights = frequency_weights(GAUSS_LAW, (64, 48))
    assert float(weights.sum()) == 64 * 48
    bp, bw = binned_weights(power, weights, 64)
    assert len(bp) <= 64 and float(bw.sum()) == pytest.approx(64 * 48)
    v = power * 0.8 + 0.05
    exact = float((weights * (v / power - 1 - torch.log(v / power))).sum())
    vb = bp * 0.8 + 0.05
    approx = float((bw * (vb / bp - 1 - torch.log(vb / bp))).sum())
    assert approx == pytest.approx(exact, rel=0.02)


def test_design_for_plan_lowers_progressive_kl_at_no_more_compute():
    size = GAUSS_SIZE
    design = design_sigmas(GAUSS_LAW, (size, size), 8, sampler="ab2")
    plain = plan_s2(design.sigmas, size, GAUSS_LAW)
    pd = design_for_plan(design, lambda s: plan_s2(s, size, GAUSS_LAW), max_evals=400)
    assert pd.kl_start == pytest.approx(progressive_kl(plain, GAUSS_LAW, "ab2"), rel=1e-12)
    assert pd.kl < pd.kl_start
    assert pd.plan.compute_ratio("tokens") >= plain.compute_ratio("tokens") - 1e-9
    assert torch.equal(pd.plan.user_sigmas, pd.sigmas)
    assert pd.kl == pytest.approx(progressive_kl(plan_s2(pd.sigmas, size, GAUSS_LAW), GAUSS_LAW, "ab2"), rel=1e-12)


@pytest.mark.parametrize("kwargs,name", [
    ({"steps": 0}, "steps"), ({"steps": True}, "steps"), ({"steps": 2.5}, "steps"),
    ({"sampler": "heun"}, "sampler"), ({"start": "image"}, "start"),
    ({"sigma_max": 2.0}, "sigma_max"), ({"sigma_max": float("nan")}, "sigma_max"),
    ({"sigma_min": 1.0}, "sigma_min"), ({"sigma_min": -1.0}, "sigma_min"),
    ({"size": (0, 4)}, "size"), ({"law": (1.0, 2.0)}, "spectrum"),
])
def test_bad_design_input_names_the_argument(kwargs, name):
    args = {"law": LAW, "size": (8, 8), "steps": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}:"):
        design_sigmas(args.pop("law"), args.pop("size"), args.pop("steps"), **args)


@pytest.mark.parametrize("sigmas", [[1.0], [1.0, 1.0, 0.0], [0.5, 0.8, 0.0], [1.0, float("nan"), 0.0],
                                    [1.0, 0.0, 0.0], [1.0, -0.1]])
def test_bad_sigmas_are_refused(sigmas):
    with pytest.raises(ValueError, match="^sigmas:"):
        spectral_kl(sigmas, LAW, (8, 8))


def test_design_for_plan_refuses_an_image_start():
    design = design_sigmas(LAW, (16, 16), 4, start="marginal", sigma_max=0.6)
    with pytest.raises(ValueError, match="^start:"):
        design_for_plan(design, lambda s: plan_s2(s, 16, LAW))


def test_design_runs_in_inference_mode_as_comfyui_calls_nodes():
    plain = design_sigmas(LAW, (16, 16), 6)
    with torch.inference_mode():
        inside = design_sigmas(LAW, (16, 16), 6)
    assert torch.equal(inside.sigmas, plain.sigmas) and inside.kl < inside.kl_linear

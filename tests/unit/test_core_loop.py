"""The progressive loop against exact Gaussian models, and the two formulations agreeing."""
import math

import pytest
import torch

from spectral_progressive.schedules import plan_stages
from spectral_progressive.spectral_core import (PowerLaw, progressive_denoiser, sample_ab2, sample_euler,
                                                sample_progressive, transforms)
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel

from .gaussian_reference import euler_gain_closed_form, reference_run

LAW = PowerLaw(20.0, 2.0)
SAMPLERS = {"euler": sample_euler, "ab2": sample_ab2}
CONST_SIG = torch.cat([torch.linspace(1.0, 0.05, 16, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
EPS_SIG = torch.cat([torch.exp(torch.linspace(math.log(14.6), math.log(0.03), 16, dtype=torch.float64)),
                     torch.zeros(1, dtype=torch.float64)])
SHAPES = {"image": (2, 3, 32, 32), "video": (1, 2, 3, 16, 24)}
SWITCHES = {2: ((0.5, 1.0), [0.8]), 3: ((0.25, 0.5, 1.0), [0.85, 0.6])}


def _setup(shape, frame, stages, respace="affine"):
    scales, sw = SWITCHES[stages]
    sig = CONST_SIG if frame == "const" else EPS_SIG
    size = shape[-2:]
    plan = plan_stages(sig, size, scales=scales, switch_at=sw, frame=frame, respace=respace)
    model = GaussianSpectrumModel.power_law(LAW, size, frame=frame)
    noise = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return sig, plan, model, noise


@pytest.mark.parametrize("sampler", ["euler", "ab2"])
@pytest.mark.parametrize("stages", [2, 3])
@pytest.mark.parametrize("frame", ["const", "eps"])
@pytest.mark.parametrize("shape", ["image", "video"])
def test_progressive_run_matches_per_coefficient_reference(sampler, stages, frame, shape):
    sig, plan, model, noise = _setup(SHAPES[shape], frame, stages)
    x = sig[0] * noise
    out = sample_progressive(model, x, sig, plan=plan, sampler=SAMPLERS[sampler], frame=frame)
    ref = reference_run(plan, model.power, SAMPLERS[sampler], noise, frame)
    assert out.shape == x.shape
    assert torch.allclose(transforms.forward(out, "dct"), ref, atol=1e-10, rtol=1e-10)
    assert [c for c in model.calls] == [s.size for s in plan.stages for _ in range(s.steps)]


@pytest.mark.parametrize("stages", [2, 3])
def test_euler_progressive_gain_equals_closed_form_product(stages):
    sig, plan, model, noise = _setup(SHAPES["image"], "const", stages)
    out = sample_progressive(model, sig[0] * noise, sig, plan=plan)
    gain = euler_gain_closed_form(plan, model.power)
    expected = gain * transforms.forward(noise, "dct")
    assert torch.allclose(transforms.forward(out, "dct"), expected, atol=1e-10)


def test_prop2_plan_runs_and_keeps_the_requested_size():
    sig = CONST_SIG
    plan = plan_stages(sig, (30, 44), scales=(0.25, 0.5, 1.0), spectrum=LAW, respace="keep")
    model = GaussianSpectrumModel.power_law(LAW, (30, 44))
    noise = torch.randn(2, 4, 30, 44, dtype=torch.float64)
    out = sample_progressive(model, noise, sig, plan=plan)
    assert out.shape == (2, 4, 30, 44)
    assert torch.allclose(transforms.forward(out, "dct"), reference_run(plan, model.power, sample_euler, noise, "const"),
                          atol=1e-10)


@pytest.mark.parametrize("stages", [2, 3])
@pytest.mark.parametrize("shape", ["image", "video"])
def test_zero_high_denoiser_on_mapped_grid_equals_the_sampler_formulation(stages, shape):
    sig, plan, model, noise = _setup(SHAPES[shape], "const", stages)
    x = sig[0] * noise
    f1 = sample_progressive(model, x, sig, plan=plan)
    wrapped = progressive_denoiser(model, plan, high="zero")
    f2 = sample_euler(wrapped, x, plan.full_sigmas().to(x.dtype))
    assert torch.allclose(f1, f2, atol=1e-10)


def test_formulations_agree_for_an_image_start_in_the_eps_frame():
    size = (32, 32)
    sig = EPS_SIG[4:]
    plan = plan_stages(sig, size, switch_at=[0.6], frame="eps", entry="signal")
    model = GaussianSpectrumModel.power_law(LAW, size, frame="eps")
    gen = torch.Generator().manual_seed(5)
    x0 = model.sample((2, 3), gen)
    x = x0 + sig[0] * torch.randn(2, 3, *size, generator=gen, dtype=torch.float64)
    f1 = sample_progressive(model, x, sig, plan=plan, frame="eps")
    f2 = sample_euler(progressive_denoiser(model, plan, frame="eps"), x, plan.full_sigmas())
    assert torch.allclose(f1, f2, atol=1e-9)


@pytest.mark.parametrize("sampler", ["euler", "ab2"])
@pytest.mark.parametrize("frame", ["const", "eps"])
def test_wiener_high_band_reproduces_the_full_size_run_for_any_sampler(sampler, frame):
    sig, plan, model, noise = _setup(SHAPES["image"], frame, 3)
    x = sig[0] * noise
    plain = SAMPLERS[sampler](model, x, sig)
    model.calls.clear()
    ours = SAMPLERS[sampler](progressive_denoiser(model, plan, frame=frame, high="wiener", spectrum=LAW), x, sig)
    assert torch.allclose(ours, plain, atol=1e-9)
    t_grid = [float(plan.frame.t_of_sigma(v)) for v in sig[:-1]]
    expected = [plan.stages[plan.stage_index(t)].size for t in t_grid]
    assert model.calls == expected  # the network really ran small where the plan says
    assert expected.count((32, 32)) < len(sig) - 1


def test_callback_numbers_steps_over_the_whole_run_with_full_size_previews():
    sig, plan, model, noise = _setup(SHAPES["image"], "const", 3)
    seen = []
    sample_progressive(model, noise, sig, plan=plan, callback=lambda d: seen.append((d["i"], tuple(d["denoised"].shape))))
    assert [i for i, _ in seen] == list(range(plan.steps))
    assert all(s == SHAPES["image"] for _, s in seen)


def test_batch_items_are_independent():
    sig, plan, model, noise = _setup(SHAPES["image"], "const", 2)
    both = sample_progressive(model, noise, sig, plan=plan)
    one = sample_progressive(model, noise[1:], sig, plan=plan)
    assert torch.allclose(both[1:], one, atol=1e-12)


def test_same_noise_same_output():
    sig, plan, model, noise = _setup(SHAPES["image"], "const", 2)
    assert torch.equal(sample_progressive(model, noise, sig, plan=plan), sample_progressive(model, noise, sig, plan=plan))


def test_float32_and_half_inputs_run_and_keep_dtype():
    sig, plan, model, noise = _setup(SHAPES["image"], "const", 2)
    out = sample_progressive(model, noise.float(), sig, plan=plan)
    assert out.dtype == torch.float32
    ref = sample_progressive(model, noise, sig, plan=plan)
    assert torch.allclose(out.double(), ref, atol=1e-4)


@pytest.mark.parametrize("kwargs,name", [
    (dict(x=torch.zeros(1, 3, 16, 16, dtype=torch.float64)), "x"),
    (dict(x=torch.full((2, 3, 32, 32), float("nan"), dtype=torch.float64)), "x"),
    (dict(sigmas=torch.linspace(1, 0, 5)), "sigmas"),
    (dict(frame="eps"), "frame"),
    (dict(plan="fast please"), "plan"),
    (dict(noise=torch.zeros(1, 1, 2, 2)), "noise"),
])
def test_sample_progressive_rejects_bad_arguments(kwargs, name):
    sig, plan, model, noise = _setup(SHAPES["image"], "const", 2)
    args = dict(x=noise, sigmas=sig, plan=plan)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}"):
        sample_progressive(model, args.pop("x"), args.pop("sigmas"), **args)


@pytest.mark.parametrize("kwargs,name", [(dict(high="one"), "high"), (dict(frame="eps"), "frame"), (dict(plan=3), "plan")])
def test_progressive_denoiser_rejects_bad_arguments(kwargs, name):
    sig, plan, model, noise = _setup(SHAPES["image"], "const", 2)
    args = dict(plan=plan)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}"):
        progressive_denoiser(model, args.pop("plan"), **args)

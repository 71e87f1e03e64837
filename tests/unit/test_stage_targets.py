"""Seed 001 Sec. 4.3 stage targets (Eqs. 11-14) against closed forms, the inference loop and exact
Gaussian data."""
import math

import pytest
import torch

from spectral_progressive.schedules import plan_stages
from spectral_progressive.spectral_core import stage_targets as st
from spectral_progressive.spectral_core import transforms
from spectral_progressive.spectral_core.expansion import aligned_time, expand
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.progressive import sample_progressive
from spectral_progressive.spectral_core.spectra import PowerLaw

LAW = PowerLaw(60.0, 2.5)


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/unit/conftest.py


def _plan(size=16, scales=(0.25, 0.5, 1.0), switch_at=(0.8, 0.45), transform="dct", steps=20, refill="paper"):
    sig = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return plan_stages(sig, (size, size), scales=scales, switch_at=switch_at, spectrum=LAW, transform=transform,
                       refill=refill)


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def _coefs(x, size, transform):
    """Coefficients of a full-size signal on the low (h, w) block (DCT / DWT: the top-left block)."""
    return transforms.forward(x, transform)[..., : size[0], : size[1]]


def test_schedule_from_plan_matches_the_plan():
    plan = _plan()
    s = st.as_schedule(plan)
    assert s.sizes == ((4, 4), (8, 8), (16, 16))
    assert s.switch_times == pytest.approx((0.8, 0.45))
    for i, stage in enumerate(plan.stages):
        # t~_{i-1} is the plan's own entry time of stage i (respace "keep"); t_i its switch time
        assert s.start_time(i) == pytest.approx(stage.times[0], abs=1e-12)
        assert s.end_time(i) == pytest.approx(stage.times[-1], abs=1e-12)
        assert s.growth(i) == pytest.approx(stage.growth)
    # Sec. 4.3: t ~ U(0, 1) goes to the stage with t in (t_i, t_{i-1}]
    t = torch.tensor([1.0, 0.81, 0.8, 0.5, 0.45, 0.2, 1e-4], dtype=torch.float64)
    assert s.stage_of_time(t).tolist() == [0, 0, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("bad", [
    dict(sizes=((8, 8), (16, 16)), switch_times=()),
    dict(sizes=((8, 8), (16, 16)), switch_times=(1.2,)),
    dict(sizes=((4, 4), (8, 8), (16, 16)), switch_times=(0.4, 0.8)),
    dict(sizes=((16, 16), (8, 8)), switch_times=(0.5,)),
    dict(sizes=((8, 8), (16, 16)), switch_times=(0.5,), refill="matched"),
])
def test_schedule_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        st.StageSchedule(**bad)


def test_single_stage_is_plain_flow_matching():
    x0, eps = _data((3, 2, 8, 8))
    s = st.StageSchedule(((8, 8),), ())
    t = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    pair = st.stage_pair(x0, eps, s, 0, t)
    assert torch.allclose(pair.v, eps - x0, atol=1e-12)
    assert torch.allclose(pair.x_t, (1 - t)[:, None, None, None] * x0 + t[:, None, None, None] * eps, atol=1e-12)


@pytest.mark.parametrize("transform", ["dct", "dwt"])
def test_first_stage_is_plain_flow_matching_on_the_contracted_data(transform):
    plan = _plan(transform=transform)
    x0, eps = _data((2, 3, 16, 16))
    pair = st.stage_pair(x0, eps, plan, 0, 0.9)
    g = plan.stages[0].growth
    X, E = _coefs(x0, (4, 4), transform) / g, _coefs(eps, (4, 4), transform)
    assert pair.t_start == 1.0 and pair.t_end == pytest.approx(0.8)
    assert torch.allclose(transforms.forward(pair.v, transform), E - X, atol=1e-10)
    assert torch.allclose(transforms.forward(pair.x_t, transform), 0.1 * X + 0.9 * E, atol=1e-10)


@pytest.mark.parametrize("transform", ["dct", "dwt"])
@pytest.mark.parametrize("scales,switch_at", [((0.5, 1.0), (0.5,)), ((0.25, 0.5, 1.0), (0.8, 0.45))])
def test_target_closed_form_every_stage(transform, scales, switch_at):
    """v = E - X on the band the previous stage carried, E - (1 - t_i)/(t~_{i-1} - t_i) X on the new band
    (coefficients of the contracted data and of the noise band; module docstring)."""
    plan = _plan(scales=scales, switch_at=switch_at, transform=transform)
    s = st.as_schedule(plan)
    x0, eps = _data((2, 3, 16, 16), seed=1)
    for i in range(s.num_stages):
        size = s.sizes[i]
        X, E = _coefs(x0, size, transform) / s.growth(i), _coefs(eps, size, transform)
        V = transforms.forward(st.stage_velocity(x0, eps, plan, i), transform)
        if i == 0:
            assert torch.allclose(V, E - X, atol=1e-10)
            continue
        h, w = s.sizes[i - 1]
        c = (1 - s.end_time(i)) / (s.start_time(i) - s.end_time(i))
        expect = E - c * X
        expect[..., :h, :w] = (E - X)[..., :h, :w]
        assert torch.allclose(V, expect, atol=1e-9), i


def test_last_stage_target_is_plain_flow_only_on_the_carried_band():
    """At the full stage (t_S = 0) the target is eps - x0 on the previous stage's band and eps - x0 / t~
    on the band the expansion added: it is NOT the plain flow velocity there (Eq. 12 with t_S = 0)."""
    plan = _plan(scales=(0.5, 1.0), switch_at=(0.5,))
    x0, eps = _data((2, 3, 16, 16), seed=2)
    v = st.stage_velocity(x0, eps, plan, 1)
    t_tilde = aligned_time(0.5, 2.0)
    low = lambda z: transforms.project_low(z, (8, 8), "dct")  # noqa: E731
    assert torch.allclose(low(v), low(eps - x0), atol=1e-10)
    assert torch.allclose(v - low(v), (eps - x0 / t_tilde) - low(eps - x0 / t_tilde), atol=1e-10)
    # at t = 0 the training input is the clean sample itself
    assert torch.allclose(st.stage_pair(x0, eps, plan, 1, 0.0).x_t, x0, atol=1e-12)


@pytest.mark.parametrize("refill", ["paper", "matched"])
def test_stage_input_is_expand_of_previous_stage_state(refill):
    plan = _plan(refill=refill)
    s = st.as_schedule(plan)
    x0, eps = _data((2, 3, 16, 16), seed=3)
    for i in range(1, s.num_stages):
        prev = st.stage_pair(x0, eps, plan, i - 1, s.end_time(i - 1))
        assert torch.allclose(prev.x_t, prev.x_end, atol=1e-12)  # Eq. 13 at t = t_{i-1}
        # the inference step: expand the previous state at t_{i-1}, refill from the seed noise's band
        refill_noise = transforms.down(eps, s.sizes[i], "dct") if s.sizes[i] != s.full_size else eps
        spec = s.stage_spectrum(i) if refill == "matched" else None
        grown, t_new = expand(prev.x_end, s.sizes[i], s.end_time(i - 1), noise=refill_noise, refill=refill,
                              spectrum=spec)
        cur = st.stage_pair(x0, eps, plan, i, s.start_time(i))
        assert t_new == pytest.approx(cur.t_start, abs=1e-12)
        assert torch.allclose(cur.x_start, grown, atol=1e-12)
        assert torch.allclose(cur.x_t, cur.x_start, atol=1e-12)  # Eq. 13 at t = t~_{i-1}


def test_paper_refill_stage_input_is_a_flow_state_of_the_band_limited_sample():
    """App. A.2: x~ = (1 - t~) P x0^{s_i} + t~ eps^{s_i} (P: the previous stage's band)."""
    plan = _plan()
    s = st.as_schedule(plan)
    x0, eps = _data((2, 3, 16, 16), seed=4)
    for i in range(1, s.num_stages):
        x_i, e_i = st.clean_at_stage(x0, plan, i), st.noise_at_stage(eps, plan, i)
        tt = s.start_time(i)
        expect = (1 - tt) * transforms.project_low(x_i, s.sizes[i - 1], "dct") + tt * e_i
        assert torch.allclose(st.stage_input(x0, eps, plan, i)[0], expect, atol=1e-10)


@pytest.mark.parametrize("scales,switch_at", [((0.5, 1.0), (0.5,)), ((0.25, 0.5, 1.0), (0.8, 0.45))])
def test_inference_loop_with_the_target_velocity_reproduces_the_sample(scales, switch_at):
    """A model that predicts exactly the stage targets, run by the pack's own progressive sampler from the
    sample's noise, lands on the sample: the targets describe the inference path (stage inputs built by
    the same expansion, with the same refill noise) and Euler is exact on its straight segments."""
    plan = _plan(scales=scales, switch_at=switch_at, steps=12)
    s = st.as_schedule(plan)
    x0, eps = _data((2, 3, 16, 16), seed=5)
    by_size = {s.sizes[i]: st.stage_velocity(x0, eps, plan, i) for i in range(s.num_stages)}

    def oracle(x, sigma, **_):
        return x - sigma.reshape(-1, 1, 1, 1) * by_size[tuple(x.shape[-2:])]

    out = sample_progressive(oracle, eps.clone(), plan.user_sigmas, plan=plan, noise=eps)
    assert torch.allclose(out, x0, atol=1e-9)


def test_gaussian_conditional_mean_of_the_target():
    """Exact Gaussian data: the L2-optimal predictor of the target (what Eq. 14 trains towards) is, on the
    carried band, the exact denoiser's velocity (x - D(x, t)) / t at the stage size; on the new band the
    linear gain (t - c a P) / (a^2 P + t^2), a = (1 - t_i)(t~ - t)/(t~ - t_i), c = (1 - t_i)/(t~ - t_i)."""
    H = 8
    full = GaussianSpectrumModel.power_law(LAW, (H, H))
    s = st.StageSchedule(((4, 4), (8, 8)), (0.6,))
    n = 40000
    x0 = full.sample((n, 1), generator=torch.Generator().manual_seed(7))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    t = 0.3  # in stage 2's interval (0, t_1]
    pair = st.stage_pair(x0, eps, s, 1, t)
    X, V = transforms.forward(pair.x_t, "dct")[:, 0], transforms.forward(pair.v, "dct")[:, 0]
    gain = (V * X).mean(0) / (X * X).mean(0)  # per-coefficient regression of the target on the input
    # the exact denoiser's velocity, which is linear and diagonal: its gain per coefficient
    xt_unit = transforms.inverse(torch.eye(H * H, dtype=torch.float64).reshape(H * H, 1, H, H), "dct")
    v_star = (xt_unit - full(xt_unit, torch.full((H * H,), t, dtype=torch.float64))) / t
    exact = torch.diagonal(transforms.forward(v_star, "dct").reshape(H * H, H * H)).reshape(H, H)
    P = full.power_at(H, H)
    t_tilde, t_i = s.start_time(1), s.end_time(1)
    c = (1 - t_i) / (t_tilde - t_i)
    a = (1 - t_i) * (t_tilde - t) / (t_tilde - t_i)
    high = (t - c * a * P) / (a ** 2 * P + t ** 2)
    # Monte Carlo standard error of a regression gain: sqrt(resid var / (n var x)); 5 sigma
    resid = ((V - gain * X) ** 2).mean(0)
    tol = 5 * torch.sqrt(resid / (n * (X * X).mean(0))) + 1e-6
    assert bool(((gain - exact).abs()[:4, :4] < tol[:4, :4]).all())
    mask = torch.ones(H, H, dtype=torch.bool)
    mask[:4, :4] = False
    assert bool(((gain - high).abs()[mask] < tol[mask]).all())
    # the two differ on the new band: the fine-tuned model is asked for something else than the
    # full-size denoiser there (it grows the high band from zero at t~ to (1 - t_i) x0 at t_i)
    assert float((high - exact)[mask].abs().max()) > 10 * float(tol[mask].max())


def test_noise_of_stage_size_is_used_as_is_and_bad_input_is_rejected():
    plan = _plan()
    x0, eps = _data((2, 3, 16, 16))
    e8 = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert torch.equal(st.noise_at_stage(e8, plan, 1), e8)
    assert torch.allclose(st.noise_at_stage(eps, plan, 0), transforms.down(eps, (4, 4), "dct"))
    with pytest.raises(ValueError, match="x0"):
        st.stage_pair(x0[..., :8, :8], eps, plan, 0, 0.9)
    with pytest.raises(ValueError, match="noise"):
        st.stage_pair(x0, eps[:1], plan, 0, 0.9)
    with pytest.raises(ValueError, match="stage"):
        st.stage_pair(x0, eps, plan, 3, 0.9)
    with pytest.raises(ValueError, match="t"):
        st.stage_pair(x0, eps, plan, 0, 0.5)  # stage 0 lives in [0.8, 1]
    assert math.isfinite(float(st.stage_velocity(x0, eps, plan, 2).abs().max()))


def test_video_latents_are_handled_frame_by_frame():
    plan = _plan()
    x0, eps = _data((2, 3, 4, 16, 16), seed=9)
    for i in range(3):
        v5 = st.stage_velocity(x0, eps, plan, i)
        v4 = st.stage_velocity(x0[:, :, 1], eps[:, :, 1], plan, i)
        assert torch.allclose(v5[:, :, 1], v4, atol=1e-12)
        pair = st.stage_pair(x0, eps, plan, i, st.as_schedule(plan).end_time(i) + 0.01)
        assert pair.x_t.shape == (2, 3, 4) + plan.stages[i].size

"""Few-step calibration (issue 13 item 2) against exact Gaussian models (seed 001 App. B, Lemma 1, Prop. 1)."""
import math

import pytest
import torch

from spectral_progressive.schedules import plan_stages, switch_time
from spectral_progressive.spectral_core.calibration import (Calibration, bayes_error, calibrate, power_from_error,
                                                            prop1_time)
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.spectra import PowerLaw

pytestmark = pytest.mark.usefixtures("single_thread")

TIMES = (0.3, 0.6, 0.85, 0.95)


def _setup(law, size=(64, 64), frame="const", batch=(2, 4), data_seed=1):
    model = GaussianSpectrumModel.power_law(law, size, frame=frame)
    x0 = model.sample(batch, torch.Generator().manual_seed(data_seed))
    return model, x0


def test_error_inversion_is_exact():
    p = torch.logspace(-4, 4, 50, dtype=torch.float64)
    for t in (0.05, 0.3, 0.7, 0.99):
        back = power_from_error(bayes_error(t, p), t)
        assert torch.allclose(back, p, rtol=1e-9, atol=0)
    # Prop. 1 is where Lemma 1's error equals delta
    for d in (1e-3, 1e-2, 0.1):
        tw = prop1_time(d, p)
        e = torch.stack([bayes_error(float(t), pi.reshape(1))[0] for t, pi in zip(tw, p)])
        assert torch.allclose(e, torch.full_like(e, d), rtol=1e-9)
        assert float(tw[10]) == pytest.approx(switch_time(d, float(p[10]), 0.0, 1.0), rel=1e-12)


@pytest.mark.parametrize("law", [PowerLaw(203.62, 1.9155), PowerLaw(219.48, 2.4227), PowerLaw(40.0, 1.5)])
@pytest.mark.parametrize("frame", ["const", "eps"])
def test_recovers_the_power_law_of_an_exact_gaussian_model(law, frame):
    model, x0 = _setup(law, frame=frame)
    cal = calibrate(model, x0, TIMES, frame=frame, seed=0)
    assert isinstance(cal, Calibration)
    assert cal.law.beta == pytest.approx(law.beta, rel=0.05)
    assert cal.law.A == pytest.approx(law.A, rel=0.2)
    assert cal.size == (64, 64) and cal.frame == frame
    # the fitted law reproduces the per-band activation times of the measured errors (Prop. 1)
    for d in (1e-3, 1e-2, 0.1):
        sel = (cal.freqs > 0) & (cal.freqs <= 32)  # the bands a switch can use (w <= min(H, W) / 2)
        tb = cal.activation_times(d, "bands")[sel]
        tf = cal.activation_times(d, "fit")[sel]
        assert float((tb - tf).abs().max()) < 0.02
    # and the switch is Prop. 2 with the fitted law, within 0.01 of the true law's
    for d in (1e-3, 1e-2, 0.1):
        t_true = switch_time(d, law.A, law.beta, 16.0)
        assert cal.switch_time(d, (64, 64), 0.5) == pytest.approx(t_true, abs=0.01)
        assert cal.switch_time(d) == cal.switch_time(d, (64, 64), 0.5)


def test_frames_give_the_same_calibration_and_sigma_maps():
    law = PowerLaw(203.62, 1.9155)
    m_c, x0 = _setup(law, frame="const")
    m_e = GaussianSpectrumModel.power_law(law, (64, 64), frame="eps")
    c1 = calibrate(m_c, x0, TIMES, frame="const", seed=3)
    c2 = calibrate(m_e, x0, TIMES, frame="eps", seed=3)
    assert torch.allclose(c1.error, c2.error, rtol=1e-8)
    assert c2.law.beta == pytest.approx(c1.law.beta, rel=1e-8)
    t = c1.switch_time(0.01)
    assert c1.switch_sigma(0.01) == pytest.approx(t)
    assert c2.switch_sigma(0.01) == pytest.approx(t / (1 - t))
    assert c1.switch_sigma(0.01, frame="eps") == pytest.approx(t / (1 - t))


def test_measured_grid_activation_brackets_prop1():
    law = PowerLaw(203.62, 1.9155)
    model, x0 = _setup(law)
    ts = torch.linspace(0.5, 0.995, 34).tolist()
    cal = calibrate(model, x0, ts, seed=0)
    meas = cal.measured_activation(0.01)
    pred = cal.activation_times(0.01, "bands")
    ok = torch.isfinite(meas)
    ok[0] = False
    assert int(ok.sum()) > 10
    step = ts[1] - ts[0]
    assert float((meas[ok] - pred[ok]).abs().max()) < 2 * step + 0.01


def test_deterministic_per_seed():
    law = PowerLaw(203.62, 1.9155)
    model, x0 = _setup(law, batch=(1, 2))
    a = calibrate(model, x0, TIMES, seed=7)
    b = calibrate(model, x0, TIMES, seed=7)
    c = calibrate(model, x0, TIMES, seed=8)
    assert torch.equal(a.error, b.error) and a.law == b.law
    assert not torch.equal(a.error, c.error)


def test_video_latents_and_float32():
    law = PowerLaw(203.62, 1.9155)
    model = GaussianSpectrumModel.power_law(law, (32, 48))
    x0 = model.sample((1, 2, 3), torch.Generator().manual_seed(0), dtype=torch.float32)  # (B,C,T,H,W)
    cal = calibrate(model, x0, TIMES)
    assert cal.size == (32, 48)
    assert cal.law.beta == pytest.approx(law.beta, rel=0.1)


def test_bad_inputs_name_the_argument():
    law = PowerLaw(203.62, 1.9155)
    model, x0 = _setup(law, batch=(1, 1))
    cases = [
        (dict(denoiser=None), "denoiser"),
        (dict(x0=torch.zeros(8, 8)), "x0"),
        (dict(x0=torch.full_like(x0, float("nan"))), "x0"),
        (dict(times=[]), "times"),
        (dict(times=[0.5, 1.0]), "times"),
        (dict(times=[0.0, 0.5]), "times"),
        (dict(times=[0.5, 0.5]), "times"),
        (dict(times="0.5"), "times"),
        (dict(frame="v"), "frame"),
        (dict(seed=1.5), "seed"),
        (dict(denoiser=lambda x, s: x[..., :-1]), "denoiser"),
        (dict(denoiser=lambda x, s: x * float("nan")), "denoiser"),
    ]
    for kw, name in cases:
        args = dict(denoiser=model, x0=x0, times=TIMES)
        args.update(kw)
        extra = {k: args.pop(k) for k in ("frame", "seed") if k in args}
        with pytest.raises(ValueError, match=f"^{name}"):
            calibrate(args["denoiser"], args["x0"], args["times"], **extra)
    cal = calibrate(model, x0, TIMES)
    for call, name in [(lambda: cal.switch_time(0.0), "delta"), (lambda: cal.switch_time(0.01, scale=1.0), "scale"),
                       (lambda: cal.switch_time(0.01, size=(0, 4)), "size"),
                       (lambda: cal.switch_sigma(0.01, frame="x"), "frame"),
                       (lambda: cal.activation_times(0.01, "x"), "source"),
                       (lambda: cal.measured_activation(2.0), "delta")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            call()


def test_switch_saves_compute_on_an_8_step_distilled_schedule():
    """FLUX-like 128x128 latent, 8 steps shifted by 3: the calibrated switch still saves tokens."""
    law = PowerLaw(203.62, 1.9155)
    model, x0 = _setup(law, size=(128, 128), batch=(1, 4))
    cal = calibrate(model, x0, TIMES)
    t = torch.linspace(1, 0, 9)
    sigmas = 3 * t / (1 + 2 * t)
    s = cal.switch_sigma(0.01, (128, 128), 0.5, "const")
    assert s == pytest.approx(switch_time(0.01, law.A, law.beta, 32.0), abs=0.01)
    plan = plan_stages(sigmas, (128, 128), switch_at=[s], spectrum=cal.law)
    assert len(plan.stages) == 2
    assert plan.compute_ratio("tokens") > 1.0
    assert math.isfinite(plan.compute_ratio("tokens2"))

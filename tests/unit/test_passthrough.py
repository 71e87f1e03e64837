"""Spectral noise passthrough (seed 001 App. B) on exact Gaussian models: the Bayes (Wiener) denoiser,
where the probability-flow ODE is linear per DCT coefficient and the passthrough's effect has a closed form
(spectral_core/passthrough.py docstring)."""
import math

import pytest
import torch

from spectral_progressive.schedules import switch_time
from spectral_progressive.spectral_core import transforms
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.passthrough import (PassthroughDenoiser, activation_times, gaussian_change,
                                                            passthrough_gain, relative_change, release_times,
                                                            tolerated_delta)
from spectral_progressive.spectral_core.samplers import sample_ab2, sample_euler
from spectral_progressive.spectral_core.spectra import PowerLaw

pytestmark = pytest.mark.usefixtures("single_thread")

LAW = PowerLaw(203.62, 1.9155)
SIZE = (32, 32)
STEPS = 256
G = torch.linspace(1.0, 0.0, 5)
T0 = {"const": 1.0, "eps": 0.995}  # an EPS model's sigma_max is finite: t0 = sigma / (1 + sigma) < 1


def _grid(frame: str, steps: int = STEPS):
    t = torch.linspace(T0[frame], 0.0, steps + 1, dtype=torch.float64)
    return t, (t if frame == "const" else t / (1.0 - t))


def _setup(frame: str, shape=(3, 2), size=SIZE, seed=0):
    model = GaussianSpectrumModel.power_law(LAW, size, frame=frame)
    noise = torch.randn(*shape, *size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return model, noise


def _run(model, noise, sigmas, delta=None, frame="const", sampler=sample_euler, transform="dct", callback=None):
    den = model if delta is None else PassthroughDenoiser(
        model, noise, activation_times(LAW, noise.shape[-2:], delta, transform), sigmas, frame=frame,
        transform=transform)
    return sampler(den, sigmas[0] * noise, sigmas, callback=callback)


@pytest.fixture(scope="module", params=["const", "eps"])
def sweep(request):
    frame = request.param
    model, noise = _setup(frame)
    t, sig = _grid(frame)
    plain = _run(model, noise, sig)
    runs = {d: _run(model, noise, sig, d, frame) for d in (1e-9, 1e-3, 1e-2, 0.05, 0.1, 0.3)}
    return frame, model, noise, t, plain, runs


def test_delta_to_zero_is_the_plain_run(sweep):
    frame, _, _, _, plain, runs = sweep
    assert torch.allclose(runs[1e-9], plain, rtol=0, atol=1e-12)
    assert relative_change(runs[1e-9], plain) < 1e-12


def test_change_grows_monotonically_with_delta_as_the_closed_form_expects(sweep):
    frame, model, _, t, plain, runs = sweep
    changes = [relative_change(runs[d], plain) for d in sorted(runs)]
    assert all(b > a for a, b in zip(changes, changes[1:])), changes
    assert changes[-1] > 1e-3
    for d in sorted(runs)[1:]:  # the expectation over the data law, measured on 6 draws of 32 x 32
        expected = gaussian_change(model.power, activation_times(LAW, SIZE, d), t)
        # below delta 0.05 Euler's own error at 256 steps (~1e-4 per coefficient) is of the size of the change
        assert relative_change(runs[d], plain) == pytest.approx(expected, rel=0.05 if d >= 0.05 else 0.3)


def _ratio(run: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
    """Per coefficient x_0(passthrough) / x_0(plain) (both linear in the same noise)."""
    a, b = transforms.forward(run), transforms.forward(plain)
    return (a * b).sum((0, 1)) / (b * b).sum((0, 1))


@pytest.mark.parametrize("delta", [1e-3, 1e-2, 0.05, 0.1, 0.3])
def test_per_coefficient_change_matches_the_closed_form_and_prop1_bound(sweep, delta):
    """x_0(pt)/x_0(plain) = rho(t_r)/rho(t_0) (t_r the grid release time), and the relative change of a band
    released at its activation time is at most delta / (1 + P_w) < delta (Prop. 1, App. B) on any grid."""
    frame, model, _, t, plain, runs = sweep
    act = activation_times(LAW, SIZE, delta)
    ratio = _ratio(runs[delta], plain)
    pred = passthrough_gain(release_times(act, t), model.power, T0[frame])
    assert float((ratio - pred).abs().max()) < 3e-3  # Euler's own discretisation error at 256 steps
    replaced = act < T0[frame]
    assert int(replaced.sum()) > 0.8 * replaced.numel()
    change = (1.0 - ratio)[replaced]
    bound = (delta / (1.0 + model.power))[replaced]
    assert bool((change >= -1e-9).all())
    assert bool((change <= bound).all()), float((change / bound).max())
    assert float((change / bound).max()) > 0.3  # the bound is attained in order of magnitude, not vacuous


def test_bound_is_tight_in_continuous_time():
    p = torch.logspace(-2, 3, 40, dtype=torch.float64)
    for d in (1e-3, 1e-2, 0.1):
        tw = activation_times(p.reshape(5, 8), (5, 8), d).flatten()
        rho = passthrough_gain(tw, p)
        assert torch.allclose(rho ** 2, (1 + p - d) / (1 + p), rtol=1e-12)
        assert bool((1 - rho <= d / (1 + p)).all())


@pytest.mark.parametrize("frame", ["const", "eps"])
@pytest.mark.parametrize("sampler", [sample_euler, sample_ab2])
def test_the_state_holds_t_times_the_noise_on_inactive_bands(frame, sampler):
    """App. B's replacement: a deterministic sampler's own state is t T(eps) on every band with t > t_w, and
    the network is shown exactly that (input recorded in the flow frame)."""
    model, noise = _setup(frame, shape=(2, 1), size=(32, 40))
    t, sig = _grid(frame, 16)
    act = activation_times(LAW, (32, 40), 0.3)
    E = transforms.forward(noise)
    seen = []

    def recorder(x, sigma, **kw):
        seen.append((x.clone(), sigma.clone()))
        return model(x, sigma, **kw)

    states = []
    den = PassthroughDenoiser(recorder, noise, act, sig, frame=frame)
    sampler(den, sig[0] * noise, sig, callback=lambda d: states.append((d["x"].clone(), d["sigma"])))
    scale = (lambda s: 1 / (1 + s)) if frame == "eps" else (lambda s: 1.0)
    checked = 0
    for (x, s), (x_in, s_in) in zip(states, seen):
        tt = float(s) / (1 + float(s)) if frame == "eps" else float(s)
        m = tt > act
        if not bool(m.any()):
            continue
        want = (tt * E)[..., m]
        assert torch.allclose(transforms.forward(x * scale(float(s)))[..., m], want, atol=1e-10)
        assert torch.allclose(transforms.forward(x_in * scale(float(s_in[0])))[..., m], want, atol=1e-10)
        checked += 1
    assert checked >= 5


def test_no_band_replaced_is_the_plain_call_bit_for_bit():
    model, noise = _setup("const", shape=(2, 3), size=(12, 20))
    grid = torch.linspace(1.0, 0.0, 11, dtype=torch.float64)
    den = PassthroughDenoiser(model, noise, activation_times(LAW, (12, 20), 0.01), grid, frame="const")
    x = torch.randn_like(noise)
    sigma = torch.full((2,), 0.01, dtype=torch.float64)  # below every activation time
    assert torch.equal(den(x, sigma), model(x, sigma))
    x32 = x.float()
    assert torch.equal(den(x32, sigma.float()), model(x32, sigma.float()))


@pytest.mark.parametrize("transform", ["dct", "dwt", "fft"])
def test_every_transform_and_video_latents(transform):
    """(B, C, T, H, W): frames untouched; the output stays real and finite; delta -> 0 is plain."""
    model = GaussianSpectrumModel.power_law(LAW, (32, 32), "dct", "const")
    noise = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    t, sig = _grid("const", 10)
    plain = sample_euler(model, noise, sig)
    tiny = _run(model, noise, sig, 1e-9, transform=transform)
    big = _run(model, noise, sig, 0.3, transform=transform)
    assert big.shape == noise.shape and not big.is_complex() and bool(torch.isfinite(big).all())
    assert relative_change(tiny, plain) < 1e-12 < relative_change(big, plain)


def test_activation_times_are_prop1():
    act = activation_times(LAW, (32, 48), 0.01)
    w = transforms.radial_frequency(32, 48)
    for idx in [(0, 5), (7, 3), (31, 47), (16, 0)]:
        assert float(act[idx]) == pytest.approx(switch_time(0.01, LAW.A, LAW.beta, float(w[idx])), rel=1e-12)
    assert float(act[0, 0]) > 0.999  # DC: P clamped at w_min, noise-dominated only at the very start
    assert bool((activation_times(LAW, (32, 48), 0.1) < act).all())  # larger delta, later activation


def test_tolerated_delta():
    assert tolerated_delta([0.001, 0.01, 0.05, 0.1], [0.01, 0.03, 0.2, 0.5], 0.05) == 0.01
    assert tolerated_delta([0.1, 0.001, 0.01], [0.5, 0.01, 0.03], 0.05) == 0.01  # order of the sweep is free
    # non-monotone: stop at the first miss
    assert tolerated_delta([0.001, 0.01, 0.05], [0.01, 0.2, 0.02], 0.05) == 0.001
    assert tolerated_delta([0.001], [0.2], 0.05) is None
    assert tolerated_delta([0.001, 0.01], [0.0, float("nan")], 0.05) == 0.001


@pytest.mark.parametrize("call,name", [
    (lambda: activation_times(LAW, (8, 8), 0.0), "delta"),
    (lambda: activation_times(LAW, (8, 0), 0.01), "size"),
    (lambda: activation_times(torch.ones(4, 4), (8, 8), 0.01), "spectrum"),
    (lambda: activation_times("flux", (8, 8), 0.01), "spectrum"),
    (lambda: PassthroughDenoiser(None, torch.zeros(1, 1, 4, 4), torch.zeros(4, 4), G), "denoiser"),
    (lambda: PassthroughDenoiser(lambda x, s: x, torch.zeros(1, 4, 4), torch.zeros(4, 4), G), "noise"),
    (lambda: PassthroughDenoiser(lambda x, s: x, torch.zeros(1, 1, 4, 4), torch.zeros(4, 5), G), "activation"),
    (lambda: PassthroughDenoiser(lambda x, s: x, torch.zeros(1, 1, 4, 4), torch.zeros(4, 4), G, frame="vp"),
     "frame"),
    (lambda: PassthroughDenoiser(lambda x, s: x, torch.zeros(1, 1, 4, 4), torch.zeros(4, 4), G, transform="dst"),
     "transform"),
    (lambda: PassthroughDenoiser(lambda x, s: x, torch.zeros(1, 1, 4, 4), torch.zeros(4, 4), G)(
        torch.zeros(2, 1, 4, 4), torch.ones(2)), "x"),
    (lambda: PassthroughDenoiser(lambda x, s: x, torch.zeros(1, 1, 4, 4), torch.zeros(4, 4), G[:1]), "sigmas"),
    (lambda: tolerated_delta([0.01, 0.1], [0.1], 0.05), "changes"),
    (lambda: tolerated_delta([0.01], [0.1], math.nan), "tolerance"),
    (lambda: relative_change(torch.zeros(2), torch.zeros(3)), "x"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        call()


@pytest.mark.parametrize("args", [["--deltas", "0.1,abc"], ["--deltas", "0.1,1.5"], ["--samples", "1"]])
def test_bench_refuses_bad_arguments(tmp_path, args):
    from spectral_progressive.bench import passthrough as bench
    with pytest.raises(SystemExit) as exc:
        bench.main(args + ["--out", str(tmp_path)])
    assert exc.value.code == 2

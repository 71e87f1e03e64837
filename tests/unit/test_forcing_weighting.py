"""Spectral forcing (seed 004) and spectrum-aware loss weighting (seed 003 Eq. 11): the operators
against their closed forms on exact models, and the training options of the embedded trainer and the
fine-tuning command on tiny runs."""
import json
import math

import pytest
import torch

from spectral_progressive.embedded import train as tr
from spectral_progressive.embedded.model import EmbeddedDenoiser, FlowUNet, load_default_model
from spectral_progressive.spectral_core import transforms
from spectral_progressive.spectral_core.expansion import contract
from spectral_progressive.spectral_core.forcing import (SpectralForcing, cutoff_frequency, forcing_mask,
                                                        spectral_forcing)
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.loss_weighting import (SpectralLossWeighting, axis_bands, band_index,
                                                               band_weights, weighted_mse)
from spectral_progressive.spectral_core.spectra import PowerLaw

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/unit/conftest.py

LAW = PowerLaw(52.5, 2.25)  # the embedded data's spectrum (embedded/spectrum.json, rounded)
FLUX = PowerLaw(203.62, 1.9155)


def _x(shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------------------------
# forcing: the contour
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("law", [LAW, FLUX])
def test_cutoff_is_the_snr_one_contour(law):
    """At w = w*(t): (1 - t)^2 A w^-beta = t^2 (the data-to-noise contour, in cycles per image)."""
    for t in (0.05, 0.3, 0.5, 0.8, 0.97):
        w = float(cutoff_frequency(t, law))
        assert (1 - t) ** 2 * law.A * w ** -law.beta == pytest.approx(t ** 2, rel=1e-10)
        assert w == pytest.approx(law.A ** (1 / law.beta) * ((1 - t) / t) ** (2 / law.beta), rel=1e-12)


def test_cutoff_is_monotone_in_t_infinite_at_the_data_end_and_zero_at_pure_noise():
    t = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)
    w = cutoff_frequency(t, LAW)
    assert math.isinf(float(w[0])) and float(w[-1]) == 0.0
    assert bool((w[1:] < w[:-1]).all())
    # the masks are nested: a later (noisier) time keeps a subset of an earlier one's coefficients
    masks = forcing_mask(t, (32, 32), LAW, batch=t.numel(), dtype=torch.float64)
    assert bool((masks[1:] <= masks[:-1]).all())
    assert float(masks[0].min()) == 1.0 and float(masks[-1].max()) == 0.0


def test_flat_spectrum_keeps_all_or_nothing():
    law = PowerLaw(4.0, 0.0)  # SNR = 4 (1 - t)^2 / t^2 at every frequency: >= 1 iff t <= 2/3
    m = forcing_mask(torch.tensor([0.6, 0.7], dtype=torch.float64), (8, 8), law, batch=2, dtype=torch.float64)
    assert float(m[0].min()) == 1.0 and float(m[1].max()) == 0.0


# ------------------------------------------------------------------------------------------------
# forcing: the operator
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("transform", ["dct", "dwt", "fft"])
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 4, 3, 8, 12)])
def test_forcing_is_exactly_the_identity_at_t_zero(transform, shape):
    x = _x(shape, dtype=torch.float32)
    assert torch.equal(spectral_forcing(x, 0.0, LAW, transform), x)
    assert torch.equal(spectral_forcing(x, torch.zeros(shape[0]), LAW, transform), x)


@pytest.mark.parametrize("t", [0.2, 0.5, 0.85])
def test_forcing_removes_exactly_the_band_above_the_cutoff(t):
    """DCT: the coefficients at or under the contour are unchanged, the others are exactly zero."""
    x = _x((2, 3, 32, 32))
    y = spectral_forcing(x, t, LAW)
    cx, cy = transforms.forward(x), transforms.forward(y)
    w = transforms.radial_frequency(32, 32).clamp_min(LAW.w_min)
    keep = w <= float(cutoff_frequency(t, LAW))
    assert 0 < int(keep.sum()) < keep.numel()
    torch.testing.assert_close(cy[..., keep], cx[..., keep], rtol=0, atol=1e-12)
    assert float(cy[..., ~keep].abs().max()) < 1e-12
    # a signal band-limited under the contour passes unchanged
    low = transforms.inverse(cx * keep)
    torch.testing.assert_close(spectral_forcing(low, t, LAW), low, rtol=0, atol=1e-12)


def test_each_sample_is_filtered_at_its_own_time():
    x = _x((3, 2, 16, 16))
    t = torch.tensor([0.1, 0.6, 0.95], dtype=torch.float64)
    y = spectral_forcing(x, t, LAW)
    for i in range(3):
        torch.testing.assert_close(y[i:i + 1], spectral_forcing(x[i:i + 1], float(t[i]), LAW), rtol=0, atol=1e-13)


@pytest.mark.parametrize("t", [0.3, 0.6, 0.9])
def test_gaussian_data_keeps_exactly_the_coefficients_whose_snr_is_at_least_one(t):
    """Exact Gaussian data with the law's per-coefficient power P: the forced input keeps the
    coefficients with (1 - t)^2 P >= t^2 unchanged and nothing else; its second moment per coefficient is
    (1 - t)^2 P + t^2 there and 0 elsewhere (checked on 4000 draws)."""
    model = GaussianSpectrumModel.power_law(LAW, (16, 16))
    P = model.power
    snr_ok = (1 - t) ** 2 * P >= t ** 2
    mask = forcing_mask(t, (16, 16), LAW, dtype=torch.float64)[0]
    assert torch.equal(mask.bool(), snr_ok)
    x0 = model.sample((4000, 1), generator=torch.Generator().manual_seed(1))
    xt = (1 - t) * x0 + t * _x(x0.shape, seed=2)
    second = (transforms.forward(spectral_forcing(xt, t, LAW)) ** 2).mean(dim=(0, 1))
    expect = torch.where(snr_ok, (1 - t) ** 2 * P + t ** 2, torch.zeros_like(P))
    torch.testing.assert_close(second, expect, rtol=0.12, atol=1e-12)


@pytest.mark.parametrize("t", [0.35, 0.7, 0.92])
def test_forcing_commutes_with_contraction(t):
    """A 16 x 16 stage holding the contraction of 32 x 32 data (law on the 32 x 32 reference grid) at its
    own time s: its mask is the full mask's low block, and contract(F_t(x)) = F_s(contract(x))."""
    x = _x((2, 3, 32, 32))
    lo, s = contract(x, (16, 16), t)
    full = forcing_mask(t, (32, 32), LAW, dtype=torch.float64)[0]
    stage = forcing_mask(s, (16, 16), LAW, reference_size=(32, 32), dtype=torch.float64)[0]
    assert torch.equal(stage, full[:16, :16])
    torch.testing.assert_close(contract(spectral_forcing(x, t, LAW), (16, 16), t)[0],
                               spectral_forcing(lo, s, LAW, reference_size=(32, 32)), rtol=0, atol=1e-12)


def test_forcing_keeps_dtype_and_rejects_bad_input():
    x = _x((1, 2, 8, 8), dtype=torch.float16)
    assert spectral_forcing(x, 0.5, LAW).dtype == torch.float16
    with pytest.raises(ValueError, match="^t:"):
        spectral_forcing(x, 1.5, LAW)
    with pytest.raises(ValueError, match="^t:"):
        spectral_forcing(x, torch.tensor([0.1, 0.2]), LAW)
    with pytest.raises(ValueError, match="^law:"):
        spectral_forcing(x, 0.5, (52.5, 2.25))
    with pytest.raises(ValueError, match="^transform:"):
        spectral_forcing(x, 0.5, LAW, "wavelet")
    with pytest.raises(ValueError, match="^x:"):
        spectral_forcing(torch.zeros(8, 8), 0.5, LAW)
    with pytest.raises(ValueError, match="^reference_size:"):
        SpectralForcing(LAW, "dct", (0, 8))


def test_forcing_record_round_trips():
    f = SpectralForcing(LAW, "dwt", (64, 64))
    assert SpectralForcing.from_dict(json.loads(f.to_json())) == f
    with pytest.raises(ValueError, match="^spectral_forcing:"):
        SpectralForcing.from_dict({"beta": 2.0})


# ------------------------------------------------------------------------------------------------
# loss weighting
# ------------------------------------------------------------------------------------------------

def test_dwt_bands_are_the_haar_subbands():
    """Along an axis, the Haar analysis rows of band j >= 1 are details of support n / (n0 2^(j-1)), the
    rows of band 0 the approximation of support n / n0 (n0 = n / 2^L): the bands are the Haar levels."""
    for n in (64, 48, 12):
        rows = transforms.REGISTRY["dwt"].analysis(n)
        band = axis_bands(n)
        n0 = n >> transforms.haar_levels(n)
        for k in range(n):
            support = int((rows[k].abs() > 1e-12).sum())
            j = int(band[k])
            assert support == (n // n0 if j == 0 else n // (n0 << (j - 1))), (n, k)
    idx, nb = band_index(64, 16)
    assert nb == 7 * 5 and int(idx.max()) == nb - 1 and idx.shape == (64, 16)


def _known_spectrum(mags, shape, transform, seed):
    """A batch whose coefficients in band b all have magnitude mags[b] (random signs)."""
    idx, _ = band_index(shape[-2], shape[-1])
    signs = torch.sign(_x(shape, seed)).clamp_min(-1)
    signs[signs == 0] = 1
    return transforms.inverse(signs * mags[idx], transform)


@pytest.mark.parametrize("transform", ["dct", "dwt"])
@pytest.mark.parametrize("alpha", [-1.0, -0.5])
def test_weighted_loss_equals_the_per_band_closed_form(transform, alpha):
    """x0 with magnitude c_b and an error with magnitude d_b on every coefficient of band b:
    L = sum_b n_b w_b d_b^2 / N with w_b = c_b^alpha / (sum_b n_b c_b^alpha / N)."""
    shape = (3, 2, 16, 8)
    idx, nb = band_index(16, 8)
    c = torch.linspace(5.0, 0.1, nb, dtype=torch.float64)
    d = torch.linspace(0.2, 1.3, nb, dtype=torch.float64) ** 2
    x0 = _known_spectrum(c, shape, transform, seed=3)
    err = _known_spectrum(d, shape, transform, seed=4)
    pred = _x(shape, seed=5)
    n_b = torch.bincount(idx.flatten(), minlength=nb).to(torch.float64)
    N = float(n_b.sum())
    w_b = c ** alpha / ((n_b * c ** alpha).sum() / N)
    expect = float((n_b * w_b * d ** 2).sum() / N)
    got = weighted_mse(pred + err, pred, band_weights(x0, alpha, transform), transform)
    torch.testing.assert_close(got, torch.full((3,), expect, dtype=torch.float64), rtol=1e-10, atol=0)
    assert SpectralLossWeighting(alpha, transform).loss(pred + err, pred, x0).mean().item() == pytest.approx(expect)


def test_weights_have_mean_one_and_alpha_zero_is_the_plain_mse():
    x0 = _x((4, 3, 32, 32))
    pred, target = _x((4, 3, 32, 32), seed=1), _x((4, 3, 32, 32), seed=2)
    for alpha in (-2.0, -1.0, -0.3):
        assert float(band_weights(x0, alpha).mean()) == pytest.approx(1.0, rel=1e-12)
    w0 = band_weights(x0, 0.0)
    assert torch.equal(w0, torch.ones_like(w0))
    torch.testing.assert_close(weighted_mse(pred, target, w0), ((pred - target) ** 2).flatten(1).mean(1),
                               rtol=1e-10, atol=0)
    # a white error (unit magnitude on every coefficient) costs the plain MSE whatever the weights
    idx, nb = band_index(32, 32)
    white = _known_spectrum(torch.ones(nb, dtype=torch.float64), (4, 3, 32, 32), "dct", seed=6)
    torch.testing.assert_close(weighted_mse(white, torch.zeros_like(white), band_weights(x0, -1.0)),
                               torch.ones(4, dtype=torch.float64), rtol=1e-10, atol=0)


def test_negative_alpha_weights_the_low_energy_bands_up_and_gradients_flow():
    law_data = GaussianSpectrumModel.power_law(LAW, (32, 32)).sample((8, 3), torch.Generator().manual_seed(0))
    w = band_weights(law_data, -1.0)
    assert float(w[0, 0]) < float(w[31, 31])  # DC band (most energy) below the highest band
    pred = torch.zeros(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    weighted_mse(pred, _x((2, 3, 32, 32)), w).sum().backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0


def test_weighting_rejects_bad_input():
    x0 = _x((1, 1, 8, 8))
    with pytest.raises(ValueError, match="^alpha:"):
        band_weights(x0, 1.0)
    with pytest.raises(ValueError, match="^alpha:"):
        band_weights(x0, float("nan"))
    with pytest.raises(ValueError, match="^transform:"):
        band_weights(x0, -1.0, "fft")
    with pytest.raises(ValueError, match="^weight_alpha:"):
        SpectralLossWeighting(0.5)
    with pytest.raises(ValueError, match="^target:"):
        weighted_mse(x0, x0[..., :4], torch.ones(8, 8))


# ------------------------------------------------------------------------------------------------
# the embedded model and its trainer
# ------------------------------------------------------------------------------------------------

def test_denoiser_with_forcing_is_a_function_of_the_forced_input():
    """D(x, t) = F x - t v_net(F x, t); the velocity v_net(F x) + (x - F x) / t gives back D = x - t v;
    at t = 0 it is the plain model (nothing removed, no division by 0)."""
    torch.manual_seed(0)
    net = FlowUNet(channels=(8, 8, 8), time_dim=16, groups=4).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    f = tr.make_forcing(LAW)
    x, t = _x((2, 3, 32, 32), dtype=torch.float32), torch.tensor([0.3, 0.8])
    tt = t.reshape(-1, 1, 1, 1)
    with torch.no_grad():
        den, plain = EmbeddedDenoiser(net, f), EmbeddedDenoiser(net)
        got = den(x, t)
        fx = f(x, t)
        torch.testing.assert_close(got, fx - tt * net(fx, t))
        torch.testing.assert_close(den(x + (x - fx), t), got)  # the removed band does not reach D
        torch.testing.assert_close(x - tt * den.velocity(x, t), got, rtol=1e-5, atol=1e-5)
        assert float((got - plain(x, t)).abs().max()) > 1e-4
        zero = torch.zeros(2)
        assert torch.equal(den(x, zero), plain(x, zero)) and torch.equal(den.velocity(x, zero), plain.velocity(x, zero))


def test_flow_loss_options_are_the_closed_forms():
    torch.manual_seed(0)
    net = FlowUNet(channels=(8, 8, 8), time_dim=16, groups=4)
    x0, eps = _x((2, 3, 16, 16), 0, torch.float32), _x((2, 3, 16, 16), 1, torch.float32)
    t = torch.tensor([0.2, 0.7])
    f, wt = tr.make_forcing(LAW), SpectralLossWeighting(-1.0)
    xt = (1 - t.reshape(-1, 1, 1, 1)) * x0 + t.reshape(-1, 1, 1, 1) * eps
    with torch.no_grad():
        fx = f(xt, t)
        pred_f = net(fx, t) + (xt - fx) / t.reshape(-1, 1, 1, 1)  # forcing.py Eq. 3
        torch.testing.assert_close(tr.flow_loss(net, x0, eps, t, forcing=f), ((pred_f - (eps - x0)) ** 2).mean())
        w = band_weights(x0, -1.0)
        torch.testing.assert_close(tr.flow_loss(net, x0, eps, t, forcing=f, weighting=wt),
                                   weighted_mse(pred_f, eps - x0, w).mean())


def test_trainer_options_run_and_are_recorded(tmp_path):
    out = tmp_path / "run"
    args = ["--out", str(out), "--minutes", "5", "--batch-size", "2", "--warmup", "1", "--eval-images", "0",
            "--res-probs", "0.4,0.3,0.3", "--spectral-forcing", "--loss-weighting", "spectral",
            "--weight-alpha", "-0.5", "--schedule-steps", "3"]
    assert tr.main(args) == 0
    log = json.loads((out / "train_log.json").read_text())
    cfg = log["config"]
    assert log["steps"] == 3 and cfg["schedule_steps"] == 3 and "over 3 steps" in cfg["lr_schedule"]
    assert cfg["spectral_forcing"]["reference_size"] == [64, 64]
    assert cfg["spectral_forcing"]["A"] == pytest.approx(tr.data_spectrum().A)
    assert cfg["loss_weighting"]["alpha"] == -0.5 and cfg["loss_weighting"]["transform"] == "dct"
    assert cfg["argv"] == args
    model = load_default_model(path=out / "weights.safetensors")  # inference applies the recorded forcing
    assert model.forcing == tr.make_forcing()
    assert load_default_model().forcing is None  # the shipped weights were trained without it


def test_trainer_default_records_no_option(tmp_path):
    log = tr.train(tmp_path, minutes=5, seed=0, threads=1, batch_size=2, warmup=1, max_steps=1, eval_images=0)
    assert log["config"]["spectral_forcing"] is None and log["config"]["loss_weighting"] is None
    assert load_default_model(path=tmp_path / "weights.safetensors").forcing is None


@pytest.mark.parametrize("args, word", [(["--weight-alpha", "-1"], "--weight-alpha"),
                                        (["--loss-weighting", "spectral", "--weight-alpha", "0.5"], "--weight-alpha"),
                                        (["--forcing-law", "50,2"], "--forcing-law"),
                                        (["--spectral-forcing", "--forcing-law", "-1,2"], "--forcing-law"),
                                        (["--loss-weighting", "spectral", "--weight-transform", "fft"],
                                         "--weight-transform")])
def test_trainer_rejects_bad_option_combinations(tmp_path, capsys, args, word):
    with pytest.raises(SystemExit) as e:
        tr.main(["--out", str(tmp_path / "o"), "--minutes", "1", *args])
    assert e.value.code == 2 and word in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# the fine-tuning command
# ------------------------------------------------------------------------------------------------

def test_finetune_options_run_and_are_recorded(tmp_path):
    from spectral_progressive.finetune import cli
    out = tmp_path / "ft"
    args = ["--out", str(out), "--steps", "2", "--samples", "1", "--sample-steps", "1", "--batch-size", "2",
            "--heldout", "1", "--rank", "1", "--save-merged", "--spectral-forcing", "--loss-weighting", "spectral",
            "--weight-alpha", "-1"]
    assert cli.main(args) == 0
    log = json.loads((out / "train_log.json").read_text())
    assert log["steps"] == 2 and log["spectral_forcing"]["reference_size"] == [64, 64]
    assert log["loss_weighting"]["alpha"] == -1.0
    assert log["config"]["spectral_forcing"] is True and log["config"]["loss_weighting"] == "spectral"
    merged = load_default_model(path=out / "merged_weights.safetensors")
    assert merged.forcing == tr.make_forcing()


def test_finetune_stage_loss_applies_forcing_and_weighting_per_stage():
    from spectral_progressive import finetune as ft
    from spectral_progressive.spectral_core.stage_targets import StageSchedule, clean_at_stage, stage_pair
    torch.manual_seed(0)
    net = FlowUNet(channels=(8, 8, 8), time_dim=16, groups=4)
    sched = StageSchedule(((8, 8), (16, 16)), (0.6,))
    x0, eps = _x((2, 3, 16, 16), 0, torch.float32), _x((2, 3, 16, 16), 1, torch.float32)
    t = torch.tensor([0.8, 0.3], dtype=torch.float64)
    f, wt = SpectralForcing(LAW, "dct", (16, 16)), SpectralLossWeighting(-1.0)
    with torch.no_grad():
        loss, stats = ft.stage_loss(net, x0, eps, sched, t, forcing=f, weighting=wt)
        per = []
        for i, k in ((0, 0), (1, 1)):
            pair = stage_pair(x0[k:k + 1], eps[k:k + 1], sched, i, t[k:k + 1].to(torch.float32))
            fx = f(pair.x_t, pair.t)
            pred = net(fx, pair.t) + (pair.x_t - fx) / pair.t.reshape(-1, 1, 1, 1)
            w = band_weights(clean_at_stage(x0[k:k + 1], sched, i), -1.0)
            per.append(weighted_mse(pred, pair.v, w))
    torch.testing.assert_close(loss, torch.cat(per).mean(), rtol=1e-5, atol=1e-7)
    assert set(stats) == {0, 1}


# ------------------------------------------------------------------------------------------------
# the benchmark
# ------------------------------------------------------------------------------------------------

def test_benchmark_runs_on_a_run_directory_and_writes_both_files(tmp_path):
    from spectral_progressive.bench import forcing_weighting as fw
    run = tmp_path / "forced"
    assert tr.main(["--out", str(run), "--minutes", "5", "--batch-size", "2", "--warmup", "1", "--eval-images", "0",
                    "--max-steps", "1", "--spectral-forcing"]) == 0
    out = tmp_path / "res"
    fw.main([f"forced={run}", "--samples", "3", "--steps", "2", "--lowband-samples", "1", "--bootstrap", "2",
             "--out", str(out)])
    rec = json.loads((out / "forcing_weighting.json").read_text())
    assert list(rec["models"]) == ["shipped", "shipped + forcing at inference only", "forced"]
    assert rec["models"]["forced"]["forcing_at_inference"] and not rec["models"]["shipped"]["forcing_at_inference"]
    assert rec["models"]["forced"]["info"]["steps"] == 1
    assert [r["t"] for r in rec["models"]["shipped"]["low_band"]] == list(fw.HIGH_T)
    assert "| shipped |" in (out / "forcing_weighting.md").read_text() and (out / "forcing_weighting.png").is_file()
    assert len(rec["models"]["forced"]["progressive_psnr_per_seed"]) == 3


def test_benchmark_rejects_a_run_without_weights(tmp_path, capsys):
    from spectral_progressive.bench import forcing_weighting as fw
    with pytest.raises(SystemExit) as e:
        fw.main([f"x={tmp_path}", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "weights.safetensors" in capsys.readouterr().err

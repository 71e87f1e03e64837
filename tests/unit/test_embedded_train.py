"""The trainer's new options: time sampler (shift, tail), multi-resolution batches, a few real steps, CLI."""
import json
import math
import subprocess
import sys

import pytest
import torch

from spectral_progressive.embedded import train as tr
from spectral_progressive.spectral_core import transforms
from spectral_progressive.spectral_core.expansion import aligned_time, contract, contracted_time, expand


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/unit/conftest.py


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shift", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("tail", [0.0, 0.2])
def test_fraction_of_high_noise_times_is_what_it_says(shift, tail):
    t = tr.sample_times(400_000, _gen(0), shift=shift, tail=tail)
    assert float(t.min()) > 0.0 and float(t.max()) <= 1.0
    for x in (0.9, 0.95):
        expected = tr.prob_time_above(x, shift, tail)
        assert abs(float((t > x).double().mean()) - expected) < 0.003, (x, expected)
    if tail > 0:  # the tail alone puts `tail` of the draws above 0.9
        assert tr.prob_time_above(0.9, shift, tail) >= tail


def test_per_resolution_tail_oversamples_only_the_named_resolutions():
    tails = tr.tail_by_factor((0.0, 0.25, 0.5))
    assert tails == {1: 0.0, 2: 0.25, 4: 0.5}
    for factor in tr.RES_FACTORS:
        t = tr.batch_times(400_000, _gen(factor), factor, "resolution", tails)
        expected = tr.prob_time_above(0.9, float(factor), tails[factor])
        assert abs(float((t > 0.9).double().mean()) - expected) < 0.003, (factor, expected)
    # 64x64 without a tail draws exactly the plain (unshifted, tail-free) distribution
    assert torch.equal(tr.batch_times(100, _gen(5), 1, "resolution", tails), tr.sample_times(100, _gen(5)))
    # one number means the same fraction everywhere
    assert tr.tail_by_factor(0.2) == {1: 0.2, 2: 0.2, 4: 0.2}


@pytest.mark.parametrize("bad", [1.0, -0.1, (0.1, 0.2), (0.0, 1.0, 0.2)])
def test_tail_fraction_outside_unit_interval_or_wrong_count_is_rejected(bad):
    with pytest.raises(ValueError, match="tail"):
        tr.tail_by_factor(bad)


def test_lower_resolution_sees_more_high_noise():
    p = [tr.prob_time_above(0.9, g, 0.2) for g in tr.RES_FACTORS]
    assert p[0] < p[1] < p[2]
    med = [float(tr.sample_times(50_000, _gen(1), shift=g).median()) for g in tr.RES_FACTORS]
    assert med[0] < med[1] < med[2]
    # the shift is the paper's alignment map, the inverse of the contraction of time
    u = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    for g in (2.0, 4.0):
        assert torch.allclose(contracted_time(tr.shift_time(u, g), g), u, atol=1e-12)


def test_default_sampler_is_unchanged_without_shift_and_tail():
    g1, g2 = _gen(3), _gen(3)
    t = tr.sample_times(1000, g1)
    ln = torch.sigmoid(torch.randn(1000, generator=g2))
    un = torch.rand(1000, generator=g2)
    pick = torch.rand(1000, generator=g2) < tr.UNIFORM_FRACTION
    assert torch.equal(t, torch.where(pick, un, ln))


class _FakeStream:
    def __init__(self):
        self.g = _gen(0)

    def next_batch(self, n):
        return torch.rand(n, 3, 64, 64, generator=self.g) * 2 - 1


def test_multires_batches_have_the_stage_sizes_and_are_the_dct_contraction():
    g = _gen(5)
    sizes = {}
    for _ in range(300):
        x0, f = tr.multires_batch(_FakeStream(), 2, g, (0.5, 0.3, 0.2))
        assert x0.shape == (2, 3, 64 // f, 64 // f)
        sizes[f] = sizes.get(f, 0) + 1
    assert set(sizes) == {1, 2, 4}
    assert abs(sizes[1] / 300 - 0.5) < 0.1 and abs(sizes[4] / 300 - 0.2) < 0.1
    x = _FakeStream().next_batch(3)
    for f in (2, 4):
        lo = tr.contract_batch(x, f)
        size = (64 // f, 64 // f)
        # C x / g: the DCT low band with pixel values preserved (the contraction at t = 0)
        assert torch.allclose(lo, transforms.down(x, size) / f, atol=1e-6)
        assert torch.allclose(lo, contract(x, size, 0.0)[0])
        assert torch.allclose(lo.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-5)
        # expanding it back at t = 0 gives the low-pass of x (nothing else)
        up, t_new = expand(lo, (64, 64), 0.0)
        assert t_new == 0.0
        assert torch.allclose(up, transforms.project_low(x, size), atol=1e-5)
    # only 64x64 when the probabilities say so, and no generator draw is wasted
    g1 = _gen(9)
    x0, f = tr.multires_batch(_FakeStream(), 2, g1, (1.0, 0.0, 0.0))
    assert f == 1 and x0.shape[-1] == 64
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=_gen(9)))


@pytest.mark.parametrize("x", [0.0, 1.0, -0.2, 1.5])
def test_prob_time_above_rejects_times_outside_the_open_unit_interval(x):
    with pytest.raises(ValueError, match="x must be"):
        tr.prob_time_above(x)


@pytest.mark.parametrize("factor", tr.RES_FACTORS)
def test_tail_window_in_full_size_time_lands_where_the_low_stage_meets_those_times(factor):
    window = (0.86, 0.96)
    lo, hi = tr.tail_window_at(window, factor)
    # the stage-time interval maps back onto the full-size interval under seed 001 Eq. 6
    assert aligned_time(lo, float(factor)) == pytest.approx(0.86, abs=1e-12)
    assert aligned_time(hi, float(factor)) == pytest.approx(0.96, abs=1e-12)
    tails = {1: 0.15, 2: 0.4, 4: 0.3}
    t = tr.batch_times(400_000, _gen(11 + factor), factor, "resolution", tails, window)
    for x in (0.3, 0.5, lo, 0.5 * (lo + hi), hi, 0.97):
        expected = tr.prob_time_above(x, float(factor), tails[factor], (lo, hi))
        assert abs(float((t > x).double().mean()) - expected) < 0.003, (factor, x, expected)
    # the tail adds exactly its fraction inside the window, on top of the bulk's share
    bulk_in = tr.prob_time_above(lo, float(factor)) - tr.prob_time_above(hi, float(factor))
    inside = float(((t > lo) & (t <= hi)).double().mean())
    assert abs(inside - (tails[factor] + (1 - tails[factor]) * bulk_in)) < 0.003


def test_no_tail_window_keeps_the_original_tail_draw_for_draw():
    tails = tr.tail_by_factor(0.2)
    for factor in tr.RES_FACTORS:
        assert tr.tail_window_at(None, factor) == (tr.TAIL_START, 1.0)
        assert torch.equal(tr.batch_times(1000, _gen(3), factor, "resolution", tails, None),
                           tr.sample_times(1000, _gen(3), shift=float(factor), tail=0.2))


@pytest.mark.parametrize("bad", [(0.9, 0.9), (0.95, 0.9), (-0.1, 0.5), (0.5, 1.2), (0.5,), ("a", "b")])
def test_bad_tail_window_is_rejected_by_name(tmp_path, bad):
    with pytest.raises(ValueError, match="tail window"):
        tr.check_tail_window(bad)
    with pytest.raises(ValueError, match="tail window"):
        tr.train(tmp_path, 1, 0, 1, tail_window=bad)
    assert not (tmp_path / "weights.safetensors").exists()


def test_a_few_steps_on_tiny_batches_write_the_outputs(tmp_path):
    log = tr.train(tmp_path, minutes=10, seed=0, threads=1, batch_size=2, warmup=1, max_steps=6,
                   data_source="dead_leaves", res_probs=(0.34, 0.33, 0.33), argv=["--fake"], eval_images=2)
    assert log["steps"] == 6 and log["finished"]
    assert sum(log["steps_by_size"].values()) == 6
    assert all(math.isfinite(v) for v in (c[1] for c in log["loss_curve"]))
    assert set(log["eval_velocity_mse"]) == {"heldout_dead_leaves_64x64", "heldout_dead_leaves_32x32",
                                             "heldout_dead_leaves_16x16"}
    for name in ("weights.safetensors", "train_log.json", "loss_curve.png"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "train_log.json").read_text())
    assert saved["config"]["argv"] == ["--fake"]
    assert saved["config"]["resolutions"] == {"64x64": 0.34, "32x32": 0.33, "16x16": 0.33}


def test_photos_source_still_trains(tmp_path):
    log = tr.train(tmp_path, minutes=10, seed=0, threads=1, batch_size=2, warmup=1, max_steps=2,
                   data_source="photos", res_probs=(1.0, 0.0, 0.0), eval_images=2)
    assert log["steps"] == 2 and log["steps_by_size"]["64x64"] == 2
    assert "heldout_crops" in log["eval_velocity_mse"]


def test_train_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError):
        tr.train(tmp_path, 1, 0, 1, data_source="mnist")
    with pytest.raises(ValueError):
        tr.train(tmp_path, 1, 0, 1, tail=1.0)
    with pytest.raises(ValueError):
        tr.train(tmp_path, 1, 0, 1, time_shift="sd3")


@pytest.mark.parametrize("args, word", [(["--res-probs", "1,2"], "--res-probs"),
                                        (["--res-probs", "0,0,0"], "--res-probs"),
                                        (["--data", "mnist"], "--data"),
                                        (["--tail-fraction", "1"], "--tail-fraction"),
                                        (["--tail-fraction", "0,0.2"], "--tail-fraction"),
                                        (["--tail-fraction", "0,0.2,nan"], "--tail-fraction"),
                                        (["--time-shift", "sd3"], "--time-shift"),
                                        (["--tail-window", "0.95,0.9"], "--tail-window"),
                                        (["--tail-window", "0.9"], "--tail-window"),
                                        (["--tail-window", "0.5,x"], "--tail-window")])
def test_cli_rejects_bad_options(tmp_path, capsys, args, word):
    with pytest.raises(SystemExit) as e:
        tr.main(["--out", str(tmp_path / "o"), "--minutes", "1", *args])
    assert e.value.code == 2
    assert word in capsys.readouterr().err
    assert not (tmp_path / "o" / "weights.safetensors").exists()


def test_cli_records_the_command_line(tmp_path):
    out = tmp_path / "run"
    args = ["--out", str(out), "--minutes", "5", "--seed", "1", "--threads", "1", "--batch-size", "2",
            "--max-steps", "2", "--warmup", "1", "--data", "dead_leaves", "--res-probs", "0,1,1", "--eval-images", "0",
            "--tail-fraction", "0,0.25,0.3", "--tail-window", "0.86,0.96"]
    r = subprocess.run([sys.executable, "-m", "spectral_progressive.embedded.train", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    log = json.loads((out / "train_log.json").read_text())
    assert log["config"]["argv"] == args
    assert log["config"]["command"].endswith(" ".join(args))
    assert log["steps_by_size"]["64x64"] == 0 and log["steps"] == 2
    assert "eval_velocity_mse" not in log
    assert log["config"]["tail_fraction"] == {"64x64": 0.0, "32x32": 0.25, "16x16": 0.3}
    assert log["config"]["tail_window_full_size"] == [0.86, 0.96]
    assert "[0.754, 0.923] at 32x32" in log["config"]["time_distribution"]

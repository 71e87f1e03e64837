"""bench/sample_spectrum: band-by-band power ratios are exact on filtered sets; the CLI writes its tables."""
import json
import math
import subprocess
import sys

import pytest
import torch

from spectral_progressive.bench.sample_spectrum import BANDS, band_log_ratios, band_name
from spectral_progressive.spectral_core import transforms

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/unit/conftest.py


def _images(n=16, size=64, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_set_against_itself_is_zero_in_every_band():
    x = _images()
    assert all(abs(v) < 1e-9 for v in band_log_ratios(x, x).values())


def test_a_band_beyond_the_grid_is_nan():
    x = _images(size=16)  # radial frequencies of a 16 x 16 grid stop below 12
    r = band_log_ratios(x, x)
    assert math.isnan(r[band_name(16.0, 32.0)]) and abs(r[band_name(4.0, 8.0)]) < 1e-9


def test_doubling_the_images_adds_six_db_in_every_band():
    x = _images()
    r = band_log_ratios(2.0 * x, x)
    assert all(abs(v - 10 * math.log10(4.0)) < 1e-9 for v in r.values())


def test_halving_the_high_band_shows_only_in_the_high_bands():
    x = _images()
    w = transforms.radial_frequency(64, 64).to(torch.float64)
    gain = torch.where(w.round() >= 16, 0.5, 1.0).to(torch.float64)
    smooth = transforms.apply_gain(x, gain)
    r = band_log_ratios(smooth, x)
    for lo, hi in BANDS:
        expected = -10 * math.log10(4.0) if lo >= 16 else 0.0
        assert abs(r[band_name(lo, hi)] - expected) < 1e-6, (lo, r)


def test_sets_of_different_sizes_are_rejected():
    with pytest.raises(ValueError, match="spatial size"):
        band_log_ratios(_images(size=32), _images(size=64))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "spectral_progressive.bench.sample_spectrum", *args],
                          capture_output=True, text=True, timeout=600)


def test_cli_writes_a_floor_row_and_one_row_per_model(tmp_path):
    p = _run("--samples", "2", "--steps", "2", "--threads", "1", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "sample_spectrum.json").read_text())
    assert [r["samples"] for r in res["rows"]] == ["held-out data, 2 other images (floor)", "shipped, 2 steps"]
    assert all(math.isfinite(r["log-spectrum error"]) and r["log-spectrum error"] > 0 for r in res["rows"])
    assert "| samples | log-spectrum error |" in (tmp_path / "sample_spectrum.md").read_text()


@pytest.mark.parametrize("args,needle", [(["--samples", "1"], "--samples"),
                                          (["--weights", "/nonexistent/w.safetensors"], "/nonexistent/w.safetensors"),
                                          (["--steps", "x"], "--steps")])
def test_bad_arguments_end_with_a_message_and_write_nothing(tmp_path, args, needle):
    p = _run(*args, "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()

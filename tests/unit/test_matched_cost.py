"""bench/matched_cost.py on the exact Gaussian model: the floor, the equal-cost comparison, the plot."""
import pytest
import torch

from spectral_progressive.bench.matched_cost import (Method, add_equal_cost_gaps, cost_plot, equal_cost_gap, evaluate,
                                                     full_size, paired_gap, public_rows, seeded_noise)
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.spectra import PowerLaw

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def scored():
    # exact denoiser of Gaussian data with a natural-image spectrum; Euler with 2 steps draws from a
    # visibly wrong law, with 50 steps from (nearly) the data law
    model = GaussianSpectrumModel.power_law(PowerLaw(40.0, 2.0), (32, 32))
    with torch.no_grad():
        reference = full_size(model, 50).run(seeded_noise(48, 32, 99, channels=1))
    methods = [full_size(model, 50), full_size(model, 2), full_size(model, 20),
               Method("same as 50 steps", "copy", 50.0, full_size(model, 50).run)]
    rows, outs = evaluate(methods, seeded_noise(48, 32, 0, channels=1), reference, high_step_name="full size 50 steps",
                          bootstrap=10, full_steps=50, log=lambda s: None)
    add_equal_cost_gaps(rows, outs, reference, bootstrap=10, baseline_family="full size, fewer steps")
    return {r["method"]: r for r in rows}, rows, outs, reference


def test_high_step_run_is_the_floor_and_its_copy_is_within_it(scored):
    by = scored[0]
    assert by["full size 50 steps"]["within floor"] == "floor"
    copy = by["same as 50 steps"]
    assert copy["within floor"] == "yes" and copy["same-seed PSNR dB"] > 100
    assert copy["patch Frechet"] == pytest.approx(by["full size 50 steps"]["patch Frechet"])


def test_two_euler_steps_are_far_outside_the_floor(scored):
    by = scored[0]
    two = by["full size 2 steps"]
    assert two["within floor"] == "no" and two["patch Frechet"] > 3 * by["full size 50 steps"]["patch Frechet"]
    assert two["token saving"] == 25.0


def test_equal_cost_gap_picks_the_full_size_run_at_or_below_the_cost(scored):
    rows = scored[1]
    gap = equal_cost_gap(rows, "same as 50 steps")
    assert gap["baseline"] == "full size 50 steps"
    rows2 = [dict(r, **{"cost (full-size calls)": 25.0}) if r["method"] == "same as 50 steps" else r for r in rows]
    gap = equal_cost_gap(rows2, "same as 50 steps")
    assert gap["baseline"] == "full size 20 steps" and gap["better"]


def test_cost_plot_draws_and_rows_serialise(scored):
    rows = scored[1]
    img = cost_plot(rows)
    assert img.size == (820, 500) and len(img.getcolors(maxcolors=100000) or []) > 3
    assert all(not k.startswith("_") for r in public_rows(rows) for k in r)


def test_paired_gap_calls_two_euler_steps_worse_and_a_copy_indistinguishable(scored):
    _, _, outs, reference = scored
    worse = paired_gap(outs, reference, "full size 2 steps", "full size 20 steps", bootstrap=10)
    assert worse["verdict"] == "worse" and worse["Frechet difference"] > 0
    better = paired_gap(outs, reference, "full size 20 steps", "full size 2 steps", bootstrap=10)
    assert better["verdict"] == "better"
    same = paired_gap(outs, reference, "same as 50 steps", "full size 50 steps", bootstrap=10)
    assert same["verdict"] == "not distinguishable" and same["Frechet difference"] == 0.0


def test_every_method_outside_the_full_size_family_gets_its_equal_cost_gap(scored):
    by = scored[0]
    assert by["same as 50 steps"]["equal-cost full size"] == "full size 50 steps"
    assert by["same as 50 steps"]["Frechet minus it [95% CI]"].startswith("+0.000")
    assert "equal-cost full size" not in by["full size 2 steps"]

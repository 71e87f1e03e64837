"""The primary metric (bench/primary.py): patch Frechet and sliced-W distances, floor and bootstrap."""
import pytest
import torch

from spectral_progressive.bench.primary import (distribution_distance, frechet, paired_difference, reference_floor,
                                                within_floor)

pytestmark = pytest.mark.usefixtures("single_thread")


def _white(n: int, std: float, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * std


def test_frechet_of_diagonal_gaussians_is_the_closed_form():
    mu_a, mu_b = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    va, vb = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64), torch.tensor([9.0, 1.0, 0.25], dtype=torch.float64)
    expect = float(((mu_a - mu_b) ** 2).sum() + ((va.sqrt() - vb.sqrt()) ** 2).sum())
    assert frechet(mu_a, torch.diag(va), mu_b, torch.diag(vb)) == pytest.approx(expect, rel=1e-10)


def test_frechet_excess_over_the_floor_matches_white_noise_closed_form():
    # i.i.d. N(0, s^2) pixels: the patches at pooling scale k are N(0, s^2 / k^2 I_192), so the Frechet
    # distance of std a to std b averaged over scales 1, 2, 4 is 192 (a - b)^2 (1 + 1/4 + 1/16) / 3.
    a, b, c = _white(128, 0.5, 0), _white(128, 0.5, 1), _white(128, 0.6, 2)
    floor = distribution_distance(a, b, bootstrap=0)["frechet"]
    excess = distribution_distance(a, c, bootstrap=0)["frechet"] - floor
    assert excess == pytest.approx(192 * 0.1 ** 2 * (1 + 1 / 4 + 1 / 16) / 3, rel=0.1)


def test_same_law_is_within_the_floor_and_a_different_law_is_not():
    ref_a, ref_b, same, other = _white(64, 0.5, 0), _white(64, 0.5, 1), _white(64, 0.5, 2), _white(64, 0.55, 3)
    floor = reference_floor(ref_a, ref_b, bootstrap=10)
    assert floor["frechet_ci"][0] <= floor["frechet"] <= floor["frechet_ci"][1]
    assert within_floor(distribution_distance(same, ref_a, bootstrap=10), floor)
    far = distribution_distance(other, ref_a, bootstrap=10)
    assert not within_floor(far, floor) and not within_floor(far, floor, "swd")


def test_bootstrap_is_deterministic_per_seed():
    a, b = _white(8, 0.5, 0), _white(8, 0.6, 1)
    assert distribution_distance(a, b, bootstrap=5, seed=3) == distribution_distance(a, b, bootstrap=5, seed=3)


@pytest.mark.parametrize("bad, match", [(torch.zeros(1, 3, 64, 64), "N >= 2"), (torch.zeros(4, 3, 16, 16), "at least 32"),
                                        (torch.full((4, 3, 64, 64), float("nan")), "NaN")])
def test_bad_samples_are_refused_with_the_input_named(bad, match):
    with pytest.raises(ValueError, match=match):
        distribution_distance(bad, _white(4, 0.5, 0))


def test_paired_difference_of_a_method_with_itself_is_exactly_zero():
    a, ref = _white(16, 0.5, 0), _white(16, 0.5, 1)
    d = paired_difference(a, a.clone(), ref, bootstrap=5)
    assert d["frechet"] == 0.0 and d["swd"] == 0.0 and d["frechet_ci"] == (0.0, 0.0)


def test_paired_difference_matches_the_white_noise_closed_form_and_excludes_zero():
    # same seeds: the method scales the baseline's pixels from std 0.5 to 0.6; against std-0.5 reference
    # the Frechet difference is 192 (0.6-0.5)^2 (1 + 1/4 + 1/16) / 3 (the baseline's own excess is ~0)
    z = _white(64, 1.0, 0)
    ref = _white(64, 0.5, 1)
    d = paired_difference(0.6 * z, 0.5 * z, ref, bootstrap=20)
    assert d["frechet"] == pytest.approx(192 * 0.1 ** 2 * (1 + 1 / 4 + 1 / 16) / 3, rel=0.15)
    assert d["frechet_ci"][0] > 0 and d["swd_ci"][0] > 0
    # pairing cancels the shared seed noise: narrower than the method's own marginal interval
    assert d["frechet_sd"] < distribution_distance(0.6 * z, ref, bootstrap=20)["frechet_sd"]


def test_paired_difference_is_antisymmetric():
    z, ref = _white(16, 1.0, 0), _white(16, 0.5, 1)
    ab, ba = paired_difference(0.55 * z, 0.5 * z, ref, bootstrap=6), paired_difference(0.5 * z, 0.55 * z, ref, bootstrap=6)
    assert ab["frechet"] == pytest.approx(-ba["frechet"]) and ab["frechet_sd"] == pytest.approx(ba["frechet_sd"])
    assert ab["swd"] == pytest.approx(-ba["swd"])


def test_paired_difference_refuses_unpaired_sets():
    with pytest.raises(ValueError, match="baseline"):
        paired_difference(_white(8, 0.5, 0), _white(6, 0.5, 1), _white(8, 0.5, 2))

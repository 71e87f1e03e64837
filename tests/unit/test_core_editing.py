"""Frequency editing and band gains."""
import pytest
import torch

from spectral_progressive.spectral_core import contract, transforms
from spectral_progressive.spectral_core.editing import (apply_band_gains, band_gain_curve, band_transfer, edit_start,
                                                        sdedit_start)


def test_edit_start_keeps_the_source_low_band_noised_to_the_switch_time():
    x0 = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    eps = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    x_T, T = edit_start(x0, eps, (8, 8), 0.6)
    assert T == pytest.approx(2 * 0.6 / 1.6)
    # contracting the start back gives exactly the noised low band of the source at t = 0.6
    back, t_back = contract(x_T, (8, 8), T)
    x0_lo, _ = contract(x0, (8, 8), 0.0)
    eps_lo = transforms.down(eps, (8, 8))
    assert t_back == pytest.approx(0.6)
    assert torch.allclose(back, 0.4 * x0_lo + 0.6 * eps_lo, atol=1e-12)
    # the band above holds pure noise at T
    high = x_T - transforms.project_low(x_T, (8, 8))
    assert torch.allclose(high, T * (eps - transforms.project_low(eps, (8, 8))), atol=1e-12)


def test_sdedit_start_is_the_flow_interpolation():
    x0, eps = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    assert torch.allclose(sdedit_start(x0, eps, 0.25), torch.full((1, 1, 4, 4), 0.75))


def test_unit_gains_are_identity_and_zero_high_is_a_low_pass():
    x = torch.randn(1, 2, 12, 20, dtype=torch.float64)
    assert torch.allclose(apply_band_gains(x, [0.3, 0.6], [1, 1, 1]), x, atol=1e-12)
    lp = apply_band_gains(x, [0.5], [1.0, 0.0], soft=0.0)
    c = transforms.forward(lp)
    r = transforms.radial_frequency(12, 20) / 6.0
    assert float(c[..., r >= 0.5].abs().max()) < 1e-12
    assert torch.allclose(c[..., r < 0.5], transforms.forward(x)[..., r < 0.5], atol=1e-12)


def test_band_transfer_takes_low_from_a_and_high_from_b():
    a, b = torch.randn(1, 1, 16, 16, dtype=torch.float64), torch.randn(1, 1, 16, 16, dtype=torch.float64)
    out = band_transfer(a, b, 0.4, soft=0.0)
    r = transforms.radial_frequency(16, 16) / 8.0
    co, ca, cb = transforms.forward(out), transforms.forward(a), transforms.forward(b)
    assert torch.allclose(co[..., r < 0.4], ca[..., r < 0.4], atol=1e-12)
    assert torch.allclose(co[..., r >= 0.4], cb[..., r >= 0.4], atol=1e-12)


def test_soft_transitions_stay_between_the_gains():
    g = band_gain_curve(32, 32, [0.5], [0.2, 1.8], soft=0.2)
    assert float(g.min()) >= 0.2 - 1e-12 and float(g.max()) <= 1.8 + 1e-12


@pytest.mark.parametrize("cuts,gains,name", [([0.5], [1.0, float("nan")], "gains"), ([0.5], [1.0, -0.1], "gains"),
                                             ([0.5], [1.0], "gains"), ([0.6, 0.3], [1, 1, 1], "cuts"),
                                             ([0.0], [1, 1], "cuts")])
def test_bad_gains_and_cuts_are_rejected(cuts, gains, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        apply_band_gains(torch.zeros(1, 1, 8, 8), cuts, gains)


def test_transfer_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="^high_from"):
        band_transfer(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9), 0.5)


def test_edit_start_rejects_stage_larger_than_source():
    with pytest.raises(ValueError, match="^stage_size"):
        edit_start(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), (16, 16), 0.5)

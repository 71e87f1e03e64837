"""Expansion, contraction and timestep alignment (seed 001 Sec. 4.1, App. A.2)."""
import math

import pytest
import torch

from spectral_progressive.spectral_core import PowerLaw, contract, expand, transforms
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel


@pytest.mark.parametrize("name", ["dct", "dwt", "fft"])
@pytest.mark.parametrize("small,big", [((8, 8), (16, 16)), ((4, 8), (16, 16)), ((5, 7), (9, 13))])
def test_contract_undoes_expand(name, small, big):
    if name == "dwt" and small == (5, 7):
        pytest.skip("dwt needs power-of-two ratios")
    x = torch.randn(2, 4, *small, dtype=torch.float64)
    y, t_new = expand(x, big, 0.6, transform=name)
    back, t_back = contract(y, small, t_new, transform=name)
    assert t_back == pytest.approx(0.6, abs=1e-14)
    assert torch.allclose(back, x, atol=1e-12)


def test_alignment_formulas_for_2x():
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    _, t_new = expand(x, (8, 8), 0.5)
    assert t_new == pytest.approx(2 * 0.5 / (1 + 0.5))


def test_g_comes_from_actual_sizes():
    x = torch.zeros(1, 1, 5, 7, dtype=torch.float64)
    _, t_new = expand(x, (9, 13), 0.3)
    g = math.sqrt(9 * 13 / 35)
    assert t_new == pytest.approx(g * 0.3 / (1 + (g - 1) * 0.3))


def test_constant_latent_is_preserved_at_every_size_and_transform():
    for name, small, big in [("dct", (3, 5), (8, 9)), ("fft", (4, 4), (7, 10)), ("dwt", (2, 4), (8, 8))]:
        x = torch.full((1, 1, *small), 0.25, dtype=torch.float64)
        y, t_new = expand(x, big, 0.0, transform=name, noise=torch.zeros(1, 1, *big, dtype=torch.float64))
        assert torch.allclose(y, torch.full_like(y, 0.25), atol=1e-12), name


def test_noise_refills_only_the_new_band_and_is_seed_consistent():
    noise = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    x = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    y, t_new = expand(x, (16, 16), 0.9, noise=noise)
    c, cn = transforms.forward(y, "dct"), transforms.forward(noise, "dct")
    assert torch.allclose(c[..., :8, :8], torch.zeros_like(c[..., :8, :8]), atol=1e-12)
    assert torch.allclose(c[..., 8:, :], t_new * cn[..., 8:, :], atol=1e-12)


def _gaussian_setup(size=(16, 16)):
    law = PowerLaw(20.0, 2.0)
    return law, GaussianSpectrumModel.power_law(law, size)


def test_expanded_state_has_the_marginal_variance_of_x_t_tilde_statistically():
    law, model = _gaussian_setup()
    gen = torch.Generator().manual_seed(1)
    n, s = 4000, 0.7
    x0 = model.sample((n, 1), gen)
    x0_lo, _ = contract(x0, (8, 8), 0.0)  # the data at the stage size
    x_lo = (1 - s) * x0_lo + s * torch.randn(n, 1, 8, 8, generator=gen, dtype=torch.float64)
    y, t_new = expand(x_lo, (16, 16), s, refill="matched", spectrum=law,
                      noise=torch.randn(n, 1, 16, 16, generator=gen, dtype=torch.float64))
    var = transforms.forward(y, "dct").var(dim=(0, 1))
    target = (1 - t_new) ** 2 * model.power + t_new ** 2
    ratio = var / target
    # 4000 samples: the variance estimate has a relative sd of sqrt(2/4000) = 2.2 %
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.01)
    assert float((ratio - 1).abs().max()) < 0.12


def test_matched_refill_gives_the_exact_per_coefficient_variance():
    law, model = _gaussian_setup()
    s, n = 0.7, 16 * 16
    # the expansion is linear in (x_lo, noise): push unit impulses through it
    basis_lo = transforms.inverse(torch.eye(64, dtype=torch.float64).reshape(64, 1, 8, 8), "dct")
    y_lo, t_new = expand(basis_lo, (16, 16), s, noise=torch.zeros(64, 1, 16, 16, dtype=torch.float64),
                         refill="matched", spectrum=law)
    basis = transforms.inverse(torch.eye(n, dtype=torch.float64).reshape(n, 1, 16, 16), "dct")
    y_n, _ = expand(torch.zeros(n, 1, 8, 8, dtype=torch.float64), (16, 16), s, noise=basis, refill="matched",
                    spectrum=law)
    a_lo = transforms.forward(y_lo, "dct").reshape(64, n)  # row j: where low coefficient j lands
    a_n = transforms.forward(y_n, "dct").reshape(n, n)
    p_lo = model.power_at(8, 8).reshape(64)
    var_lo_in = (1 - s) ** 2 * p_lo + s ** 2  # the stage's own marginal
    var = (a_lo ** 2 * var_lo_in[:, None]).sum(0) + (a_n ** 2).sum(0)
    target = ((1 - t_new) ** 2 * model.power + t_new ** 2).reshape(n)
    assert torch.allclose(var, target, rtol=1e-10)


@pytest.mark.parametrize("kwargs,name", [
    (dict(size=(4, 4)), "size"), (dict(t=1.5), "t"), (dict(t=float("nan")), "t"), (dict(transform="x"), "transform"),
    (dict(refill="mystery"), "refill"), (dict(refill="matched"), "spectrum"), (dict(noise=torch.zeros(1, 1, 3, 3)), "noise"),
    (dict(size=(16,)), "size"),
])
def test_expand_rejects_bad_arguments(kwargs, name):
    args = dict(x=torch.zeros(1, 1, 8, 8), size=(16, 16), t=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}"):
        expand(args.pop("x"), args.pop("size"), args.pop("t"), **args)


@pytest.mark.parametrize("x,size,t,name", [
    (torch.zeros(1, 1, 8, 8), (16, 16), 0.5, "size"), (torch.zeros(8, 8), (4, 4), 0.5, "x"),
    (torch.zeros(1, 1, 8, 8), (4, 4), -0.1, "t"), (torch.zeros(1, 1, 8, 8, dtype=torch.int64), (4, 4), 0.5, "x"),
])
def test_contract_rejects_bad_arguments(x, size, t, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        contract(x, size, t)

"""Transforms: orthonormality, exact inverse, energy, agreement with scipy and pywt, band operators."""
import numpy as np
import pytest
import pywt
import scipy.fft
import torch

from spectral_progressive.spectral_core import transforms as T

SIZES = [(8, 8), (7, 12), (16, 10), (5, 5)]


@pytest.mark.parametrize("name", ["dct", "dwt", "fft"])
@pytest.mark.parametrize("size", SIZES)
def test_forward_inverse_is_exact_and_preserves_energy(name, size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    c = T.forward(x, name)
    assert torch.allclose(T.inverse(c, name), x, atol=1e-12)
    assert torch.allclose((c.abs() ** 2).sum(), (x ** 2).sum(), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 12])
def test_dct_and_haar_matrices_are_orthonormal(n):
    for mat in (T._dct_matrix(n), T._haar_matrix(n)):
        assert torch.allclose(mat @ mat.T, torch.eye(n, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_dct_matches_scipy_dctn_ortho(size):
    x = np.random.default_rng(1).standard_normal((2, *size))
    ours = T.forward(torch.from_numpy(x), "dct").numpy()
    ref = scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_dwt_matches_pywt_haar():
    x = np.random.default_rng(2).standard_normal(16)
    ref = np.concatenate(pywt.wavedec(x, "haar", level=4))
    np.testing.assert_allclose(T._haar_matrix(16).numpy() @ x, ref, atol=1e-12)
    img = np.random.default_rng(3).standard_normal((16, 8))
    ll = pywt.wavedec2(img, "haar", level=2)[0]
    ours = T.forward(torch.from_numpy(img), "dwt")
    low = T.inverse(ours[:4, :2], "dwt")  # the LL block, back in space on its own grid
    np.testing.assert_allclose(low.numpy(), ll, atol=1e-12)


@pytest.mark.parametrize("name", ["dct", "dwt", "fft"])
@pytest.mark.parametrize("small,big", [((4, 4), (8, 8)), ((2, 4), (8, 16)), ((3, 5), (6, 10)), ((4, 6), (7, 9))])
def test_up_is_isometry_and_down_its_inverse(name, small, big):
    if name == "dwt" and (big[0] % small[0] or big[1] % small[1] or (big[0] // small[0]) & (big[0] // small[0] - 1)
                          or (big[1] // small[1]) & (big[1] // small[1] - 1)):
        pytest.skip("dwt needs power-of-two ratios")
    x = torch.randn(3, 2, *small, dtype=torch.float64)
    u = T.up(x, big, name)
    assert torch.allclose((u ** 2).sum(), (x ** 2).sum(), rtol=1e-12)
    assert torch.allclose(T.down(u, small, name), x, atol=1e-12)
    y = torch.randn(3, 2, *big, dtype=torch.float64)
    proj = T.project_low(y, small, name)
    assert torch.allclose(T.project_low(proj, small, name), proj, atol=1e-12)  # a projector


@pytest.mark.parametrize("name", ["dct", "dwt", "fft"])
@pytest.mark.parametrize("small,big", [((4, 4), (8, 8)), ((3, 3), (6, 6)), ((4, 6), (7, 9))])
def test_constant_stays_constant_through_up_and_down(name, small, big):
    if name == "dwt" and small != (4, 4):
        pytest.skip("dwt needs power-of-two ratios")
    g = (big[0] * big[1] / (small[0] * small[1])) ** 0.5
    c = torch.full((1, 1, *small), 0.7, dtype=torch.float64)
    assert torch.allclose(g * T.up(c, big, name), torch.full((1, 1, *big), 0.7, dtype=torch.float64), atol=1e-12)
    big_c = torch.full((1, 1, *big), 0.7, dtype=torch.float64)
    assert torch.allclose(T.down(big_c, small, name) / g, c, atol=1e-12)


def test_dct_low_band_is_the_top_left_block():
    x = torch.randn(1, 1, 8, 12, dtype=torch.float64)
    lo = T.down(x, (4, 6), "dct")
    assert torch.allclose(T.forward(lo, "dct"), T.forward(x, "dct")[..., :4, :6], atol=1e-12)


def test_video_latents_keep_time_axis_untouched():
    x = torch.randn(1, 2, 3, 8, 8, dtype=torch.float64)
    c = T.forward(x, "dct")
    for f in range(3):
        assert torch.allclose(c[:, :, f], T.forward(x[:, :, f], "dct"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_half_precision_computes_in_float32_and_casts_back(dtype):
    x = torch.randn(1, 4, 8, 8).to(dtype)
    from spectral_progressive.spectral_core import expand
    y, _ = expand(x, (16, 16), 0.9)
    assert y.dtype == dtype


def test_radial_frequency_on_design_grid():
    w = T.radial_frequency(8, 16, "dct")
    assert w[0, 0] == 0
    assert torch.isclose(w[4, 0], torch.tensor(8 * 4 / 16.0, dtype=torch.float64))
    assert torch.isclose(w[0, 8], torch.tensor(8 * 8 / 32.0, dtype=torch.float64))


def test_unknown_transform_is_rejected_naming_the_argument():
    with pytest.raises(ValueError, match="^transform"):
        T.forward(torch.zeros(1, 1, 4, 4), "wavelet9")


def test_dwt_rejects_ratios_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="^size"):
        T.up(torch.zeros(1, 1, 3, 3), (9, 9), "dwt")

"""Benchmark metrics on inputs with known answers."""
import math

import pytest
import torch

from spectral_progressive.bench.metrics import (gaussian_kl, log_spectrum_error, patches, psnr, sliced_wasserstein,
                                                ssim)


def test_psnr_of_a_known_error():
    ref = torch.zeros(1, 3, 8, 8)
    x = torch.full((1, 3, 8, 8), 0.1)
    assert float(psnr(x, ref)) == pytest.approx(10 * math.log10(4 / 0.01))


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    assert float(ssim(x, x + 0.5 * torch.randn_like(x)).max()) < 0.9


def test_spectrum_error_zero_for_same_set_and_positive_for_blur():
    x = torch.randn(4, 1, 16, 16)
    assert log_spectrum_error(x, x) == 0.0
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert log_spectrum_error(blurred, x) > 0.5


def test_sliced_wasserstein_of_a_shift():
    a = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(a, a) == 0.0
    # shifting by c along every axis moves each unit projection d by c * sum(d)
    assert sliced_wasserstein(a, a + 1.0) > 0.5


def test_patches_shape():
    assert patches(torch.zeros(2, 3, 16, 16), 8, 4).shape == (2 * 9, 3 * 64)


def test_gaussian_kl_zero_for_equal_and_closed_form_otherwise():
    v = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert gaussian_kl(torch.zeros(2, dtype=torch.float64), v, v) == 0.0
    kl = gaussian_kl(torch.zeros(1, dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64),
                     torch.tensor([1.0], dtype=torch.float64))
    assert kl == pytest.approx(0.5 * (2 - 1 - math.log(2)))

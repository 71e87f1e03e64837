"""Power spectra and power-law fits."""
import pytest
import torch

from spectral_progressive.spectral_core import PowerLaw, fit_power_law, measure_spectrum, radial_power
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel


def test_fit_recovers_a_synthetic_power_law_exactly():
    w = torch.arange(0, 40, dtype=torch.float64)
    p = 150.0 * w.clamp_min(1) ** -2.2
    fit = fit_power_law(w, p)
    assert fit.law.A == pytest.approx(150.0, rel=1e-10)
    assert fit.law.beta == pytest.approx(2.2, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0)


def test_measure_recovers_the_spectrum_of_gaussian_power_law_data():
    law = PowerLaw(50.0, 2.0)
    model = GaussianSpectrumModel.power_law(law, (32, 32))
    x = model.sample((400, 2), torch.Generator().manual_seed(0))
    m = measure_spectrum(x, center=False)
    # radial bins of the DCT grid average w^-beta over each ring, so the fit is close, not exact
    assert m.fit.law.beta == pytest.approx(2.0, abs=0.15)
    assert m.fit.law.A == pytest.approx(50.0, rel=0.3)
    assert m.power.shape[0] == 2 and len(m.channel_fits) == 2


def test_video_frames_are_pooled_as_samples():
    x = torch.randn(2, 3, 4, 16, 16, dtype=torch.float64)
    freqs, power, counts = radial_power(x)
    assert power.shape[0] == 3
    assert float(power[:, 1:].mean()) == pytest.approx(1.0, abs=0.1)  # white noise: flat unit power


@pytest.mark.parametrize("x", [torch.zeros(1, 3, 16, 16), torch.full((2, 1, 8, 8), 3.0)])
def test_constant_or_empty_images_are_rejected_with_a_clear_error(x):
    with pytest.raises(ValueError, match="^spectrum"):
        measure_spectrum(x)


def test_nan_input_is_rejected():
    x = torch.randn(1, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="^x"):
        measure_spectrum(x)


def test_power_law_rejects_bad_parameters():
    with pytest.raises(ValueError, match="^spectrum.A"):
        PowerLaw(-1.0, 2.0)
    with pytest.raises(ValueError, match="^spectrum.beta"):
        PowerLaw(1.0, float("nan"))

"""spectral_core.cross_size: the full-size prediction contracted to a stage size."""
import pytest
import torch

from spectral_progressive.spectral_core.cross_size import contracted_full_prediction
from spectral_progressive.spectral_core.expansion import aligned_time, contract


def identity_model(calls: list):
    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append((tuple(x.shape), t.clone()))
        return x
    return model


def test_identity_model_gives_the_expansion_scale_kappa_times_the_stage_state():
    # D(x, t) = x: C_0 E_s(x_lo) = T_low(g kappa U x_lo + high) / g = kappa x_lo, kappa = 1 / (1 + (g-1) s)
    x = torch.randn(3, 2, 8, 12, dtype=torch.float64)
    calls: list = []
    out = contracted_full_prediction(identity_model(calls), x, 0.6, (16, 24))
    torch.testing.assert_close(out, x / (1.0 + 0.6))
    assert calls[0][0] == (3, 2, 16, 24)
    torch.testing.assert_close(calls[0][1], torch.full((3,), aligned_time(0.6, 2.0), dtype=torch.float64))


def test_per_sample_times_equal_one_call_per_sample():
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    noise = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    s = torch.tensor([0.2, 0.5, 0.9])

    def model(big, t):  # a nonlinear model that uses the time and the high band
        return torch.tanh(big) * (1.0 - t)[:, None, None, None] + 0.1 * big ** 2

    out = contracted_full_prediction(model, x, s, (16, 16), noise=noise)
    for k in range(3):
        one = contracted_full_prediction(model, x[k:k + 1], float(s[k]), (16, 16), noise=noise[k:k + 1])
        torch.testing.assert_close(out[k:k + 1], one)


def test_the_new_band_comes_from_the_given_noise():
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    noise = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    seen: list = []

    def model(big, t):
        seen.append(big)
        return torch.zeros_like(big)

    contracted_full_prediction(model, x, 0.5, (16, 16), noise=noise)
    t_full = aligned_time(0.5, 2.0)
    # zero low band: the grown state is t~ times the noise's high band, which contracts to zero
    torch.testing.assert_close(contract(seen[0], (8, 8), 0.0)[0], torch.zeros_like(x))
    from spectral_progressive.spectral_core import transforms
    hi = noise - transforms.up(transforms.down(noise, (8, 8), "dct"), (16, 16), "dct")
    torch.testing.assert_close(seen[0], t_full * hi)


def test_bad_time_or_noise_counts_are_refused():
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match="s: expected one time or one per sample"):
        contracted_full_prediction(lambda b, t: b, x, torch.tensor([0.1, 0.2, 0.3]), (16, 16))
    with pytest.raises(ValueError, match="noise: expected 2 full-size draws"):
        contracted_full_prediction(lambda b, t: b, x, 0.5, (16, 16), noise=torch.randn(3, 1, 16, 16))

"""The dead-leaves generator: deterministic per seed, range and shapes, exact culling, size law, ~w^-2 spectrum."""
import math

import pytest
import torch

from spectral_progressive.embedded import dead_leaves as dl
from spectral_progressive.spectral_core.spectra import measure_spectrum


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/unit/conftest.py


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_deterministic_per_seed_and_different_across_seeds():
    a = dl.render(3, _gen(7))
    b = dl.render(3, _gen(7))
    c = dl.render(3, _gen(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(dl.training_batch(2, 5), dl.training_batch(2, 5))
    assert torch.equal(dl.heldout_batch(2, 5), dl.heldout_batch(2, 5))
    assert not torch.allclose(dl.training_batch(2, 5), dl.heldout_batch(2, 5))


def test_stream_continues_and_is_reproducible():
    s1, s2 = dl.DeadLeavesStream(3), dl.DeadLeavesStream(3)
    x1, y1 = s1.next_batch(2), s1.next_batch(2)
    x2, y2 = s2.next_batch(2), s2.next_batch(2)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.allclose(x1, y1)
    assert torch.equal(x1, dl.training_batch(2, 3))
    with pytest.raises(ValueError):
        dl.DeadLeavesStream(dl.HELDOUT_SEED_OFFSET)


@pytest.mark.parametrize("size", [(64, 64), (40, 72), (16, 48), (1, 1)])
def test_shape_range_dtype(size):
    x = dl.render(2, _gen(0), size)
    assert x.shape == (2, 3, *size)
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_default_batch_is_64_and_not_trivial():
    x = dl.render(4, _gen(1))
    assert x.shape == (4, 3, 64, 64)
    assert float(x.std()) > 0.2  # real contrast, not a flat canvas
    assert dl.render(0, _gen(1)).shape == (0, 3, 64, 64)


def test_antialiased_edges_mix_leaves():
    # with sub-pixel rendering many pixels are area mixes of two leaves; without it none are
    x_ss = dl.render(2, _gen(4), supersample=2)
    x_1 = dl.render(2, _gen(4), supersample=1)
    assert not torch.equal(x_ss, x_1)
    # the supersampled image is smoother at the pixel scale (less power in the highest band)
    d_ss = (x_ss[..., 1:] - x_ss[..., :-1]).pow(2).mean()
    d_1 = (x_1[..., 1:] - x_1[..., :-1]).pow(2).mean()
    assert d_ss < d_1


def test_culling_passes_change_nothing(monkeypatch):
    ref = dl.render(4, _gen(11))
    monkeypatch.setattr(dl, "PASS_DEPTHS", (1.0,))
    assert torch.equal(dl.render(4, _gen(11)), ref)
    monkeypatch.setattr(dl, "PASS_DEPTHS", (0.2, 0.4, 0.6, 0.8, 1.0))
    assert torch.equal(dl.render(4, _gen(11)), ref)


def test_large_requests_are_chunked_from_the_same_generator(monkeypatch):
    monkeypatch.setattr(dl, "RENDER_CHUNK", 2)
    x = dl.render(5, _gen(2))
    assert x.shape == (5, 3, 64, 64)
    g = _gen(2)
    first, second = dl.render(2, g), dl.render(2, g)
    assert torch.equal(x[:2], first) and torch.equal(x[2:4], second)


def test_size_law_matches_the_dilated_r3_density():
    # q(r) ~ W H r^-3 + 2 e (W+H) r^-2 + 4 e^2 r^-1 on [r_min, r_max]: compare the CDF at a few radii
    H = W = 64
    r0, r1, e = dl.R_MIN, dl.R_MAX, dl.MAX_EXTENT
    r = dl.sample_radii(200_000, _gen(0), (H, W))
    assert float(r.min()) >= r0 and float(r.max()) <= r1

    def mass(a: float, b: float) -> float:
        return (W * H * 0.5 * (a ** -2 - b ** -2) + 2 * e * (W + H) * (1 / a - 1 / b)
                + 4 * e * e * math.log(b / a))

    for x in (1.5, 2.0, 4.0, 10.0, 30.0):
        expected = mass(r0, x) / mass(r0, r1)
        assert abs(float((r <= x).double().mean()) - expected) < 0.005


def test_leaf_count_reaches_the_depth():
    k = dl.leaves_for_depth((64, 64))
    w_sum = (64 * 64 * 0.5 * (dl.R_MIN ** -2 - dl.R_MAX ** -2)
             + 2 * dl.MAX_EXTENT * 128 * (1 / dl.R_MIN - 1 / dl.R_MAX)
             + 4 * dl.MAX_EXTENT ** 2 * math.log(dl.R_MAX / dl.R_MIN))
    depth = k * math.pi * math.log(dl.R_MAX / dl.R_MIN) / w_sum
    assert dl.DEPTH <= depth < dl.DEPTH * 1.01


def test_power_spectrum_slope_is_about_minus_two():
    x = dl.heldout_batch(64, 0)
    m = measure_spectrum(x)
    assert 1.7 < m.fit.law.beta < 2.6, m.fit.law.beta
    assert m.fit.r2 > 0.95
    # monotone decay over the radial bins (natural-image-like, no flat noise floor)
    p = m.pooled[1:]
    assert bool((p[1:] < p[:-1] * 1.05).all())


@pytest.mark.parametrize("kw", [dict(n=-1), dict(size=(0, 4)), dict(r_min=2.0, r_max=1.0),
                                dict(supersample=0), dict(depth=0.0)])
def test_rejects_bad_arguments(kw):
    args = dict(n=1, size=(8, 8))
    args.update(kw)
    n, size = args.pop("n"), args.pop("size")
    with pytest.raises(ValueError):
        dl.render(n, _gen(0), size, **args)


def test_measure_spectrum_cli_on_heldout_dead_leaves(tmp_path, capsys):
    import json

    from spectral_progressive.embedded import measure_spectrum as ms

    out = tmp_path / "spectrum.json"
    assert ms.main(["--data", "dead_leaves", "--n", "16", "--seed", "0", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["data"] == "dead_leaves" and rec["n_crops"] == 16
    assert rec["heldout_seed"] == dl.HELDOUT_SEED_OFFSET
    assert rec["A"] > 0 and 1.5 < rec["beta"] < 3.0
    assert rec["training_data"]["seed"] == 0 and "radial" not in rec["training_data"]
    # the held-out fit is the probe's fit on heldout_batch
    assert abs(rec["beta"] - measure_spectrum(dl.heldout_batch(16, 0)).fit.law.beta) < 1e-9
    assert "held-out dead leaves" in capsys.readouterr().out

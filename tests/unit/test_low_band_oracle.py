"""The oracle low stage and the low-band consistency measure on exact Gaussian models, and both CLIs.

For Gaussian data the Bayes denoiser is the per-coefficient Wiener filter at every size, and the
contraction with timestep alignment maps the full-size problem onto the stage's exactly (DESIGN.md):
(1 - t~) = (1 - s) kappa and t~ = g s kappa give  kappa a(t~, P) = a(s, P / g^2)  for the Wiener gain a.
So the contracted full-size prediction equals the stage-size prediction to float precision, whatever
fills the new band; a wrong time (no alignment) breaks that by orders of magnitude.
"""
import json
import math
import subprocess
import sys

import pytest
import torch

from spectral_progressive.bench.low_band_consistency import TIMES, consistency_rows, low_band_errors
from spectral_progressive.bench.oracle import OracleDenoiser, oracle_methods, primary_methods
from spectral_progressive.schedules import plan_stages
from spectral_progressive.spectral_core import aligned_time, expand, sample_progressive
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel

pytestmark = pytest.mark.usefixtures("single_thread")

LAW_A, LAW_BETA = 20.0, 2.0
SIZE = (32, 32)
CONST_SIG = torch.cat([torch.linspace(1.0, 0.05, 16, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
EPS_SIG = torch.cat([torch.exp(torch.linspace(math.log(14.6), math.log(0.03), 16, dtype=torch.float64)),
                     torch.zeros(1, dtype=torch.float64)])


def _law():
    from spectral_progressive.spectral_core import PowerLaw
    return PowerLaw(LAW_A, LAW_BETA)


def _plan(frame="const", scales=(0.25, 0.5, 1.0), switch_at=(0.85, 0.6), refill="paper", transform="dct"):
    sig = CONST_SIG if frame == "const" else EPS_SIG
    return sig, plan_stages(sig, SIZE, scales=scales, switch_at=switch_at, frame=frame, respace="affine",
                            spectrum=_law(), refill=refill, transform=transform)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("transform", ["dct", "dwt"])
@pytest.mark.parametrize("refill", ["paper", "matched"])
@pytest.mark.parametrize("noise", ["own", "fresh"])
@pytest.mark.parametrize("g", [2, 4])
def test_oracle_equals_the_exact_stage_denoiser_at_every_time(transform, refill, noise, g):
    _, plan = _plan(refill=refill, transform=transform)
    exact = GaussianSpectrumModel.power_law(_law(), SIZE, transform)
    full_noise = torch.randn(2, 3, *SIZE, dtype=torch.float64, generator=_gen(1)) if noise == "own" else None
    oracle = OracleDenoiser(exact, plan, noise=full_noise, generator=_gen(2))
    small = (SIZE[0] // g, SIZE[1] // g)
    for s in (0.02, 0.3, 0.7, 0.95, 0.99, 0.999):
        x = torch.randn(2, 3, *small, dtype=torch.float64, generator=_gen(3))
        sigma = torch.full((2,), s, dtype=torch.float64)
        want = exact(x, sigma)  # the exact Bayes denoiser of the stage's own data law
        got = oracle(x, sigma)
        assert got.shape == want.shape
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-12), (s, float((got - want).abs().max()))
    assert oracle.calls == {"oracle": 6, "fallback": 0, "full": 0}


@pytest.mark.parametrize("g", [2, 4])
def test_without_timestep_alignment_the_oracle_would_disagree(g):
    """Power of the test above: the full model asked at the stage's own time instead of t~."""
    _, plan = _plan()
    exact = GaussianSpectrumModel.power_law(_law(), SIZE)
    small = (SIZE[0] // g, SIZE[1] // g)
    x = torch.randn(2, 3, *small, dtype=torch.float64, generator=_gen(3))
    noise = torch.randn(2, 3, *SIZE, dtype=torch.float64, generator=_gen(1))
    s = 0.7
    big, t_full = expand(x, SIZE, s, noise=noise)
    assert t_full == pytest.approx(aligned_time(s, g))
    from spectral_progressive.spectral_core import contract
    wrong = contract(exact(big, torch.full((2,), s, dtype=torch.float64)), small, 0.0)[0]
    want = exact(x, torch.full((2,), s, dtype=torch.float64))
    assert float((wrong - want).norm() / want.norm()) > 0.05


def test_oracle_passes_full_size_calls_and_routes_by_full_size_time():
    _, plan = _plan()
    exact = GaussianSpectrumModel.power_law(_law(), SIZE)
    seen = []

    def fallback(x, sigma):
        seen.append(float(sigma[0]))
        return exact(x, sigma)

    oracle = OracleDenoiser(exact, plan, generator=_gen(0), use_oracle=lambda t: t > 0.9, fallback=fallback)
    xf = torch.randn(1, 3, *SIZE, dtype=torch.float64, generator=_gen(4))
    sig = torch.full((1,), 0.5, dtype=torch.float64)
    assert torch.equal(oracle(xf, sig), exact(xf, sig))
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=_gen(5))
    oracle(x, torch.full((1,), 0.85, dtype=torch.float64))  # t~ = 1.7 / 1.85 = 0.919 > 0.9: oracle
    oracle(x, torch.full((1,), 0.8, dtype=torch.float64))  # t~ = 1.6 / 1.8 = 0.889: fallback
    assert oracle.calls == {"oracle": 1, "fallback": 1, "full": 1} and seen == [pytest.approx(0.8)]


@pytest.mark.parametrize("frame", ["const", "eps"])
@pytest.mark.parametrize("scales,switch_at", [((0.5, 1.0), (0.8,)), ((0.25, 0.5, 1.0), (0.85, 0.6))])
def test_progressive_run_with_the_oracle_equals_the_exact_run(frame, scales, switch_at):
    """In the loop: every oracle variant of the benchmark reproduces the exact model's progressive run."""
    sig, plan = _plan(frame, scales, switch_at)
    exact = GaussianSpectrumModel.power_law(_law(), SIZE, frame=frame)
    noise = torch.randn(2, 3, *SIZE, dtype=torch.float64, generator=_gen(6))
    x = noise * float(sig[0])
    want = sample_progressive(exact, x, sig, plan=plan, frame=frame, noise=noise)
    low_steps = sum(s.steps for s in plan.stages[:-1])
    for name, den in oracle_methods(exact, plan, noise, (0.9,), frame=frame).items():
        got = sample_progressive(den, x, sig, plan=plan, frame=frame, noise=noise)
        assert torch.allclose(got, want, rtol=1e-8, atol=1e-10), name
        assert den.calls["oracle"] + den.calls["fallback"] == low_steps
        assert den.calls["full"] == plan.stages[-1].steps
    assert oracle_methods(exact, plan, noise, (0.9,), frame=frame)["model (the pack)"].use_oracle(0.95) is False


@pytest.mark.parametrize("g", [2, 4])
def test_consistency_error_is_zero_for_the_exact_model_at_every_time(g):
    exact = GaussianSpectrumModel.power_law(_law(), SIZE)
    x0 = exact.sample((4, 3), generator=_gen(7))
    eps = torch.randn(x0.shape, dtype=torch.float64, generator=_gen(8))
    rows = consistency_rows(exact, exact, x0, eps, TIMES, (g,))
    assert [r["t"] for r in rows] == list(TIMES) and max(TIMES) >= 0.99
    for r in rows:
        assert r["x0: lo vs C(full)"] < 1e-20 and r["v: lo vs C(full)"] < 1e-20, r
        assert r["t' (stage)"] == pytest.approx(r["t"] / (g * (1 - r["t"]) + r["t"]))
        # the same prediction, so the same distance to the truth, and that distance is not zero
        assert r["x0: lo vs truth"] == pytest.approx(r["x0: C(full) vs truth"], rel=1e-9) and r["x0: lo vs truth"] > 1e-4
        assert r["v: lo vs truth"] == pytest.approx(r["v: C(full) vs truth"], rel=1e-9) and r["v: lo vs truth"] > 1e-4


def test_consistency_error_sees_a_missing_timestep_alignment():
    exact = GaussianSpectrumModel.power_law(_law(), SIZE)
    x0 = exact.sample((4, 3), generator=_gen(7))
    eps = torch.randn(x0.shape, dtype=torch.float64, generator=_gen(8))

    def unaligned(x, sigma):  # the stage model asked at the full-size time t instead of t'
        return exact(x, aligned_time(sigma, 2.0))

    err = low_band_errors(exact, unaligned, x0, eps, 0.7, (16, 16))
    assert err["x0: lo vs C(full)"] > 1e-2 and err["v: lo vs C(full)"] > 1e-3


def test_primary_rows_of_an_exact_model_are_all_its_own_progressive_run():
    """The primary-metric methods: the floor and full size at the pack's cost run plainly; every
    progressive row (pack, oracle, splits) is the exact model's own progressive run from the same noise."""
    sig, plan = _plan("const", (0.5, 1.0), (0.8,))
    exact = GaussianSpectrumModel.power_law(_law(), SIZE)
    methods = primary_methods(exact, plan, sig, (0.9, 0.95))
    assert [m.name for m in methods] == [
        "full size 16 steps", "model (the pack)", "oracle, own noise", "oracle at t>0.9, model after",
        "model at t>0.9, oracle after", "oracle at t>0.95, model after", "model at t>0.95, oracle after",
        f"full size {round(methods[1].cost)} steps"]
    assert methods[0].family == "floor" and methods[-1].family == "full size, fewer steps"
    noise = torch.randn(2, 3, *SIZE, dtype=torch.float64, generator=_gen(8))
    want = sample_progressive(exact, noise.clone(), sig, plan=plan, noise=noise)
    for m in methods[1:-1]:
        assert m.family == "diagnostic" and m.cost == methods[1].cost < 16
        assert torch.allclose(m.run(noise), want, rtol=1e-8, atol=1e-10), m.name


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", f"spectral_progressive.bench.{module}", *args],
                          capture_output=True, text=True, timeout=600)


def test_low_band_consistency_cli_writes_json_and_markdown(tmp_path):
    p = _run("low_band_consistency", "--samples", "2", "--times", "0.5,0.99", "--growths", "2,4",
             "--threads", "1", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "low_band_consistency.json").read_text())
    assert [(r["stage"], r["t"]) for r in res["rows"]] == [
        ("32x32 (g=2)", 0.5), ("32x32 (g=2)", 0.99), ("16x16 (g=4)", 0.5), ("16x16 (g=4)", 0.99)]
    assert all(0 < r["x0: lo vs C(full)"] < 10 for r in res["rows"]) and res["weights"] == "shipped"
    assert "| stage | t |" in (tmp_path / "low_band_consistency.md").read_text()


def test_oracle_cli_writes_json_and_markdown(tmp_path):
    p = _run("oracle", "--seeds", "2", "--steps", "6", "--splits", "0.9", "--threads", "1", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "oracle.json").read_text())
    names = [(r["plan"], r["method"]) for r in res["rows"]]
    assert ("S=2", "model (the pack)") in names and ("S=3", "oracle, own noise") in names
    assert ("S=2", "full size, same steps (6)") in names and len(names) == 2 * 7
    assert all(math.isfinite(r["PSNR dB"]) and 0 < r["SSIM"] <= 1 for r in res["rows"])
    assert "| plan | method |" in (tmp_path / "oracle.md").read_text()
    assert "primary_rows" not in res  # --primary 0 (the default) skips the primary metric


def test_oracle_cli_scores_the_primary_metric_when_asked(tmp_path):
    p = _run("oracle", "--seeds", "2", "--steps", "6", "--splits", "0.9", "--primary", "3", "--bootstrap", "4",
             "--threads", "1", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "oracle.json").read_text())
    rows = {r["method"]: r for r in res["primary_rows"]}
    assert list(rows)[0] == "full size 6 steps" and rows["full size 6 steps"]["within floor"] == "floor"
    assert {"model (the pack)", "oracle, own noise", "oracle at t>0.9, model after"} <= set(rows)
    assert all(math.isfinite(r["patch Frechet"]) and r["patch Frechet"] >= 0 for r in rows.values())
    assert rows["oracle, own noise"]["Frechet minus full size at the S=2 cost [95% CI]"].startswith(("+", "-"))
    assert res["primary_samples"] == 3 and "Primary metric, plan S=2" in (tmp_path / "oracle.md").read_text()


@pytest.mark.parametrize("module,args,needle", [
    ("low_band_consistency", ["--times", "0.5,1.0"], "--times"),
    ("low_band_consistency", ["--growths", "3"], "--growths"),
    ("low_band_consistency", ["--weights", "/nonexistent/w.safetensors"], "/nonexistent/w.safetensors"),
    ("oracle", ["--seeds", "0"], "--seeds"),
    ("oracle", ["--splits", "0.9,x"], "--splits"),
    ("oracle", ["--threads", "0"], "--threads"),
    ("oracle", ["--primary", "1"], "--primary"),
])
def test_bad_arguments_end_with_a_message(module, args, needle):
    p = _run(module, *args)
    assert p.returncode != 0 and needle in p.stderr and "Traceback" not in p.stderr, p.stderr

"""The demo and the benchmarks: they produce their files, and bad arguments end with a clear message
and a non-zero exit, never a traceback."""
import json
import subprocess
import sys

import pytest

from spectral_progressive.bench import demo


def test_demo_writes_grid_spectra_report_and_json(tmp_path):
    out = tmp_path / "demo"
    demo.main(["--out", str(out), "--seeds", "2", "--steps", "6", "--repeats", "1", "--threads", "1",
               "--metric-samples", "4", "--bootstrap", "2"])
    for name in ("grid.png", "spectra.png", "report.md", "results.json", "quality_vs_cost.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    methods = [r["method"] for r in res["rows"]]
    assert methods[:3] == ["baseline", "progressive S=2", "progressive S=3"] and methods[3].startswith("baseline ")
    base = res["rows"][0]
    assert base["FLOP-ideal speed-up (tokens)"] == 1.0 and base["model calls"] == 6
    assert all(r["FLOP-ideal speed-up (tokens)"] >= 1.0 for r in res["rows"])
    assert "| method |" in (out / "report.md").read_text()
    assert base["within floor"] == "floor" and all(r["within floor"] in ("yes", "no") for r in res["rows"][1:])
    assert res["verdicts"][1].startswith("- progressive S=2: patch Frechet")
    assert "paired difference (same seeds): Frechet" in res["verdicts"][1]
    assert any(w in res["verdicts"][1] for w in (": better;", ": worse;", ": not distinguishable;"))


def test_demo_on_other_weights_leaves_the_shipped_adapter_out(tmp_path):
    from spectral_progressive.embedded.model import WEIGHTS_PATH
    out = tmp_path / "demo"
    demo.main(["--out", str(out), "--seeds", "2", "--steps", "4", "--repeats", "1", "--threads", "1",
               "--metric-samples", "0", "--weights", str(WEIGHTS_PATH)])
    res = json.loads((out / "results.json").read_text())
    assert res["weights"] == str(WEIGHTS_PATH) and res["adapter"] is None
    assert not any(r["method"].startswith("fine-tuned") for r in res["rows"])


@pytest.mark.parametrize("module,args,needle", [
    ("demo", ["--steps", "-3"], "--steps"),
    ("demo", ["--seeds", "0"], "--seeds"),
    ("demo", ["--out", "/proc/not-writable/x"], "--out"),
    ("demo", ["--delta", "2"], "--delta"),
    ("demo", ["--metric-samples", "1"], "--metric-samples"),
    ("demo", ["--bootstrap", "-1"], "--bootstrap"),
    ("demo", ["--adapter", "/no/such/adapter.safetensors"], "--adapter"),
    ("demo", ["--weights", "/no/such/weights.safetensors"], "--weights"),
    ("quality", ["--bootstrap", "-1"], "--bootstrap"),
    ("quality", ["--testbed", "embedded", "--adapter", "/no/such/adapter.safetensors"], "--adapter"),
    ("quality", ["--steps", "1"], "--steps"),
    ("quality", ["--testbed", "imagenet"], "testbed"),
    ("spectral_ops", ["--repeats", "0"], "--repeats"),
    ("editing", ["--samples", "0"], "--samples"),
    ("activation", ["--points", "1"], "--points"),
    ("low_band_consistency", ["--samples", "0"], "--samples"),
])
def test_bad_arguments_exit_non_zero_with_a_message(module, args, needle):
    p = subprocess.run([sys.executable, "-m", f"spectral_progressive.bench.{module}", *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert needle in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_quality_embedded_writes_rows_with_the_primary_metric_and_the_cost_plots(tmp_path):
    from spectral_progressive.bench import quality
    quality.main(["--testbed", "embedded", "--steps", "6", "--samples", "4", "--bootstrap", "2", "--threads", "1",
                  "--out", str(tmp_path)])
    res = json.loads((tmp_path / "quality_embedded.json").read_text())
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["full size 6 steps"]["within floor"] == "floor" and "full size 5 steps" in rows
    assert {"progressive S=2 delta=0.01", "model patch S=2 delta=0.01", "naive upscale+renoise S=3 delta=0.2"} <= set(rows)
    assert all(r["cost (full-size calls)"] <= 6.0 + 1e-9 for r in res["rows"])
    for name in ("quality_vs_cost.png", "quality_vs_cost_sw.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_argument_types_accept_their_range_and_name_what_they_expect():
    import argparse

    from spectral_progressive.bench.common import fraction, fractions, whole, wholes, zero_or_whole
    assert whole(2)("3") == 3 and zero_or_whole(2)("0") == 0 and zero_or_whole(2)("5") == 5
    assert fraction("0.25") == 0.25 and fractions("0.1, 0.9") == (0.1, 0.9) and wholes(2)("8,20") == (8, 20)
    for parse, text, expected in [(whole(2), "1", ">= 2"), (whole(1), "x", ">= 1"), (zero_or_whole(2), "1", "0 (skip)"),
                                  (fraction, "1", "(0, 1)"), (fraction, "nan", "(0, 1)"), (fractions, "", "comma"),
                                  (fractions, "0.1,2", "comma"), (wholes(2), "8,1", ">= 2")]:
        with pytest.raises(argparse.ArgumentTypeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            parse(text)

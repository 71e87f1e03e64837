"""The demo and the benchmarks: they produce their files, and bad arguments end with a clear message
and a non-zero exit, never a traceback."""
import json
import subprocess
import sys

import pytest

from spectral_progressive.bench import demo


def test_demo_writes_grid_spectra_report_and_json(tmp_path):
    out = tmp_path / "demo"
    demo.main(["--out", str(out), "--seeds", "2", "--steps", "6", "--repeats", "1", "--threads", "1"])
    for name in ("grid.png", "spectra.png", "report.md", "results.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    methods = [r["method"] for r in res["rows"]]
    assert methods[:3] == ["baseline", "progressive S=2", "progressive S=3"] and methods[3].startswith("baseline ")
    base = res["rows"][0]
    assert base["FLOP-ideal speed-up (tokens)"] == 1.0 and base["model calls"] == 6
    assert all(r["FLOP-ideal speed-up (tokens)"] >= 1.0 for r in res["rows"])
    assert "| method |" in (out / "report.md").read_text()


@pytest.mark.parametrize("module,args,needle", [
    ("demo", ["--steps", "-3"], "--steps"),
    ("demo", ["--seeds", "0"], "--seeds"),
    ("demo", ["--out", "/proc/not-writable/x"], "--out"),
    ("demo", ["--delta", "2"], "--delta"),
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

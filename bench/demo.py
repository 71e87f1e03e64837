"""The main job: progressive vs baseline sampling on the embedded default model.

    python -m spectral_progressive.bench.demo --out demo_out [--seeds 4] [--steps 50] [--repeats 2]

Writes into --out: grid.png (rows = seeds; columns = baseline | progressive S=2 | S=3 | fewer-step
baseline at the S=2 compute | progressive S=2 with the Sec. 4.3 fine-tuned adapter, when
embedded/adapter.safetensors ships or --adapter names one), spectra.png (the data spectrum, its fit and the switch frequencies,
and the spectra of the generated sets), report.md and results.json (timings measured interleaved in
one run, FLOP-ideal and wall ratios, PSNR/SSIM against the same-seed baseline, log-spectrum error
against held-out data).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..nodes.plot import spectrum_plot
from ..schedules.switching import band_edge
from ..spectral_core import sample_euler, sample_progressive
from ..spectral_core.spectra import radial_power
from .common import check_out_dir, die, table, write_json
from .embedded_setup import ADAPTER_PATH, CountingModel, heldout_data, linear_sigmas, load_embedded, load_finetuned
from .metrics import log_spectrum_error, psnr, ssim


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C,H,W) in [-1,1] -> (H,W,C) uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def image_grid(columns: list[tuple[str, torch.Tensor]], scale: int = 3) -> Image.Image:
    n = columns[0][1].shape[0]
    h, w = columns[0][1].shape[-2:]
    cw, ch, top = w * scale + 8, h * scale + 8, 28
    img = Image.new("RGB", (cw * len(columns), top + ch * n), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for j, (label, x) in enumerate(columns):
        d.text((j * cw + 4, 6), label, fill=(0, 0, 0))
        for i in range(n):
            tile = Image.fromarray(to_uint8(x[i])).resize((w * scale, h * scale), Image.NEAREST)
            img.paste(tile, (j * cw + 4, top + i * ch + 4))
    return img


def run(args) -> dict:
    torch.set_grad_enabled(False)
    emb = load_embedded()
    sig = linear_sigmas(args.steps)
    size = emb.size
    gen = torch.Generator().manual_seed(args.seed)
    noise = torch.randn(args.seeds, 3, size, size, generator=gen)
    plans = {"S=2": emb.plan(sig, (0.5, 1.0), args.delta, respace="affine"),
             "S=3": emb.plan(sig, (0.25, 0.5, 1.0), args.delta, respace="affine")}
    ratio2 = plans["S=2"].compute_ratio("tokens")
    eq_steps = max(1, round(args.steps / ratio2))
    sig_eq = linear_sigmas(eq_steps)

    methods = {
        "baseline": lambda m: sample_euler(m, noise, sig),
        "progressive S=2": lambda m: sample_progressive(m, noise, sig, plan=plans["S=2"]),
        "progressive S=3": lambda m: sample_progressive(m, noise, sig, plan=plans["S=3"]),
        f"baseline {eq_steps} steps (S=2 compute)": lambda m: sample_euler(m, noise, sig_eq),
    }
    models = {k: emb.model for k in methods}
    adapter = args.adapter or (str(ADAPTER_PATH) if ADAPTER_PATH.is_file() else None)
    if adapter:
        name = "fine-tuned progressive S=2"
        methods[name] = lambda m: sample_progressive(m, noise, sig, plan=plans["S=2"])
        models[name] = load_finetuned(adapter)
    outputs, times, calls = {}, {k: [] for k in methods}, {}
    work = [(r, k) for r in range(args.repeats) for k in methods]
    try:
        from tqdm.auto import tqdm
        work_iter = tqdm(work, desc="sampling")
    except ImportError:  # pragma: no cover
        work_iter = work
    for r, name in work_iter:  # interleaved repeats: the same machine state for every method
        counter = CountingModel(models[name])
        t0 = time.perf_counter()
        out = methods[name](counter)
        times[name].append(time.perf_counter() - t0)
        outputs[name] = out
        calls[name] = counter
    base_calls = calls["baseline"]
    heldout = None
    try:
        heldout = heldout_data(256, seed=1)
    except Exception:  # noqa: BLE001 - scikit-image missing: spectrum error against data is skipped
        pass
    rows = []
    base_t = float(np.median(times["baseline"]))
    for name, out in outputs.items():
        c = calls[name]
        t = float(np.median(times[name]))
        row = {"method": name, "model calls": len(c.calls),
               "FLOP-ideal speed-up (tokens)": base_calls.tokens(1) / c.tokens(1),
               "FLOP-ideal speed-up (tokens^2)": base_calls.tokens(2) / c.tokens(2),
               "wall s": t, "wall speed-up": base_t / t,
               "PSNR vs baseline dB": float(psnr(out, outputs["baseline"]).mean()) if name != "baseline" else float("inf"),
               "SSIM vs baseline": float(ssim(out, outputs["baseline"]).mean())}
        if heldout is not None:
            row["log-spectrum error vs data"] = log_spectrum_error(out, heldout)
        rows.append(row)
    cols = list(rows[0].keys())

    os.makedirs(args.out, exist_ok=True)
    image_grid([(k, v) for k, v in outputs.items()]).save(os.path.join(args.out, "grid.png"))
    # spectra: data (held-out) with fit and switch frequencies, generated sets
    curves = []
    if heldout is not None:
        f, p, _ = radial_power(heldout.double())
        curves.append(("held-out data", p.mean(0).tolist()))
    for name, out in outputs.items():
        f, p, _ = radial_power(out.double())
        curves.append((name, p.mean(0).tolist()))
    markers = []
    for key, plan in plans.items():
        for st in plan.stages[:-1]:
            s = min(st.size) / size
            markers.append((f"{key} s={s:g} t*={st.switch_time:.2f}", band_edge(s, (size, size))))
    spectrum_plot(f.tolist(), curves, (emb.law.A, emb.law.beta), markers, size=(760, 460),
                  title="radially averaged power (DCT); dashed: fit of the data spectrum").save(
        os.path.join(args.out, "spectra.png"))
    summary = {
        "command": "python -m spectral_progressive.bench.demo " + " ".join(args.argv),
        "machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform()},
        "spectrum": {"A": emb.law.A, "beta": emb.law.beta},
        "plans": {k: p.summary() for k, p in plans.items()},
        "rows": rows,
    }
    write_json(os.path.join(args.out, "results.json"), summary)
    md = ["# Spectral progressive sampling on the embedded model", "",
          f"Command: `{summary['command']}`  ", f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.seeds} seeds, {args.steps} Euler steps, delta {args.delta}, median of {args.repeats} interleaved runs.", "",
          table(rows, cols), "", "## Plans", ""]
    for k, p in plans.items():
        md += [f"### {k}", "", "```", p.summary(), "```", ""]
    md += ["![grid](grid.png)", "", "![spectra](spectra.png)", ""]
    with open(os.path.join(args.out, "report.md"), "w") as fh:
        fh.write("\n".join(md))
    print(table(rows, cols))
    print(f"\nwrote {args.out}/grid.png, spectra.png, report.md, results.json")
    return summary


def main(argv: list[str] | None = None) -> None:
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description="Progressive vs baseline sampling on the embedded default model.")
    ap.add_argument("--out", default="demo_out", help="output folder (created)")
    ap.add_argument("--seeds", type=int, default=4, help="number of samples (rows)")
    ap.add_argument("--steps", type=int, default=50, help="Euler steps of the baseline schedule")
    ap.add_argument("--delta", type=float, default=0.01, help="error tolerance delta (seed 001 Prop. 1)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved timing repeats")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--adapter", default=None,
                    help="a LoRA adapter of python -m spectral_progressive.finetune (default: the shipped one, if any)")
    args = ap.parse_args(argv)
    args.argv = argv
    if args.seeds < 1:
        die("--seeds must be at least 1")
    if args.steps < 2:
        die("--steps must be at least 2")
    if args.repeats < 1:
        die("--repeats must be at least 1")
    if not 0.0 < args.delta < 1.0:
        die("--delta must be in (0, 1)")
    if args.threads < 0:
        die("--threads must be 0 (default) or positive")
    if args.adapter is not None and not os.path.isfile(args.adapter):
        die(f"--adapter {args.adapter!r} is not a file")
    if args.threads:
        torch.set_num_threads(args.threads)
    check_out_dir(args.out)
    run(args)


if __name__ == "__main__":
    main()

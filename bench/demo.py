"""The main job: progressive vs baseline sampling on the embedded default model.

    python -m spectral_progressive.bench.demo --out demo_out [--seeds 4] [--steps 50] [--repeats 2]
                                              [--metric-samples 64] [--bootstrap 100] [--adapter FILE]
                                              [--weights FILE]

Columns: the 50-step baseline | training-free progressive S=2 | S=3 (at --delta) | full size at the
S=2 cost; when embedded/adapter.safetensors ships (or --adapter names one): the Sec. 4.3 fine-tuned
model on the plan it was trained for (read from the adapter) | the same plan training-free | full
size at that plan's cost.  ``--weights`` runs other weights of the embedded architecture (e.g. a longer
training run); the shipped adapter is then left out unless ``--adapter`` names one for those weights.

Writes into --out: grid.png (rows = the first --seeds seeds), spectra.png (the data spectrum, its fit
and the switch frequencies, and the spectra of the generated sets), quality_vs_cost.png, report.md
and results.json: timings measured interleaved in one run on --seeds seeds, FLOP-ideal and wall
ratios, and on --metric-samples seeds the primary metric (``matched_cost``: patch Frechet and
sliced-W to the model's own 50-step samples on disjoint seeds, bootstrap intervals, the floor),
same-seed PSNR/SSIM against the 50-step run and the log-spectrum error against held-out data; the
report ends with the answers: is training-free S=2 within the floor and no worse than full size at
equal cost, is the fine-tuned model better than full size at equal cost.
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
from .common import check_out_dir, existing_file, fraction, table, whole, write_json, zero_or_whole
from ..spectral_core.plan import plan_cost, stage_scale
from .embedded_setup import (ADAPTER_PATH, CountingModel, adapter_plan, heldout_data, linear_sigmas, load_embedded,
                             load_finetuned)
from .matched_cost import Method, cost_plot, evaluate, paired_gap, reference_samples, seeded_noise


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


def demo_methods(emb, sig: torch.Tensor, delta: float, adapter: str | None,
                 weights: str | None = None) -> tuple[dict, dict]:
    """name -> (model, plan or None, steps of a plain run): the demo's columns, and the plans by label.

    Training-free progressive S=2 and S=3 at ``delta``; full size at the S=2 cost (the user's
    alternative at the same budget); with an adapter, the fine-tuned model on the plan it was trained
    for (read from the adapter), the same plan training-free, and full size at that plan's cost."""
    steps = len(sig) - 1
    plans = {"S=2": emb.plan(sig, (0.5, 1.0), delta, respace="affine"),
             "S=3": emb.plan(sig, (0.25, 0.5, 1.0), delta, respace="affine")}
    cols = {"baseline": (emb.model, None, steps),
            "progressive S=2": (emb.model, plans["S=2"], None),
            "progressive S=3": (emb.model, plans["S=3"], None)}
    eq = max(1, round(plan_cost(plans["S=2"])))
    cols[f"baseline {eq} steps (S=2 compute)"] = (emb.model, None, eq)
    if adapter:
        tuned_plan = adapter_plan(emb, sig, adapter)
        plans["fine-tuned"] = tuned_plan
        saving = steps / plan_cost(tuned_plan)
        cols[f"fine-tuned progressive S={len(tuned_plan.stages)} ({saving:.2f}x)"] = (load_finetuned(adapter, weights=weights), tuned_plan, None)
        cols[f"training-free, fine-tuned plan ({saving:.2f}x)"] = (emb.model, tuned_plan, None)
        eq_t = max(1, round(plan_cost(tuned_plan)))
        cols[f"baseline {eq_t} steps (fine-tuned plan compute)"] = (emb.model, None, eq_t)
    return cols, plans


def _runner(model, plan, steps, sig):
    if plan is not None:
        return lambda m, noise: sample_progressive(m, noise, sig, plan=plan)
    s = linear_sigmas(steps)
    return lambda m, noise: sample_euler(m, noise, s)


def timed_runs(cols: dict, noise: torch.Tensor, sig: torch.Tensor, repeats: int) -> tuple[dict, dict, dict]:
    """Interleaved repeats (the same machine state for every method): outputs, wall times, counted calls."""
    outputs, times, calls = {}, {k: [] for k in cols}, {}
    work = [(r, k) for r in range(repeats) for k in cols]
    try:
        from tqdm.auto import tqdm
        work = tqdm(work, desc="sampling")
    except ImportError:  # pragma: no cover
        pass
    for _, name in work:
        model, plan, steps = cols[name]
        counter = CountingModel(model)
        t0 = time.perf_counter()
        outputs[name] = _runner(model, plan, steps, sig)(counter, noise)
        times[name].append(time.perf_counter() - t0)
        calls[name] = counter
    return outputs, times, calls


def metric_rows(cols: dict, sig: torch.Tensor, emb, n: int, seed: int, bootstrap: int,
                heldout) -> tuple[list[dict], dict[str, torch.Tensor], torch.Tensor]:
    """The primary metric (``matched_cost``) of every column on ``n`` seeds against the model's own
    50-step samples on ``n`` disjoint seeds: (rows, samples by column, the reference samples)."""
    steps = len(sig) - 1
    print(f"primary metric: {n} samples per method and {n} reference samples ({steps} steps, disjoint seeds)", flush=True)
    reference = reference_samples(emb.model, n, emb.size, seed, steps)
    methods = []
    for name, (model, plan, st) in cols.items():
        run = _runner(model, plan, st, sig)
        cost = plan_cost(plan) if plan is not None else float(st)
        methods.append(Method(name, "progressive" if plan is not None else "full size, fewer steps", cost,
                              lambda noise, run=run, model=model: run(model, noise)))
    rows, outs = evaluate(methods, seeded_noise(n, emb.size, seed), reference, high_step_name="baseline",
                          heldout=heldout, bootstrap=bootstrap, full_steps=steps)
    return rows, outs, reference


def verdicts(rows: list[dict], gaps: list[dict]) -> list[str]:
    """The issue's questions answered from the metric rows and the paired gaps (``matched_cost.paired_gap``)
    of each progressive method to full size at its cost."""
    by = {r["method"]: r for r in rows}
    floor = by["baseline"]
    out = [f"- floor (50-step samples on the method seeds vs the reference seeds): patch Frechet "
           f"{floor['patch Frechet']:.3f} {floor['Frechet 95% CI']}"]

    def vs(gap: dict) -> str:
        a, b = gap["method"], gap["baseline"]
        ra, rb = by[a], by[b]
        word = "better than" if ra["patch Frechet"] < rb["patch Frechet"] else "worse than"
        (lo_a, hi_a), (lo_b, hi_b) = ra["_metric"]["frechet_ci"], rb["_metric"]["frechet_ci"]
        if lo_a <= hi_b and lo_b <= hi_a:
            word += " (the intervals overlap)"
        return (f"- {a}: patch Frechet {ra['patch Frechet']:.3f} {ra['Frechet 95% CI']} (within floor: "
                f"{ra['within floor']}), {word} {b}: {rb['patch Frechet']:.3f} {rb['Frechet 95% CI']}; "
                f"paired difference (same seeds): Frechet {gap['Frechet difference']:+.3f} "
                f"{gap['Frechet difference 95% CI']}, SW {gap['SW difference']:+.4f} {gap['SW difference 95% CI']}: "
                f"{gap['verdict']}; same-seed PSNR {ra['same-seed PSNR dB']:.1f} dB (target 30 dB)")
    return out + [vs(g) for g in gaps]


def run(args) -> dict:
    torch.set_grad_enabled(False)
    emb = load_embedded(weights=args.weights)
    sig = linear_sigmas(args.steps)
    size = emb.size
    noise = seeded_noise(args.seeds, size, args.seed)
    # the shipped adapter belongs to the shipped weights: with --weights only an explicit --adapter is used
    shipped = str(ADAPTER_PATH) if ADAPTER_PATH.is_file() and args.weights is None else None
    adapter = args.adapter or shipped
    cols, plans = demo_methods(emb, sig, args.delta, adapter, args.weights)
    outputs, times, calls = timed_runs(cols, noise, sig, args.repeats)
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
               "wall s": t, "wall speed-up": base_t / t}
        rows.append(row)
    found = []
    if args.metric_samples:
        mrows, mouts, reference = metric_rows(cols, sig, emb, args.metric_samples, args.seed, args.bootstrap, heldout)
        by = {r["method"]: r for r in mrows}
        keep = ("patch Frechet", "Frechet 95% CI", "within floor", "patch SW", "SW 95% CI", "same-seed PSNR dB",
                "same-seed SSIM", "log-spectrum error")
        for row in rows:
            row.update({k: by[row["method"]][k] for k in keep if k in by[row["method"]]})
        tuned = next((k for k in cols if k.startswith("fine-tuned")), None)
        tuned_eq = next((k for k in cols if k.endswith("(fine-tuned plan compute)")), None)
        eq_name = next(k for k in cols if k.endswith("(S=2 compute)"))
        pairs = [("progressive S=2", eq_name)] + ([(tuned, tuned_eq)] if tuned and tuned_eq else [])
        gaps = [paired_gap(mouts, reference, a, b, bootstrap=args.bootstrap) for a, b in pairs]
        found = verdicts(mrows, gaps)
        cost_plot(mrows, title="patch Frechet to the model's own 50-step samples (lower is better)").save(
            os.path.join(args.out, "quality_vs_cost.png"))
    cols_out = list(dict.fromkeys(k for r in rows for k in r))

    os.makedirs(args.out, exist_ok=True)
    image_grid([(k, v) for k, v in outputs.items()]).save(os.path.join(args.out, "grid.png"))
    spectra_figure(emb, outputs, plans, heldout, size).save(os.path.join(args.out, "spectra.png"))
    summary = {
        "command": "python -m spectral_progressive.bench.demo " + " ".join(args.argv),
        "machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform()},
        "spectrum": {"A": emb.law.A, "beta": emb.law.beta},
        "weights": args.weights or "shipped",
        "adapter": adapter,
        "plans": {k: p.summary() for k, p in plans.items()},
        "rows": rows,
        "verdicts": found,
    }
    write_json(os.path.join(args.out, "results.json"), summary)
    md = ["# Spectral progressive sampling on the embedded model", "",
          f"Command: `{summary['command']}`  ", f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.seeds} seeds timed ({args.steps} Euler steps, delta {args.delta}, median of {args.repeats} "
          f"interleaved runs); primary metric on {args.metric_samples} seeds against {args.metric_samples} "
          f"50-step samples on disjoint seeds.", "",
          table(rows, cols_out), "", *found, "", "## Plans", ""]
    for k, p in plans.items():
        md += [f"### {k}", "", "```", p.summary(), "```", ""]
    md += ["![grid](grid.png)", "", "![spectra](spectra.png)", ""]
    if args.metric_samples:
        md += ["![quality vs cost](quality_vs_cost.png)", ""]
    with open(os.path.join(args.out, "report.md"), "w") as fh:
        fh.write("\n".join(md))
    print(table(rows, cols_out))
    print("\n".join(found))
    print(f"\nwrote {args.out}/grid.png, spectra.png, report.md, results.json")
    return summary


def spectra_figure(emb, outputs: dict, plans: dict, heldout, size: int) -> Image.Image:
    """The data spectrum (held-out) with its fit and the switch frequencies, and the generated sets' spectra."""
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
            s = stage_scale(st.size, plan.full_size)
            markers.append((f"{key} s={s:g} t*={st.switch_time:.2f}", band_edge(s, (size, size))))
    return spectrum_plot(f.tolist(), curves, (emb.law.A, emb.law.beta), markers, size=(760, 460),
                         title="radially averaged power (DCT); dashed: fit of the data spectrum")


def main(argv: list[str] | None = None) -> None:
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description="Progressive vs baseline sampling on the embedded default model.")
    ap.add_argument("--out", default="demo_out", help="output folder (created)")
    ap.add_argument("--seeds", type=whole(1), default=4, help="number of samples (rows)")
    ap.add_argument("--steps", type=whole(2), default=50, help="Euler steps of the baseline schedule")
    ap.add_argument("--delta", type=fraction, default=0.01, help="error tolerance delta (seed 001 Prop. 1)")
    ap.add_argument("--repeats", type=whole(1), default=2, help="interleaved timing repeats")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--threads", type=whole(0), default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--metric-samples", type=zero_or_whole(2), default=64,
                    help="seeds per method for the primary metric (and as many reference seeds); 0 skips it")
    ap.add_argument("--bootstrap", type=whole(0), default=100, help="seed-bootstrap draws of the primary metric")
    ap.add_argument("--adapter", type=existing_file, default=None,
                    help="a LoRA adapter of python -m spectral_progressive.finetune (default: the shipped one, if any, "
                         "unless --weights is given)")
    ap.add_argument("--weights", type=existing_file, default=None,
                    help="weights of the embedded architecture to run instead of the shipped ones (safetensors)")
    args = ap.parse_args(argv)
    args.argv = argv
    if args.threads:
        torch.set_num_threads(args.threads)
    check_out_dir(args.out)
    run(args)


if __name__ == "__main__":
    main()

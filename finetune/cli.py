"""Command line: Sec. 4.3 fine-tuning of the embedded flow model.

    python -m spectral_progressive.finetune --out DIR (--steps N | --minutes M) [--weights W]
        [--rank 4] [--samples 64] [--delta 0.01] [--stages 2|3] [--variant paper|own-noise|teacher]
        [--threads 1] [--seed 0] [--lr 1e-4] [--batch-size 8] [--times paper|operating]
        [--heldout 16] [--samples-cache FILE] [--save-merged]
        [--spectral-forcing] [--loss-weighting none|spectral [--weight-alpha -1] [--weight-transform dct|dwt]]

1. Loads the embedded FlowUNet (``--weights``, default the shipped weights) and plans the stages exactly
   as the demo and the benchmarks do (64 x 64, spatial multiple 4, the spectrum of embedded/spectrum.json,
   Prop. 2 switch times for ``--delta``; scales 0.5, 1 or 0.25, 0.5, 1).
2. Generates the training pairs (App. D.2): ``--samples`` of the model's own ``--sample-steps``-step
   Euler samples at full size, with the noise each one came from, plus ``--heldout`` samples of other
   seeds for the evaluation (``--samples-cache`` keeps them all).
3. Fine-tunes on the stage targets (Eqs. 11-14): LoRA of ``--rank`` on every Linear / Conv2d (0: full
   fine-tune), Adam at a constant ``--lr``, until ``--steps`` or ``--minutes`` (the loop's own budget;
   sample generation is extra and logged).
4. Evaluates on the held-out samples before and after: the per-stage loss (Eq. 14) and the same-seed
   gap of progressive sampling (``sample_progressive``, Euler on the plan) to the full-size samples.
5. Writes into ``--out``: adapter.safetensors (LoRA; ``finetune.load_adapter`` puts it on a model) or
   weights_finetuned.safetensors (full fine-tune), train_log.json beside it, and with ``--save-merged``
   merged_weights.safetensors (the adapter folded in; ``embedded.model.load_default_model(path=...)``
   and the benchmarks' ``--weights`` load it).

Options (off by default): ``--spectral-forcing`` fine-tunes with the seed 004 low-pass on the stage
inputs (the embedded data spectrum on 64 x 64, ``embedded.train.make_forcing``; recorded in the log and
in the merged weights' metadata, so ``load_default_model`` applies it); weights that were trained with
forcing keep theirs whatever the flag. ``--loss-weighting spectral`` weights Eq. 14's error per DCT/Haar
band by |X|^alpha of the clean stage data (seed 003 Eq. 11, weights mean 1). The samples are generated
and the "before" gap measured as the base weights run (with their own forcing, if any).
``--variant teacher`` (beyond the paper): the low stages regress on the frozen model's own full-size
answer, contracted (``finetune.loop.teacher_velocity``), the last stage keeps Eq. 12; the held-out
"stage loss" stays Eq. 14 so the rows compare. Fine-tunes that differ only in ``--seed`` can be
averaged exactly with ``python -m spectral_progressive.finetune.average``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from ..embedded.model import CHANNELS, FORCING_METADATA_KEY, IMAGE_SIZE, SPATIAL_MULTIPLE, WEIGHTS_PATH
from ..embedded.train import _atomic_write, _check_out_dir, add_weighting_options, make_forcing
from ..spectral_core.loss_weighting import SpectralLossWeighting
from .loop import TIMES, VARIANTS, euler_sigmas, finetune, generate_samples, progressive_gap

PROG = "python -m spectral_progressive.finetune"
SCALES = {2: (0.5, 1.0), 3: (0.25, 0.5, 1.0)}


def _number(kind, check, what):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (math.isfinite(v) and check(v)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v
    return parse


_pos_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_pos_float = _number(float, lambda v: v > 0, "a positive number")
_unit = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")


INFERENCE_STEPS = 50


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Seed 001 Sec. 4.3 fine-tuning (stage-specific velocity "
                                "targets, Eqs. 11-14) of the embedded flow model on its own samples (App. D.2).")
    p.add_argument("--out", required=True, help="output directory (created if missing; must be writable)")
    p.add_argument("--weights", default=str(WEIGHTS_PATH),
                   help="embedded FlowUNet weights to fine-tune (safetensors; default: the shipped weights)")
    p.add_argument("--rank", type=_nonneg_int, default=4, help="LoRA rank (>= 1), or 0 for a full fine-tune")
    p.add_argument("--alpha", type=_pos_float, default=None, help="LoRA alpha (scale alpha/rank; default = rank)")
    p.add_argument("--steps", type=_pos_int, default=None, help="optimizer steps (>= 1)")
    p.add_argument("--minutes", type=_pos_float, default=None,
                   help="wall-time budget of the fine-tuning loop in minutes (sample generation is extra)")
    p.add_argument("--samples", type=_pos_int, default=64, help="number of the model's own samples to train on")
    p.add_argument("--sample-steps", type=_pos_int, default=50, help="Euler steps per sample (App. D.2: 50)")
    p.add_argument("--samples-cache", default=None,
                   help="safetensors file holding the generated samples and their noise: reused when it matches "
                        "(weights, seed, --sample-steps, at least --samples samples), written otherwise")
    p.add_argument("--delta", type=_unit, default=0.01, help="error tolerance of the switch times (Prop. 2), in (0, 1)")
    p.add_argument("--stages", type=int, choices=(2, 3), default=2,
                   help="2: scales 0.5, 1 (32x32 then 64x64); 3: scales 0.25, 0.5, 1")
    p.add_argument("--variant", choices=VARIANTS, default="paper",
                   help="paper: fresh noise per step (Sec. 4.3); own-noise: each sample's own generating noise; "
                        "teacher: low stages regress on the frozen model's contracted full-size answer (beyond the paper)")
    p.add_argument("--times", choices=TIMES, default="paper",
                   help="paper: t ~ U(0,1) in (t_i, t_{i-1}] (Sec. 4.3); operating: mapped onto the whole "
                        "stage interval (t_i, t~_{i-1}]")
    p.add_argument("--lr", type=_pos_float, default=1e-4, help="constant Adam learning rate (App. D.2: 1e-4)")
    p.add_argument("--batch-size", type=_pos_int, default=8, help="samples per step (App. D.2: 8)")
    p.add_argument("--heldout", type=_nonneg_int, default=16,
                   help="extra samples (other seeds, never trained on) for the before/after evaluation in the log: "
                        "per-stage loss (Eq. 14) and the same-seed gap of progressive sampling to the full-size "
                        "samples (0 skips it)")
    p.add_argument("--threads", type=_pos_int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the samples, the noise and the LoRA init")
    p.add_argument("--spectral-forcing", action="store_true",
                   help="seed 004: the network sees the DCT low-pass of its input above the data-to-noise contour "
                        "(embedded/spectrum.json); recorded so inference applies it")
    add_weighting_options(p, "Eq. 14's error")
    p.add_argument("--save-merged", action="store_true",
                   help="also write merged_weights.safetensors (LoRA folded into the weights; a full fine-tune "
                        "writes loadable weights anyway)")
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_cache(path: Path, want: dict[str, str], n: int):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        if any(meta.get(k) != v for k, v in want.items()) or int(meta.get("n", 0)) < n:
            return None
        return f.get_tensor("x0")[:n], f.get_tensor("noise")[:n]


def main(argv: list[str] | None = None) -> int:
    """Parse and validate the arguments (errors exit with status 2 and a message), fine-tune, write."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps is None and args.minutes is None:
        parser.error("give --steps and/or --minutes (when to stop)")
    weights = Path(args.weights)
    if not weights.is_file():
        parser.error(f"--weights {args.weights!r} is not a file")
    if args.rank == 0 and args.alpha is not None:
        parser.error("--alpha only applies to LoRA (--rank >= 1)")
    if args.samples_cache is not None and Path(args.samples_cache).exists() and not Path(args.samples_cache).is_file():
        parser.error(f"--samples-cache {args.samples_cache!r} is not a file")
    weighted = args.loss_weighting == "spectral"
    if not weighted and (args.weight_alpha is not None or args.weight_transform is not None):
        parser.error("--weight-alpha / --weight-transform only apply with --loss-weighting spectral")
    weighting = SpectralLossWeighting(-1.0 if args.weight_alpha is None else args.weight_alpha,
                                      args.weight_transform or "dct") if weighted else None
    torch.set_num_threads(args.threads)
    from ..embedded.model import load_default_model
    try:
        denoiser = load_default_model(path=weights)
    except Exception as e:  # wrong file format or architecture
        parser.error(f"--weights {args.weights!r} does not hold the embedded FlowUNet ({type(e).__name__}: "
                     f"{str(e).splitlines()[0][:200]})")
    if args.variant == "teacher" and (args.spectral_forcing or denoiser.forcing is not None):
        parser.error("--variant teacher is not defined with spectral forcing (--spectral-forcing, or weights "
                     "trained with it)")
    out = _check_out_dir(parser, args.out)

    from ..bench.embedded_setup import load_spectrum
    from ..schedules import plan_stages
    # the stages the demo samples with (50 Euler steps, affine respacing); the targets use their sizes and
    # switch times only, whatever --sample-steps the training pairs were generated with
    plan = plan_stages(euler_sigmas(INFERENCE_STEPS, torch.float64), (IMAGE_SIZE, IMAGE_SIZE), delta=args.delta,
                       scales=SCALES[args.stages], spectrum=load_spectrum(), spatial_multiple=SPATIAL_MULTIPLE,
                       respace="affine")
    if len(plan.stages) < 2:
        parser.error(f"--delta {args.delta} leaves a single stage: nothing to fine-tune for")
    print(plan.summary(), flush=True)
    net = denoiser.net
    base_forcing = denoiser.forcing  # what the base weights were trained with (their metadata)
    forcing = base_forcing if base_forcing is not None else (make_forcing() if args.spectral_forcing else None)

    start = time.monotonic()
    want = {"weights_sha256": _sha256(weights), "seed": str(args.seed), "sample_steps": str(args.sample_steps)}
    cache = Path(args.samples_cache) if args.samples_cache else None
    total = args.samples + args.heldout
    pairs = _load_cache(cache, want, total) if cache is not None and cache.is_file() else None
    generated = pairs is None
    if generated:
        print(f"generating {total} samples ({args.samples} training + {args.heldout} held-out; "
              f"{args.sample_steps}-step Euler, full size)...", flush=True)
        pairs = generate_samples(net, total, (CHANNELS, IMAGE_SIZE, IMAGE_SIZE), steps=args.sample_steps,
                                 seed=args.seed, progress=lambda k, n: print(f"  {k}/{n}", flush=True),
                                 forcing=base_forcing)
        if cache is not None:
            from safetensors.torch import save_file
            meta = {**want, "n": str(total), "format": "spectral_progressive.finetune.samples/1"}
            _atomic_write(cache, lambda p: save_file({"x0": pairs[0].contiguous(), "noise": pairs[1].contiguous()},
                                                     str(p), metadata=meta))
    gen_time = time.monotonic() - start
    print(f"samples ready in {gen_time:.1f}s ({'generated' if generated else 'from ' + str(cache)})", flush=True)
    x0, noise = pairs[0][:args.samples], pairs[1][:args.samples]
    held = (pairs[0][args.samples:], pairs[1][args.samples:]) if args.heldout else None
    gap_before = None
    if held is not None:
        gap_before = progressive_gap(net, held[0], held[1], plan, forcing=base_forcing)
        print(f"held-out same-seed gap of progressive sampling (MSE to the full-size samples): {gap_before:.5f}",
              flush=True)

    rank = None if args.rank == 0 else args.rank
    torch.manual_seed(args.seed)  # LoRA A initialisation
    result = finetune(net, x0, plan, steps=args.steps, minutes=args.minutes, lr=args.lr, rank=rank, alpha=args.alpha,
                      batch_size=args.batch_size, variant=args.variant, noises=noise, seed=args.seed,
                      times=args.times, eval_samples=0 if held is None else args.heldout, eval_set=held,
                      forcing=forcing, weighting=weighting)
    if held is not None:
        gap_after = progressive_gap(result.model, held[0], held[1], plan, forcing=forcing)
        result.log["eval"]["progressive_gap_mse"] = {"before": gap_before, "after": gap_after,
                                                      "what": "MSE between sample_progressive (Euler, this plan) "
                                                              "and the full-size samples from the same seeds"}
    argv_list = list(sys.argv[1:] if argv is None else argv)
    meta = {"method": "seed 001 Sec. 4.3", "variant": args.variant, "times": args.times,
            "stages": json.dumps([list(s.size) for s in plan.stages]),
            "switch_times": json.dumps([s.switch_time for s in plan.stages[:-1]]), "steps": str(result.log["steps"])}
    if forcing is not None:
        meta[FORCING_METADATA_KEY] = forcing.to_json()
    name = "adapter.safetensors" if rank is not None else "weights_finetuned.safetensors"
    _atomic_write(out / name, lambda p: result.save(str(p), meta))
    files = [name]
    if args.save_merged and rank is not None:
        from safetensors.torch import save_file

        from .lora import merge_lora
        import copy
        merged = merge_lora(copy.deepcopy(result.model))
        state = {k: v.detach().float().contiguous() for k, v in merged.state_dict().items()}
        _atomic_write(out / "merged_weights.safetensors",
                      lambda p: save_file(state, str(p), metadata={"format": "pt", **meta}))
        files.append("merged_weights.safetensors")
    log = {"config": {"argv": argv_list, "command": f"{PROG} " + " ".join(argv_list), **vars(args),
                      "weights_sha256": want["weights_sha256"], "scales": list(SCALES[args.stages])},
           "plan": plan.summary().splitlines(),
           "generation": {"samples": args.samples, "sample_steps": args.sample_steps, "sampler": "spectral_core."
                          "samplers.sample_euler over embedded.model.EmbeddedDenoiser, t 1 -> 0 in equal steps",
                          "generated": generated, "cache": None if cache is None else str(cache),
                          "wall_time_s": round(gen_time, 2)},
           **result.log, "files": files, "torch_version": torch.__version__,
           "python_version": platform.python_version()}
    _atomic_write(out / "train_log.json", lambda p: p.write_text(json.dumps(log, indent=2) + "\n"))
    ev = result.log.get("eval")
    extra = "" if not ev else (f"; held-out stage loss {ev['before']['mean']:.4f} -> {ev['after']['mean']:.4f}, "
                               f"progressive gap {ev['progressive_gap_mse']['before']:.5f} -> "
                               f"{ev['progressive_gap_mse']['after']:.5f}")
    print(f"done: {result.log['steps']} steps in {result.log['wall_time_s']:.1f}s, "
          f"{result.trainable_parameters} trainable parameters{extra}; wrote {', '.join(str(out / f) for f in files)} "
          f"and {out / 'train_log.json'}", flush=True)
    return 0

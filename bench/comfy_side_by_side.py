"""Side-by-side in real ComfyUI: baseline sampler vs ours on tiny-architecture checkpoints.

    COMFYUI_PATH=/path/to/ComfyUI /path/to/comfy/python -m spectral_progressive.bench.comfy_side_by_side \
        [--families flux sd3 sd15 wan] [--steps 20] [--repeats 3] [--width 1] [--out bench/results]

Models are ComfyUI's own classes (the integration tests' tiny configs; ``--width k`` multiplies their
hidden sizes so compute, not Python overhead, dominates).  For each family, in one process and with
interleaved repeats: baseline euler; SamplerSpectralProgressive S=2 and S=3 (delta 0.01, affine);
SpectralProgressiveModel S=2 on your sigmas and on DeltaSchedule's mapped sigmas.  Reported: model
calls, FLOP-ideal speed-up from the calls actually made (tokens, tokens^2), measured wall speed-up,
the wall/ideal ratio, and the time spent outside the network.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from ..schedules.families import PREVIEW_FAMILIES
from ..spectral_core.plan import call_cost

# per family (the preview families of schedules/families.py): latent size and the hidden sizes --width scales
SIZES = {"flux": (128, 128), "sd3": (64, 64), "sd15": (64, 64), "wan": (64, 104)}
WIDTH_KEYS = {"flux": {"hidden_size": 64}, "sd3": {}, "sd15": {"model_channels": 32}, "wan": {"dim": 128, "ffn_dim": 256}}


def tiny_key(family: str) -> str:
    """The integration tests' tiny model of a preview family: its ComfyUI model class, lower case."""
    return PREVIEW_FAMILIES[family].preview.model_class.lower()


def main(argv: list[str] | None = None) -> None:
    from .common import check_out_dir, die, table, whole, write_json
    ap = argparse.ArgumentParser(description="Baseline vs progressive sampling in real ComfyUI.")
    ap.add_argument("--families", nargs="+", default=list(PREVIEW_FAMILIES), choices=list(PREVIEW_FAMILIES))
    ap.add_argument("--steps", type=whole(2), default=20)
    ap.add_argument("--repeats", type=whole(1), default=3)
    ap.add_argument("--width", type=whole(1), default=1, help="multiply the tiny models' hidden sizes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)
    comfy_dir = os.environ.get("COMFYUI_PATH")
    if not comfy_dir or not os.path.isdir(comfy_dir):
        die("set COMFYUI_PATH to a ComfyUI checkout (and run with the python of its environment)")
    check_out_dir(args.out)
    from ..tests.integration import tiny_models as tm
    tm.setup_comfy(comfy_dir, threads=args.threads)
    import comfy.patcher_extension as pe
    import comfy.sample
    import comfy.samplers
    import torch

    from ..nodes import model_adapter
    from ..nodes.model_patch import patch_model
    from ..nodes.progressive_sampler import ProgressiveKSampler
    from ..schedules.spec import ScheduleSpec

    rows = []
    for fam in args.families:
        key = tiny_key(fam)
        cfg = dict(tm.UNET_CONFIGS[key])
        for k, v in WIDTH_KEYS[fam].items():
            cfg[k] = v * args.width
        if fam == "flux":
            cfg["axes_dim"] = [8 * args.width, 28 * args.width, 28 * args.width]
        if fam == "sd3" and args.width > 1:
            cfg["depth"] = args.width
        tm.UNET_CONFIGS[key] = cfg
        mp = tm.build(key)
        pos = tm.make_conditioning(key)
        neg = tm.make_conditioning(key, seed=2)
        H, W = SIZES[fam]
        channels = model_adapter.base_model(mp).latent_format.latent_channels
        shape = (1, channels, 3, H, W) if fam == "wan" else (1, channels, H, W)
        latent = torch.zeros(shape)
        noise = comfy.sample.prepare_noise(latent, 0)
        sigmas = comfy.samplers.calculate_sigmas(mp.get_model_object("model_sampling"), "simple", args.steps).cpu()
        calls: list[tuple[tuple[int, int, int], float]] = []

        def counting(executor, *a, **kw):
            x = a[0]
            t0 = time.perf_counter()
            out = executor(*a, **kw)
            calls.append(((int(x.shape[0]), int(x.shape[-2]), int(x.shape[-1])), time.perf_counter() - t0))
            return out

        def with_counter(model):
            m = model.clone()
            m.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "bench_counter", counting)  # every family has APPLY_MODEL
            return m

        s2, s3 = ScheduleSpec(scales=(0.5, 1.0)), ScheduleSpec(scales=(0.25, 0.5, 1.0))
        plan2 = model_adapter.plan(s2, sigmas, (H, W), mp)
        mapped = plan2.full_sigmas().float()
        base_m = with_counter(mp)
        patched, _ = patch_model(base_m, s2)
        runs = {
            "baseline euler": lambda: comfy.sample.sample_custom(base_m, noise, 2.0, comfy.samplers.sampler_object("euler"), sigmas, pos, neg, latent, disable_pbar=True, seed=0),
            "sampler S=2": lambda: comfy.sample.sample_custom(base_m, noise, 2.0, ProgressiveKSampler(comfy.samplers.sampler_object("euler"), s2), sigmas, pos, neg, latent, disable_pbar=True, seed=0),
            "sampler S=3": lambda: comfy.sample.sample_custom(base_m, noise, 2.0, ProgressiveKSampler(comfy.samplers.sampler_object("euler"), s3), sigmas, pos, neg, latent, disable_pbar=True, seed=0),
            "patch S=2, your sigmas": lambda: comfy.sample.sample_custom(patched, noise, 2.0, comfy.samplers.sampler_object("euler"), sigmas, pos, neg, latent, disable_pbar=True, seed=0),
            "patch S=2, mapped sigmas": lambda: comfy.sample.sample_custom(patched, noise, 2.0, comfy.samplers.sampler_object("euler"), mapped, pos, neg, latent, disable_pbar=True, seed=0),
        }
        walls = {k: [] for k in runs}
        inside = {k: [] for k in runs}
        made = {}
        for name, fn in runs.items():  # warm-up (and the call record)
            calls.clear()
            fn()
            made[name] = list(calls)
        for _ in range(args.repeats):
            for name, fn in runs.items():
                calls.clear()
                t0 = time.perf_counter()
                fn()
                walls[name].append(time.perf_counter() - t0)
                inside[name].append(sum(c[1] for c in calls))
        base_calls = made["baseline euler"]
        base_wall = statistics.median(walls["baseline euler"])

        def cost(cs, p):  # per sample: ComfyUI batches cond and uncond when memory allows
            return call_cost([(h, w) for (b, h, w), _ in cs for _ in range(b)], (H, W), p)
        for name in runs:
            ideal = cost(base_calls, 1) / cost(made[name], 1)
            wall = statistics.median(walls[name])
            rows.append({"family": fam, "latent": "x".join(map(str, shape[2:])), "run": name,
                         "network calls (batched)": len(made[name]),
                         "samples evaluated": sum(b for (b, _, _), _ in made[name]), "FLOP-ideal (tokens)": ideal,
                         "FLOP-ideal (tokens^2)": cost(base_calls, 2) / cost(made[name], 2),
                         "wall s": wall, "wall speed-up": base_wall / wall, "wall / ideal": base_wall / wall / ideal,
                         "outside network s": wall - statistics.median(inside[name])})
        print(table([r for r in rows if r["family"] == fam], list(rows[0].keys())), flush=True)
        write_json(os.path.join(args.out, "comfy_side_by_side.json"),
                   {"command": "python -m spectral_progressive.bench.comfy_side_by_side " + " ".join(argv or sys.argv[1:]),
                    "rows": rows})  # after every family, so a long run keeps what it measured


if __name__ == "__main__":
    main()

"""Soak: 100 prompts in a row through POST /prompt on ONE ComfyUI server.

    COMFYUI_PATH=/path/to/ComfyUI python -m tests.load.soak --out bench/results

The prompts mix the families (flux built in-process by the test loader node; sd3, sd15_file, wan21
from tiny files via UNETLoader), the three ways to run the pack (SamplerSpectralProgressive in
SamplerCustomAdvanced, the SpectralProgressiveModel patch in front of KSampler, the all-in-one
SpectralProgressiveSampler), bad inputs (each must come back with the error that names its input)
and interrupts (POST /interrupt while the low stage runs).  After every prompt: the server's resident
memory (VmRSS) and GET /system_stats.  At the end: GET /queue must be empty.

Writes <out>/soak.json (or soak-<version>.json with --tag-version) and prints a table.  The prompt
sequence is fixed (no randomness); timing is recorded, never asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from tests.integration import harness as H

from . import common as C

WARMUP = 10
GOOD_FAMILIES = ("sd3", "flux", "sd15_file", "wan")
GOOD_PATHS = ("sampler", "patch", "allinone")
SIZES = ((12, 18), (16, 16), (10, 14))
SAMPLERS = ("euler", "dpmpp_2m", "euler_ancestral", "ddim")
INTERRUPT_AT = {40: "sampler", 80: "patch"}  # prompt index -> formulation


def good_prompt(i: int) -> dict:
    fam_name, path = [(f, p) for p in GOOD_PATHS for f in GOOD_FAMILIES][i % 12]
    fam = H.FAMILIES[fam_name]
    h, w = SIZES[i % len(SIZES)]
    batch = 1 + (i // 12) % 2
    wf = H.txt2img(fam, path, h=h, w=w, batch=batch, steps=6 + i % 4, seed=1000 + i,
                   sampler=SAMPLERS[i % len(SAMPLERS)])
    shape = [batch, fam.channels, 3, h, w] if fam.video else [batch, fam.channels, h, w]
    return {"kind": "good", "family": fam_name, "path": path, "prompt": wf.prompt(),
            "checks": [(wf.report.id, shape)], "what": f"{fam_name} {path} {h}x{w} b{batch}"}


def _sampler_node(path: str) -> str:
    return {"sampler": "SamplerCustomAdvanced", "allinone": "SpectralProgressiveSampler", "patch": "KSampler"}[path]


def _bad_schedule(fam: str, path: str, schedule: dict, name: str, node: str | None = None, steps: int = 8):
    def build():
        wf = H.txt2img(H.FAMILIES[fam], path, steps=steps, schedule=schedule)
        return wf.prompt(), name, node or _sampler_node(path)
    return build


def _bad_regional():
    wf = H.workflow(H.FAMILIES["sd3"])
    wf.pos = wf.graph.add("ConditioningSetArea", conditioning=wf.pos, width=64, height=64, x=0, y=0, strength=1.0)
    wf.finish(wf.sample("patch", H.empty_latent(wf.graph, wf.fam, 16, 16)))
    return wf.prompt(), "positive/negative", "KSampler"


def _bad_patched_into_sampler():
    wf = H.workflow(H.FAMILIES["flux"])
    patched = wf.graph.add("SpectralProgressiveModel", model=wf.recorded, high_band="zero")
    lat = H.empty_latent(wf.graph, wf.fam, 16, 16)
    wf.finish(H.sampling_nodes(wf.graph, "allinone", patched, wf.pos, wf.neg, lat, schedule=H.manual_schedule(wf.graph)))
    return wf.prompt(), "model", "SpectralProgressiveSampler"


def _bad_video_latent():
    wf = H.workflow(H.FAMILIES["sd3"])
    lat = wf.graph.add("EmptyHunyuanLatentVideo", width=128, height=128, length=9, batch_size=1)
    wf.finish(wf.sample("allinone", lat))
    return wf.prompt(), "latent_image", "SpectralProgressiveSampler"


def _bad_expand_scale():
    fam = H.FAMILIES["sd3"]
    g = H.Graph()
    model = H.model_node(g, fam)
    lat = H.empty_latent(g, fam, 8, 8)
    sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=6, denoise=1.0)
    ex = g.add("SpectralNoiseExpand", model=model, samples=lat, sigmas=sig, direction="expand", scale=0.5,
               transform="dct", seed=0, respace="affine")
    g.add("SpectralTestReport", samples=ex, key="soak-unused")
    return g.prompt(), "scale", "SpectralNoiseExpand"


def _bad_probe_constant():
    g = H.Graph()
    img = g.add("EmptyImage", width=64, height=64, batch_size=1, color=0x808080)
    g.add("PowerSpectrumProbe", image=img, delta=0.01, stages=2)
    return g.prompt(), "image", "PowerSpectrumProbe"


def _bad_delta_validation():
    wf = H.txt2img(H.FAMILIES["sd3"], "patch", schedule={"delta": 0.9})
    return wf.prompt(), "delta", None  # None: ComfyUI's validation (HTTP 400) names the widget


def _bad_inf_latent():
    """An infinite latent made by real nodes: noise from SpectralNoiseExpand, then LatentMultiply x10 40 times."""
    wf = H.workflow(H.FAMILIES["sd3"])
    g = wf.graph
    sig = g.add("SplitSigmas", sigmas=g.add("BasicScheduler", model=wf.model, scheduler="simple", steps=4, denoise=1.0),
                step=1)[1]
    x = g.add("SpectralNoiseExpand", model=wf.model, samples=g.add("EmptySD3LatentImage", width=64, height=64, batch_size=1),
              sigmas=sig, direction="expand", scale=2.0, transform="dct", seed=0, respace="affine")[0]
    for _ in range(40):
        x = g.add("LatentMultiply", samples=x, multiplier=10.0)
    wf.finish(wf.sample("patch", x, denoise=0.6))
    return wf.prompt(), "latent_image", "KSampler"


def _bad_raw_socket_value():
    wf = H.txt2img(H.FAMILIES["flux"], "allinone", steps=6)
    prompt = wf.prompt()
    [v for v in prompt.values() if v["class_type"] == "SpectralProgressiveSampler"][0]["inputs"]["positive"] = "a cat"
    return prompt, "positive", "SpectralProgressiveSampler"


BAD_CASES = (
    ("inf latent into the patch", _bad_inf_latent),
    ("raw text on the positive socket", _bad_raw_socket_value),
    ("video latent into SD3", _bad_video_latent),
    ("probe on a constant image", _bad_probe_constant),
    ("first stage below one patch (sampler)", _bad_schedule("sd3", "sampler", {"scales": "0.05, 1"}, "scales")),
    ("first stage below one patch (patch, wan)", _bad_schedule("wan", "patch", {"scales": "0.05, 1"}, "scales")),
    ("scales not numbers", _bad_schedule("sd3", "allinone", {"scales": "half, 1"}, "scales", "DeltaSchedule")),
    ("scales not ending at 1", _bad_schedule("flux", "patch", {"scales": "0.5, 0.8"}, "scales", "DeltaSchedule")),
    ("manual mode without switches", _bad_schedule("sd3", "allinone", {"mode": "manual", "manual_switch": ""},
                                                   "manual_switch", "DeltaSchedule")),
    ("manual switch step past the end", _bad_schedule("sd15_file", "sampler", {"mode": "manual", "manual_switch": "50",
                                                                               "manual_unit": "step"}, "manual_switch")),
    ("regional conditioning", _bad_regional),
    ("patched model into the all-in-one", _bad_patched_into_sampler),
    ("expand with scale 0.5", _bad_expand_scale),
    ("delta above its max", _bad_delta_validation),
)


def interrupt_prompt(path: str) -> dict:
    wf = H.txt2img(H.FAMILIES["sd3"], path, h=24, w=24, steps=300,
                   schedule={"mode": "manual", "manual_switch": "150", "manual_unit": "step"})
    return wf.prompt()


def plan(n: int) -> list[tuple[str, object]]:
    """The fixed sequence: an interrupt at INTERRUPT_AT, a bad input at every 5th index (from 2),
    good prompts elsewhere."""
    seq, bad_i = [], 0
    for i in range(n):
        if i in INTERRUPT_AT:
            seq.append(("interrupt", INTERRUPT_AT[i]))
        elif i % 5 == 2:
            seq.append(("bad", BAD_CASES[bad_i % len(BAD_CASES)]))
            bad_i += 1
        else:
            seq.append(("good", i))
    return seq


def run(n: int, out_dir: str, keep: bool, tag_version: bool) -> int:
    comfy_dir = C.comfy_dir_from_env()
    version = C.comfy_version(comfy_dir)
    records = []
    with C.comfy_server(comfy_dir, keep) as srv:
        pid = srv.proc.pid
        input_names = C.pack_input_names(srv.get("/object_info"))
        rss0 = C.rss_mb(pid)
        print(f"ComfyUI {version}, server pid {pid}, RSS at start {rss0:.1f} MB; {n} prompts")
        t_all = time.time()
        for i, (kind, arg) in enumerate(plan(n)):
            rec: dict = {"i": i, "kind": kind}
            if kind == "good":
                case = good_prompt(arg)
                rec.update(family=case["family"], path=case["path"], what=case["what"])
                sub = C.submit(srv, case["prompt"])
                out = C.classify(sub, input_names, case["checks"])
                rec["ok"] = out.cls == C.CORRECT
            elif kind == "bad":
                label, build = arg
                prompt, name, node = build()
                rec.update(what=label, expect_input=name, expect_node=node)
                sub = C.submit(srv, prompt)
                out = C.classify(sub, input_names)
                if node is None:
                    rec["ok"] = out.cls == C.REJECTED and out.named is not None and name in out.named.split(",")
                else:
                    rec["ok"] = out.cls == C.NAMED and out.named == name and out.node_type == node
            else:
                rec.update(what=f"sd3 {arg} 24x24, 300 steps, POST /interrupt at step 3", path=arg)
                sub = C.submit_and_interrupt(srv, interrupt_prompt(arg), at=3)
                out = C.classify(sub, input_names)
                rec["ok"] = out.cls == C.INTERRUPTED
                rec["progress_max"] = max(sub.progress) if sub.progress else None
            rec["outcome"] = out.to_json()
            rec["seconds"] = round(sub.seconds, 3)
            rec["rss_mb"] = round(C.rss_mb(pid), 2) if srv.proc.poll() is None else None
            rec["health"] = C.health(srv) or "ok"
            records.append(rec)
            flag = "ok " if rec["ok"] and rec["health"] == "ok" else "BAD"
            print(f"{i:3d} {flag} {kind:9s} {rec['what'][:48]:48s} {out.cls:24s} {sub.seconds:6.2f}s "
                  f"RSS {rec['rss_mb']} MB", flush=True)
            if rec["health"] != "ok":
                print("server unhealthy: " + rec["health"] + "\n" + srv.log_tail(3000))
                break
        wall = time.time() - t_all
        queue = C.queue_state(srv) if srv.proc.poll() is None else None
        healthy_end = C.health(srv) or "ok"
    by_kind = {k: [r for r in records if r["kind"] == k] for k in ("good", "bad", "interrupt")}
    rss = [r["rss_mb"] for r in records]
    xs = [r["i"] for r in records if r["i"] >= WARMUP and r["rss_mb"] is not None]
    ys = [r["rss_mb"] for r in records if r["i"] >= WARMUP and r["rss_mb"] is not None]
    half = [(r["i"], r["rss_mb"]) for r in records if r["i"] >= n // 2 and r["rss_mb"] is not None]
    summary = {
        "prompts": len(records),
        "good_ok": sum(r["ok"] for r in by_kind["good"]), "good": len(by_kind["good"]),
        "bad_named": sum(r["ok"] for r in by_kind["bad"]), "bad": len(by_kind["bad"]),
        "interrupted": sum(r["ok"] for r in by_kind["interrupt"]), "interrupts": len(by_kind["interrupt"]),
        "rss_start_mb": round(rss0, 1), "rss_after_first_mb": rss[0] if rss else None,
        "rss_after_warmup_mb": rss[WARMUP - 1] if len(rss) >= WARMUP else None,
        "rss_end_mb": rss[-1] if rss else None, "rss_max_mb": max(r for r in rss if r is not None) if rss else None,
        "rss_slope_mb_per_prompt": round(C.slope(xs, ys), 4),
        "rss_slope_second_half_mb_per_prompt": round(C.slope([a for a, _ in half], [b for _, b in half]), 4),
        "warmup_prompts": WARMUP,
        "queue_at_end": queue, "queue_empty": queue == {"running": 0, "pending": 0},
        "healthy_after_every_prompt": all(r["health"] == "ok" for r in records), "healthy_at_end": healthy_end,
        "wall_seconds": round(wall, 1),
    }
    summary["all_expectations_met"] = bool(
        summary["prompts"] == n and summary["good_ok"] == summary["good"] and summary["bad_named"] == summary["bad"]
        and summary["interrupted"] == summary["interrupts"] and summary["queue_empty"]
        and summary["healthy_after_every_prompt"])
    result = {"benchmark": "soak", "comfyui_version": version, "comfyui_path": comfy_dir,
              "command": "python -m tests.load.soak " + " ".join(sys.argv[1:]),
              "python": platform.python_version(), "threads": os.environ.get("OMP_NUM_THREADS"),
              "summary": summary, "prompts": records}
    name = f"soak-{version}.json" if tag_version else "soak.json"
    path = C.write_json(out_dir, name, result)
    rows = [[k, f"{sum(r['ok'] for r in v)}/{len(v)}",
             f"{sum(r['seconds'] for r in v) / max(len(v), 1):.2f}"] for k, v in by_kind.items()]
    print()
    print(C.table(rows, ["kind", "as expected", "mean s/prompt"]))
    print()
    print(C.table([[k, v] for k, v in summary.items()], ["soak (ComfyUI " + version + ")", "value"]))
    print(f"\nwritten: {path}")
    return 0 if summary["all_expectations_met"] else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="keep the server's temporary folder (log, outputs)")
    ap.add_argument("--tag-version", action="store_true", help="name the JSON soak-<ComfyUI version>.json")
    a = ap.parse_args(argv)
    return run(a.prompts, a.out, a.keep, a.tag_version)


if __name__ == "__main__":
    sys.exit(main())

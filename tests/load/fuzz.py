"""Fuzz: seeded random prompts through the HTTP API of ONE ComfyUI server.

    COMFYUI_PATH=/path/to/ComfyUI python -m tests.load.fuzz --out bench/results [--seed 0] [--prompts 200]

Each prompt is one of these kinds, drawn with a seeded random.Random (same seed, same prompts):

* widgets   a txt2img on a random family and formulation, with some widgets of DeltaSchedule and of the
            sampler / patch nodes set at, just beyond, or far beyond the bounds read from GET /object_info
            (min, max, min - step, max + step, 0, NaN, +-inf, malformed text);
* sizes     zero, odd, tiny and huge latent sizes and batches.  Sizes ComfyUI accepts and that would
            run for long (more than 48x48 latent pixels per frame, batch above 4) get a schedule the pack
            must refuse before sampling (a switch step past the end): refusing before compute is the
            expected outcome, and nothing big is ever sampled;
* nonfinite NaN / inf / huge latents made by real ComfyUI nodes (SpectralNoiseExpand's noise, then a
            chain of LatentMultiply x10, optionally LatentSubtract(x, x) for NaN) into every pack node;
* links     wrong links and input types: a socket linked to the wrong output type, an output index out
            of range, a missing node, raw values where a socket is expected, missing required inputs;
* masks     noise masks (SolidMask, batched with RepeatImageBatch) and conditioning batches that do not
            match the latent's size or batch;
* nodes     the other pack nodes (SpectralNoiseExpand, PowerSpectrumProbe, FrequencyBandGain,
            FrequencyEdit, DeltaSchedule with model/sigmas/latent) with fuzzed widgets and inputs.

Every outcome is classified (common.classify): rejected by ComfyUI's validation (HTTP 400), the pack's
named error (raised in the pack, message "<input>: expected ..."), a correct result (success; reported
latents of the expected shape and finite), an interrupt, ComfyUI's own error with no pack frame, or a
FAILURE: a traceback from the pack that is not a named error, an error raised by ComfyUI/torch below a
pack frame, a bad output, a server crash or the server unhealthy afterwards (GET /system_stats after
every prompt).  Writes <out>/fuzz.json and prints a table.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import platform
import random
import sys
import time
from dataclasses import dataclass, field

from tests.integration import harness as H

from . import common as C

FAMS = ("sd3", "flux", "sd15_file", "wan")
PATHS = ("sampler", "patch", "allinone")
RUN_CAP = 48 * 48  # latent pixels per frame (times batch 4) that are actually sampled
STEP_CAP = 40  # steps actually run (larger in-bounds values are capped and tagged)
SCALES_POOL = ["", "0.5, 1", "0.25, 0.5, 1", "1", "0.125, 0.25, 0.5, 1", "0.05, 1", "nan, 1", "inf", "0.5,,1",
               "half, 1", "-1, 1", "1e308, 1", "0.5; 1", "0.3333, 1", "0.99, 1", "0, 1", "1, 1", " ", "0.5 1",
               "0.2, 0.4, 0.6, 0.8, 1"]
SWITCH_POOL = ["", "0.8", "4", "12", "0", "-1", "nan", "inf", "1e9", "3.5", "2, 5", "0.9, 0.5", "abc", "5, 3",
               "0.5, 0.2, 0.1", "1e-30"]


@dataclass
class Case:
    kind: str
    label: str
    prompt: dict
    checks: list = field(default_factory=list)  # [(report node id, expected shape or None)]
    nonfinite_input: bool = False
    params: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# widget values from /object_info
# --------------------------------------------------------------------------------------------------


class Widgets:
    def __init__(self, object_info: dict):
        self.info = object_info

    def spec(self, node: str, name: str) -> tuple[object, dict]:
        inputs = self.info[node]["input"]
        entry = (inputs.get("required") or {}).get(name) or (inputs.get("optional") or {}).get(name)
        typ = entry[0]
        opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
        if isinstance(typ, list):
            return "COMBO", dict(opts, options=typ)
        return typ, opts

    def names(self, node: str) -> list[str]:
        """The widget inputs of ``node`` (numbers, text, combos)."""
        out = []
        for group in ("required", "optional"):
            for name in (self.info[node]["input"].get(group) or {}):
                typ, _ = self.spec(node, name)
                if typ in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
                    out.append(name)
        return out

    def fuzz(self, rng: random.Random, node: str, name: str) -> tuple[object, str]:
        """(value, tag): a value at, beyond or far beyond the widget's bounds, or malformed."""
        typ, o = self.spec(node, name)
        if typ == "COMBO":
            opts = list(o.get("options", []))
            return rng.choice([(rng.choice(opts), "option")] * 6 + [("not-an-option", "bad option"), (0, "int for combo")])
        if typ == "STRING":
            pool = SWITCH_POOL if "switch" in name else SCALES_POOL
            v = rng.choice(pool + [123])
            return v, "text"
        if typ == "BOOLEAN":
            return rng.choice([(True, "true"), (False, "false"), ("maybe", "text for bool")])
        lo, hi, d = o.get("min"), o.get("max"), o.get("default")
        step = o.get("step", 1 if typ == "INT" else 0.01)
        cands = [(d, "default"), (0, "zero")]
        if lo is not None:
            cands += [(lo, "min"), (lo - step, "below min")]
        if hi is not None:
            cands += [(hi, "max"), (hi + step, "above max")]
        if typ == "INT":
            cands += [(2 ** 70, "huge"), ("12abc", "malformed")]
            if lo is not None and hi is not None:
                cands.append((rng.randint(lo, min(hi, lo + 50)), "in range"))
        else:
            # NaN passes ComfyUI's validation (no comparison with min/max is true): it reaches the node
            cands += [(float("nan"), "nan")] * 3 + [(float("inf"), "inf"), (float("-inf"), "-inf"), ("x1", "malformed")]
            if lo is not None and hi is not None:
                cands += [(round(rng.uniform(lo, hi), 4), "in range")] * 2
        v, tag = rng.choice(cands)
        if name == "steps" and isinstance(v, int) and v > STEP_CAP and (hi is None or v <= hi):
            v, tag = STEP_CAP, f"{tag} (capped to {STEP_CAP})"
        return v, tag


def nonfinite_widget(v) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


# --------------------------------------------------------------------------------------------------
# case builders
# --------------------------------------------------------------------------------------------------


def _shape(fam: H.Family, h: int, w: int, batch: int, frames: int = 3) -> list[int]:
    return [batch, fam.channels, frames, h, w] if fam.video else [batch, fam.channels, h, w]


def case_widgets(rng: random.Random, W: Widgets) -> Case:
    fam_name, path = rng.choice(FAMS), rng.choice(PATHS)
    fam = H.FAMILIES[fam_name]
    h, w = rng.choice([(8, 8), (12, 18), (10, 14), (16, 16)])
    sched = {}
    tags = {}
    for name in rng.sample(W.names("DeltaSchedule"), rng.randint(1, 2)):
        v, tag = W.fuzz(rng, "DeltaSchedule", name)
        sched[name], tags[f"DeltaSchedule.{name}"] = v, tag
    kw: dict = {"steps": 8, "seed": rng.randint(0, 999)}
    node = {"allinone": "SpectralProgressiveSampler", "patch": "KSampler", "sampler": "BasicScheduler"}[path]
    for name in rng.sample(["steps", "cfg", "denoise", "sampler_name", "scheduler"], rng.randint(0, 2)):
        target = node
        if path == "sampler" and name == "sampler_name":
            target = "KSamplerSelect"
        elif path == "sampler" and name == "cfg":
            target = "CFGGuider"
        v, tag = W.fuzz(rng, target, name)
        kw["sampler" if name == "sampler_name" else name], tags[f"{target}.{name}"] = v, tag
    if path == "patch" and rng.random() < 0.5:
        kw["high_band"], tags["SpectralProgressiveModel.high_band"] = W.fuzz(rng, "SpectralProgressiveModel", "high_band")
    schedule = sched if rng.random() < 0.9 else "default"
    if schedule == "default":
        tags = {k: v for k, v in tags.items() if not k.startswith("DeltaSchedule.")}
        tags["DeltaSchedule"] = "none (default schedule)"
    wf = H.txt2img(fam, path, h=h, w=w, schedule=schedule, **kw)
    nonfinite = any(nonfinite_widget(v) for v in list(sched.values()) + list(kw.values()))
    return Case("widgets", f"{fam_name} {path} {tags}", wf.prompt(), [(wf.report.id, _shape(fam, h, w, 1))], nonfinite,
                {"family": fam_name, "path": path, "widgets": tags, "schedule": sched, "sampler": kw})


def case_sizes(rng: random.Random, W: Widgets) -> Case:
    fam_name, path = rng.choice(FAMS), rng.choice(PATHS)
    fam = H.FAMILIES[fam_name]
    small = [16, 20, 24, 40, 56, 72, 88, 136, 200]  # latent 2, 2, 3, 5, 7, 9, 11, 17, 25 (odd ones included)
    huge = [2048, 16384]  # in bounds: ComfyUI accepts them
    beyond = [0, 8, 16400, 2 ** 31]  # below min, above max: ComfyUI's validation refuses them
    pick = lambda: rng.choice(rng.choice([small] * 6 + [huge] * 2 + [beyond] * 2))  # noqa: E731
    wpx, hpx = pick(), pick()
    if max(wpx, hpx) >= 2048 and min(wpx, hpx) >= 2048 and rng.random() < 0.5:
        hpx = rng.choice([16, 24, 40])  # one huge side (a very long, thin latent) as often as two
    batch = rng.choice([1, 1, 1, 2, 3, 5, 0, 4096, 4097])
    frames_px = rng.choice([1, 5, 9, 0]) if fam.video else 1
    wf = H.workflow(fam)
    g = wf.graph
    if fam.video:
        lat = g.add("EmptyHunyuanLatentVideo", width=wpx, height=hpx, length=frames_px, batch_size=batch)
    elif fam.channels == 4:
        lat = g.add("EmptyLatentImage", width=wpx, height=hpx, batch_size=batch)
    else:
        lat = g.add("EmptySD3LatentImage", width=wpx, height=hpx, batch_size=batch)
    h, w = hpx // 8, wpx // 8
    T = (frames_px - 1) // 4 + 1 if fam.video else 1
    in_bounds = wpx >= 16 and hpx >= 16 and wpx <= 16384 and hpx <= 16384 and 1 <= batch <= 4096 and (
        not fam.video or frames_px >= 1)
    big = in_bounds and (h * w * T > RUN_CAP or batch > 4 or max(h, w) > 256)
    if big and h * w * T * batch * fam.channels > 200_000_000:  # even allocating it is too much for this machine
        batch = 1
        g.nodes[lat.id]["inputs"]["batch_size"] = 1
        big = h * w * T > RUN_CAP or max(h, w) > 256
    if big:
        schedule = {"mode": "manual", "manual_switch": "50", "manual_unit": "step"}  # refused before sampling
        expect = "named error before compute (manual_switch past the end)"
    else:
        schedule = rng.choice(["manual", "default", {"transform": rng.choice(["dct", "dwt", "fft"])},
                               {"stages": rng.randint(1, 4)}])
        expect = "run" if in_bounds else "rejected by validation"
    out = wf.sample(path, lat, schedule=schedule, steps=10, seed=rng.randint(0, 99))
    wf.finish(out)
    return Case("sizes", f"{fam_name} {path} {wpx}x{hpx}px b{batch}" + (f" len{frames_px}" if fam.video else "")
                + f" -> {expect}", wf.prompt(), [(wf.report.id, _shape(fam, h, w, batch, T))], False,
                {"family": fam_name, "path": path, "width": wpx, "height": hpx, "batch": batch, "length": frames_px,
                 "schedule": schedule, "expect": expect})


def nonfinite_latent(g: H.Graph, rng: random.Random, model: H.Ref) -> tuple[H.Ref, str]:
    """A 16-channel 16x16 latent of noise (SpectralNoiseExpand of an empty 8x8 latent at the second sigma), then
    LatentMultiply x10 k times; 'nan' also subtracts it from itself (inf - inf)."""
    kind = rng.choice(["inf", "nan", "huge", "nan", "inf"])
    empty = g.add("EmptySD3LatentImage", width=64, height=64, batch_size=1)
    sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=4, denoise=1.0)
    sig = g.add("SplitSigmas", sigmas=sig, step=1)[1]  # from the second sigma: below pure noise
    x = g.add("SpectralNoiseExpand", model=model, samples=empty, sigmas=sig, direction="expand", scale=2.0,
              transform="dct", seed=rng.randint(0, 99), respace="affine")[0]
    for _ in range({"inf": 40, "nan": 40, "huge": 34}[kind]):
        x = g.add("LatentMultiply", samples=x, multiplier=10.0)
    if kind == "nan":
        x = g.add("LatentSubtract", samples1=x, samples2=x)
    return x, kind


def case_nonfinite(rng: random.Random, W: Widgets) -> Case:
    fam = H.FAMILIES["sd3"]
    consumer = rng.choice(["allinone", "sampler", "patch", "probe", "bandgain", "edit", "expand", "schedule"])
    wf = H.workflow(fam)
    g = wf.graph
    x, kind = nonfinite_latent(g, rng, wf.model)
    checks: list = []
    if consumer in PATHS:
        denoise = rng.choice([1.0, 0.6])
        out = wf.sample(consumer, x, schedule=rng.choice(["manual", "default"]), steps=6, denoise=denoise)
        wf.finish(out)
        checks = [(wf.report.id, [1, 16, 16, 16])]
        label = f"{kind} latent -> {consumer} denoise {denoise}"
    elif consumer == "probe":
        g.add("PowerSpectrumProbe", latent=x, delta=0.01, stages=2)
        label = f"{kind} latent -> PowerSpectrumProbe"
    elif consumer == "bandgain":
        mode = rng.choice(["gains", "transfer"])
        b = {"latent_b": x} if mode == "transfer" else {}
        e = g.add("FrequencyBandGain", mode=mode, cut_low=0.25, cut_high=0.6, gain_low=1.0, gain_mid=1.0,
                  gain_high=1.5, soft=0.05, latent=x, **b)
        rep = g.add("SpectralTestReport", samples=e[1], key="fuzz-unused")
        checks = [(rep.id, [1, 16, 16, 16])]
        label = f"{kind} latent -> FrequencyBandGain {mode}"
    elif consumer == "edit":
        e = g.add("FrequencyEdit", model=wf.model, positive=wf.pos, negative=wf.neg, source=x, seed=0, steps=6, cfg=2.0,
                  sampler_name="euler", scheduler="simple", entry_stage=0, strength=0.85)
        rep = g.add("SpectralTestReport", samples=e[0], key="fuzz-unused")
        checks = [(rep.id, [1, 16, 16, 16])]
        label = f"{kind} latent -> FrequencyEdit"
    elif consumer == "expand":
        sig = g.add("BasicScheduler", model=wf.model, scheduler="simple", steps=6, denoise=0.5)
        e = g.add("SpectralNoiseExpand", model=wf.model, samples=x, sigmas=sig, direction="contract", scale=0.5,
                  transform="dct", seed=0, respace="affine")
        rep = g.add("SpectralTestReport", samples=e[0], key="fuzz-unused")
        checks = [(rep.id, [1, 16, 8, 8])]
        label = f"{kind} latent -> SpectralNoiseExpand contract"
    else:
        sig = g.add("BasicScheduler", model=wf.model, scheduler="simple", steps=6, denoise=1.0)
        sch = H.schedule_node(g, model=wf.model, sigmas=sig, latent=x)
        out = H.sampling_nodes(g, "allinone", wf.model, wf.pos, wf.neg, x, schedule=sch, steps=6)
        wf.finish(out)
        checks = [(wf.report.id, [1, 16, 16, 16])]
        label = f"{kind} latent -> DeltaSchedule(latent) + all-in-one"
    return Case("nonfinite", label, g.prompt(), checks, True,
                {"latent": kind, "consumer": consumer})


def case_links(rng: random.Random, W: Widgets) -> Case:
    fam_name, path = rng.choice(FAMS), rng.choice(PATHS)
    fam = H.FAMILIES[fam_name]
    wf = H.txt2img(fam, path, h=8, w=8, steps=6, schedule="manual")
    prompt = wf.prompt()
    sched_id = wf.nodes["schedule"].id
    pack_ids = [k for k, v in prompt.items() if v["class_type"] in ("SamplerSpectralProgressive", "SpectralProgressiveModel",
                                                                     "SpectralProgressiveSampler", "DeltaSchedule")]
    node_id = rng.choice(pack_ids)
    node = prompt[node_id]
    socket_inputs = [k for k, v in node["inputs"].items() if isinstance(v, list)]
    if node["class_type"] != "DeltaSchedule":
        socket_inputs = sorted(set(socket_inputs) | {"schedule"})
    mutation = rng.choice(["wrong type", "index out of range", "missing node", "raw value", "raw value", "raw value",
                           "missing input", "bad link list", "dict value"])
    name = rng.choice(socket_inputs) if socket_inputs else rng.choice(W.names(node["class_type"]))
    if mutation == "wrong type":
        node["inputs"][name] = [sched_id, 2] if name != "schedule" else [sched_id, 1]  # STRING / SIGMAS
    elif mutation == "index out of range":
        node["inputs"][name] = [sched_id, 7]
    elif mutation == "missing node":
        node["inputs"][name] = ["9999", 0]
    elif mutation == "raw value":
        node["inputs"][name] = rng.choice([5, "delta", 0.5, {"samples": 1}, {"law": "x"}, [], None, True])
    elif mutation == "missing input":
        name = rng.choice(list(node["inputs"]))
        node["inputs"].pop(name)
    elif mutation == "bad link list":
        node["inputs"][name] = [sched_id, 0, 1]
    else:
        node["inputs"][name] = {"__value__": rng.choice([5, "x", [1, 2]])}
    checks = [(wf.report.id, _shape(fam, 8, 8, 1))]
    return Case("links", f"{fam_name} {path}: {node['class_type']}.{name} {mutation} = {node['inputs'].get(name)!r}"[:160],
                prompt, checks, False, {"family": fam_name, "path": path, "node": node["class_type"], "input": name,
                                        "mutation": mutation, "value": repr(node["inputs"].get(name))})


def case_masks(rng: random.Random, W: Widgets) -> Case:
    fam_name, path = rng.choice(FAMS), rng.choice(PATHS)
    fam = H.FAMILIES[fam_name]
    h, w = rng.choice([(8, 8), (12, 18), (10, 14)])
    b_lat, b_pos, b_neg = rng.choice([1, 2, 3]), rng.choice([1, 2, 3]), rng.choice([1, 2, 3])
    wf = H.workflow(fam)
    g = wf.graph
    wf.pos = g.add("SpectralTestConditioning", family=fam.cond, seed=1, batch_size=b_pos, tokens=0)
    wf.neg = g.add("SpectralTestConditioning", family=fam.cond, seed=2, batch_size=b_neg, tokens=0)
    if fam.name == "flux":
        wf.pos = g.add("FluxGuidance", conditioning=wf.pos, guidance=3.5)
    lat = H.empty_latent(g, fam, h, w, batch=b_lat)
    mh, mw = rng.choice([(h * 8, w * 8), (h, w), (1, 1), (8, 40), (h * 8 + 3, w * 8 - 5), (300, 20)])
    mask = g.add("SolidMask", value=rng.choice([0.0, 0.5, 1.0]), width=mw, height=mh)
    b_mask = rng.choice([1, 1, 2, 3, 5])
    if b_mask > 1:
        img = g.add("MaskToImage", mask=mask)
        img = g.add("RepeatImageBatch", image=img, amount=b_mask)
        mask = g.add("ImageToMask", image=img, channel="red")
    use_mask = rng.random() < 0.8
    if use_mask:
        lat = g.add("SetLatentNoiseMask", samples=lat, mask=mask)
    denoise = rng.choice([1.0, 0.7])
    out = wf.sample(path, lat, schedule=rng.choice(["manual", "default"]), steps=6, denoise=denoise)
    wf.finish(out)
    return Case("masks", f"{fam_name} {path} latent {h}x{w} b{b_lat}, cond b{b_pos}/{b_neg}"
                + (f", mask {mh}x{mw} b{b_mask}" if use_mask else ", no mask") + f", denoise {denoise}",
                g.prompt(), [(wf.report.id, _shape(fam, h, w, b_lat))], False,
                {"family": fam_name, "path": path, "latent_batch": b_lat, "cond_batch": [b_pos, b_neg],
                 "mask": [mh, mw, b_mask] if use_mask else None, "denoise": denoise})


def _fuzzed(rng: random.Random, W: Widgets, node: str, base: dict, n: int) -> tuple[dict, dict]:
    vals, tags = dict(base), {}
    names = [k for k in W.names(node) if k in base]
    for name in rng.sample(names, min(n, len(names))):
        vals[name], tags[f"{node}.{name}"] = W.fuzz(rng, node, name)
    return vals, tags


def case_nodes(rng: random.Random, W: Widgets) -> Case:
    which = rng.choice(["expand", "probe", "bandgain", "edit", "schedule"])
    fam_name = rng.choice(["sd3", "sd15_file", "wan", "flux"])
    fam = H.FAMILIES[fam_name]
    h, w = rng.choice([(8, 8), (6, 10), (5, 7), (16, 12), (3, 3), (1, 9)]) if not fam.video else rng.choice([(8, 8), (6, 10)])
    g = H.Graph()
    model = H.model_node(g, fam)
    checks: list = []
    nonfinite = False
    if fam.video:
        lat = H.empty_latent(g, fam, h, w, 1, 3)
    elif fam.channels == 4:
        lat = g.add("EmptyLatentImage", width=w * 8, height=h * 8, batch_size=1)
    else:
        lat = g.add("EmptySD3LatentImage", width=w * 8, height=h * 8, batch_size=1)
    if rng.random() < 0.5:  # a latent with content: expand an empty half-size one at the second sigma
        sig0 = g.add("BasicScheduler", model=model, scheduler="simple", steps=4, denoise=1.0)
        sig0 = g.add("SplitSigmas", sigmas=sig0, step=1)[1]  # from the second sigma: below pure noise
        lat = g.add("SpectralNoiseExpand", model=model, samples=lat, sigmas=sig0, direction="expand", scale=2.0,
                    transform="dct", seed=1, respace="affine")[0]
        h, w = 2 * h, 2 * w
    if which == "expand":
        steps, den = rng.choice([6, 1]), rng.choice([1.0, 0.5, 0.0])
        sig = g.add("BasicScheduler", model=model, scheduler=rng.choice(["simple", "karras", "normal"]), steps=steps,
                    denoise=den)
        if rng.random() < 0.3:
            sig = g.add("SplitSigmas", sigmas=sig, step=rng.choice([0, 3, 100]))[rng.choice([0, 1])]
        base = dict(direction=rng.choice(["expand", "contract"]), scale=rng.choice([2.0, 0.5, 1.5, 0.75]),
                    transform=rng.choice(["dct", "dwt", "fft"]), seed=0, respace=rng.choice(["affine", "keep"]))
        vals, tags = _fuzzed(rng, W, "SpectralNoiseExpand", base, rng.randint(0, 3))
        e = g.add("SpectralNoiseExpand", model=model, samples=lat, sigmas=sig, **vals)
        rep = g.add("SpectralTestReport", samples=e[0], key="fuzz-unused")
        sc = vals.get("scale")
        shape = None
        if isinstance(sc, float) and math.isfinite(sc):
            shape = [1, fam.channels] + ([3] if fam.video else []) + [max(1, round(h * sc)), max(1, round(w * sc))]
        checks = [(rep.id, shape)]
        nonfinite = any(nonfinite_widget(v) for v in vals.values())
        label = f"SpectralNoiseExpand {fam_name} {h}x{w} sigmas({steps} steps, denoise {den}) {vals}"
    elif which == "probe":
        src = rng.choice(["latent", "image", "both", "none"])
        kw: dict = {}
        if src in ("latent", "both"):
            kw["latent"] = lat
        if src in ("image", "both"):
            kw["image"] = g.add("EmptyImage", width=rng.choice([1, 2, 7, 64]), height=rng.choice([1, 3, 64]),
                                batch_size=1, color=rng.choice([0, 0x808080, 0x123456]))
        vals, tags = _fuzzed(rng, W, "PowerSpectrumProbe", dict(delta=0.01, stages=2), rng.randint(0, 2))
        g.add("PowerSpectrumProbe", **kw, **vals)
        nonfinite = any(nonfinite_widget(v) for v in vals.values())
        label = f"PowerSpectrumProbe {src} {fam_name} {h}x{w} {vals}"
    elif which == "bandgain":
        base = dict(mode=rng.choice(["gains", "transfer"]), cut_low=0.25, cut_high=0.6, gain_low=1.0, gain_mid=1.0,
                    gain_high=1.5, soft=0.05)
        vals, tags = _fuzzed(rng, W, "FrequencyBandGain", base, rng.randint(1, 4))
        kw = {"latent": lat}
        if rng.random() < 0.6:
            bh, bw = rng.choice([(h, w), (h + 2, w), (4, 4)])
            kw["latent_b"] = g.add("EmptySD3LatentImage" if fam.channels == 16 and not fam.video else "EmptyLatentImage",
                                   width=bw * 8, height=bh * 8, batch_size=rng.choice([1, 2]))
        if rng.random() < 0.4:
            kw["image"] = g.add("EmptyImage", width=rng.choice([1, 16, 33]), height=rng.choice([1, 16, 20]), batch_size=1,
                                color=0x405060)
            g.add("PreviewImage", images=g.add("FrequencyBandGain", **vals, **kw)[0])
        e = g.add("FrequencyBandGain", **vals, **kw)
        rep = g.add("SpectralTestReport", samples=e[1], key="fuzz-unused")
        checks = [(rep.id, [1, fam.channels] + ([3] if fam.video else []) + [h, w])]
        nonfinite = any(nonfinite_widget(v) for v in vals.values())
        label = f"FrequencyBandGain {fam_name} {h}x{w} {vals} inputs {sorted(kw)}"
    elif which == "edit":
        pos, neg = H.cond_nodes(g, fam)
        base = dict(seed=0, steps=6, cfg=2.0, sampler_name="euler", scheduler="simple", entry_stage=0, strength=0.85)
        vals, tags = _fuzzed(rng, W, "FrequencyEdit", base, rng.randint(1, 3))
        sch = {}
        if rng.random() < 0.4:
            sch["schedule"] = H.schedule_node(g, stages=rng.choice([1, 2, 3]))
        e = g.add("FrequencyEdit", model=model, positive=pos, negative=neg, source=lat, **vals, **sch)
        rep = g.add("SpectralTestReport", samples=e[0], key="fuzz-unused")
        checks = [(rep.id, [1, fam.channels] + ([3] if fam.video else []) + [h, w])]
        nonfinite = any(nonfinite_widget(v) for v in vals.values())
        label = f"FrequencyEdit {fam_name} {h}x{w} {vals} {'schedule' if sch else ''}"
    else:
        steps = rng.choice([1, 2, 6])
        sig = g.add("BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=rng.choice([1.0, 0.3]))
        vals, tags = _fuzzed(rng, W, "DeltaSchedule", dict(H.SCHEDULE_DEFAULTS), rng.randint(1, 3))
        sch = g.add("DeltaSchedule", model=model, sigmas=sig, latent=lat, **vals)
        pos, neg = H.cond_nodes(g, fam)
        out = g.add("SamplerCustom", model=g.add("SpectralProgressiveModel", model=model, schedule=sch[0], high_band="zero"),
                    add_noise=True, noise_seed=0, cfg=2.0, positive=pos, negative=neg,
                    sampler=g.add("KSamplerSelect", sampler_name="euler"), sigmas=sch[1], latent_image=lat)
        rep = g.add("SpectralTestReport", samples=out[0], key="fuzz-unused")
        checks = [(rep.id, [1, fam.channels] + ([3] if fam.video else []) + [h, w])]
        nonfinite = any(nonfinite_widget(v) for v in vals.values())
        label = f"DeltaSchedule(model, sigmas {steps} steps, latent {h}x{w}) -> mapped_sigmas + patch {vals}"
    return Case("nodes", f"{label}"[:220], g.prompt(), checks, nonfinite, {"node": which, "family": fam_name,
                                                                         "size": [h, w], "widgets": tags})


KINDS = (("widgets", case_widgets, 5), ("sizes", case_sizes, 3), ("nonfinite", case_nonfinite, 2),
         ("links", case_links, 3), ("masks", case_masks, 3), ("nodes", case_nodes, 4))


def make_cases(seed: int, n: int, W: Widgets) -> list[Case]:
    rng = random.Random(seed)
    names = [k for k, _, wt in KINDS for _ in range(wt)]
    builders = {k: f for k, f, _ in KINDS}
    return [builders[rng.choice(names)](rng, W) for _ in range(n)]


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------


def run(seed: int, n: int, out_dir: str, keep: bool, only: int | None) -> int:
    comfy_dir = C.comfy_dir_from_env()
    version = C.comfy_version(comfy_dir)
    records: list[dict] = []
    restarts = 0
    i = 0
    cases: list[Case] | None = None
    t_all = time.time()
    while i < n:
        with C.comfy_server(comfy_dir, keep) as srv:
            info = srv.get("/object_info")
            input_names = C.pack_input_names(info)
            if cases is None:
                cases = make_cases(seed, n, Widgets(info))
                print(f"ComfyUI {version}, fuzz seed {seed}, {n} prompts")
            while i < n:
                case = cases[i]
                if only is not None and i != only:
                    i += 1
                    continue
                if only is not None:
                    print(json.dumps(case.prompt))
                sub = C.submit(srv, case.prompt, timeout=240)
                out = C.classify(sub, input_names, case.checks, case.nonfinite_input)
                unhealthy = C.health(srv)
                if unhealthy and out.cls not in C.FAILURES:
                    out = C.Outcome(C.FAILURE_SERVER, f"unhealthy after the prompt ({out.cls}): {unhealthy}")
                rec = {"i": i, "kind": case.kind, "label": case.label, "outcome": out.to_json(),
                       "seconds": round(sub.seconds, 3), "params": case.params, "health": unhealthy or "ok"}
                records.append(rec)
                mark = "!!" if out.cls in C.FAILURES else "  "
                print(f"{i:3d} {mark} {case.kind:9s} {out.cls:28s} {sub.seconds:6.2f}s  {case.label[:110]}", flush=True)
                if out.cls in C.FAILURES:
                    print(f"      {out.exception_type}: {out.detail[:300]}  at {out.where}  (pack: {out.pack_frame})")
                i += 1
                if unhealthy:
                    print("server unhealthy: restarting it\n" + srv.log_tail(2000))
                    restarts += 1
                    break
    wall = time.time() - t_all
    counts = collections.Counter(r["outcome"]["cls"] for r in records)
    by_kind: dict = collections.defaultdict(collections.Counter)
    for r in records:
        by_kind[r["kind"]][r["outcome"]["cls"]] += 1
    failures = [r for r in records if r["outcome"]["cls"] in C.FAILURES]
    core = [r for r in records if r["outcome"]["cls"] == C.CORE_ERROR]
    named_inputs = collections.Counter(r["outcome"].get("named") for r in records if r["outcome"]["cls"] == C.NAMED)
    summary = {"prompts": len(records), "seed": seed, "outcomes": dict(sorted(counts.items())),
               "failures": len(failures), "server_restarts": restarts, "wall_seconds": round(wall, 1),
               "named_errors_by_input": dict(sorted(named_inputs.items(), key=lambda kv: str(kv[0]))),
               "core_errors": [f"{r['i']}: {r['outcome'].get('node_type')} {r['outcome'].get('exception_type')}: "
                               f"{r['outcome'].get('detail', '')[:160]}" for r in core]}
    result = {"benchmark": "fuzz", "comfyui_version": version, "comfyui_path": comfy_dir,
              "command": "python -m tests.load.fuzz " + " ".join(sys.argv[1:]), "python": platform.python_version(),
              "summary": summary, "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())}, "prompts": records}
    path = C.write_json(out_dir, "fuzz.json", result) if only is None else None
    classes = sorted(counts)
    rows = [[k] + [by_kind[k].get(c, 0) for c in classes] + [sum(by_kind[k].values())] for k in sorted(by_kind)]
    rows.append(["all"] + [counts[c] for c in classes] + [len(records)])
    print()
    print(C.table(rows, ["kind"] + classes + ["total"]))
    if failures:
        print("\nFAILURES:")
        for r in failures:
            o = r["outcome"]
            print(f"  {r['i']:3d} {r['label'][:120]}\n      {o.get('exception_type')}: {o.get('detail', '')[:300]}"
                  f"  at {o.get('where')} (pack: {o.get('pack_frame')})")
    print(f"\nnamed errors by input: {summary['named_errors_by_input']}")
    if path:
        print(f"written: {path}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--only", type=int, default=None, help="run only prompt number ONLY (to reproduce one case)")
    ap.add_argument("--keep", action="store_true", help="keep the server's temporary folder (log, outputs)")
    a = ap.parse_args(argv)
    return run(a.seed, a.prompts, a.out, a.keep, a.only)


if __name__ == "__main__":
    sys.exit(main())

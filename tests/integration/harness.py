"""Shared helpers of the integration tests: the COMFYUI_PATH gate, API-format prompt building,
and the plan/call arithmetic the tests assert on.  Imports nothing from ComfyUI at import time.

Every test module starts with ``harness.require_comfyui()`` (a module-level skip with the reason
printed by ``pytest -rs`` when COMFYUI_PATH is unset).
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

ENV = "COMFYUI_PATH"
PACK_NODES = ("SamplerSpectralProgressive", "SpectralProgressiveModel", "SpectralProgressiveSampler", "DeltaSchedule",
              "PowerSpectrumProbe", "SpectralNoiseExpand")


def comfyui_path() -> str | None:
    p = os.environ.get(ENV)
    return os.path.abspath(p) if p else None


def require_comfyui() -> str:
    """Module-level skip (with the reason) unless COMFYUI_PATH points at a ComfyUI checkout."""
    p = comfyui_path()
    if not p:
        pytest.skip(f"{ENV} is not set: the integration tests need a real ComfyUI checkout "
                    f"(e.g. {ENV}=/path/to/ComfyUI)", allow_module_level=True)
    if not os.path.isfile(os.path.join(p, "execution.py")) or not os.path.isdir(os.path.join(p, "comfy")):
        pytest.skip(f"{ENV}={p} is not a ComfyUI checkout (no execution.py / comfy/)", allow_module_level=True)
    return p


# ------------------------------------------------------------------------------------------------
# what the tests know about the tiny models (independent of the pack's model adapter)
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    name: str
    loader: str  # "file": UNETLoader on a tiny file; "node": built in-process by SpectralTestModelLoader
    frame: str  # "const" (flow) or "eps"
    multiple: int  # spatial multiple: patch size / 2^(UNet levels - 1)
    channels: int
    video: bool
    cond_family: str = ""
    empty: str = ""  # the family's own Empty*Latent node ("" = by channels / video, see empty_latent)
    preset: str = ""  # the spectrum preset "auto" must pick ("" = "wan" for video, else "flux")
    latent_5d: bool = False  # an image model on a 5-D latent (Qwen-Image: the WAN 2.1 latent, T = 1)

    @property
    def cond(self) -> str:
        return self.cond_family or self.name


FAMILIES = {
    # FLUX: built in-process by a test node: comfy.model_detection hard-codes full-size FLUX dims,
    # so a tiny FLUX file cannot be detected by UNETLoader.
    "flux": Family("flux", "node", "const", 2, 16, False),
    "sd3": Family("sd3", "file", "const", 2, 16, False),
    # SD1.5 (EPS): the 32-channel 2-level UNet is in-process (detection needs 320 channels);
    # the 320-channel "sd15_file" is loaded by UNETLoader in the HTTP tests.
    "sd15": Family("sd15", "node", "eps", 2, 4, False),
    "wan": Family("wan21_t2v", "file", "const", 2, 16, True),
    "sd15_file": Family("sd15_file", "file", "eps", 1, 4, False),
    "sd15_inpaint": Family("sd15_inpaint", "node", "eps", 2, 4, False, cond_family="sd15"),
}
MAIN_FAMILIES = ("flux", "sd3", "sd15", "wan")
# Issue 13 "Families": tiny real architectures (test_families.py).  All are built in-process
# (model_detection hard-codes full-size dims for SDXL, Qwen-Image, Lumina 2 / Z-Image and LTXV) except
# SD3.5, WAN 2.2 TI2V-5B and HunyuanVideo, whose tiny files detection rebuilds exactly.  Spectrum presets:
# only the FLUX / Z-Image and WAN 2.1 latents have published ones; the rest fall back to "flux".
FAMILIES.update({
    "sdxl": Family("sdxl", "node", "eps", 4, 4, False, preset="flux"),
    "sd35": Family("sd35", "file", "const", 2, 16, False, preset="flux"),
    "qwen_image": Family("qwen_image", "node", "const", 2, 16, False, preset="wan", latent_5d=True),
    "zimage": Family("zimage", "node", "const", 2, 16, False, preset="flux"),
    "hunyuan_video": Family("hunyuan_video", "file", "const", 2, 16, True, preset="flux"),
    "ltxv": Family("ltxv", "node", "const", 1, 128, True, empty="EmptyLTXVLatentVideo", preset="flux"),
    "wan22_5b": Family("wan22_t2v", "file", "const", 2, 48, True, empty="EmptyHunyuanVideo15Latent", preset="flux"),
    # WAN 2.2 A14B: two WAN 2.1-architecture experts (high noise, then low noise), the WAN 2.1 latent
    "wan22_high": Family("wan22_high", "node", "const", 2, 16, True, preset="wan"),
    "wan22_low": Family("wan22_low", "node", "const", 2, 16, True, preset="wan"),
})
NEW_FAMILIES = ("sdxl", "sd35", "qwen_image", "zimage", "hunyuan_video", "ltxv", "wan22_5b")


# ------------------------------------------------------------------------------------------------
# API-format prompts
# ------------------------------------------------------------------------------------------------

class Ref:
    def __init__(self, node_id: str, index: int = 0):
        self.id, self.index = node_id, index

    def __getitem__(self, index: int) -> "Ref":
        return Ref(self.id, index)

    def link(self) -> list:
        return [self.id, self.index]


class Graph:
    """Builds an API-format prompt: ``g.add("KSampler", model=ref, seed=0, ...)`` returns a Ref."""

    def __init__(self):
        self.nodes: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def add(self, class_type: str, _id: str | None = None, **inputs: Any) -> Ref:
        nid = _id or str(next(self._ids))
        self.nodes[nid] = {"class_type": class_type,
                           "inputs": {k: (v.link() if isinstance(v, Ref) else v) for k, v in inputs.items()}}
        return Ref(nid)

    def prompt(self) -> dict:
        return {k: {"class_type": v["class_type"], "inputs": dict(v["inputs"])} for k, v in self.nodes.items()}


def model_node(g: Graph, fam: Family, seed: int = 0) -> Ref:
    if fam.loader == "file":
        return g.add("UNETLoader", unet_name=f"tiny_{fam.name}.safetensors", weight_dtype="default")
    return g.add("SpectralTestModelLoader", family=fam.name, seed=seed)


def cond_nodes(g: Graph, fam: Family, batch: int = 1, negative: str = "random") -> tuple[Ref, Ref]:
    """(positive, negative).  negative "random": a different random prompt; "zero": ConditioningZeroOut."""
    pos = g.add("SpectralTestConditioning", family=fam.cond, seed=1, batch_size=batch, tokens=0)
    if negative == "zero":
        neg = g.add("ConditioningZeroOut", conditioning=pos)
    else:
        neg = g.add("SpectralTestConditioning", family=fam.cond, seed=2, batch_size=batch, tokens=0)
    if fam.name == "flux":
        pos = g.add("FluxGuidance", conditioning=pos, guidance=3.5)
    return pos, neg


def empty_latent(g: Graph, fam: Family, h: int, w: int, batch: int = 1, frames: int = 3) -> Ref:
    """An Empty*Latent node giving an (h, w) latent (frames = latent frames for video)."""
    if fam.empty == "EmptyLTXVLatentVideo":  # 32x spatially, 8x in time, 128 channels
        return g.add("EmptyLTXVLatentVideo", width=w * 32, height=h * 32, length=(frames - 1) * 8 + 1,
                     batch_size=batch)
    if fam.empty == "EmptyHunyuanVideo15Latent":  # 16x spatially (WAN 2.2 TI2V-5B's ratio); channels repeated to 48
        import nodes
        if "EmptyHunyuanVideo15Latent" in nodes.NODE_CLASS_MAPPINGS:
            return g.add("EmptyHunyuanVideo15Latent", width=w * 16, height=h * 16, length=(frames - 1) * 4 + 1,
                         batch_size=batch)
        # ComfyUI 0.3.64: no 16x empty node, and no rescale of an empty latent by its downscale ratio
        return g.add("EmptyHunyuanLatentVideo", width=w * 8, height=h * 8, length=(frames - 1) * 4 + 1,
                     batch_size=batch)
    if fam.video:
        return g.add("EmptyHunyuanLatentVideo", width=w * 8, height=h * 8, length=(frames - 1) * 4 + 1, batch_size=batch)
    if fam.channels == 4:
        return g.add("EmptyLatentImage", width=w * 8, height=h * 8, batch_size=batch)
    return g.add("EmptySD3LatentImage", width=w * 8, height=h * 8, batch_size=batch)


SCHEDULE_DEFAULTS = dict(mode="delta", delta=0.01, stages=2, scales="", transform="dct", spectrum="auto",
                         custom_A=203.62, custom_beta=1.9155, refill="paper", respace="affine", manual_switch="",
                         manual_unit="sigma")


def schedule_node(g: Graph, **kw: Any) -> Ref:
    inputs = dict(SCHEDULE_DEFAULTS)
    inputs.update(kw)
    return g.add("DeltaSchedule", **inputs)


def manual_schedule(g: Graph, switch: str = "4", unit: str = "step", **kw: Any) -> Ref:
    return schedule_node(g, mode="manual", manual_switch=switch, manual_unit=unit, **kw)


def sampling_nodes(g: Graph, path: str, model: Ref, pos: Ref, neg: Ref, latent: Ref, *, schedule: Ref | None,
                   sampler: str = "euler", scheduler: str = "simple", steps: int = 10, cfg: float = 2.0,
                   seed: int = 0, denoise: float = 1.0, high_band: str = "zero") -> Ref:
    """The sampling subgraph of one path; returns the Ref of the sampled LATENT.

    path "sampler": KSamplerSelect -> SamplerSpectralProgressive -> SamplerCustomAdvanced (CFGGuider,
    BasicScheduler, RandomNoise); "allinone": SpectralProgressiveSampler; "patch": SpectralProgressiveModel
    -> KSampler; "plain": KSampler (baseline); "plain_custom": SamplerCustomAdvanced with the bare sampler.
    """
    sched = {} if schedule is None else {"schedule": schedule}
    if path in ("sampler", "plain_custom"):
        ks = g.add("KSamplerSelect", sampler_name=sampler)
        if path == "sampler":
            ks = g.add("SamplerSpectralProgressive", sampler=ks, **sched)
        sig = g.add("BasicScheduler", model=model, scheduler=scheduler, steps=steps, denoise=denoise)
        guider = g.add("CFGGuider", model=model, positive=pos, negative=neg, cfg=cfg)
        noise = g.add("RandomNoise", noise_seed=seed)
        return g.add("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=ks, sigmas=sig, latent_image=latent)
    if path == "allinone":
        return g.add("SpectralProgressiveSampler", model=model, seed=seed, steps=steps, cfg=cfg, sampler_name=sampler,
                     scheduler=scheduler, positive=pos, negative=neg, latent_image=latent, denoise=denoise, **sched)
    if path == "patch":
        model = g.add("SpectralProgressiveModel", model=model, high_band=high_band, **sched)
    elif path != "plain":
        raise ValueError(path)
    return g.add("KSampler", model=model, seed=seed, steps=steps, cfg=cfg, sampler_name=sampler, scheduler=scheduler,
                 positive=pos, negative=neg, latent_image=latent, denoise=denoise)


@dataclass
class Workflow:
    """A graph with the parts tests look at."""

    graph: Graph
    fam: Family
    model: Ref  # the model as the sampler gets it before the pack's patch (after ModelSampling* patches)
    pos: Ref
    neg: Ref
    key: str  # call-recorder key of ``recorded``
    recorded: Ref  # ``model`` behind SpectralTestCallRecorder
    out: Ref | None = None  # the sampled LATENT
    report: Ref | None = None
    nodes: dict = field(default_factory=dict)  # named refs (latent, source, sigmas, ...)

    def prompt(self) -> dict:
        return self.graph.prompt()

    def sample(self, path: str, latent: Ref, *, schedule: str | dict | None = "manual", record: bool = True,
               **kw: Any) -> Ref:
        sch = make_schedule(self.graph, schedule)
        if sch is not None:
            self.nodes["schedule"] = sch
        model = self.recorded if record else self.model
        out = sampling_nodes(self.graph, path, model, self.pos, self.neg, latent, schedule=sch, **kw)
        return out

    def keep(self, ref: Ref) -> Ref:
        """Make ``ref`` (a LATENT) an output dependency so the executor runs it."""
        self.graph.add("SpectralTestReport", samples=ref, key=f"unrecorded-{next(_keys)}")
        return ref

    def finish(self, out: Ref) -> "Workflow":
        self.out = out
        self.report = self.graph.add("SpectralTestReport", samples=out, key=self.key)
        return self


_keys = itertools.count(1)


def workflow(fam: Family, *, model_patch: dict | None = None, negative: str = "random", batch_cond: int = 1) -> Workflow:
    """Model (+ an optional ModelSampling* patch), a call recorder, positive and negative."""
    g = Graph()
    model = model_node(g, fam)
    if model_patch is not None:
        model = g.add(model_patch["class_type"], model=model, **{k: v for k, v in model_patch.items() if k != "class_type"})
    key = f"calls-{next(_keys)}"
    rec = g.add("SpectralTestCallRecorder", model=model, key=key)
    pos, neg = cond_nodes(g, fam, batch=batch_cond, negative=negative)
    return Workflow(g, fam, model, pos, neg, key, rec)


def txt2img(fam: Family, path: str, *, h: int = 16, w: int = 16, batch: int = 1, frames: int = 3,
            schedule: str | dict | None = "manual", model_patch: dict | None = None, negative: str = "random",
            **kw: Any) -> Workflow:
    """A full txt2img (t2v) workflow for one path.  schedule: "manual" (switch at step 4 of the
    user's steps), "default" (no schedule input), None (plain paths) or DeltaSchedule widget values."""
    wf = workflow(fam, model_patch=model_patch, negative=negative)
    lat = empty_latent(wf.graph, fam, h, w, batch, frames)
    wf.nodes["latent"] = lat
    return wf.finish(wf.sample(path, lat, schedule=schedule, **kw))


def make_schedule(g: Graph, schedule: str | dict | None) -> Ref | None:
    if schedule is None or schedule == "default":
        return None
    if schedule == "manual":
        return manual_schedule(g, "4", "step")
    return schedule_node(g, **schedule)


# ------------------------------------------------------------------------------------------------
# plan and call arithmetic (pure math from the pack's own planner, pip-installed)
# ------------------------------------------------------------------------------------------------

def spec_from(schedule: str | dict | None):
    from spectral_progressive.schedules.spec import ScheduleSpec, scales_for_stages
    if schedule is None or schedule == "default":
        return ScheduleSpec()
    if schedule == "manual":
        return ScheduleSpec(mode="manual", switch_steps=(4,))
    kw = dict(SCHEDULE_DEFAULTS)
    kw.update(schedule)
    from spectral_progressive.spectral_core.spectra import PowerLaw
    scales = tuple(float(v) for v in kw["scales"].split(",")) if kw["scales"].strip() else scales_for_stages(kw["stages"])
    spectrum = PowerLaw(kw["custom_A"], kw["custom_beta"]) if kw["spectrum"] == "custom" else kw["spectrum"]
    extra = {}
    if kw["mode"] == "manual":
        vals = [v for v in kw["manual_switch"].split(",") if v.strip()]
        if kw["manual_unit"] == "step":
            extra["switch_steps"] = tuple(int(v) for v in vals)
        else:
            extra["switch_sigmas"] = tuple(float(v) for v in vals)
    return ScheduleSpec(mode=kw["mode"], delta=kw["delta"], scales=scales, transform=kw["transform"], spectrum=spectrum,
                        refill=kw["refill"], respace=kw["respace"], **extra)


def auto_spectrum(fam: Family) -> str:
    return fam.preset or ("wan" if fam.video else "flux")


def plan_for(spec, sigmas, size, fam: Family, entry: str = "noise"):
    return spec.plan(sigmas, tuple(size), frame=fam.frame, spatial_multiple=fam.multiple,
                     auto_spectrum=auto_spectrum(fam), entry=entry)


def t_of_sigma(frame: str, s: float) -> float:
    return s if frame == "const" else s / (1.0 + s)


def sigma_of_t(frame: str, t: float) -> float:
    return t if frame == "const" else t / (1.0 - t)


def one_eval(sigmas) -> list[float]:
    """The sigmas a one-evaluation-per-step sampler (euler, dpmpp_2m, euler_ancestral) calls the model at."""
    return [float(v) for v in sigmas[:-1]]


def heun_evals(sigmas) -> list[float]:
    """Heun: at sigma_i, then at sigma_{i+1} for the correction unless sigma_{i+1} is 0 (Euler step)."""
    out = []
    for a, b in zip([float(v) for v in sigmas[:-1]], [float(v) for v in sigmas[1:]]):
        out.append(a)
        if b != 0.0:
            out.append(b)
    return out


def expected_sampler_calls(plan, rows: int, evals=one_eval) -> list[tuple[tuple[int, int], float, int]]:
    """Formulation 1: stage i runs the base sampler on its own sigmas at its own size."""
    out = []
    for st in plan.stages:
        for s in evals(st.sigmas):
            out.append((tuple(st.size), float(s), rows))
    return out


def expected_patch_calls(plan, sigmas, frame: str, rows: int, evals=one_eval) -> list[tuple[tuple[int, int], float, int]]:
    """Formulation 2 on the user's sigmas: stage i (contracted sigma) while the full-size time is
    above its aligned switch time T_i, then the full size."""
    out = []
    for s in evals(sigmas):
        t = t_of_sigma(frame, s)
        i = plan.stage_index(t)
        st = plan.stages[i]
        if i == len(plan.stages) - 1:
            out.append((tuple(st.size), s, rows))
        else:
            g = st.growth
            out.append((tuple(st.size), sigma_of_t(frame, t / (g * (1.0 - t) + t)), rows))
    return out


def observed_calls(calls: list[dict]) -> list[tuple[tuple[int, int], float, int]]:
    return [(tuple(c["shape"][-2:]), float(c["sigma"][0]), int(c["shape"][0])) for c in calls]


def assert_calls(observed: list, expected: list, rel: float = 1e-4) -> None:
    """Same sequence of (spatial size, rows) and the same sigmas (float32 tolerance)."""
    got = [(s, r) for s, _, r in observed]
    want = [(s, r) for s, _, r in expected]
    assert got == want, f"model calls (size, batch rows):\n got  {got}\n want {want}"
    for i, ((_, a, _), (_, b, _)) in enumerate(zip(observed, expected)):
        if math.isinf(b):
            assert a > 1e3, (i, a, b)
        else:
            assert a == pytest.approx(b, rel=rel, abs=1e-6), f"call {i}: sigma {a} != planned {b}"

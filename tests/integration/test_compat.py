"""Issue 13 item 4, "Next to other packs": the pack with ComfyUI core's own nodes that change the
model or the conditioning, through both formulations (the SAMPLER: SamplerSpectralProgressive in
SamplerCustomAdvanced and the all-in-one; the MODEL patch: SpectralProgressiveModel before KSampler).

* EasyCache / LazyCache (comfy_extras/nodes_easycache.py), in front of and behind the patch and with
  the sampler nodes.  The caches keep tensors of the previous step; the pack gives every stage size
  its own cache state (nodes/stage_conds.stage_step_cache), so a size change never meets a cached
  tensor of the other size.
* LoRA: ComfyUI's own weight patches (LoraLoaderModelOnly on a tiny LoRA file with ComfyUI's key names).
* ControlNet: a tiny SD1.5-architecture ControlNet (comfy.cldm + comfy.controlnet.ControlNet) applied by
  ControlNetApplyAdvanced with a hint image.
* Reference latents: FLUX Kontext-style ReferenceLatent on tiny FLUX.

The models are built in-process (tiny_models) and handed to the graph as values, so the tests can
count the real network evaluations with a forward hook on the network's input layer: a step a
cache skips never reaches that layer (a recorder on the model wrapper would still see it).  The
measured saving is the ratio of tokens (batch rows x latent tokens) of those evaluations.
"""
from __future__ import annotations

import contextlib
import os

import pytest
import torch

from . import harness as H
from .test_sampling import ran_ok

H.require_comfyui()

PATHS = ("sampler", "allinone", "patch")
SWITCH = {"mode": "manual", "manual_switch": "3", "manual_unit": "step"}
SAVINGS: dict = {}  # printed at the end of the module (pytest -s) for the compatibility table


@pytest.fixture(scope="module", autouse=True)
def _print_savings():
    yield
    if SAVINGS:
        print("\nmeasured network tokens (plain / variant):")
        for k, v in SAVINGS.items():
            print(f"  {k}: {v}")


def tiny():
    import sys
    return sys.modules["spectral_it_tiny_models"]


def value(v):
    return {"__value__": v}


# ------------------------------------------------------------------------------------------------
# counting real network evaluations
# ------------------------------------------------------------------------------------------------

def entry_layer(mp, fam: str):
    dm = mp.model.diffusion_model
    return {"sd3": lambda: dm.x_embedder, "flux": lambda: dm.img_in, "sd15": lambda: dm.input_blocks[0][0]}[fam]()


def tokens_of(shape: tuple, fam: str) -> int:
    """Tokens of one evaluation from the entry layer's input: (B,C,H,W) for SD3 (2x2 patches) and the
    UNet (pixels of the latent), (B, N, C) for FLUX (N already counts reference tokens)."""
    if fam == "flux":
        return shape[0] * shape[1]
    if fam == "sd3":
        return shape[0] * (shape[-2] // 2) * (shape[-1] // 2)
    return shape[0] * shape[-2] * shape[-1]


@contextlib.contextmanager
def network_calls(mp, fam: str):
    calls: list[tuple] = []
    h = entry_layer(mp, fam).register_forward_pre_hook(lambda m, a: calls.append(tuple(a[0].shape)))
    try:
        yield calls
    finally:
        h.remove()


def run(comfy, mp, fam: str, g: H.Graph, out: H.Ref):
    """Runs the prompt; returns (result, entry-layer input shapes of every real evaluation, report node)."""
    rep = g.add("SpectralTestReport", samples=out, key="compat")
    with network_calls(mp, fam) as calls:
        r = comfy.run(g.prompt())
    comfy.calls("compat")
    return r, list(calls), rep


def latent_of(r, ref: H.Ref):
    return r.out(ref)["samples"]


def total(calls, fam) -> int:
    return sum(tokens_of(c, fam) for c in calls)


# ------------------------------------------------------------------------------------------------
# graphs
# ------------------------------------------------------------------------------------------------

def base_graph(fam: H.Family, mp, h=16, w=16):
    g = H.Graph()
    model = g.add("SpectralTestCallRecorder", model=value(mp), key="compat")  # a plain MODEL node in front
    pos, neg = H.cond_nodes(g, fam)
    lat = H.empty_latent(g, fam, h, w)
    return g, model, pos, neg, lat


def cache_node(g: H.Graph, kind: str, model: H.Ref) -> H.Ref:
    return g.add(kind, model=model, reuse_threshold=0.2, start_percent=0.15, end_percent=0.95, verbose=False)


def sample(g, path, model, pos, neg, lat, *, cache=None, where="front", steps=10, cfg=2.0, schedule=SWITCH,
           sampler="euler"):
    """``path`` in PATHS or "plain"; ``cache`` (EasyCache / LazyCache) in front of the pack's node
    ("front": model -> cache -> patch) or behind it ("behind": model -> patch -> cache)."""
    sch = H.schedule_node(g, **schedule) if path != "plain" else None
    if cache is not None and (path != "patch" or where == "front"):
        model = cache_node(g, cache, model)
    if path == "patch":
        model = g.add("SpectralProgressiveModel", model=model, high_band="zero", schedule=sch)
        if cache is not None and where == "behind":
            model = cache_node(g, cache, model)
        path = "plain"
    return H.sampling_nodes(g, path, model, pos, neg, lat, schedule=sch, steps=steps, cfg=cfg, sampler=sampler)


def low_stage_calls(calls, fam, full=(16, 16)) -> int:
    """Evaluations below the full size (FLUX: fewer tokens than the full latent's 2x2 patches)."""
    if fam == "flux":
        return sum(1 for c in calls if c[1] < (full[0] // 2) * (full[1] // 2))
    return sum(1 for c in calls if tuple(c[-2:]) != tuple(full))


# ------------------------------------------------------------------------------------------------
# 1. EasyCache / LazyCache
# ------------------------------------------------------------------------------------------------

CACHE_CASES = [("sampler", "front"), ("allinone", "front"), ("patch", "front"), ("patch", "behind")]


def _require(node: str):
    import nodes
    if node not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip(f"this ComfyUI has no core {node} node (comfy_extras/nodes_easycache.py)")


@pytest.fixture(scope="module")
def cache_baselines(comfy, flux_model):
    """Token totals of the plain run and of each cache alone (same seed, 10 steps, CFG 2)."""
    fam = H.FAMILIES["flux"]
    out = {}
    for cache in (None, "EasyCache", "LazyCache"):
        if cache is not None:
            import nodes
            if cache not in nodes.NODE_CLASS_MAPPINGS:
                continue
        g, model, pos, neg, lat = base_graph(fam, flux_model)
        res = sample(g, "plain", model, pos, neg, lat, cache=cache)
        r, calls, _ = run(comfy, flux_model, "flux", g, res)
        ran_ok(r)
        out[cache] = (total(calls, "flux"), len(calls), latent_of(r, res))
    return out


@pytest.fixture(scope="module")
def sd3_model(comfy):
    return tiny().build("sd3", seed=0)


@pytest.fixture(scope="module")
def flux_model(comfy):
    return tiny().build("flux", seed=0)


@pytest.mark.parametrize("path,where", CACHE_CASES)
@pytest.mark.parametrize("cache", ["EasyCache", "LazyCache"])
def test_step_cache_with_progression(comfy, flux_model, cache_baselines, cache, path, where):
    """Works: right size, finite, a real low stage; the cache's skips add to the progression's saving
    (never more tokens than the progression alone, fewer than the plain run and the cache alone)."""
    _require(cache)
    fam = H.FAMILIES["flux"]
    results = {}
    for c in (None, cache):
        g, model, pos, neg, lat = base_graph(fam, flux_model)
        res = sample(g, path, model, pos, neg, lat, cache=c, where=where)
        r, calls, _ = run(comfy, flux_model, "flux", g, res)
        ran_ok(r)
        results[c] = (total(calls, "flux"), calls, latent_of(r, res))
    prog_tokens, _, _ = results[None]
    comb_tokens, comb_calls, out = results[cache]
    plain_tokens, plain_n, plain_out = cache_baselines[None]
    cache_tokens = cache_baselines[cache][0]
    assert tuple(out.shape) == (1, 16, 16, 16) and bool(torch.isfinite(out).all())
    assert low_stage_calls(comb_calls, "flux") >= 1, comb_calls  # the low stage ran (and was not all cached)
    assert comb_tokens <= prog_tokens  # the cache only removes evaluations
    assert comb_tokens < plain_tokens and comb_tokens < cache_tokens, (comb_tokens, plain_tokens, cache_tokens)
    SAVINGS[f"{cache} {path}/{where}"] = (
        f"plain {plain_tokens} ({plain_n} calls), cache alone {cache_tokens}, progression alone {prog_tokens}, "
        f"both {comb_tokens} ({len(comb_calls)} calls): {plain_tokens / comb_tokens:.2f}x vs plain, "
        f"{cache_tokens / comb_tokens:.2f}x vs the cache alone")


@pytest.mark.parametrize("switch", ["2", "4"])
@pytest.mark.parametrize("path", ["sampler", "patch"])
@pytest.mark.parametrize("cache", ["EasyCache", "LazyCache"])
def test_step_cache_across_switch_points(comfy, flux_model, cache, path, switch, caplog):
    """An early and a late switch (the cache starts at 15 %).  The cache never sees a size change:
    without the per-size state, the caches noticed the new size, reset themselves ("Tensor shape, dtype
    or device changed, resetting state") and, the reset setting their transformation rate to 0, skipped
    the next steps unmeasured (EasyCache on the patch, switch at step 2: 3 evaluations instead of 5 and
    a larger deviation from the uncached run; 4 of these 8 cases logged the reset before the fix)."""
    import logging
    _require(cache)
    caplog.set_level(logging.WARNING)
    fam = H.FAMILIES["flux"]
    g, model, pos, neg, lat = base_graph(fam, flux_model)
    res = sample(g, path, model, pos, neg, lat, cache=cache,
                 schedule={"mode": "manual", "manual_switch": switch, "manual_unit": "step"})
    r, calls, _ = run(comfy, flux_model, "flux", g, res)
    ran_ok(r)
    out = latent_of(r, res)
    assert tuple(out.shape) == (1, 16, 16, 16) and bool(torch.isfinite(out).all())
    assert low_stage_calls(calls, "flux") >= 1
    assert not [m for m in caplog.messages if "resetting state" in m], caplog.messages


def test_unknown_step_cache_is_refused_before_sampling(comfy, sd3_model):
    """Something under transformer_options["easycache"] that is not a core cache holder cannot be given
    per-size state: refused before the first evaluation, naming the node to remove."""
    fam = H.FAMILIES["sd3"]
    foreign = sd3_model.clone()
    foreign.model_options["transformer_options"]["easycache"] = object()
    for path, node in (("patch", "KSampler"), ("sampler", "SamplerCustomAdvanced")):
        g, model, pos, neg, lat = base_graph(fam, foreign)
        res = sample(g, path, model, pos, neg, lat)
        r, calls, _ = run(comfy, sd3_model, "sd3", g, res)
        assert not r.ok and r.error is not None, r.messages
        assert r.error["node_type"] == node, r.error
        assert "remove the EasyCache / LazyCache node" in r.error["exception_message"], r.error
        assert calls == []


# ------------------------------------------------------------------------------------------------
# 2. LoRA (ComfyUI's weight patches)
# ------------------------------------------------------------------------------------------------

def _lora_file(mp, folder: str, rank: int = 4, seed: int = 5) -> tuple[str, dict]:
    """A LoRA in ComfyUI's generic key format (``diffusion_model.<layer>.lora_up/down.weight``,
    ``.alpha``) on every Linear weight of the tiny model; returns its name and the merged deltas."""
    import safetensors.torch
    gen = torch.Generator().manual_seed(seed)
    sd, deltas = {}, {}
    for k, w in mp.model.diffusion_model.state_dict().items():
        if not k.endswith(".weight") or w.ndim != 2:
            continue
        base = "diffusion_model." + k[:-len(".weight")]
        up = torch.randn(w.shape[0], rank, generator=gen) * 0.1
        down = torch.randn(rank, w.shape[1], generator=gen) * 0.1
        sd[base + ".lora_up.weight"], sd[base + ".lora_down.weight"] = up, down
        sd[base + ".alpha"] = torch.tensor(float(rank))
        deltas[k] = up @ down
    os.makedirs(folder, exist_ok=True)
    name = "tiny_sd3_compat_lora.safetensors"
    safetensors.torch.save_file(sd, os.path.join(folder, name))
    return name, deltas


@pytest.fixture(scope="module")
def lora(comfy, sd3_model):
    import folder_paths
    folder = os.path.join(comfy.root, "loras")
    name, deltas = _lora_file(sd3_model, folder)
    folder_paths.add_model_folder_path("loras", folder)
    merged = tiny().build("sd3", seed=0)  # the same weights with the LoRA merged by hand
    with torch.no_grad():
        for k, p in merged.model.diffusion_model.state_dict(keep_vars=True).items():
            if k in deltas:
                p.add_(deltas[k].to(p.dtype))
    return name, merged


@pytest.mark.parametrize("path", PATHS)
def test_lora_patched_model(comfy, sd3_model, lora, path):
    """LoraLoaderModelOnly in front: the progressive run equals the progressive run of the model with
    the LoRA merged into its weights (so the patch is in effect at every stage size), differs from the
    unpatched run, and keeps the progression's saving."""
    name, merged = lora
    fam = H.FAMILIES["sd3"]
    outs = {}
    for variant in ("lora", "none", "merged", "plain_lora"):
        mp = merged if variant == "merged" else sd3_model
        g, model, pos, neg, lat = base_graph(fam, mp)
        if variant in ("lora", "plain_lora"):
            model = g.add("LoraLoaderModelOnly", model=model, lora_name=name, strength_model=1.0)
        res = sample(g, "plain" if variant == "plain_lora" else path, model, pos, neg, lat)
        r, calls, _ = run(comfy, mp, "sd3", g, res)
        ran_ok(r)
        outs[variant] = (latent_of(r, res), total(calls, "sd3"), calls)
    out, toks, calls = outs["lora"]
    assert tuple(out.shape) == (1, 16, 16, 16) and bool(torch.isfinite(out).all())
    assert low_stage_calls(calls, "sd3") >= 1
    torch.testing.assert_close(out, outs["merged"][0], rtol=1e-3, atol=1e-3 * float(out.abs().max()))
    assert (out - outs["none"][0]).abs().max() > 1e-2 * float(out.abs().max()), "the LoRA must change the result"
    assert toks < outs["plain_lora"][1]
    SAVINGS[f"LoRA {path}"] = f"plain {outs['plain_lora'][1]}, progressive {toks}: {outs['plain_lora'][1] / toks:.2f}x"


# ------------------------------------------------------------------------------------------------
# 3. ControlNet (tiny SD1.5 ControlNet, ControlNetApplyAdvanced with a hint image)
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sd15_model(comfy):
    return tiny().build("sd15", seed=0)


@pytest.mark.parametrize("path", PATHS)
def test_controlnet_hint_follows_the_stage(comfy, sd15_model, path):
    """ComfyUI's ControlNet resizes its hint to every call's latent (x 8 pixels): in a low stage the
    hint is the stage's size, the control residuals match the stage's UNet features, the run is
    finite, ControlNet changes the result, and the saving is kept (the ControlNet runs at the stage
    size too, counted separately)."""
    fam = H.FAMILIES["sd15"]
    cn = tiny().build_controlnet("sd15", seed=7)
    hint = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(3))
    hints: list[tuple] = []
    hook = cn.control_model.input_hint_block[0].register_forward_pre_hook(lambda m, a: hints.append(tuple(a[0].shape)))
    outs = {}
    try:
        for variant in ("cn", "none", "plain_cn"):
            hints.clear()
            g, model, pos, neg, lat = base_graph(fam, sd15_model)
            if variant != "none":
                applied = g.add("ControlNetApplyAdvanced", positive=pos, negative=neg, control_net=value(cn),
                                image=value(hint), strength=1.0, start_percent=0.0, end_percent=1.0)
                pos, neg = applied[0], applied[1]
            res = sample(g, "plain" if variant == "plain_cn" else path, model, pos, neg, lat)
            r, calls, _ = run(comfy, sd15_model, "sd15", g, res)
            ran_ok(r)
            outs[variant] = (latent_of(r, res), calls, list(hints))
    finally:
        hook.remove()
    out, calls, cn_calls = outs["cn"]
    assert tuple(out.shape) == (1, 4, 16, 16) and bool(torch.isfinite(out).all())
    assert low_stage_calls(calls, "sd15") >= 1
    # one ControlNet evaluation per UNet evaluation, its hint at 8x the call's latent size
    assert [c[-2:] for c in cn_calls] == [(8 * c[-2], 8 * c[-1]) for c in calls], (cn_calls, calls)
    assert (out - outs["none"][0]).abs().max() > 1e-6 * float(out.abs().max()), "ControlNet must change the result"
    plain_toks, toks = total(outs["plain_cn"][1], "sd15"), total(calls, "sd15")
    assert toks < plain_toks
    SAVINGS[f"ControlNet {path}"] = (f"plain {plain_toks}, progressive {toks}: {plain_toks / toks:.2f}x "
                                     "(UNet and ControlNet alike)")


# ------------------------------------------------------------------------------------------------
# 4. Reference latents (FLUX Kontext-style ReferenceLatent)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref_size", [(16, 16), (24, 16)])
@pytest.mark.parametrize("path", PATHS)
def test_reference_latent_is_contracted_with_the_stage(comfy, flux_model, path, ref_size):
    """The reference is a separate latent the model appends as tokens.  In a low stage it is contracted
    by the stage's own scale per axis (a 24x16 reference with a 16x16 latent at an 8x8 stage is 12x8),
    so the reference keeps its relative scale to the latent (token grids aligned as at full size) and its
    tokens are saved too; at full size it is untouched.  The run is finite and the reference matters."""
    fam = H.FAMILIES["flux"]
    ref = torch.randn(1, 16, *ref_size, generator=torch.Generator().manual_seed(4))
    seen: list[tuple] = []

    def pre(m, args, kwargs):
        refs = kwargs.get("ref_latents")
        seen.append((tuple(args[0].shape[-2:]), None if refs is None else [tuple(t.shape[-2:]) for t in refs]))

    dm = flux_model.model.diffusion_model
    hook = dm.register_forward_pre_hook(pre, with_kwargs=True)
    outs = {}
    try:
        for variant in ("ref", "none", "plain_ref"):
            seen.clear()
            g = H.Graph()
            model = g.add("SpectralTestCallRecorder", model=value(flux_model), key="compat")
            pos = g.add("SpectralTestConditioning", family="flux", seed=1, batch_size=1, tokens=0)
            if variant != "none":
                pos = g.add("ReferenceLatent", conditioning=pos, latent=value({"samples": ref}))
            pos = g.add("FluxGuidance", conditioning=pos, guidance=2.5)
            neg = g.add("ConditioningZeroOut", conditioning=pos)
            lat = H.empty_latent(g, fam, 16, 16)
            res = sample(g, "plain" if variant == "plain_ref" else path, model, pos, neg, lat, cfg=1.0)
            r, calls, _ = run(comfy, flux_model, "flux", g, res)
            ran_ok(r)
            outs[variant] = (latent_of(r, res), calls, list(seen))
    finally:
        hook.remove()
    out, calls, refs_seen = outs["ref"]
    assert tuple(out.shape) == (1, 16, 16, 16) and bool(torch.isfinite(out).all())
    sizes = [s for s, _ in refs_seen]
    assert any(s != (16, 16) for s in sizes), refs_seen  # a real low stage
    for size, refs in refs_seen:
        want = tuple(round(r * s / 16) for r, s in zip(ref_size, size))
        assert refs == [want], (size, refs)
    assert all(refs == [tuple(ref_size)] for _, refs in outs["plain_ref"][2])
    # FLUX's entry layer sees latent + reference tokens: 2x2 patches of both
    for (size, refs), c in zip(refs_seen, calls):
        assert c[1] == (size[0] // 2) * (size[1] // 2) + (refs[0][0] // 2) * (refs[0][1] // 2), (size, refs, c)
    # random tiny weights: the reference's effect is small (about 1e-5 of the latent's scale), but real
    assert (out - outs["none"][0]).abs().max() > 1e-6 * float(out.abs().max()), "the reference must change the result"
    plain_toks, toks = total(outs["plain_ref"][1], "flux"), total(calls, "flux")
    assert toks < plain_toks
    SAVINGS[f"ReferenceLatent {ref_size} {path}"] = (f"plain {plain_toks}, progressive {toks}: {plain_toks / toks:.2f}x "
                                                     "(latent + reference tokens)")

"""Tiny random-weight models of real ComfyUI architectures (integration tests only).

Every model is built with ComfyUI's own classes (``comfy.supported_models.<Family>(unet_config)
.get_model({})`` wrapped in ``comfy.model_patcher.ModelPatcher``); only the sizes are tiny.  The
"file" configs are exactly what ``comfy.model_detection`` derives from weights of that shape, so a
saved state dict is detected and rebuilt by UNETLoader.  What cannot be loaded from a tiny file:

* FLUX: ``model_detection.detect_unet_config`` hard-codes hidden_size 3072 / 24 heads /
  context 4096 for Flux, so a tiny Flux file is not detectable.  Tiny Flux is built in-process by
  the test node SpectralTestModelLoader (test_nodes/spectral_it_nodes).
* SD1.5 with few channels: detection only returns SD15 for model_channels 320, so the fast
  32-channel UNets ("sd15", "sd15_inpaint") are built in-process too; "sd15_file" (320 channels)
  is the file-loadable one.
* SDXL, Qwen-Image, Z-Image, LTX-Video (issue 13 families): detection fixes full-size dims too
  (see FILE_FAMILIES); they are built in-process.  ``unsupported(family)`` names what an older
  ComfyUI lacks (Z-Image before 0.8).

This module is also the ONE place that knows how ComfyUI versions differ in what the tests construct
(``comfy_version``, ``unet_config``, ``new_executor``): read the version from ``comfyui_version.py``,
never guess it from a failure.

This module imports nothing from ComfyUI at import time; ``setup_comfy`` must run first (the
conftest does it).  The conftest and the test nodes load it by file path under the one name
"spectral_it_tiny_models" (never through sys.path), so both share one module object.
"""
from __future__ import annotations

import os
import sys


def setup_comfy(comfy_dir: str, threads: int = 1) -> None:
    """Put ComfyUI on sys.path in CPU mode (before anything imports comfy.model_management)."""
    import torch
    torch.set_num_threads(threads)
    if "comfy.model_management" in sys.modules:
        return
    comfy_dir = os.path.abspath(comfy_dir)
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    # ComfyUI has a top-level package `utils`; it must be the one imported under that name.
    import utils  # noqa: F401
    if not os.path.abspath(utils.__file__).startswith(comfy_dir):
        raise RuntimeError(f"a foreign 'utils' module shadows ComfyUI's: {utils.__file__}")
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management  # noqa: F401  (initialises in CPU mode)
    import comfy.utils
    # ComfyUI 0.33 throttles progress-bar updates (at most one per 100 ms and 0.5 %); the tests check
    # that every step of every stage is reported, so they turn the throttle off.
    if hasattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL"):
        comfy.utils.PROGRESS_THROTTLE_MIN_INTERVAL = 0.0
        comfy.utils.PROGRESS_THROTTLE_MIN_PERCENT = 0.0


def comfy_version(comfy_dir: str | None = None) -> tuple[int, ...]:
    """ComfyUI's version as a tuple, from ``comfyui_version.py`` of the checkout on sys.path (or at
    ``comfy_dir``); (0,) when the file is missing (very old checkouts have none)."""
    import re
    if comfy_dir is None:
        import comfy  # a namespace package in older checkouts (no __init__.py, __file__ None)
        comfy_dir = os.path.dirname(os.path.abspath(list(comfy.__path__)[0]))
    try:
        with open(os.path.join(comfy_dir, "comfyui_version.py")) as f:
            m = re.search(r'__version__\s*=\s*"([0-9.]+)"', f.read())
    except OSError:
        return (0,)
    return tuple(int(p) for p in m.group(1).split(".")) if m else (0,)


def unet_config(family: str) -> dict:
    """The tiny config of ``family`` as the running ComfyUI's model classes expect it.

    * FLUX (ComfyUI 0.8 and newer): ``flux.model.FluxParams`` gained ``txt_ids_dims`` (which text-position
      axes carry ids; detection sets [] for FLUX.1)."""
    import dataclasses
    cfg = dict(UNET_CONFIGS[family])
    if FAMILY_CLASS[family] == "Flux":
        import comfy.ldm.flux.model as flux_model
        fields = {f.name for f in dataclasses.fields(flux_model.FluxParams)}
        if "txt_ids_dims" in fields:
            cfg.setdefault("txt_ids_dims", [])
    if FAMILY_CLASS[family] == "HunyuanVideo":
        # ComfyUI 0.8 and newer: HunyuanVideoParams gained the HunyuanVideo 1.5 fields (detection sets them off)
        import comfy.ldm.hunyuan_video.model as hv_model
        fields = {f.name for f in dataclasses.fields(hv_model.HunyuanVideoParams)}
        for k, v in (("use_cond_type_embedding", False), ("vision_in_dim", None), ("meanflow_sum", False)):
            if k in fields:
                cfg.setdefault(k, v)
    return cfg


def unsupported(family: str) -> str | None:
    """Why the running ComfyUI cannot build ``family`` (None when it can): the model class or an
    option of the architecture is missing in older versions.

    * Z-Image: ``supported_models.ZImage`` (and NextDiT's ``z_image_modulation``) arrived after 0.3.64."""
    import comfy.supported_models
    cls = FAMILY_CLASS[family]
    if not hasattr(comfy.supported_models, cls):
        return f"this ComfyUI ({'.'.join(map(str, comfy_version()))}) has no comfy.supported_models.{cls}"
    if cls == "ZImage":
        import inspect
        import comfy.ldm.lumina.model as lumina
        if "z_image_modulation" not in inspect.signature(lumina.NextDiT.__init__).parameters:
            return "this ComfyUI's Lumina 2 NextDiT has no z_image_modulation (Z-Image)"
    return None


def new_executor(server):
    """A fresh ``execution.PromptExecutor`` reporting to ``server``, with no cache between runs.

    Newer ComfyUI (0.33) reads ``cache_args`` (lru size and RAM headroom, as main.py passes them); older
    versions do not take the argument."""
    import inspect
    import execution
    kwargs = {"cache_type": execution.CacheType.CLASSIC}
    if "cache_args" in inspect.signature(execution.PromptExecutor.__init__).parameters:
        kwargs["cache_args"] = {"lru": 0, "ram": 0.0, "ram_inactive": 0.0}
    return execution.PromptExecutor(server, **kwargs)


def cached_outputs(executor, node_id: str):
    """The outputs the executor cached for ``node_id`` (None when it did not run).

    ComfyUI 0.33 made the output cache's ``get`` a coroutine (0.8 has it plain)."""
    import asyncio
    import inspect
    entry = executor.caches.outputs.get(node_id)
    if inspect.isawaitable(entry):
        entry = asyncio.run(entry)
    return None if entry is None else getattr(entry, "outputs", entry)


def _sd15(model_channels: int, in_channels: int = 4, levels: int = 1) -> dict:
    """An ldm UNet config as model_detection produces it (SD15 adds num_heads 8 itself).
    ``levels`` 2 adds one downsampling (spatial multiple 2, odd sizes padded by the UNet)."""
    return {
        "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
        "adm_in_channels": None, "in_channels": in_channels, "out_channels": 4,
        "model_channels": model_channels, "num_res_blocks": [1] * levels, "channel_mult": [1, 2][:levels],
        "transformer_depth": [1] + [0] * (levels - 1), "transformer_depth_output": [0, 0] * levels,
        "transformer_depth_middle": -2, "use_linear_in_transformer": False, "context_dim": 768,
        "use_temporal_resblock": False, "use_temporal_attention": False,
    }


UNET_CONFIGS = {
    # SD1.5 EPS UNet, 2 levels (one downsample): in-process only (see module doc).
    "sd15": _sd15(32, levels=2),
    # SD1.5-style inpainting UNet: 9 input channels = 4 latent + 1 mask + 4 masked image, the
    # concat path of model_base.BaseModel.set_inpaint (c_concat built from latent and noise mask).
    "sd15_inpaint": _sd15(32, in_channels=9, levels=2),
    # smallest SD15 that detection accepts (model_channels 320): file-loadable
    "sd15_file": _sd15(320, levels=1),
    # SD3 MMDiT: hidden = 64 * depth, heads = depth; pos_embed_max_size 32 -> latents up to 64x64
    "sd3": {
        "in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 1, "input_size": None,
        "adm_in_channels": 2048,
        "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 64}},
        "num_patches": 32 * 32, "pos_embed_max_size": 32, "pos_embed_scaling_factor": None,
        "x_block_self_attn_layers": [],
    },
    # FLUX dev (guidance embed); sum(axes_dim) == hidden_size // num_heads
    "flux": {
        "image_model": "flux", "in_channels": 16, "out_channels": 16, "patch_size": 2,
        "vec_in_dim": 768, "context_in_dim": 4096, "hidden_size": 64, "mlp_ratio": 4.0,
        "num_heads": 1, "depth": 1, "depth_single_blocks": 1, "axes_dim": [8, 28, 28],
        "theta": 10000, "qkv_bias": True, "guidance_embed": True,
    },
    # WAN 2.1 text-to-video; detection: num_heads = dim // 128
    "wan21_t2v": {
        "image_model": "wan2.1", "model_type": "t2v", "dim": 128, "out_dim": 16, "num_heads": 1,
        "ffn_dim": 256, "num_layers": 1, "patch_size": (1, 2, 2), "freq_dim": 256,
        "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6, "in_dim": 16,
    },
}


def _sdxl(model_channels: int) -> dict:
    """An SDXL UNet config as model_detection produces it: 3 levels (spatial multiple 4, as the real
    SDXL), linear transformers with 64-channel heads, context 2048 (CLIP-L 768 + CLIP-G 1280) and
    adm 2816 (CLIP-G pooled 1280 + 6 size/crop embeddings x 256)."""
    return {
        "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
        "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4, "out_channels": 4,
        "model_channels": model_channels, "num_res_blocks": [1, 1, 1], "channel_mult": [1, 1, 2],
        "transformer_depth": [0, 0, 1], "transformer_depth_output": [0, 0, 0, 0, 1, 1],
        "transformer_depth_middle": 1, "use_linear_in_transformer": True, "context_dim": 2048,
        "num_head_channels": 64, "use_temporal_resblock": False, "use_temporal_attention": False,
    }


# Issue 13 "Families": one tiny model per real architecture (ComfyUI 0.33 class names; a family whose
# class or options a running ComfyUI lacks is listed by ``unsupported``).
UNET_CONFIGS.update({
    # SDXL (EPS): 3-level UNet with adm (pooled + size embeddings); detection needs model_channels 320
    "sdxl": _sdxl(32),
    # SD3.5 Medium (MMDiT-X): RMS qk-norm and a second self-attention in the x blocks
    # (x_block_self_attn_layers); SD3's class runs SD3.5 too (detection sets qk_norm / the layers)
    "sd35": {
        "in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 1, "input_size": None,
        "adm_in_channels": 2048,
        "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 64}},
        "num_patches": 32 * 32, "pos_embed_max_size": 32, "pos_embed_scaling_factor": None,
        "qk_norm": "rms", "x_block_self_attn_layers": [0],
    },
    # Qwen-Image MMDiT: img_in takes 2x2 patches of the 16-channel Wan 2.1 latent (in_channels 64);
    # sum(axes_dims_rope) == attention_head_dim; joint_attention_dim = Qwen2.5-VL-7B hidden 3584
    "qwen_image": {
        "image_model": "qwen_image", "in_channels": 64, "out_channels": 16, "patch_size": 2, "num_layers": 1,
        "attention_head_dim": 32, "num_attention_heads": 2, "joint_attention_dim": 3584,
        "axes_dims_rope": (8, 12, 12),
    },
    # Z-Image (Lumina 2 NextDiT with Z-Image modulation, which needs dim >= 256); cap_feat_dim =
    # Qwen3-4B hidden 2560; sum(axes_dims) == dim // n_heads (Z-Image's own axes [32, 48, 48])
    "zimage": {
        "image_model": "lumina2", "patch_size": 2, "in_channels": 16, "dim": 256, "cap_feat_dim": 2560,
        "n_layers": 1, "n_refiner_layers": 1, "qk_norm": True, "n_heads": 2, "n_kv_heads": 2,
        "axes_dims": [32, 48, 48], "axes_lens": [1536, 512, 512], "rope_theta": 256.0,
        "ffn_dim_multiplier": 8.0 / 3.0, "z_image_modulation": True, "time_scale": 1000.0, "multiple_of": 16,
    },
    # HunyuanVideo (T2V): detection gives num_heads = hidden // 128 and axes [16, 56, 56];
    # context = LLaVA-Llama-3 hidden 4096, vector = CLIP-L pooled 768, guidance embedding
    "hunyuan_video": {
        "image_model": "hunyuan_video", "in_channels": 16, "out_channels": 16, "patch_size": [1, 2, 2],
        "vec_in_dim": 768, "context_in_dim": 4096, "hidden_size": 128, "mlp_ratio": 4.0, "num_heads": 1,
        "depth": 1, "depth_single_blocks": 1, "axes_dim": [16, 56, 56], "theta": 256, "qkv_bias": True,
        "guidance_embed": True, "byt5": False, "meanflow": False,
    },
    # LTX-Video: patch size 1 on a 128-channel latent (the VAE compresses 32x spatially, 8x in time);
    # caption = T5-XXL 4096; inner dim = heads x head dim
    "ltxv": {
        "image_model": "ltxv", "in_channels": 128, "num_layers": 1, "attention_head_dim": 32,
        "num_attention_heads": 2, "cross_attention_dim": 64, "caption_channels": 4096,
    },
    # WAN 2.2 TI2V 5B: the 48-channel Wan 2.2 latent (VAE 16x spatially), patch (1, 2, 2)
    "wan22_t2v": {
        "image_model": "wan2.1", "model_type": "t2v", "dim": 128, "out_dim": 48, "num_heads": 1,
        "ffn_dim": 256, "num_layers": 1, "patch_size": (1, 2, 2), "freq_dim": 256,
        "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6, "in_dim": 48,
    },
})
# WAN 2.2 A14B two experts (high noise, low noise): two WAN 2.1-architecture models, different weights
UNET_CONFIGS["wan22_high"] = dict(UNET_CONFIGS["wan21_t2v"])
UNET_CONFIGS["wan22_low"] = dict(UNET_CONFIGS["wan21_t2v"])

FAMILY_CLASS = {"sd15": "SD15", "sd15_inpaint": "SD15", "sd15_file": "SD15", "sd3": "SD3", "flux": "Flux",
                "wan21_t2v": "WAN21_T2V", "sdxl": "SDXL", "sd35": "SD3", "qwen_image": "QwenImage",
                "zimage": "ZImage", "hunyuan_video": "HunyuanVideo", "ltxv": "LTXV", "wan22_t2v": "WAN22_T2V",
                "wan22_high": "WAN21_T2V", "wan22_low": "WAN21_T2V"}
FAMILIES = list(UNET_CONFIGS)
# UNETLoader-loadable: detection rebuilds these configs exactly (checked on 0.3.64 and 0.33 for the issue-13
# ones: same class, same config, same weights).  Not detectable at tiny sizes: SDXL (model_channels 320),
# Qwen-Image (detection keeps the full-size head count and widths), Lumina 2 / Z-Image (dim 2304 / 3840
# only), LTXV (32 heads fixed); the WAN 2.2 A14B experts are WAN 2.1 files, built in-process to save setup.
FILE_FAMILIES = ("sd15_file", "sd3", "wan21_t2v", "sd35", "hunyuan_video", "wan22_t2v")


def init_weights(module, seed: int = 0, std: float = 0.02):
    """ComfyUI's ops allocate with torch.empty: fill every parameter (and SD3's pos_embed buffer)
    deterministically: biases 0, 1-D norm weights 1, the rest N(0, std)."""
    import torch
    g = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                p.zero_()
            elif p.ndim == 1 and ("norm" in name or leaf == "scale"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * std)
        for name, b in module.named_buffers():
            if name.endswith("pos_embed") and b.is_floating_point():
                b.copy_(torch.randn(b.shape, generator=g, dtype=torch.float32).to(b.dtype) * std)
    return module


def build(family: str, seed: int = 0):
    """A ModelPatcher around a tiny ``family`` model built with ComfyUI's own classes."""
    import torch
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, FAMILY_CLASS[family])(unet_config(family))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({})
    init_weights(model.diffusion_model, seed=seed)
    model.eval()
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def make_conditioning(family: str, batch: int = 1, seed: int = 1, tokens: int = 0):
    """CONDITIONING in the format of the family's real text encoder, random values."""
    import torch
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    if family.startswith("sd15"):  # CLIP-L: [B, 77, 768] (+ pooled, unused by SD15)
        return [[r(batch, tokens or 77, 768), {"pooled_output": r(batch, 768)}]]
    if family == "sd3":  # CLIP-L+G (+T5): [B, 154, 4096], pooled L+G [B, 2048] (required)
        return [[r(batch, tokens or 154, 4096), {"pooled_output": r(batch, 2048)}]]
    if family == "flux":  # T5-XXL [B, 256, 4096], CLIP-L pooled [B, 768] (required)
        return [[r(batch, tokens or 256, 4096), {"pooled_output": r(batch, 768)}]]
    if family in ("wan21_t2v", "wan22_t2v", "wan22_high", "wan22_low"):  # umT5-XXL [B, 512, 4096]
        return [[r(batch, tokens or 512, 4096), {}]]
    if family == "sdxl":  # CLIP-L + CLIP-G hidden states [B, 77, 768 + 1280], CLIP-G pooled [B, 1280] (adm)
        return [[r(batch, tokens or 77, 2048), {"pooled_output": r(batch, 1280)}]]
    if family == "sd35":  # as SD3: CLIP-L+G (+T5) [B, 154, 4096], pooled L+G [B, 2048]
        return [[r(batch, tokens or 154, 4096), {"pooled_output": r(batch, 2048)}]]
    # decoder-LLM encoders give one row per prompt token (variable length): a short prompt of 32 tokens
    if family == "qwen_image":  # Qwen2.5-VL-7B last hidden state [B, n, 3584]
        return [[r(batch, tokens or 32, 3584), {}]]
    if family == "zimage":  # Qwen3-4B hidden state [B, n, 2560] and its attention mask
        n = tokens or 32
        return [[r(batch, n, 2560), {"attention_mask": torch.ones(batch, n, dtype=torch.long)}]]
    if family == "hunyuan_video":  # LLaVA-Llama-3-8B [B, n, 4096], CLIP-L pooled [B, 768]
        return [[r(batch, tokens or 32, 4096), {"pooled_output": r(batch, 768)}]]
    if family == "ltxv":  # T5-XXL padded to 128 tokens [B, 128, 4096] and its attention mask (required)
        n = tokens or 128
        return [[r(batch, n, 4096), {"attention_mask": torch.ones(batch, n, dtype=torch.long)}]]
    raise KeyError(family)


def save_model_file(family: str, path: str, seed: int = 0) -> str:
    """The diffusion model's state dict as UNETLoader expects it (fp16 for the 320-channel SD15)."""
    import safetensors.torch
    import torch
    mp = build(family, seed=seed)
    sd = {"model.diffusion_model." + k: v.contiguous() for k, v in mp.model.diffusion_model.state_dict().items()}
    if family == "sd15_file":
        sd = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in sd.items()}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    safetensors.torch.save_file(sd, path)
    return path


def file_name(family: str) -> str:
    return f"tiny_{family}.safetensors"


def write_model_files(models_dir: str, families=FILE_FAMILIES) -> dict:
    """<models_dir>/diffusion_models/tiny_<family>.safetensors for each family."""
    return {fam: save_model_file(fam, os.path.join(models_dir, "diffusion_models", file_name(fam)))
            for fam in families if unsupported(fam) is None}


def build_controlnet(family: str = "sd15", seed: int = 7):
    """A tiny ControlNet of the ldm (SD1.5) architecture for ``family``'s tiny UNet, built as
    ``comfy.controlnet.load_controlnet_state_dict`` builds one (the UNet's config without out_channels,
    an RGB hint) and wrapped in ``comfy.controlnet.ControlNet`` exactly as that loader wraps it (the
    hint is an image, compression ratio 8).  Random weights, so its control residuals are not zero."""
    import torch
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.model_management as mm
    import comfy.ops
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, FAMILY_CLASS[family])(unet_config(family))
    cfg = dict(model_config.unet_config)
    cfg.pop("out_channels")
    cfg.update(hint_channels=3, operations=comfy.ops.disable_weight_init, dtype=torch.float32,
               device=mm.unet_offload_device())
    control_model = comfy.cldm.cldm.ControlNet(**cfg)
    init_weights(control_model, seed=seed)
    control_model.eval()
    return comfy.controlnet.ControlNet(control_model, load_device=mm.get_torch_device(), manual_cast_dtype=None)

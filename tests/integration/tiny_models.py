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
        import comfy
        comfy_dir = os.path.dirname(os.path.dirname(os.path.abspath(comfy.__file__)))
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
    return cfg


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
FAMILY_CLASS = {"sd15": "SD15", "sd15_inpaint": "SD15", "sd15_file": "SD15", "sd3": "SD3", "flux": "Flux",
                "wan21_t2v": "WAN21_T2V"}
FAMILIES = list(UNET_CONFIGS)
FILE_FAMILIES = ("sd15_file", "sd3", "wan21_t2v")  # UNETLoader-loadable


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
    if family == "wan21_t2v":  # umT5-XXL [B, 512, 4096]
        return [[r(batch, tokens or 512, 4096), {}]]
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
            for fam in families}

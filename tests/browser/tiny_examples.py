"""The example workflows with tiny models substituted (shared by tests/integration/test_example_workflows.py
and the browser tests).

``tiny_variant(api, family)`` rewrites an API-format example so it runs on a CPU in seconds:

* model loaders -> the integration harness's tiny random-weight models (tests/integration/tiny_models.py,
  test nodes in tests/integration/test_nodes/spectral_it_nodes): FLUX and SD1.5 built in-process by
  ``SpectralTestModelLoader`` (a tiny FLUX file is not detectable by comfy.model_detection; SD1.5 is
  only detected at 320 channels), WAN 2.1 from the tiny file through the example's own UNETLoader;
* CLIPTextEncode -> ``SpectralTestConditioning`` (no tiny text encoder can be loaded), the CLIP loaders dropped;
* VAEs -> ComfyUI's own TAESD / TAEF1 (VAELoader "taesd" / "taef1") with random weights written by
  ``write_taesd``; WAN's 3-D VAE has no tiny variant, so its VAEDecode + SaveAnimatedWEBP become a
  ``SpectralTestReport`` on the sampled latent;
* sizes scaled down (latents of ~16 x 16), step counts and step indices scaled to ``steps``.

Everything else (our nodes, samplers, schedulers, LoadImage, ImageScale, SaveImage, ...) stays as in
the example.  Nothing here imports ComfyUI at import time.
"""
from __future__ import annotations

import copy
import os

# conditioning family of SpectralTestConditioning per model family
COND_FAMILY = {"flux": "flux", "sd15": "sd15", "wan": "wan21_t2v"}
TAESD_NAME = {"flux": "taef1", "sd15": "taesd"}
TAESD_CHANNELS = {"taesd": 4, "taef1": 16}
TINY_WAN_FILE = "tiny_wan21_t2v.safetensors"
STEP_KEYS = {  # class_type -> inputs holding step counts / step indices
    "BasicScheduler": ("steps",), "KSampler": ("steps",), "SpectralProgressiveSampler": ("steps",),
    "FrequencyEdit": ("steps",), "SpectralPassthroughSweep": ("steps",), "KSamplerAdvanced": ("steps", "start_at_step", "end_at_step"),
    "SplitSigmas": ("step",),
}
SIZE_NODES = ("EmptySD3LatentImage", "EmptyLatentImage", "EmptyHunyuanLatentVideo", "ImageScale")


def _links_to(api: dict, nid: str, slot: int | None = None):
    """(consumer id, input name) of every link from node ``nid`` (optionally only from ``slot``)."""
    for cid, n in api.items():
        for k, v in n["inputs"].items():
            if isinstance(v, list) and len(v) == 2 and str(v[0]) == nid and (slot is None or v[1] == slot):
                yield cid, k


def _new_id(api: dict) -> str:
    return str(max(int(k) for k in api) + 1)


def _round16(v: float) -> int:
    return max(16, int(round(v / 16.0)) * 16)


def tiny_variant(api: dict, family: str | None, *, pixels: int = 128, steps: int = 6) -> dict:
    """The example ``api`` with tiny models, ``pixels`` on the longest image side and ``steps`` steps."""
    api = copy.deepcopy(api)
    # sizes: one factor for the whole workflow (keeps half-size stages half-size)
    longest = max([max(n["inputs"]["width"], n["inputs"]["height"]) for n in api.values()
                   if n["class_type"] in SIZE_NODES] or [pixels])
    k = pixels / longest
    total_steps = max([n["inputs"]["steps"] for n in api.values() if "steps" in n["inputs"]
                       and n["class_type"] in STEP_KEYS] or [steps])

    def step_map(v: int) -> int:
        return 0 if v == 0 else max(1, int(round(v * steps / total_steps)))

    cond_seed = 1
    for nid in list(api):
        if nid not in api:  # removed with the WAN VAE decode
            continue
        n = api[nid]
        ct, inp = n["class_type"], n["inputs"]
        if ct in SIZE_NODES:
            inp["width"], inp["height"] = _round16(inp["width"] * k), _round16(inp["height"] * k)
            if ct == "EmptyHunyuanLatentVideo":
                inp["length"] = 5  # 2 latent frames
        for key in STEP_KEYS.get(ct, ()):
            if key in ("end_at_step",) and inp[key] >= total_steps:
                inp[key] = 10000
            else:
                inp[key] = step_map(inp[key])
        if ct == "UNETLoader":
            if family == "wan":
                inp["unet_name"] = TINY_WAN_FILE
            else:
                api[nid] = {"class_type": "SpectralTestModelLoader", "inputs": {"family": family, "seed": 0}}
        elif ct == "CheckpointLoaderSimple":
            api[nid] = {"class_type": "SpectralTestModelLoader", "inputs": {"family": family, "seed": 0}}
            vae_links = list(_links_to(api, nid, 2))
            if vae_links:
                vid = _new_id(api)
                api[vid] = {"class_type": "VAELoader", "inputs": {"vae_name": TAESD_NAME[family]}}
                for cid, key in vae_links:
                    api[cid]["inputs"][key] = [vid, 0]
        elif ct == "CLIPTextEncode":
            api[nid] = {"class_type": "SpectralTestConditioning",
                        "inputs": {"family": COND_FAMILY[family], "seed": cond_seed, "batch_size": 1, "tokens": 0}}
            cond_seed += 1
        elif ct == "VAELoader":
            if family == "wan":
                for dec_id, _ in list(_links_to(api, nid)):
                    src = api[dec_id]["inputs"]["samples"]
                    for sink_id, _ in list(_links_to(api, dec_id)):
                        del api[sink_id]
                    api[dec_id] = {"class_type": "SpectralTestReport", "inputs": {"samples": src, "key": "example"}}
                del api[nid]
            else:
                inp["vae_name"] = TAESD_NAME[family]
    for nid in [i for i, n in api.items() if n["class_type"] in ("DualCLIPLoader", "CLIPLoader")]:
        assert not list(_links_to(api, nid)), f"{api[nid]['class_type']} still has consumers"
        del api[nid]
    return api


# ------------------------------------------------------------------------------------------------
# assets the tiny variants need: TAESD/TAEF1 files and the example input images
# ------------------------------------------------------------------------------------------------

def write_taesd(vae_approx_dir: str, seed: int = 0) -> list[str]:
    """Random-weight TAESD (4 ch) and TAEF1 (16 ch) in ComfyUI's vae_approx layout, built with
    ComfyUI's own comfy.taesd.taesd (ComfyUI must be importable: tiny_models.setup_comfy first)."""
    import safetensors.torch
    import torch
    from comfy.taesd.taesd import Decoder, Encoder

    os.makedirs(vae_approx_dir, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    paths = []
    for name, ch in TAESD_CHANNELS.items():
        for part, mod in (("encoder", Encoder(ch)), ("decoder", Decoder(ch))):
            sd = {}
            for key, p in mod.state_dict().items():
                if key.endswith("bias"):
                    sd[key] = torch.zeros(p.shape)
                else:  # He init, a little damped: finite, image-like outputs
                    fan_in = max(1, p[0].numel())
                    sd[key] = torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5
            path = os.path.join(vae_approx_dir, f"{name}_{part}.safetensors")
            safetensors.torch.save_file(sd, path)
            paths.append(path)
    return paths


def write_images(input_dir: str, size: tuple[int, int] = (96, 80), comfy_dir: str | None = None) -> list[str]:
    """The images the examples' LoadImage nodes name: copied from ComfyUI's own input folder when it
    has them (example.png ships with ComfyUI), else smooth synthetic PNGs."""
    import shutil

    import numpy as np
    from PIL import Image

    from .examples_src import IMAGES

    os.makedirs(input_dir, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    out = []
    for i, name in enumerate(sorted(set(IMAGES.values()))):
        path = os.path.join(input_dir, name)
        if os.path.exists(path):  # never overwrite a user's file
            out.append(path)
            continue
        src = os.path.join(comfy_dir, "input", name) if comfy_dir else None
        if src and os.path.isfile(src):
            shutil.copy(src, path)
            out.append(path)
            continue
        rng = np.random.default_rng(i)
        img = np.zeros((h, w, 3))
        for c in range(3):
            for _ in range(6):
                f = rng.uniform(0.5, 12.0, 2)
                img[..., c] += np.sin(2 * np.pi * (f[0] * xx + f[1] * yy) + rng.uniform(0, 6.3)) / (1 + f.sum() / 4)
        img += 0.05 * rng.standard_normal(img.shape)
        img = (img - img.min()) / (img.max() - img.min() + 1e-9)
        Image.fromarray((img * 255).astype("uint8")).save(path)
        out.append(path)
    return out

"""Test-only ComfyUI nodes for the integration tests (never shipped with the pack).

* SpectralTestModelLoader: builds a tiny random-weight model in-process with ComfyUI's own classes
  (tiny FLUX files are not detectable by comfy.model_detection, and SD1.5 is only detected at 320
  channels; see ../../tiny_models.py).
* SpectralTestConditioning: random CONDITIONING shaped like the family's text encoder output
  (no tiny text encoder can be loaded: their configs are fixed full-size JSON).
* SpectralTestCallRecorder: MODEL -> MODEL clone with an APPLY_MODEL wrapper that records every
  network call (latent shape, sigma, concat shape) under a key, so tests can count calls and sizes.
* SpectralTestReport: output node; reports a LATENT's shape/stats and the recorded calls in its ui
  output (visible in /history when the prompt runs over HTTP).

Loaded by the conftest with nodes.load_custom_node (in-process) or through the custom_nodes entry
of --extra-model-paths-config (server).
"""
import os
import sys
import importlib.util

_TINY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tiny_models.py")


def _tiny():
    mod = sys.modules.get("spectral_it_tiny_models")
    if mod is None:
        spec = importlib.util.spec_from_file_location("spectral_it_tiny_models", _TINY)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["spectral_it_tiny_models"] = mod
        spec.loader.exec_module(mod)
    return mod


FAMILIES = ["sd15", "sd15_inpaint", "sd15_file", "sd3", "flux", "wan21_t2v", "sdxl", "sd35", "qwen_image", "zimage",
            "hunyuan_video", "ltxv", "wan22_t2v", "wan22_high", "wan22_low"]
CALL_LOG = {}  # key -> list of recorded calls


class SpectralTestModelLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": (FAMILIES,), "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1})}}
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "testing/spectral"

    def load(self, family, seed):
        return (_tiny().build(family, seed=seed),)


class SpectralTestConditioning:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": (FAMILIES,), "seed": ("INT", {"default": 1, "min": 0, "max": 2**31 - 1}),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 16}),
                             "tokens": ("INT", {"default": 0, "min": 0, "max": 1024})}}
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"
    CATEGORY = "testing/spectral"

    def make(self, family, seed, batch_size, tokens):
        return (_tiny().make_conditioning(family, batch=batch_size, seed=seed, tokens=tokens),)


def _recorder(key):
    def wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        CALL_LOG.setdefault(key, []).append({
            "shape": list(x.shape),
            "sigma": [float(v) for v in t.reshape(-1).tolist()],
            "concat": None if c_concat is None else list(c_concat.shape),
            # per-channel means of the concat condition (e.g. an inpainting model's mask + masked image)
            "concat_mean": None if c_concat is None else [float(v) for v in c_concat.float().mean(dim=(0, *range(2, c_concat.ndim)))],
        })
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
    return wrapper


class SpectralTestCallRecorder:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "key": ("STRING", {"default": "calls"})}}
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "testing/spectral"

    def patch(self, model, key):
        import comfy.patcher_extension
        m = model.clone()
        m.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "spectral_it_recorder")
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "spectral_it_recorder", _recorder(key))
        return (m,)


class SpectralTestReport:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "key": ("STRING", {"default": "calls"})}}
    RETURN_TYPES = ()
    FUNCTION = "report"
    OUTPUT_NODE = True
    CATEGORY = "testing/spectral"

    def report(self, samples, key):
        t = samples["samples"].float()
        info = {"shape": list(t.shape), "mean": float(t.mean()), "std": float(t.std()) if t.numel() > 1 else 0.0,
                "finite": bool(t.isfinite().all())}
        return {"ui": {"latent": [info], "calls": CALL_LOG.pop(key, [])}}


class SpectralTestDynamicPatcher:
    """MODEL -> the same BaseModel wrapped in ComfyUI 0.33's ``ModelPatcherDynamic`` (the dynamic-VRAM
    patcher), as ComfyUI's loaders make it; on a CPU load device ComfyUI itself returns a plain
    ModelPatcher from that constructor.  Errors on versions without the class."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"
    CATEGORY = "testing/spectral"

    def wrap(self, model):
        import comfy.model_patcher
        mp = comfy.model_patcher.ModelPatcherDynamic(model.model, load_device=model.load_device,
                                                     offload_device=model.offload_device)
        return (mp,)


MULTIGPU_SEEN = []  # per cond batch: number of multigpu clones in model_options


class SpectralTestMultiGPUOnCPU:
    """MODEL -> MODEL with one multi-GPU work-unit clone, made exactly as ComfyUI's MultiGPU node makes
    its clones (``deepclone_multigpu`` from the loader's factory, flagged ``is_multigpu_base_clone``,
    registered as additional model "multigpu", ``match_multigpu_clones``), but on the CPU, the only
    device this machine has; ComfyUI then runs cond batches through ``_calc_cond_batch_multigpu``.
    A CALC_COND_BATCH wrapper records how many clones each cond batch saw (MULTIGPU_SEEN)."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "clone"
    CATEGORY = "testing/spectral"

    def clone(self, model):
        import comfy.patcher_extension as pe
        import torch
        m = model.clone()
        clone = m.deepclone_multigpu(new_load_device=torch.device("cpu"))
        clone.is_multigpu_base_clone = True
        m.set_additional_models("multigpu", [clone])
        m.match_multigpu_clones()

        def seen(executor, mdl, conds, x_in, timestep, model_options):
            MULTIGPU_SEEN.append(len(model_options.get("multigpu_clones", {})))
            return executor(mdl, conds, x_in, timestep, model_options)

        m.add_wrapper_with_key(pe.WrappersMP.CALC_COND_BATCH, "spectral_it_multigpu", seen)
        return (m,)


NODE_CLASS_MAPPINGS = {"SpectralTestDynamicPatcher": SpectralTestDynamicPatcher,
                       "SpectralTestMultiGPUOnCPU": SpectralTestMultiGPUOnCPU,
"SpectralTestModelLoader": SpectralTestModelLoader,
                       "SpectralTestConditioning": SpectralTestConditioning,
                       "SpectralTestCallRecorder": SpectralTestCallRecorder,
                       "SpectralTestReport": SpectralTestReport}

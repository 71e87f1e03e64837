"""Source of the example workflows in example_workflows/ (API format).

``python -m tests.browser.build_examples`` writes ``example_workflows/api/<name>.json`` from the
definitions below, then loads each one in the real ComfyUI frontend (headless Chromium) to make
the UI-format ``example_workflows/<name>.json`` and the template-browser thumbnail
``example_workflows/<name>.jpg``.  Only the UI-format files sit at the top level: ComfyUI's
template browser lists every ``example_workflows/*.json`` and loads it with ``app.loadGraphData``,
which needs the UI format; the API-format twins live in ``example_workflows/api/``.

Model file names are the ones ComfyUI's own templates and the model repos use.  The tests
(tests/integration/test_example_workflows.py, tests/browser/) substitute tiny random-weight models.
"""
from __future__ import annotations

# Real model files (as in ComfyUI's own templates / the Comfy-Org repackaged repos)
FLUX_UNET = "flux1-dev.safetensors"
FLUX_CLIP_L = "clip_l.safetensors"
FLUX_T5 = "t5xxl_fp16.safetensors"
FLUX_VAE = "ae.safetensors"
SD15_CKPT = "v1-5-pruned-emaonly-fp16.safetensors"
WAN_UNET = "wan2.1_t2v_1.3B_fp16.safetensors"
WAN_TE = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
WAN_VAE = "wan_2.1_vae.safetensors"

# Example input images (LoadImage looks them up in ComfyUI's input folder).  example.png ships in
# ComfyUI's input folder, so the single-image examples run as loaded; texture.png is the user's own
# second image for the band transfer.
IMAGES = {"source": "example.png", "structure": "example.png", "texture": "texture.png", "reference": "example.png"}

WAN_NEGATIVE = ("bright colors, overexposed, static, blurred details, subtitles, style, artwork, painting, picture, "
                "still, overall gray, worst quality, low quality, JPEG artifacts, ugly, deformed, extra fingers, "
                "poorly drawn hands, poorly drawn face, disfigured, messy background, walking backwards")


def schedule(**kw) -> dict:
    """DeltaSchedule inputs (all widgets, defaults of the node)."""
    d = dict(mode="delta", delta=0.01, stages=2, scales="", transform="dct", spectrum="auto", custom_A=203.62,
             custom_beta=1.9155, refill="paper", respace="affine", manual_switch="", manual_unit="sigma")
    d.update(kw)
    return d


class G:
    """A tiny API-format builder: node(...) returns the id; [id, slot] are links."""

    def __init__(self):
        self.p: dict[str, dict] = {}

    def node(self, class_type: str, title: str | None = None, **inputs) -> str:
        nid = str(len(self.p) + 1)
        self.p[nid] = {"inputs": inputs, "class_type": class_type}
        if title:
            self.p[nid]["_meta"] = {"title": title}
        return nid


def _flux_front(g: G, prompt: str, width: int = 1024, height: int = 1024, guidance: float = 3.5):
    unet = g.node("UNETLoader", "Load FLUX.1-dev", unet_name=FLUX_UNET, weight_dtype="default")
    clip = g.node("DualCLIPLoader", clip_name1=FLUX_CLIP_L, clip_name2=FLUX_T5, type="flux", device="default")
    pos = g.node("CLIPTextEncode", "Positive prompt", text=prompt, clip=[clip, 0])
    guid = g.node("FluxGuidance", conditioning=[pos, 0], guidance=guidance)
    vae = g.node("VAELoader", vae_name=FLUX_VAE)
    return unet, guid, vae


def flux_txt2img_spectral_sampler() -> dict:
    """(a) FLUX txt2img: KSamplerSelect -> SamplerSpectralProgressive (+ DeltaSchedule) -> SamplerCustomAdvanced."""
    g = G()
    unet, cond, vae = _flux_front(g, "a red fox sitting in a snowy birch forest at dawn, soft golden light, "
                                      "detailed fur, 35mm photograph")
    lat = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    sched = g.node("DeltaSchedule", "Spectral Schedule (delta)", **schedule())
    ks = g.node("KSamplerSelect", sampler_name="euler")
    sp = g.node("SamplerSpectralProgressive", sampler=[ks, 0], schedule=[sched, 0])
    sig = g.node("BasicScheduler", model=[unet, 0], scheduler="simple", steps=28, denoise=1.0)
    noise = g.node("RandomNoise", noise_seed=42)
    guider = g.node("BasicGuider", model=[unet, 0], conditioning=[cond, 0])
    out = g.node("SamplerCustomAdvanced", noise=[noise, 0], guider=[guider, 0], sampler=[sp, 0], sigmas=[sig, 0],
                 latent_image=[lat, 0])
    dec = g.node("VAEDecode", samples=[out, 0], vae=[vae, 0])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/flux_txt2img")
    return g.p


def _sd15_front(g: G, prompt: str, negative: str = "blurry, lowres, watermark, text, jpeg artifacts"):
    ckpt = g.node("CheckpointLoaderSimple", "Load SD1.5 checkpoint", ckpt_name=SD15_CKPT)
    pos = g.node("CLIPTextEncode", "Positive prompt", text=prompt, clip=[ckpt, 1])
    neg = g.node("CLIPTextEncode", "Negative prompt", text=negative, clip=[ckpt, 1])
    return ckpt, pos, neg


def sd15_spectral_ksampler() -> dict:
    """(b) The KSampler-shaped all-in-one SpectralProgressiveSampler on an SD1.5 checkpoint."""
    g = G()
    ckpt, pos, neg = _sd15_front(g, "a cozy wooden cabin by a mountain lake, autumn trees, morning mist, "
                                    "highly detailed, photograph")
    lat = g.node("EmptyLatentImage", width=512, height=512, batch_size=1)
    sched = g.node("DeltaSchedule", "Spectral Schedule (delta)", **schedule())
    out = g.node("SpectralProgressiveSampler", model=[ckpt, 0], seed=1234, steps=25, cfg=7.0, sampler_name="dpmpp_2m",
                 scheduler="karras", positive=[pos, 0], negative=[neg, 0], latent_image=[lat, 0], denoise=1.0,
                 schedule=[sched, 0])
    dec = g.node("VAEDecode", samples=[out, 0], vae=[ckpt, 2])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/sd15_allinone")
    g.node("PreviewAny", "Plan that ran", source=[out, 1])
    return g.p


def wan21_t2v_model_patch() -> dict:
    """(c) WAN 2.1 text-to-video with the MODEL patch in front of KSampler."""
    g = G()
    unet = g.node("UNETLoader", "Load WAN 2.1 T2V 1.3B", unet_name=WAN_UNET, weight_dtype="default")
    shift = g.node("ModelSamplingSD3", model=[unet, 0], shift=8.0)
    sched = g.node("DeltaSchedule", "Spectral Schedule (delta)", **schedule(spectrum="wan"))
    patch = g.node("SpectralProgressiveModel", model=[shift, 0], schedule=[sched, 0], high_band="zero")
    clip = g.node("CLIPLoader", clip_name=WAN_TE, type="wan", device="default")
    pos = g.node("CLIPTextEncode", "Positive prompt",
                 text="a paper boat drifting down a rain-soaked street, reflections of neon signs, slow camera pan",
                 clip=[clip, 0])
    neg = g.node("CLIPTextEncode", "Negative prompt", text=WAN_NEGATIVE, clip=[clip, 0])
    lat = g.node("EmptyHunyuanLatentVideo", width=832, height=480, length=33, batch_size=1)
    out = g.node("KSampler", model=[patch, 0], seed=7, steps=30, cfg=6.0, sampler_name="uni_pc", scheduler="simple",
                 positive=[pos, 0], negative=[neg, 0], latent_image=[lat, 0], denoise=1.0)
    vae = g.node("VAELoader", vae_name=WAN_VAE)
    dec = g.node("VAEDecode", samples=[out, 0], vae=[vae, 0])
    g.node("SaveAnimatedWEBP", images=[dec, 0], filename_prefix="spectral/wan21_t2v", fps=16.0, lossless=False,
           quality=90, method="default")
    return g.p


def sd15_txt2img_model_patch() -> dict:
    """(d) SD1.5 with the MODEL patch: any KSampler keeps working, the latent stays full size."""
    g = G()
    ckpt, pos, neg = _sd15_front(g, "portrait of an old fisherman, weathered face, knitted hat, overcast light, "
                                    "film grain")
    sched = g.node("DeltaSchedule", "Spectral Schedule (delta)", **schedule())
    patch = g.node("SpectralProgressiveModel", model=[ckpt, 0], schedule=[sched, 0], high_band="zero")
    lat = g.node("EmptyLatentImage", width=512, height=768, batch_size=1)
    out = g.node("KSampler", model=[patch, 0], seed=99, steps=25, cfg=7.0, sampler_name="euler_ancestral",
                 scheduler="normal", positive=[pos, 0], negative=[neg, 0], latent_image=[lat, 0], denoise=1.0)
    dec = g.node("VAEDecode", samples=[out, 0], vae=[ckpt, 2])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/sd15_model_patch")
    return g.p


def flux_manual_stages_noise_expand() -> dict:
    """(e) Hand-built two-stage graph: KSamplerAdvanced on a half-size latent returns with leftover
    noise at step 10 of 28; SpectralNoiseExpand grows it to full size and re-aligns the remaining
    sigmas; SamplerCustomAdvanced (noise disabled) finishes at full size."""
    g = G()
    unet, cond, vae = _flux_front(g, "an isometric miniature of a lighthouse on a rocky island, tilt-shift, "
                                      "vivid colors")
    neg = g.node("ConditioningZeroOut", "Negative (unused at cfg 1)", conditioning=[cond, 0])
    small = g.node("EmptySD3LatentImage", "Stage 1 latent (half size)", width=512, height=512, batch_size=1)
    st1 = g.node("KSamplerAdvanced", "Stage 1: steps 0-10 at half size", model=[unet, 0], add_noise="enable",
                 noise_seed=42, steps=28, cfg=1.0, sampler_name="euler", scheduler="simple", positive=[cond, 0],
                 negative=[neg, 0], latent_image=[small, 0], start_at_step=0, end_at_step=10,
                 return_with_leftover_noise="enable")
    sig = g.node("BasicScheduler", model=[unet, 0], scheduler="simple", steps=28, denoise=1.0)
    split = g.node("SplitSigmas", "Remaining sigmas (from step 10)", sigmas=[sig, 0], step=10)
    exp = g.node("SpectralNoiseExpand", model=[unet, 0], samples=[st1, 0], sigmas=[split, 1], direction="expand",
                 scale=2.0, transform="dct", seed=42, respace="affine")
    noise = g.node("DisableNoise")
    guider = g.node("BasicGuider", model=[unet, 0], conditioning=[cond, 0])
    ks = g.node("KSamplerSelect", sampler_name="euler")
    st2 = g.node("SamplerCustomAdvanced", "Stage 2: full size", noise=[noise, 0], guider=[guider, 0], sampler=[ks, 0],
                 sigmas=[exp, 1], latent_image=[exp, 0])
    dec = g.node("VAEDecode", samples=[st2, 0], vae=[vae, 0])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/flux_manual_stages")
    return g.p


def flux_probe_schedule_sampler() -> dict:
    """(f) PowerSpectrumProbe on VAE-encoded reference images -> DeltaSchedule(probe_spectrum) -> sampler.
    (One reference image here; a batch of images in the target style measures a steadier spectrum.)"""
    g = G()
    unet, cond, vae = _flux_front(g, "a misty pine valley with a winding river, aerial photograph, overcast")
    im = g.node("LoadImage", "Reference image (batch more with Batch Images)", image=IMAGES["reference"])
    sc = g.node("ImageScale", image=[im, 0], upscale_method="lanczos", width=1024, height=1024, crop="center")
    enc = g.node("VAEEncode", pixels=[sc, 0], vae=[vae, 0])
    probe = g.node("PowerSpectrumProbe", latent=[enc, 0], delta=0.01, stages=2)
    sched = g.node("DeltaSchedule", "Spectral Schedule (from probe)", probe_spectrum=[probe, 0], **schedule())
    ks = g.node("KSamplerSelect", sampler_name="euler")
    sp = g.node("SamplerSpectralProgressive", sampler=[ks, 0], schedule=[sched, 0])
    sig = g.node("BasicScheduler", model=[unet, 0], scheduler="simple", steps=28, denoise=1.0)
    lat = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    noise = g.node("RandomNoise", noise_seed=42)
    guider = g.node("BasicGuider", model=[unet, 0], conditioning=[cond, 0])
    out = g.node("SamplerCustomAdvanced", noise=[noise, 0], guider=[guider, 0], sampler=[sp, 0], sigmas=[sig, 0],
                 latent_image=[lat, 0])
    dec = g.node("VAEDecode", samples=[out, 0], vae=[vae, 0])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/flux_probe_schedule")
    g.node("PreviewAny", "Probe summary", source=[probe, 2])
    return g.p


def flux_frequency_edit() -> dict:
    """(g) FrequencyEdit: keep the source's low band (structure), re-generate texture/style from a prompt."""
    g = G()
    unet, cond, vae = _flux_front(g, "the same scene as a watercolor painting, loose brush strokes, paper texture")
    neg = g.node("ConditioningZeroOut", "Negative (unused at cfg 1)", conditioning=[cond, 0])
    img = g.node("LoadImage", "Source image", image=IMAGES["source"])
    sc = g.node("ImageScale", image=[img, 0], upscale_method="lanczos", width=1024, height=1024, crop="center")
    enc = g.node("VAEEncode", pixels=[sc, 0], vae=[vae, 0])
    sched = g.node("DeltaSchedule", "Spectral Schedule (3 stages)", **schedule(stages=3))
    out = g.node("FrequencyEdit", model=[unet, 0], positive=[cond, 0], negative=[neg, 0], source=[enc, 0], seed=3,
                 steps=28, cfg=1.0, sampler_name="euler", scheduler="simple", entry_stage=0, strength=0.85,
                 schedule=[sched, 0])
    dec = g.node("VAEDecode", samples=[out, 0], vae=[vae, 0])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/flux_frequency_edit")
    g.node("PreviewAny", "Edit summary", source=[out, 1])
    return g.p


def frequency_band_transfer() -> dict:
    """(h) FrequencyBandGain, transfer mode: low band (structure) of A + high band (texture) of B."""
    g = G()
    a = g.node("LoadImage", "A: structure", image=IMAGES["structure"])
    b = g.node("LoadImage", "B: texture (choose your image)", image=IMAGES["texture"])
    sa = g.node("ImageScale", image=[a, 0], upscale_method="lanczos", width=1024, height=1024, crop="center")
    sb = g.node("ImageScale", image=[b, 0], upscale_method="lanczos", width=1024, height=1024, crop="center")
    bg = g.node("FrequencyBandGain", "Band transfer (low of A + high of B)", mode="transfer", cut_low=0.2, cut_high=0.6,
                gain_low=1.0, gain_mid=1.0, gain_high=1.0, soft=0.08, image=[sa, 0], image_b=[sb, 0])
    g.node("SaveImage", images=[bg, 0], filename_prefix="spectral/band_transfer")
    return g.p


def flux_passthrough_sweep() -> dict:
    """(i) SpectralPassthroughSweep: seed 001 App. B as a diagnostic. The plain run and one run per delta with
    the not-yet-active frequencies held at noise, labelled; the tolerated delta is ready for DeltaSchedule."""
    g = G()
    unet, cond, vae = _flux_front(g, "a yellow school bus parked in front of a red brick school, the words "
                                      "SCHOOL BUS on its side, photograph")
    neg = g.node("ConditioningZeroOut", "Negative (unused at cfg 1)", conditioning=[cond, 0])
    lat = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    sw = g.node("SpectralPassthroughSweep", model=[unet, 0], positive=[cond, 0], negative=[neg, 0], latent=[lat, 0],
                vae=[vae, 0], seed=42, steps=28, cfg=1.0, sampler_name="euler", scheduler="simple",
                deltas="0.001, 0.01, 0.05, 0.1", spectrum="auto", transform="dct", tolerance=0.05)
    g.node("SaveImage", images=[sw, 0], filename_prefix="spectral/flux_passthrough_sweep")
    g.node("PreviewAny", "Change per delta", source=[sw, 1])
    return g.p


def sd15_forcing_diagnostic() -> dict:
    """(j) SpectralForcingPatch, a diagnostic: seed 004's input low-pass on a model not trained with it. Bypass
    the node (same seed) for the plain image; the difference shows how much the model uses the band the
    data-to-noise contour calls noise."""
    g = G()
    ckpt, pos, neg = _sd15_front(g, "a lighthouse on a rocky coast at sunset, crashing waves, photograph")
    lat = g.node("EmptyLatentImage", width=512, height=512, batch_size=1)
    forced = g.node("SpectralForcingPatch", "Spectral Forcing (diagnostic)", model=[ckpt, 0], spectrum="auto",
                    custom_A=203.62, custom_beta=1.9155, transform="dct")
    out = g.node("KSampler", model=[forced, 0], seed=5, steps=25, cfg=7.0, sampler_name="euler", scheduler="normal",
                 positive=[pos, 0], negative=[neg, 0], latent_image=[lat, 0], denoise=1.0)
    dec = g.node("VAEDecode", samples=[out, 0], vae=[ckpt, 2])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/sd15_forcing_diagnostic")
    return g.p


def flux_spectral_scheduler() -> dict:
    """(k) SpectralScheduler: FLUX sigmas designed from the latent's power spectrum (seed 002), straight into
    SamplerCustomAdvanced in place of BasicScheduler; the summary shows their spectral KL."""
    g = G()
    unet, cond, vae = _flux_front(g, "a lighthouse on a rocky coast at sunset, crashing waves, 35mm photograph")
    lat = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    sched = g.node("SpectralScheduler", "Spectral Scheduler", model=[unet, 0], steps=28, denoise=1.0,
                   design_for="euler", spectrum="auto", width=1024, height=1024, latent=[lat, 0])
    ks = g.node("KSamplerSelect", sampler_name="euler")
    noise = g.node("RandomNoise", noise_seed=42)
    guider = g.node("BasicGuider", model=[unet, 0], conditioning=[cond, 0])
    out = g.node("SamplerCustomAdvanced", noise=[noise, 0], guider=[guider, 0], sampler=[ks, 0], sigmas=[sched, 0],
                 latent_image=[lat, 0])
    dec = g.node("VAEDecode", samples=[out, 0], vae=[vae, 0])
    g.node("SaveImage", images=[dec, 0], filename_prefix="spectral/flux_spectral_scheduler")
    g.node("PreviewAny", "Design summary", source=[sched, 1])
    return g.p


EXAMPLES = {  # file name -> (builder, family of the models (tests substitute tiny ones), short description)
    "flux_txt2img_spectral_sampler": (flux_txt2img_spectral_sampler, "flux",
                                      "FLUX txt2img with the progressive SAMPLER in SamplerCustomAdvanced"),
    "sd15_spectral_ksampler": (sd15_spectral_ksampler, "sd15",
                               "SD1.5: the KSampler-shaped all-in-one SpectralProgressiveSampler"),
    "wan21_t2v_model_patch": (wan21_t2v_model_patch, "wan",
                              "WAN 2.1 text-to-video with the model patch in front of KSampler"),
    "sd15_txt2img_model_patch": (sd15_txt2img_model_patch, "sd15",
                                 "SD1.5 txt2img with the model patch in front of KSampler"),
    "flux_manual_stages_noise_expand": (flux_manual_stages_noise_expand, "flux",
                                        "Manual stages: KSamplerAdvanced -> SpectralNoiseExpand -> SamplerCustomAdvanced"),
    "flux_probe_schedule_sampler": (flux_probe_schedule_sampler, "flux",
                                    "PowerSpectrumProbe -> DeltaSchedule -> progressive sampler"),
    "flux_frequency_edit": (flux_frequency_edit, "flux", "FrequencyEdit: new texture and style, same structure"),
    "frequency_band_transfer": (frequency_band_transfer, None, "FrequencyBandGain: texture transfer between two images"),
    "flux_passthrough_sweep": (flux_passthrough_sweep, "flux",
                               "SpectralPassthroughSweep: which delta your model and prompt tolerate (seed 001 App. B)"),
    "sd15_forcing_diagnostic": (sd15_forcing_diagnostic, "sd15",
                                "SpectralForcingPatch (diagnostic): seed 004's input low-pass on a model not trained with it"),
    "flux_spectral_scheduler": (flux_spectral_scheduler, "flux",
                                "SpectralScheduler: sigmas designed from the data spectrum (seed 002) -> SamplerCustomAdvanced"),
}

# The preview context the DeltaSchedule / SpectralProgressiveSampler widgets show in each example
# (node.properties.spectral_preview: family, steps, scheduler and the latent size in latent pixels).
PREVIEW_CONTEXT = {
    "flux_txt2img_spectral_sampler": dict(family="flux", steps=28, scheduler="simple", width=128, height=128),
    "sd15_spectral_ksampler": dict(family="sd15", steps=25, scheduler="karras", width=64, height=64),
    "wan21_t2v_model_patch": dict(family="wan", steps=30, scheduler="simple", width=104, height=60),
    "sd15_txt2img_model_patch": dict(family="sd15", steps=25, scheduler="normal", width=64, height=96),
    "flux_probe_schedule_sampler": dict(family="flux", steps=28, scheduler="simple", width=128, height=128),
    "flux_frequency_edit": dict(family="flux", steps=28, scheduler="simple", width=128, height=128),
}

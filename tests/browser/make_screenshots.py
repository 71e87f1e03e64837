"""Screenshots of the pack's widgets for the README: docs/screenshots/*.png, each cropped to its node.

    COMFYUI_PATH=/path/to/ComfyUI python -m tests.browser.make_screenshots

* delta_schedule_preview.png: DeltaSchedule of example_workflows/flux_txt2img_spectral_sampler.json
  (FLUX, 128x128 latent, 28 simple steps);
* spectral_sampler_preview.png: SpectralProgressiveSampler of sd15_spectral_ksampler.json (SD1.5,
  25 karras steps, dpmpp_2m);
* band_editor_transfer.png / band_editor_gains.png: FrequencyBandGain of frequency_band_transfer.json,
  as shipped (transfer) and in gains mode with a sharpening curve;
* power_spectrum_probe.png: PowerSpectrumProbe after a run on ComfyUI's input/example.png (a photo;
  no model needed: the probe measures the pixels).
Loads the UI-format examples with app.loadGraphData, as the template browser does.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

from . import comfy_server, ui

REPO = comfy_server.REPO
OUT = os.path.join(REPO, "docs", "screenshots")


def _load_example(page, name: str) -> None:
    with open(os.path.join(REPO, "example_workflows", name + ".json")) as f:
        ui.load_graph(page, json.load(f), name)
    ui.wait_previews(page)
    ui.hide_chrome(page)


def _shot(page, cls: str, fname: str, scale: float = 1.25) -> str:
    from PIL import Image
    nid = ui.node_ids(page, cls)[0]
    path = os.path.join(OUT, fname)
    ui.screenshot_nodes(page, path, [nid], pad=6, max_scale=scale)
    im = Image.open(path).convert("RGB")
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def main() -> int:
    comfy_dir = os.environ.get("COMFYUI_PATH")
    chromium = comfy_server.find_chromium()
    if not comfy_dir or not chromium:
        print("needs COMFYUI_PATH and a chromium executable", file=sys.stderr)
        return 2
    os.makedirs(OUT, exist_ok=True)
    from playwright.sync_api import sync_playwright
    written = []
    with tempfile.TemporaryDirectory(prefix="spectral_shots_") as root:
        srv = comfy_server.start_server(comfy_dir, root, tiny=False)
        try:
            with sync_playwright() as p:
                browser = comfy_server.launch_browser(p, chromium)
                page = comfy_server.open_app(browser, srv.base, 1600, 1000)
                _load_example(page, "flux_txt2img_spectral_sampler")
                written.append(_shot(page, "DeltaSchedule", "delta_schedule_preview.png"))
                _load_example(page, "sd15_spectral_ksampler")
                written.append(_shot(page, "SpectralProgressiveSampler", "spectral_sampler_preview.png"))
                _load_example(page, "frequency_band_transfer")
                written.append(_shot(page, "FrequencyBandGain", "band_editor_transfer.png"))
                nid = ui.node_ids(page, "FrequencyBandGain")[0]
                page.evaluate("""(id) => { const n = app.graph.getNodeById(id);
                    for (const [k, v] of [['mode', 'gains'], ['cut_low', 0.15], ['cut_high', 0.55], ['gain_low', 1.0],
                                          ['gain_mid', 1.3], ['gain_high', 1.8], ['soft', 0.1]]) {
                      const w = n.widgets.find(w => w.name === k); w.value = v; w.callback?.(v); } }""", nid)
                written.append(_shot(page, "FrequencyBandGain", "band_editor_gains.png"))
                # the probe after a run, on a photo
                graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}, "_meta": {"title": "Load Image"}},
                         "2": {"class_type": "PowerSpectrumProbe", "inputs": {"image": ["1", 0], "delta": 0.01, "stages": 2}}}
                ui.load_api(page, graph, "probe")
                with page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST") as resp:
                    page.evaluate("app.queuePrompt(0, 1)")
                hist = srv.wait_history(resp.value.json()["prompt_id"])
                assert hist["status"]["status_str"] == "success", hist["status"]
                page.wait_for_function("() => { const n = app.graph.nodes.find(n => n.comfyClass === 'PowerSpectrumProbe');"
                                       " return (n.imgs || []).length > 0 && n.imgs[0].complete; }", timeout=30_000)
                page.evaluate("""() => { const n = app.graph.nodes.find(n => n.comfyClass === 'PowerSpectrumProbe');
                                          n.setSize([Math.max(n.size[0], 480), Math.max(n.size[1], 420)]); app.canvas.setDirty(true, true); }""")
                written.append(_shot(page, "PowerSpectrumProbe", "power_spectrum_probe.png", scale=1.5))
                errors = ui.real_errors(page)
                browser.close()
        finally:
            srv.stop()
    for w in written:
        print(w)
    if errors:
        print("page errors:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The pack in the real ComfyUI frontend (comfyui-frontend-package) in headless Chromium (opt-in).

Runs only with COMFYUI_PATH set, SPECTRAL_BROWSER_TESTS=1, a chromium executable (Debian's
/usr/bin/chromium, or $CHROMIUM) and the playwright Python package (its own browser downloads are
not used):

    SPECTRAL_BROWSER_TESTS=1 COMFYUI_PATH=/path/to/ComfyUI python -m pytest -q -rs tests/browser

A real ComfyUI server is started (--cpu, 127.0.0.1, a free port, temporary folders, tiny models, TAESD
VAEs and the integration test nodes via --extra-model-paths-config).  Screenshots and the page's
console errors are saved in $SPECTRAL_ARTIFACTS (default: a new temporary folder, printed).
"""
from __future__ import annotations

import json
import os
import tempfile

import pytest

from . import comfy_server, ui


def _skip_reason() -> str | None:
    if not os.environ.get("COMFYUI_PATH"):
        return "COMFYUI_PATH is not set: the browser tests need a ComfyUI checkout"
    if os.environ.get("SPECTRAL_BROWSER_TESTS") != "1":
        return "browser tests are opt-in: set SPECTRAL_BROWSER_TESTS=1"
    if not comfy_server.find_chromium():
        return "no chromium executable found (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no 'playwright install' needed)"
    return None


REASON = _skip_reason()
if REASON:
    print(f"tests/browser skipped: {REASON}")
    pytest.skip(REASON, allow_module_level=True)

from .examples_src import EXAMPLES  # noqa: E402
from .tiny_examples import tiny_variant  # noqa: E402

REPO = comfy_server.REPO
PACK_NODES = ["SamplerSpectralProgressive", "SpectralProgressiveModel", "SpectralProgressiveSampler", "DeltaSchedule",
              "PowerSpectrumProbe", "SpectralNoiseExpand", "FrequencyEdit", "FrequencyBandGain"]


def tiny_example(name: str) -> dict:
    with open(os.path.join(REPO, "example_workflows", "api", name + ".json")) as f:
        return tiny_variant(json.load(f), EXAMPLES[name][1])


@pytest.fixture(scope="module")
def artifacts():
    d = os.environ.get("SPECTRAL_ARTIFACTS") or tempfile.mkdtemp(prefix="spectral_browser_artifacts_")
    os.makedirs(d, exist_ok=True)
    print(f"\nbrowser test artefacts in {d}")
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = comfy_server.start_server(os.environ["COMFYUI_PATH"], str(tmp_path_factory.mktemp("comfy_browser")), tiny=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server, artifacts):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = comfy_server.launch_browser(p, comfy_server.find_chromium())
        pg = comfy_server.open_app(browser, server.base)
        try:
            yield pg
        finally:
            with open(os.path.join(artifacts, "console_errors.txt"), "w") as f:
                f.write("\n".join(pg.spectral_errors) + "\n")
            try:
                pg.screenshot(path=os.path.join(artifacts, "last_page.png"))
            except Exception:  # noqa: BLE001 - a diagnostic only
                pass
            browser.close()


def state(page, nid) -> dict:
    return page.evaluate("(id) => { const s = app.graph.getNodeById(id).spectralPreview.state; "
                         "return JSON.parse(JSON.stringify(s)); }", nid)


def set_widget(page, nid, name, value) -> None:
    """What a user edit does: set the widget's value and call its callback."""
    page.evaluate("""([id, name, value]) => { const w = app.graph.getNodeById(id).widgets.find(w => w.name === name);
                     w.value = value; w.callback?.(value, app.canvas, app.graph.getNodeById(id)); }""", [nid, name, value])


def widget_value(page, nid, name):
    return page.evaluate("([id, name]) => app.graph.getNodeById(id).widgets.find(w => w.name === name).value", [nid, name])


def wait_update(page, nid, after: int, check: str = "true") -> dict:
    page.wait_for_function(f"""(id) => {{ const s = app.graph.getNodeById(id).spectralPreview.state;
        return s.updates > {after} && s.updates >= s.requests && ({check}); }}""", arg=nid, timeout=30_000)
    return state(page, nid)


def assert_matches_route(server, st: dict) -> dict:
    """The preview's plan is what the route answers for the preview's own request body."""
    assert st["error"] is None, st["error"]
    code, plan = server.post("/spectral_progressive/plan", st["lastBody"])
    assert code == 200, plan
    assert st["plan"]["speedup_tokens"] == plan["speedup_tokens"]
    assert st["plan"]["switch_steps"] == plan["switch_steps"]
    assert [s["size"] for s in st["plan"]["stages"]] == [s["size"] for s in plan["stages"]]
    assert st["plan"] == plan
    return plan


def queue_and_wait(page, server) -> tuple[str, dict]:
    """Queue the loaded graph with app.queuePrompt (what the Run button does); the /history entry."""
    with page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST") as resp:
        page.evaluate("app.queuePrompt(0, 1)")
    body = resp.value.json()
    assert resp.value.status == 200, body
    pid = body["prompt_id"]
    return pid, server.wait_history(pid, timeout=300)


# ------------------------------------------------------------------------------------------------

def test_frontend_loads_the_pack(page, server):
    version = page.evaluate("window.__COMFYUI_FRONTEND_VERSION__")
    print(f"ComfyUI frontend {version}")
    assert page.evaluate("app.extensions.some(e => e.name === 'spectral_progressive.widgets')")
    registered = page.evaluate("Object.keys(LiteGraph.registered_node_types)")
    assert not [n for n in PACK_NODES if n not in registered]
    assert not ui.real_errors(page), ui.real_errors(page)


def test_example_templates_are_served(server):
    """The template browser lists the UI-format examples (not the API twins) with thumbnails."""
    listing = server.get("/api/workflow_templates")
    assert sorted(listing.get("spectral_progressive", [])) == sorted(EXAMPLES)
    for name in EXAMPLES:
        assert server.request("GET", f"/api/workflow_templates/spectral_progressive/{name}.json")[0] == 200
        assert server.request("GET", f"/api/workflow_templates/spectral_progressive/{name}.jpg")[0] == 200


def test_ui_examples_load_as_templates(page, server):
    """Each UI-format example, fetched and loaded the way the template browser does (GET
    /api/workflow_templates/spectral_progressive/<name>.json, app.loadGraphData), loads without errors,
    its previews plan without errors, and app.graphToPrompt() gives back the API-format twin."""
    from .build_examples import compare_prompt
    for name in EXAMPLES:
        before = len(page.spectral_errors)
        page.evaluate("""async (name) => {
            const url = window.comfyAPI.api.api.apiURL(`/workflow_templates/spectral_progressive/${name}.json`);
            await app.loadGraphData(await (await fetch(url)).json(), true, true, name); }""", name)
        ui.wait_previews(page)
        errors = [e for e in ui.real_errors(page) if e in page.spectral_errors[before:]]
        assert not errors, (name, errors)
        preview_errors = page.evaluate("""() => app.graph.nodes.filter(n => n.spectralPreview && n.spectralPreview.state.error)
                                            .map(n => n.spectralPreview.state.error)""")
        assert not preview_errors, (name, preview_errors)
        got = json.loads(page.evaluate("async () => JSON.stringify((await app.graphToPrompt()).output)"))
        with open(os.path.join(REPO, "example_workflows", "api", name + ".json")) as f:
            diffs = compare_prompt(json.load(f), got)
        assert not diffs, (name, diffs)


def test_plan_preview_follows_delta_and_context(page, server, artifacts):
    ui.load_api(page, tiny_example("flux_txt2img_spectral_sampler"), "flux_txt2img (tiny)")
    ui.wait_previews(page)
    nid = ui.node_ids(page, "DeltaSchedule")[0]
    before = state(page, nid)
    assert_matches_route(server, before)
    assert before["lastBody"]["delta"] == pytest.approx(0.01)

    set_widget(page, nid, "delta", 0.05)
    after = wait_update(page, nid, before["updates"], "s.lastBody.delta === 0.05")
    plan = assert_matches_route(server, after)
    assert plan["delta"] == pytest.approx(0.05)
    # a larger tolerance keeps the small stage longer: later switch, larger FLOP-ideal speed-up
    assert plan["switch_steps"][0] > before["plan"]["switch_steps"][0]
    assert plan["speedup_tokens"] > before["plan"]["speedup_tokens"]
    ui.hide_chrome(page)
    ui.screenshot_nodes(page, os.path.join(artifacts, "delta_schedule_preview_delta_0.05.png"), [nid], max_scale=1.5)

    # the preview's own context controls (DOM widget): family and latent size
    n = state(page, nid)["updates"]
    controls = page.evaluate_handle("(id) => app.graph.getNodeById(id).spectralPreview.canvas.parentElement", nid).as_element()
    controls.query_selector("select[data-key=family]").select_option("sd3")
    after = wait_update(page, nid, n, "s.lastBody.family === 'sd3'")
    assert assert_matches_route(server, after)["family"] == "sd3"
    n = after["updates"]
    width = controls.query_selector("input[data-key=width]")
    width.fill("96")
    width.dispatch_event("change")
    after = wait_update(page, nid, n, "s.lastBody.width === 96")
    assert assert_matches_route(server, after)["latent_size"] == [128, 96]
    # the context is saved with the workflow and restored on load
    graph = json.loads(page.evaluate("JSON.stringify(app.graph.serialize())"))
    # (frontend 1.49.6 keeps loadApiJson's node ids as strings in memory, serialize() writes numbers)
    saved = next(x for x in graph["nodes"] if str(x["id"]) == str(nid))["properties"]["spectral_preview"]
    assert saved["family"] == "sd3" and saved["width"] == 96
    ui.load_graph(page, graph, "reloaded")
    ui.wait_previews(page)
    reloaded = state(page, nid)
    assert reloaded["lastBody"]["family"] == "sd3" and reloaded["lastBody"]["width"] == 96
    assert_matches_route(server, reloaded)


def test_sampler_preview_follows_its_widgets_and_linked_schedule(page, server, artifacts):
    ui.load_api(page, tiny_example("sd15_spectral_ksampler"), "sd15_allinone (tiny)")
    ui.wait_previews(page)
    sid = ui.node_ids(page, "SpectralProgressiveSampler")[0]
    did = ui.node_ids(page, "DeltaSchedule")[0]
    st = state(page, sid)
    assert st["lastBody"]["steps"] == widget_value(page, sid, "steps")
    assert st["lastBody"]["scheduler"] == "karras"
    assert_matches_route(server, st)
    # a sampler widget
    set_widget(page, sid, "steps", 30)
    st = wait_update(page, sid, st["updates"], "s.lastBody.steps === 30")
    assert assert_matches_route(server, st)["steps"] == 30
    # the linked DeltaSchedule's widget: the sampler's preview follows
    set_widget(page, did, "stages", 3)
    st = wait_update(page, sid, st["updates"], "s.lastBody.stages === 3")
    assert len(assert_matches_route(server, st)["stages"]) == 3
    ui.hide_chrome(page)
    ui.screenshot_nodes(page, os.path.join(artifacts, "sampler_preview.png"), [sid], max_scale=1.5)


def test_route_rejects_malformed_parameters(server):
    cases = [({"delta": 5}, "delta"), ({"family": "x"}, "family"), ({"stages": 9}, "stages"),
             ({"scheduler": "nope"}, "scheduler"), ({"steps": "many"}, "steps"), ({"transform": "wavelet"}, "transform"),
             ({"mode": "manual", "manual_switch": "abc"}, "manual_switch"), ({"scales": "0.5, 2"}, "scales"),
             ({"width": 0}, "width"), ({"delta": None}, "delta")]
    for body, name in cases:
        code, out = server.post("/spectral_progressive/plan", body)
        assert code == 400, (body, code, out)
        assert isinstance(out, dict) and out["error"].startswith(name), (body, out)
    for raw in (b"not json", b"[1, 2]"):
        code, out = server.post("/spectral_progressive/plan", raw=raw)
        assert code == 400 and "body" in out["error"], (raw, out)
    assert server.post("/spectral_progressive/plan", {})[0] == 200  # every parameter has a default


def _editor_point(page, nid, f, g):
    """Client coordinates of (frequency f, gain g) on the band editor's canvas."""
    return page.evaluate("""([id, f, g]) => { const ed = app.graph.getNodeById(id).spectralBandEditor;
        const geo = ed.geometry(), r = ed.canvas.getBoundingClientRect();
        return [r.left + geo.xs(f) * r.width / geo.W, r.top + geo.ys(g) * r.height / geo.H]; }""", [nid, f, g])


def _drag(page, nid, a, b):
    x0, y0 = _editor_point(page, nid, *a)
    x1, y1 = _editor_point(page, nid, *b)
    hit = page.evaluate("([x, y, id]) => document.elementFromPoint(x, y) === app.graph.getNodeById(id).spectralBandEditor.canvas",
                        [x0, y0, nid])
    assert hit, "the band editor canvas is not under the pointer"
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()
    page.wait_for_timeout(100)


def test_band_editor_drag_writes_widgets(page, server, artifacts):
    ui.load_api(page, tiny_example("frequency_band_transfer"), "band_transfer (tiny)")
    nid = ui.node_ids(page, "FrequencyBandGain")[0]
    ui.hide_chrome(page)
    ui.frame(page, [nid], max_scale=1.5)
    assert widget_value(page, nid, "mode") == "transfer"
    # drag the cut from 0.2 to 0.5
    _drag(page, nid, (0.2, 0.6), (0.5, 0.6))
    assert widget_value(page, nid, "cut_low") == pytest.approx(0.5, abs=0.02)
    # gains mode: dragging inside the high band sets its gain
    set_widget(page, nid, "mode", "gains")
    page.wait_for_timeout(100)
    cut_high = widget_value(page, nid, "cut_high")
    _drag(page, nid, (1.2, 1.0), (1.2, 2.5))
    assert widget_value(page, nid, "gain_high") == pytest.approx(2.5, abs=0.06)
    assert widget_value(page, nid, "cut_high") == cut_high
    ui.screenshot_nodes(page, os.path.join(artifacts, "band_editor_after_drag.png"), [nid], max_scale=1.5)
    # what the widgets hold is what gets queued
    prompt = json.loads(page.evaluate("async () => JSON.stringify((await app.graphToPrompt()).output)"))
    inputs = prompt[str(nid)]["inputs"]
    assert inputs["cut_low"] == pytest.approx(0.5, abs=0.02) and inputs["gain_high"] == pytest.approx(2.5, abs=0.06)
    assert inputs["mode"] == "gains"
    pid, hist = queue_and_wait(page, server)
    assert hist["status"]["status_str"] == "success", hist["status"]
    save_id = ui.node_ids(page, "SaveImage")[0]
    images = hist["outputs"][str(save_id)]["images"]
    assert images and os.path.isfile(os.path.join(server.root, "output", images[0]["subfolder"], images[0]["filename"]))


def test_queue_probe_workflow_and_plot(page, server, artifacts):
    """probe -> schedule -> sampler (tiny FLUX, TAEF1) queued from the page; the result lands in
    /history and the probe's plot is shown in its node."""
    ui.load_api(page, tiny_example("flux_probe_schedule_sampler"), "probe_schedule_sampler (tiny)")
    ui.wait_previews(page)
    did = ui.node_ids(page, "DeltaSchedule")[0]
    assert_matches_route(server, state(page, did))
    pid, hist = queue_and_wait(page, server)
    assert hist["status"]["status_str"] == "success", json.dumps(hist["status"])[:3000]
    probe = ui.node_ids(page, "PowerSpectrumProbe")[0]
    save = ui.node_ids(page, "SaveImage")[0]
    assert hist["outputs"][str(probe)]["images"], "the probe's plot is a ui image"
    out = hist["outputs"][str(save)]["images"][0]
    from PIL import Image
    with Image.open(os.path.join(server.root, "output", out["subfolder"], out["filename"])) as im:
        assert im.size == (128, 128)
    # the frontend received the plot and shows it in the node
    page.wait_for_function("(id) => (app.graph.getNodeById(id).imgs || []).length > 0 && "
                           "app.graph.getNodeById(id).imgs[0].complete", arg=probe, timeout=30_000)
    ui.hide_chrome(page)
    ui.screenshot_nodes(page, os.path.join(artifacts, "probe_plot_after_run.png"), [probe], max_scale=1.5)
    ui.screenshot_nodes(page, os.path.join(artifacts, "probe_workflow_after_run.png"), None, max_scale=1.0)


def test_node_docs_are_served_and_shown(page, server, artifacts):
    """The frontend fetches custom-node docs from /extensions/<pack folder>/docs/<node>.md (after
    trying <node>/<locale>.md); the node's info button (selection toolbox) shows it in a side panel (the
    node library panel on frontend 1.27.10, the node properties panel's Info tab on 1.49.6)."""
    for name in PACK_NODES:
        code, body = server.request("GET", f"/extensions/spectral_progressive/docs/{name}.md")
        assert code == 200 and isinstance(body, str) and body.startswith("#"), (name, code)
    module = server.get("/object_info/DeltaSchedule")["DeltaSchedule"]["python_module"]
    assert module == "custom_nodes.spectral_progressive"  # -> /extensions/spectral_progressive/docs/
    ui.load_api(page, tiny_example("flux_txt2img_spectral_sampler"), "docs")
    nid = ui.node_ids(page, "DeltaSchedule")[0]
    seen = []
    page.on("response", lambda r: seen.append((r.status, r.url)) if "/docs/" in r.url else None)
    # on screen with room above it: the selection toolbox (with the info button) sits above the node
    # (frontend 1.49.6 would otherwise place it under the bottom edge of the window)
    ui.frame(page, [nid], pad=120)
    page.evaluate("(id) => { app.canvas.deselectAll?.(); app.canvas.selectNode(app.graph.getNodeById(id)); "
                  "app.canvas.setDirty(true, true); }", nid)
    ui.hide_chrome(page, False)
    info = page.locator('[data-testid="info-button"]')
    info.first.wait_for(state="visible", timeout=15_000)
    info.first.click()
    page.get_by_text("Defines the progressive schedule.").first.wait_for(state="visible", timeout=15_000)
    assert (200, server.base + "/extensions/spectral_progressive/docs/DeltaSchedule.md") in seen, seen
    page.screenshot(path=os.path.join(artifacts, "node_docs_DeltaSchedule.png"))


def test_no_errors_from_the_pack(page):
    errs = [e for e in ui.real_errors(page)]
    assert not errs, errs

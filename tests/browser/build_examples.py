"""Build example_workflows/ with the real ComfyUI frontend.

    COMFYUI_PATH=/path/to/ComfyUI python -m tests.browser.build_examples [name ...]

1. writes example_workflows/api/<name>.json from tests/browser/examples_src.py;
2. starts ComfyUI (the pack loaded, no models needed) and opens it in headless Chromium;
3. per example: ``app.loadApiJson`` (what dropping an API JSON on the canvas does; it also runs
   ``graph.arrange()``), sets every seed's "control after generate" to fixed and the plan previews'
   context (family, steps, scheduler, latent size) to the example's, reloads that graph with
   ``app.loadGraphData`` and exports ``app.graph.serialize()`` as example_workflows/<name>.json;
4. checks the written UI file loads back without errors and that ``app.graphToPrompt()`` gives back
   the API file (same nodes, links and values);
5. screenshots the whole graph as the template-browser thumbnail example_workflows/<name>.jpg.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile

from . import comfy_server, ui
from .examples_src import EXAMPLES, PREVIEW_CONTEXT

REPO = comfy_server.REPO
OUT = os.path.join(REPO, "example_workflows")
THUMB = (640, 480)
FRONTEND_ONLY = {"PreviewAny": {"preview"}}  # widgets graphToPrompt sends but the node does not take


def write_api(names) -> None:
    os.makedirs(os.path.join(OUT, "api"), exist_ok=True)
    for name in names:
        with open(os.path.join(OUT, "api", name + ".json"), "w") as f:
            json.dump(EXAMPLES[name][0](), f, indent=2)
            f.write("\n")


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:  # widgets round to their step/precision (e.g. custom_beta 1.9155 shows as 1.916)
            return math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def compare_prompt(api: dict, got: dict) -> list[str]:
    """Differences between an API prompt and the one graphToPrompt made from the UI file."""
    diffs = []
    if set(api) != set(got):
        return [f"node ids differ: {sorted(api)} vs {sorted(got)}"]
    for nid, n in api.items():
        g = got[nid]
        if g["class_type"] != n["class_type"]:
            diffs.append(f"{nid}: {n['class_type']} vs {g['class_type']}")
            continue
        for k, v in n["inputs"].items():
            if k not in g["inputs"]:
                diffs.append(f"{nid}.{k}: missing")
            elif isinstance(v, list):
                if [str(v[0]), v[1]] != [str(g["inputs"][k][0]), g["inputs"][k][1]]:
                    diffs.append(f"{nid}.{k}: link {v} vs {g['inputs'][k]}")
            elif not _close(v, g["inputs"][k]):
                diffs.append(f"{nid}.{k}: {v!r} vs {g['inputs'][k]!r}")
        extra = set(g["inputs"]) - set(n["inputs"]) - FRONTEND_ONLY.get(n["class_type"], set())
        if extra:
            diffs.append(f"{nid}: extra inputs {sorted(extra)}")
    return diffs


def layout(graph: dict, gap_x: int = 60, gap_y: int = 40, title: int = 30) -> dict:
    """Layered left-to-right layout: a node's column is its longest path from the sources, sources sit
    in the column before their first consumer, columns are ordered by neighbour barycentres and each
    node is placed at the mean height of its neighbours without overlaps.  Returns {id: [x, y]}."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    preds = {i: [] for i in nodes}
    succs = {i: [] for i in nodes}
    for _lid, a, _sa, b, _sb, _t in graph["links"]:
        preds[b].append(a)
        succs[a].append(b)
    col: dict = {}

    def depth(i):
        if i not in col:
            col[i] = 1 + max((depth(p) for p in preds[i]), default=-1)
        return col[i]

    for i in nodes:
        depth(i)
    for _ in range(len(nodes)):  # pull nodes without inputs next to their first consumer
        changed = False
        for i in nodes:
            if not preds[i] and succs[i]:
                c = min(col[j] for j in succs[i]) - 1
                if c != col[i]:
                    col[i], changed = c, True
        if not changed:
            break
    ncol = max(col.values()) + 1
    cols = [[i for i in sorted(nodes) if col[i] == c] for c in range(ncol)]
    for _ in range(4):  # barycentre ordering sweeps
        for c in list(range(1, ncol)) + list(range(ncol - 2, -1, -1)):
            pos = {i: k for cc in cols for k, i in enumerate(cc)}

            def bary(i):
                nb = [pos[j] for j in preds[i] + succs[i] if abs(col[j] - c) == 1]
                return sum(nb) / len(nb) if nb else pos[i]

            cols[c].sort(key=bary)
    x, xy = 0.0, {}
    widths = [max(nodes[i]["size"][0] for i in cc) for cc in cols]
    for c, cc in enumerate(cols):
        y_next = 0.0
        for i in cc:
            placed = [xy[j][1] for j in preds[i] + succs[i] if j in xy]
            want = sum(placed) / len(placed) if placed else 0.0
            y = max(want, y_next)
            xy[i] = [x, y]
            y_next = y + nodes[i]["size"][1] + title + gap_y
        x += widths[c] + gap_x
    for _ in range(2):  # re-centre nodes without inputs on their consumers (right to left)
        for c in range(ncol - 1, -1, -1):
            y_next = 0.0
            for i in cols[c]:
                want = xy[i][1]
                if not preds[i] and succs[i]:
                    want = sum(xy[j][1] for j in succs[i]) / len(succs[i])
                xy[i][1] = max(want, y_next)
                y_next = xy[i][1] + nodes[i]["size"][1] + title + gap_y
    return {i: [round(x + 60), round(y + 60)] for i, (x, y) in xy.items()}


# After loadApiJson, an image preview that arrives late can resize another node than its LoadImage
# (seen with frontend 1.27.10: ConditioningZeroOut got the preview's height), so shrink nodes without
# DOM widgets or images back to their computed height.
_FIX_SIZES_JS = """() => {
  for (const n of app.graph.nodes) {
    const hasDom = (n.widgets || []).some(w => w.element), hasImg = (n.imgs || []).length > 0;
    if (!hasDom && !hasImg) { const c = n.computeSize(); if (n.size[1] > c[1] + 4) n.setSize([n.size[0], c[1]]); }
  }
}"""
_IMAGES_LOADED_JS = """() => app.graph.nodes.filter(n => n.comfyClass === 'LoadImage')
                          .every(n => (n.imgs || []).length > 0 && n.imgs.every(i => i.complete))"""

_PREPARE_JS = """([ctx]) => {
  for (const n of app.graph.nodes) {
    for (const w of n.widgets || []) if (w.name === 'control_after_generate') w.value = 'fixed';
    if (n.spectralPreview && ctx) { n.properties = n.properties || {}; n.properties.spectral_preview = Object.assign({}, ctx); }
  }
  return JSON.stringify(app.graph.serialize());
}"""


def build_one(page, name: str, api: dict, thumb_dir: str | None) -> dict:
    ui.load_api(page, api, name)
    page.wait_for_function(_IMAGES_LOADED_JS, timeout=30_000)
    page.wait_for_timeout(300)
    page.evaluate(_FIX_SIZES_JS)
    graph = json.loads(page.evaluate(_PREPARE_JS, [PREVIEW_CONTEXT.get(name)]))
    for n, (x, y) in ((n, layout(graph)[n["id"]]) for n in graph["nodes"]):
        n["pos"] = [x, y]
    graph.pop("extra", None)  # canvas offset/zoom of this headless session: not part of the example
    ui.load_graph(page, graph, name)
    ui.wait_previews(page)
    page.wait_for_function(_IMAGES_LOADED_JS, timeout=30_000)
    page.wait_for_timeout(300)
    page.evaluate(_FIX_SIZES_JS)
    out = json.loads(page.evaluate("JSON.stringify(app.graph.serialize())"))  # as the frontend's export writes it
    out.get("extra", {}).pop("ds", None)
    return out


def check_one(page, name: str, ui_graph: dict, api: dict) -> list[str]:
    """Load the UI file back; returns problems (errors on load, graphToPrompt != API, preview errors)."""
    before = len(page.spectral_errors)
    ui.load_graph(page, ui_graph, name)
    ui.wait_previews(page)
    problems = [e for e in ui.real_errors(page)[before:]]
    got = json.loads(page.evaluate("async () => JSON.stringify((await app.graphToPrompt()).output)"))
    problems += compare_prompt(api, got)
    problems += page.evaluate("""() => app.graph.nodes.filter(n => n.spectralPreview && n.spectralPreview.state.error)
                                   .map(n => `${n.comfyClass} preview: ${n.spectralPreview.state.error}`)""")
    if "spectral_preview" in json.dumps(ui_graph) and name in PREVIEW_CONTEXT:
        bodies = page.evaluate("() => app.graph.nodes.filter(n => n.spectralPreview).map(n => n.spectralPreview.state.lastBody)")
        for b in bodies:
            if b.get("family") != PREVIEW_CONTEXT[name]["family"]:
                problems.append(f"preview context not restored: {b}")
    return problems


def thumbnail(page, path: str) -> None:
    from PIL import Image
    ui.hide_chrome(page)
    tmp = path + ".png"
    ui.screenshot_nodes(page, tmp, None, pad=16, max_scale=1.0)
    im = Image.open(tmp).convert("RGB")
    os.remove(tmp)
    # letterbox onto the canvas colour at the template card's 4:3
    W, H = THUMB
    s = min(W / im.width, H / im.height)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    bg = Image.new("RGB", THUMB, im.getpixel((2, 2)))
    bg.paste(im, ((W - im.width) // 2, (H - im.height) // 2))
    bg.save(path, "JPEG", quality=85, optimize=True)


def main(argv: list[str]) -> int:
    comfy_dir = os.environ.get("COMFYUI_PATH")
    if not comfy_dir:
        print("set COMFYUI_PATH to a ComfyUI checkout", file=sys.stderr)
        return 2
    chromium = comfy_server.find_chromium()
    if not chromium:
        print("no chromium executable found (apt-get install chromium)", file=sys.stderr)
        return 2
    names = argv or list(EXAMPLES)
    write_api(names)
    from playwright.sync_api import sync_playwright
    failed = 0
    with tempfile.TemporaryDirectory(prefix="spectral_build_") as root:
        srv = comfy_server.start_server(comfy_dir, root, tiny=False)
        try:
            with sync_playwright() as p:
                browser = comfy_server.launch_browser(p, chromium)
                page = comfy_server.open_app(browser, srv.base, 1600, 1000)
                for name in names:
                    api = EXAMPLES[name][0]()
                    graph = build_one(page, name, api, None)
                    path = os.path.join(OUT, name + ".json")
                    with open(path, "w") as f:
                        json.dump(graph, f, indent=2)
                        f.write("\n")
                    problems = check_one(page, name, graph, api)
                    thumbnail(page, os.path.join(OUT, name + ".jpg"))
                    status = "ok" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems)
                    print(f"{name}: {len(graph['nodes'])} nodes, {len(graph['links'])} links -> {path}: {status}")
                    failed += bool(problems)
                browser.close()
        finally:
            srv.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

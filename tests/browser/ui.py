"""Page helpers for the ComfyUI frontend (Playwright sync API): load workflows, find nodes, frame
the canvas on a node or the whole graph, take cropped screenshots."""
from __future__ import annotations

# Messages from the frontend itself on a fresh user folder (not from this pack; the 1.49.6 ones were
# checked to occur with the pack not loaded at all).  An entry is a substring, or a tuple of substrings that must all occur.
BENIGN = (
    # missing user.css, empty workflow/subgraph/template folders (404s; frontend 1.27.10 and 1.49.6)
    "/api/userdata", "/user.css", "Failed to load resource: the server responded with a status of 404",
    # a settings onChange that runs before its setting exists (frontend 1.27.10: "Cannot read properties
    # of undefined (reading 'id')" in useSettingStore's onChange)
    "Cannot read properties of undefined (reading 'id')",
    # the node help's first try of a localised doc (/extensions/<pack>/docs/<node>/<locale>.md) before
    # the <node>.md fallback
    "/en.md",
    # frontend 1.49.6: its app-mode store subscribes to app.rootGraph.events when it is set up, before
    # the graph exists; the rootGraph getter logs this (stack: settingStore-*.js appModeStore -> get rootGraph)
    "ComfyApp graph accessed before initialization",
    # frontend 1.49.6: the default graph of a fresh user folder is the z_image_turbo template, whose
    # missing-model check fetches the models' huggingface.co URLs; ComfyUI's CSP (connect-src 'self')
    # refuses them.  The pack itself only talks to its own server.
    ("Content Security Policy", "https://huggingface.co/Comfy-Org/"),
)
# console.error calls whose stack passes through the pack's web/js are tagged with this (see
# comfy_server.open_app) and never count as benign.
OURS = "[from spectral_progressive web/js]"


def _benign(e: str) -> bool:
    if OURS in e:
        return False
    return any((b in e) if isinstance(b, str) else all(x in e for x in b) for b in BENIGN)


def real_errors(page) -> list[str]:
    return [e for e in page.spectral_errors if not _benign(e)]


def load_api(page, api: dict, name: str) -> None:
    """app.loadApiJson (what dropping an API-format JSON on the canvas does), then let the previews settle.
    app.clean() first: loadApiJson only clears the graph, so outputs of the previous workflow (image
    previews, keyed by node id) would otherwise land on the new nodes with the same ids (frontend 1.27.10).
    Awaited: loadApiJson is async on frontend 1.49.6 (sync on 1.27.10)."""
    page.evaluate("async ([api, name]) => { app.clean(); await app.loadApiJson(api, name); }", [api, name])
    page.wait_for_timeout(400)


def load_graph(page, graph: dict, name: str) -> None:
    page.evaluate("async ([g, name]) => { await app.loadGraphData(g, true, true, name); }", [graph, name])
    page.wait_for_timeout(400)


def node_ids(page, class_type: str) -> list:
    return page.evaluate("(c) => app.graph.nodes.filter(n => n.comfyClass === c).map(n => n.id)", class_type)


def wait_previews(page, timeout: float = 30_000) -> None:
    """Until every plan preview has answered its latest request."""
    page.wait_for_function("""() => app.graph.nodes.filter(n => n.spectralPreview).every(n => {
        const s = n.spectralPreview.state; return s.updates > 0 && s.updates >= s.requests; })""", timeout=timeout)


_FRAME_JS = """([ids, pad, maxScale]) => {
  const c = app.canvas, ds = c.ds, th = LiteGraph.NODE_TITLE_HEIGHT;
  const nodes = ids === null ? app.graph.nodes : ids.map(i => app.graph.getNodeById(i));
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of nodes) {
    x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - th);
    x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
  }
  // the visible part of the canvas: frontend 1.49.6 draws the canvas under the whole window, with the
  // side toolbar and the workflow tabs over its left and top edges (1.27.10 places the canvas beside them)
  const c0 = c.canvas.getBoundingClientRect();
  const r = {left: c0.left, top: c0.top, right: c0.right, bottom: c0.bottom};
  for (const el of document.querySelectorAll('.side-tool-bar-container, .workflow-tabs-container')) {
    const b = el.getBoundingClientRect();
    if (!b.width || !b.height) continue;
    if (b.left <= r.left + 1 && b.right < (r.left + r.right) / 2 && b.height > (r.bottom - r.top) / 2) r.left = Math.max(r.left, b.right);
    else if (b.top <= r.top + 1 && b.bottom < (r.top + r.bottom) / 2 && b.width > (r.right - r.left) / 2) r.top = Math.max(r.top, b.bottom);
  }
  const W = r.right - r.left, H = r.bottom - r.top;
  const s = Math.min(maxScale, (W - 2 * pad) / (x1 - x0), (H - 2 * pad) / (y1 - y0));
  ds.scale = s;
  ds.offset[0] = (r.left - c0.left + (W - (x1 - x0) * s) / 2) / s - x0;
  ds.offset[1] = (r.top - c0.top + (H - (y1 - y0) * s) / 2) / s - y0;
  c.setDirty(true, true); c.draw(true, true);
  return {x: c0.left + (x0 + ds.offset[0]) * s - pad, y: c0.top + (y0 + ds.offset[1]) * s - pad,
          width: (x1 - x0) * s + 2 * pad, height: (y1 - y0) * s + 2 * pad};
}"""


def frame(page, ids=None, pad: int = 8, max_scale: float = 1.0) -> dict:
    """Scale/offset the canvas so the nodes ``ids`` (all when None) are centred and fit; returns their
    clip rectangle in page pixels."""
    rect = page.evaluate(_FRAME_JS, [ids, pad, max_scale])
    page.wait_for_timeout(400)  # DOM widgets follow the canvas on the next frames
    page.evaluate("app.canvas.setDirty(true, true); app.canvas.draw(true, true)")
    page.wait_for_timeout(200)
    return rect


def hide_chrome(page, hidden: bool = True) -> None:
    """Hide the minimap, the canvas toolbar and the canvas info text, and render nodes in full detail
    at any zoom, so node crops and thumbnails show only the graph."""
    page.evaluate("""(h) => {
      for (const sel of ['.litegraph-minimap', '.minimap-main-container', '.p-buttongroup-vertical',
                         '.selection-toolbox', '.comfy-menu-hamburger'])
        document.querySelectorAll(sel).forEach(e => e.style.visibility = h ? 'hidden' : '');
      app.canvas.show_info = !h;
      app.canvas.min_font_size_for_lod = h ? 0 : 8;
      app.canvas.setDirty(true, true); }""", hidden)


def screenshot_nodes(page, path: str, ids=None, pad: int = 8, max_scale: float = 1.0, jpeg: bool = False) -> dict:
    app_deselect(page)
    rect = frame(page, ids, pad, max_scale)
    vp = page.viewport_size
    clip = {"x": max(0, rect["x"]), "y": max(0, rect["y"])}
    clip["width"] = min(vp["width"] - clip["x"], rect["width"])
    clip["height"] = min(vp["height"] - clip["y"], rect["height"])
    kw = {"type": "jpeg", "quality": 85} if jpeg else {}
    page.screenshot(path=path, clip=clip, **kw)
    return clip


def app_deselect(page) -> None:
    page.evaluate("app.canvas.deselectAll?.() ?? app.canvas.deselectAllNodes?.()")

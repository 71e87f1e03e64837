// Spectral Progressive Diffusion: GUI widgets.
// - DeltaSchedule and SpectralProgressiveSampler: a live preview of the plan (sigma schedule over
//   steps, stage bands with their latent sizes, switch steps, FLOP-ideal speed-up), computed by the
//   pack's server route POST /spectral_progressive/plan, which calls the planner the samplers use.
//   The schedule widgets' names, the preview families and the context defaults come from
//   GET /spectral_progressive/config (the server's tables): this file keeps no list of its own.
// - FrequencyBandGain: a band editor; dragging the cuts or the gains writes the node's widgets.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const STAGE_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756"];

// { schedule_keys, context (defaults), families }: read once from the server
let CONFIG = null;
const CONFIG_READY = api.fetchApi("/spectral_progressive/config").then((r) => r.json()).then((c) => { CONFIG = c; return c; });

function widget(node, name) { return (node.widgets || []).find((w) => w.name === name); }

function scheduleValues(node) {
  const v = {};
  for (const w of node.widgets || []) if (CONFIG.schedule_keys.includes(w.name)) v[w.name] = w.value;
  return v;
}

// The DeltaSchedule feeding a sampler's "schedule" input, if any.
function linkedSchedule(node) {
  const input = (node.inputs || []).find((i) => i.name === "schedule");
  if (!input || input.link == null) return null;
  const graph = node.graph ?? app.graph;  // the node's own graph (a subgraph on newer frontends)
  const link = graph.links[input.link] ?? graph.links.get?.(input.link);
  if (!link) return null;
  const origin = graph.getNodeById(link.origin_id);
  return origin && origin.comfyClass === "DeltaSchedule" ? origin : null;
}

function probeLinked(node) {
  const input = (node?.inputs || []).find((i) => i.name === "probe_spectrum");
  return !!input && input.link != null;
}

export async function fetchPlan(body) {
  const res = await api.fetchApi("/spectral_progressive/plan", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error || res.statusText);
  return json;
}

// A canvas drawn at its CSS size (x2 for sharpness); returns the 2-D context in CSS pixels.
function prepCanvas(canvas, defW, defH) {
  const W = Math.max(160, Math.round(canvas.clientWidth || defW));
  const H = Math.max(80, Math.round(canvas.clientHeight || defH));
  const k = 2;
  if (canvas.width !== W * k || canvas.height !== H * k) { canvas.width = W * k; canvas.height = H * k; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(k, 0, 0, k, 0, 0);
  return { ctx, W, H };
}

// Lays out text parts left to right, wrapping between parts; returns the y below the last line.
function flowText(ctx, parts, x, y, maxW, lineH, sep = "   ") {
  let cx = x;
  for (const [text, color] of parts) {
    const w = ctx.measureText(text).width;
    if (cx > x && cx + w > x + maxW) { cx = x; y += lineH; }
    ctx.fillStyle = color; ctx.fillText(text, cx, y);
    cx += w + ctx.measureText(sep).width;
  }
  return y + lineH;
}

function drawPlan(canvas, state, note) {
  const { ctx, W, H } = prepCanvas(canvas, 420, 170);
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#1e1e1e"; ctx.fillRect(0, 0, W, H);
  ctx.font = "11px sans-serif"; ctx.textBaseline = "alphabetic";
  if (state.error) {
    ctx.fillStyle = "#ff7070";
    flowText(ctx, String(state.error).split(" ").map((w) => [w, "#ff7070"]), 8, 16, W - 16, 14, " ");
    return;
  }
  const plan = state.plan;
  if (!plan) { ctx.fillStyle = "#aaa"; ctx.fillText("computing plan...", 8, 16); return; }
  const L = 30, R = W - 8;
  const head = [[`FLOP-ideal ${plan.speedup_tokens.toFixed(2)}x (tokens), ${plan.speedup_tokens2.toFixed(2)}x (tokens\u00b2)`, "#eee"],
    [`model patch on these sigmas ${plan.patch_speedup_tokens.toFixed(2)}x`, "#bbb"]];
  const T = flowText(ctx, head, 6, 13, W - 12, 13) - 4;
  const tsw = plan.stages.slice(0, -1).map((st) => st.full_switch_time.toFixed(3)).join(", ");
  const foot = [[`switch at step ${plan.switch_steps.join(", ") || "- (no switch)"}` + (tsw ? ` (full-size t ${tsw})` : ""), "#ddd"],
    [`A=${plan.spectrum.A.toPrecision(4)} \u03b2=${plan.spectrum.beta.toPrecision(4)}`, "#aaa"],
    [`${plan.family} latent ${plan.latent_size[0]}x${plan.latent_size[1]}, ${plan.steps} steps`, "#aaa"]];
  if (note) foot.push([note, "#e0b050"]);
  ctx.font = "10px sans-serif";
  let footLines = 1, cx = 0;  // measure the footer's wrapped height
  for (const [t] of foot) { const w = ctx.measureText(t + "   ").width; if (cx > 0 && cx + w > W - 12) { footLines++; cx = 0; } cx += w; }
  const B = H - 14 - 12 * footLines;
  const n = Math.max(plan.steps, 1);
  const xs = (i) => L + (i / n) * (R - L);
  const ys = (t) => B - t * (B - T);
  let labelEnd = -Infinity, row = 0;
  plan.stages.forEach((st, k) => {  // stage bands, labelled with size and step count
    const c = STAGE_COLORS[k % 4];
    ctx.fillStyle = c + "33";
    ctx.fillRect(xs(st.first_step), T, xs(st.last_step + 1) - xs(st.first_step), B - T);
    const label = `${st.size[0]}x${st.size[1]} (${st.steps})`, x = xs(st.first_step) + 3;
    row = x < labelEnd + 4 ? row + 1 : 0;
    ctx.fillStyle = c; ctx.fillText(label, x, B - 4 - 11 * row);
    labelEnd = x + ctx.measureText(label).width;
  });
  ctx.strokeStyle = "#666"; ctx.lineWidth = 1; ctx.strokeRect(L, T, R - L, B - T);
  ctx.fillStyle = "#999"; ctx.fillText("t=1", 4, T + 8); ctx.fillText("t=0", 4, B);
  ctx.fillText("0", L - 2, B + 10); ctx.fillText(String(plan.steps), R - ctx.measureText(String(plan.steps)).width, B + 10);
  plan.stages.forEach((st, k) => {  // each stage's own flow times over the global step axis
    const ts = st.sigmas.map((s) => (plan.frame === "eps" ? s / (1 + s) : s));
    ctx.strokeStyle = STAGE_COLORS[k % 4]; ctx.lineWidth = 2; ctx.beginPath();
    ts.forEach((t, j) => { const x = xs(st.first_step + j), y = ys(Math.min(t, 1)); j ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  });
  ctx.lineWidth = 1; ctx.strokeStyle = "#ddd"; ctx.setLineDash([3, 3]);
  for (const s of plan.switch_steps) {
    ctx.beginPath(); ctx.moveTo(xs(s), T); ctx.lineTo(xs(s), B); ctx.stroke();
    ctx.fillStyle = "#ddd"; ctx.fillText(String(s), xs(s) - ctx.measureText(String(s)).width / 2, B + 10);
  }
  ctx.setLineDash([]);
  flowText(ctx, foot, L, H - 4 - 12 * (footLines - 1), W - L - 6, 12);
}

// The preview context (family, steps, scheduler, latent width/height) lives in node.properties, so it
// is saved with the workflow; read it on every use (a loaded workflow replaces node.properties).
function previewContext(node) {
  node.properties = node.properties || {};
  const ctx = Object.assign({}, CONFIG?.context, node.properties.spectral_preview || {});
  node.properties.spectral_preview = ctx;
  return ctx;
}

let SCHEDULERS = null;  // ComfyUI's scheduler names (read from SpectralProgressiveSampler's node def)

function comboOptions(nodeData, name) {
  const spec = nodeData?.input?.required?.[name];
  if (Array.isArray(spec?.[0])) return spec[0];
  if (spec?.[0] === "COMBO") return spec[1]?.options ?? null;
  return null;
}

function contextControls(node, onChange) {
  const row = document.createElement("div");
  row.style.cssText = "display:flex;gap:2px 8px;font:11px sans-serif;color:#bbb;align-items:center;flex-wrap:wrap";
  row.title = "Preview context: the model family, steps, scheduler and the LATENT size (pixels / 8) to plan for.";
  const inputs = {};
  const add = (key, label, el, width) => {
    el.dataset.key = key;
    el.style.cssText = `width:${width}px;margin-left:3px;background:#222;color:#ddd;border:1px solid #444;` +
      "border-radius:3px;font:11px sans-serif;padding:0 2px";
    el.addEventListener("change", () => {
      previewContext(node)[key] = el.type === "number" ? Number(el.value) : el.value; onChange();
    });
    inputs[key] = el;
    const lab = document.createElement("label"); lab.textContent = label; lab.appendChild(el); row.appendChild(lab);
  };
  const fill = (el, options) => {
    for (const f of options) { const o = document.createElement("option"); o.value = o.textContent = f; el.appendChild(o); }
  };
  const select = (options) => { const el = document.createElement("select"); fill(el, options); return el; };
  const number = () => { const e = document.createElement("input"); e.type = "number"; e.min = "1"; return e; };
  const family = select([]);
  add("family", "family", family, 52);
  if (!widget(node, "steps")) add("steps", "steps", number(), 42);
  if (!widget(node, "scheduler")) {
    if (SCHEDULERS) add("scheduler", "scheduler", select(SCHEDULERS), 78);
    else { const e = document.createElement("input"); e.type = "text"; add("scheduler", "scheduler", e, 64); }
  }
  add("width", "latent w", number(), 44);
  add("height", "h", number(), 44);
  const sync = () => { const ctx = previewContext(node); for (const [k, el] of Object.entries(inputs)) el.value = ctx[k]; };
  CONFIG_READY.then((c) => { fill(family, c.families); sync(); });
  return { row, sync };
}

// Grow a just-created node to fit the DOM widget added to it: frontend 1.49.6 sizes the node before
// onNodeCreated runs, so without this the arranged layout of a loaded API workflow overlaps it.
function fitNode(node) {
  const s = node.computeSize?.();
  if (!s) return;
  const w = Math.max(node.size[0], s[0]), h = Math.max(node.size[1], s[1]);
  if (w !== node.size[0] || h !== node.size[1]) node.setSize ? node.setSize([w, h]) : (node.size = [w, h]);
}

// A DOM widget holding ``el`` (with ``canvas`` redrawn by ``draw`` on resize); ``onWidget`` runs after
// every other widget's own callback.  serialize: false keeps it out of the prompt; widget.serialize =
// false also out of widgets_values.
function addCanvasWidget(node, name, el, canvas, minHeight, draw, onWidget) {
  const dom = node.addDOMWidget(name, name, el, { serialize: false, getMinHeight: () => minHeight });
  if (dom) dom.serialize = false;
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => draw()).observe(canvas);
  for (const w of node.widgets || []) {
    if (w.name === name) continue;
    const cb = w.callback;
    w.callback = function () { const r = cb?.apply(this, arguments); onWidget(); return r; };
  }
}

// Refresh the previews of the samplers a DeltaSchedule feeds.
function refreshLinked(node) {
  const graph = node.graph ?? app.graph;
  for (const out of node.outputs || []) {
    for (const id of out.links || []) {
      const link = graph.links[id] ?? graph.links.get?.(id);
      const target = link && graph.getNodeById(link.target_id);
      if (target && target !== node) target.spectralPreview?.refresh();
    }
  }
}

function attachPlanPreview(node) {
  const box = document.createElement("div");
  box.className = "spectral-preview";
  box.style.cssText = "display:flex;flex-direction:column;gap:3px;height:100%;box-sizing:border-box";
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "width:100%;flex:1 1 auto;min-height:140px;display:block";
  const state = { plan: null, error: null, updates: 0, requests: 0, lastBody: null };
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await CONFIG_READY;
      const sched = linkedSchedule(node) || node;
      const body = Object.assign({}, previewContext(node), scheduleValues(sched));
      for (const k of ["steps", "scheduler"]) { const w = widget(node, k); if (w) body[k] = w.value; }
      state.requests += 1; state.lastBody = body;
      try { state.plan = await fetchPlan(body); state.error = null; } catch (e) { state.error = String(e.message || e); }
      state.updates += 1;
      draw();
    }, 150);
  };
  // A DeltaSchedule with a probe spectrum connected runs on the measured fit, which only exists after
  // the probe ran; the route plans with the spectrum widget (preset), so say so.
  const draw = () => drawPlan(canvas, state, probeLinked(linkedSchedule(node) || node)
    ? "probe connected: shown for the spectrum widget, the run uses the measured fit" : null);
  const ctrl = contextControls(node, refresh);
  box.appendChild(ctrl.row); box.appendChild(canvas);
  addCanvasWidget(node, "spectral_preview", box, canvas, 230, draw, () => { refresh(); refreshLinked(node); });
  const onConn = node.onConnectionsChange;
  node.onConnectionsChange = function () { const r = onConn?.apply(this, arguments); refresh(); return r; };
  const onConfigure = node.onConfigure;
  node.onConfigure = function () { const r = onConfigure?.apply(this, arguments); ctrl.sync(); refresh(); return r; };
  node.spectralPreview = { state, refresh, canvas };
  fitNode(node);
  draw();
  refresh();
}

// ---- FrequencyBandGain band editor --------------------------------------------------------------
const FMAX = 1.5, GMAX = 4.0;
const A_COLOR = "#4c9be8", B_COLOR = "#f58518", GAIN_COLOR = "#7fc97f", CUT_COLOR = "#ffcc66";

// Raised-cosine ramp of spectral_core.editing._ramp: 0 below cut - soft/2, 1 above cut + soft/2.
function ramp(f, cut, soft) {
  const z = soft > 0 ? Math.min(1, Math.max(0, (f - (cut - soft / 2)) / soft)) : (f >= cut ? 1 : 0);
  return 0.5 - 0.5 * Math.cos(Math.PI * z);
}

function drawBands(canvas, node) {
  const { ctx, W, H } = prepCanvas(canvas, 360, 140);
  const L = 30, R = W - 8, T = 16, B = H - 18;
  const v = (n) => widget(node, n)?.value;
  const transfer = v("mode") === "transfer";
  const YMAX = transfer ? 1.25 : GMAX;
  const xs = (f) => L + (f / FMAX) * (R - L), ys = (g) => B - (g / YMAX) * (B - T);
  ctx.fillStyle = "#1e1e1e"; ctx.fillRect(0, 0, W, H);
  ctx.font = "10px sans-serif";
  // grid: gain/weight 1, Nyquist, frequency ticks
  ctx.strokeStyle = "#3a3a3a"; ctx.beginPath();
  for (const g of transfer ? [0.5, 1] : [1, 2, 3]) { ctx.moveTo(L, ys(g)); ctx.lineTo(R, ys(g)); }
  for (const f of [0.5, 1]) { ctx.moveTo(xs(f), T); ctx.lineTo(xs(f), B); }
  ctx.stroke();
  ctx.strokeStyle = "#555"; ctx.strokeRect(L, T, R - L, B - T);
  ctx.fillStyle = "#999";
  for (const g of transfer ? [0, 1] : [0, 1, 2, 3, 4]) ctx.fillText(String(g), L - 8 - ctx.measureText(String(g)).width / 2, ys(g) + 3);
  ctx.fillText(transfer ? "weight" : "gain", 2, T - 5);
  for (const [f, t] of [[0, "0"], [0.5, "0.5"], [1, "Nyquist"], [1.5, "1.5"]]) {
    const w = ctx.measureText(t).width;
    ctx.fillText(t, Math.min(R - w, Math.max(L, xs(f) - w / 2)), H - 5);
  }
  const soft = v("soft") || 0;
  const cuts = transfer ? [v("cut_low")] : [v("cut_low"), v("cut_high")];
  const curve = (fn, color) => {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    for (let i = 0; i <= 300; i++) { const f = (i / 300) * FMAX; const x = xs(f), y = ys(fn(f)); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); }
    ctx.stroke(); ctx.lineWidth = 1;
  };
  let gains = null;
  if (transfer) {
    curve((f) => 1 - ramp(f, cuts[0], soft), A_COLOR);
    curve((f) => ramp(f, cuts[0], soft), B_COLOR);
  } else {
    gains = [v("gain_low"), v("gain_mid"), v("gain_high")];
    curve((f) => gains[0] + (gains[1] - gains[0]) * ramp(f, cuts[0], soft) + (gains[2] - gains[1]) * ramp(f, cuts[1], soft), GAIN_COLOR);
  }
  // cut handles, labelled with their value (labels pushed apart when the cuts are close)
  ctx.strokeStyle = CUT_COLOR; ctx.fillStyle = CUT_COLOR;
  let prevEnd = -Infinity;
  cuts.forEach((c) => {
    ctx.beginPath(); ctx.moveTo(xs(c), T); ctx.lineTo(xs(c), B); ctx.stroke();
    ctx.fillRect(xs(c) - 3, T - 3, 6, 6);
  });
  const cutLabels = cuts.map((c) => { const t = c.toFixed(2); return [t, ctx.measureText(t).width, xs(c)]; });
  const lx = cutLabels.map(([, w, x]) => x - w / 2);
  for (let i = 0; i < lx.length; i++) { lx[i] = Math.max(L, lx[i], prevEnd + 4); prevEnd = lx[i] + cutLabels[i][1]; }
  for (let i = lx.length - 1; i >= 0; i--) {  // keep inside the plot, pushing left if needed
    const limit = i === lx.length - 1 ? R - cutLabels[i][1] : lx[i + 1] - 4 - cutLabels[i][1];
    lx[i] = Math.min(lx[i], limit);
  }
  cutLabels.forEach(([t], i) => ctx.fillText(t, lx[i], T - 5));
  // band labels: which input / which gain each band gets; moved up when they would collide
  const edges = [0, ...cuts, FMAX];
  const labels = transfer ? [["A: structure", A_COLOR], ["B: texture", B_COLOR]]
    : gains.map((g) => [`\u00d7${Number(g).toFixed(2)}`, GAIN_COLOR]);
  const taken = [];
  labels.forEach(([t, color], i) => {
    const w = ctx.measureText(t).width, x0 = xs(edges[i]), x1 = xs(edges[i + 1]);
    const x = Math.min(R - w - 2, Math.max(L + 2, (x0 + x1) / 2 - w / 2));
    let y = transfer ? B - 6 : Math.max(T + 10, ys(gains[i]) - 6);
    const hits = (yy) => taken.some(([a, b, c]) => x < b + 3 && x + w + 3 > a && Math.abs(c - yy) < 11);
    for (let k = 0; k < 6 && hits(y); k++) y = y - 12 >= T + 10 ? y - 12 : y + 24;
    taken.push([x, x + w, y]);
    ctx.fillStyle = color; ctx.fillText(t, x, y);
  });
  return { xs, ys, cuts, transfer, L, R, T, B, W, H, YMAX };
}

function attachBandEditor(node) {
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "width:100%;height:100%;min-height:120px;display:block;cursor:crosshair;touch-action:none";
  canvas.title = "Drag a cut (yellow) to move it; drag inside a band to set its gain.";
  let geo = null, drag = null;
  const setWidget = (name, value) => {
    const w = widget(node, name); if (!w) return;
    const o = w.options || {};
    const min = o.min ?? 0, max = o.max ?? 1e9;
    w.value = Math.round(Math.min(max, Math.max(min, value)) * 100) / 100;
    w.callback?.(w.value);
  };
  const redraw = () => { geo = drawBands(canvas, node); node.setDirtyCanvas?.(true, true); };
  // pointer -> drawing coordinates (CSS pixels of the canvas, whatever the canvas zoom)
  const pos = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * geo.W / r.width, (e.clientY - r.top) * geo.H / r.height]; };
  // Dragging near a cut moves the cut; elsewhere sets the gain of the band under the pointer.
  const apply = (x, y) => {
    const f = ((x - geo.L) / (geo.R - geo.L)) * FMAX, g = ((geo.B - y) / (geo.B - geo.T)) * geo.YMAX;
    if (drag === "cut_low" || drag === "cut_high") setWidget(drag, f);
    else if (drag && !geo.transfer) setWidget(drag, g);
    redraw();
  };
  canvas.addEventListener("pointerdown", (e) => {
    if (!geo) redraw();
    const [x, y] = pos(e);
    const near = geo.cuts.map((c, i) => [Math.abs(geo.xs(c) - x), i]).sort((a, b) => a[0] - b[0])[0];
    if (near && near[0] < 7) drag = near[1] === 0 ? "cut_low" : "cut_high";
    else if (geo.transfer) drag = null;
    else { const f = ((x - geo.L) / (geo.R - geo.L)) * FMAX; drag = f < geo.cuts[0] ? "gain_low" : (f < geo.cuts[1] ? "gain_mid" : "gain_high"); }
    e.preventDefault(); e.stopPropagation();
    canvas.setPointerCapture?.(e.pointerId); apply(x, y);
  });
  canvas.addEventListener("pointermove", (e) => { if (drag) { const [x, y] = pos(e); apply(x, y); e.stopPropagation(); } });
  const end = () => { drag = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  addCanvasWidget(node, "band_editor", canvas, canvas, 150, redraw, redraw);
  const onConfigure = node.onConfigure;
  node.onConfigure = function () { const r = onConfigure?.apply(this, arguments); redraw(); return r; };
  // geometry(): the last drawing's layout (CSS pixels of the canvas): xs(f), ys(gain), L, R, T, B, W, H
  node.spectralBandEditor = { canvas, redraw, setWidget, geometry: () => geo };
  fitNode(node);
  redraw();
}

app.registerExtension({
  name: "spectral_progressive.widgets",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === "SpectralProgressiveSampler") SCHEDULERS = comboOptions(nodeData, "scheduler") || SCHEDULERS;
    const attach = { DeltaSchedule: attachPlanPreview, SpectralProgressiveSampler: attachPlanPreview,
      FrequencyEdit: attachPlanPreview, FrequencyBandGain: attachBandEditor }[nodeData.name];
    if (!attach) return;
    const onCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onCreated?.apply(this, arguments);
      attach(this);
      return r;
    };
  },
});

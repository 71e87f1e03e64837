// Spectral Progressive Diffusion: GUI widgets.
// - DeltaSchedule and SpectralProgressiveSampler: a live preview of the plan (sigma schedule over
//   steps, stage bands with their latent sizes, switch steps, FLOP-ideal speed-up), computed by the
//   pack's server route POST /spectral_progressive/plan, which calls the planner the samplers use.
// - FrequencyBandGain: a band editor; dragging the cuts or the gains writes the node's widgets.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const SCHEDULE_KEYS = ["mode", "delta", "stages", "scales", "transform", "spectrum", "custom_A", "custom_beta",
  "refill", "respace", "manual_switch", "manual_unit"];
const STAGE_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756"];
const DEFAULT_CONTEXT = { family: "flux", steps: 20, scheduler: "simple", width: 128, height: 128 };

function widget(node, name) { return (node.widgets || []).find((w) => w.name === name); }

function scheduleValues(node) {
  const v = {};
  for (const w of node.widgets || []) if (SCHEDULE_KEYS.includes(w.name)) v[w.name] = w.value;
  return v;
}

// The DeltaSchedule feeding a sampler's "schedule" input, if any.
function linkedSchedule(node) {
  const input = (node.inputs || []).find((i) => i.name === "schedule");
  if (!input || input.link == null) return null;
  const link = app.graph.links[input.link] ?? app.graph.links.get?.(input.link);
  if (!link) return null;
  const origin = app.graph.getNodeById(link.origin_id);
  return origin && origin.comfyClass === "DeltaSchedule" ? origin : null;
}

export async function fetchPlan(body) {
  const res = await api.fetchApi("/spectral_progressive/plan", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error || res.statusText);
  return json;
}

function drawPlan(canvas, state) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#1e1e1e"; ctx.fillRect(0, 0, W, H);
  ctx.font = "11px sans-serif";
  if (state.error) { ctx.fillStyle = "#ff7070"; ctx.fillText(state.error, 8, 18); return; }
  const plan = state.plan;
  if (!plan) { ctx.fillStyle = "#aaa"; ctx.fillText("computing plan...", 8, 18); return; }
  const L = 34, R = W - 8, T = 22, B = H - 30;
  const n = plan.steps;
  const xs = (i) => L + (i / Math.max(n, 1)) * (R - L);
  const ys = (t) => B - t * (B - T);
  plan.stages.forEach((st, k) => {  // stage bands
    ctx.fillStyle = STAGE_COLORS[k % 4] + "33";
    ctx.fillRect(xs(st.first_step), T, xs(st.last_step + 1) - xs(st.first_step), B - T);
    ctx.fillStyle = STAGE_COLORS[k % 4];
    ctx.fillText(`${st.size[0]}x${st.size[1]} (${st.steps})`, xs(st.first_step) + 3, B - 4);
  });
  ctx.strokeStyle = "#666"; ctx.strokeRect(L, T, R - L, B - T);
  ctx.fillStyle = "#aaa"; ctx.fillText("t=1", 4, T + 8); ctx.fillText("t=0", 4, B);
  plan.stages.forEach((st, k) => {  // each stage's own flow times over the global step axis
    const ts = st.sigmas.map((s) => (plan.frame === "eps" ? s / (1 + s) : s));
    ctx.strokeStyle = STAGE_COLORS[k % 4]; ctx.lineWidth = 2; ctx.beginPath();
    ts.forEach((t, j) => { const x = xs(st.first_step + j), y = ys(Math.min(t, 1)); j ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  });
  ctx.lineWidth = 1; ctx.strokeStyle = "#ddd"; ctx.setLineDash([3, 3]);
  for (const s of plan.switch_steps) { ctx.beginPath(); ctx.moveTo(xs(s), T); ctx.lineTo(xs(s), B); ctx.stroke(); }
  ctx.setLineDash([]);
  ctx.fillStyle = "#eee";
  ctx.fillText(`FLOP-ideal ${plan.speedup_tokens.toFixed(2)}x (tokens), ${plan.speedup_tokens2.toFixed(2)}x (tokens\u00b2); ` +
    `patch on your sigmas ${plan.patch_speedup_tokens.toFixed(2)}x`, L, 14);
  ctx.fillStyle = "#aaa";
  ctx.fillText(`switch at step ${plan.switch_steps.join(", ") || "-"}  |  A=${plan.spectrum.A.toPrecision(4)} ` +
    `beta=${plan.spectrum.beta.toPrecision(4)}  |  ${plan.family} ${plan.latent_size[0]}x${plan.latent_size[1]}`, L, H - 10);
}

function contextControls(node, onChange) {
  const ctxVals = Object.assign({}, DEFAULT_CONTEXT, node.properties?.spectral_preview || {});
  node.properties = node.properties || {};
  node.properties.spectral_preview = ctxVals;
  const row = document.createElement("div");
  row.style.cssText = "display:flex;gap:4px;font:11px sans-serif;color:#ccc;align-items:center;flex-wrap:wrap";
  const add = (key, el) => {
    el.value = ctxVals[key]; el.dataset.key = key;
    el.style.cssText = "width:60px;background:#222;color:#ddd;border:1px solid #444;font:11px sans-serif";
    el.addEventListener("change", () => {
      ctxVals[key] = el.type === "number" ? Number(el.value) : el.value; onChange();
    });
    const lab = document.createElement("label"); lab.textContent = key; lab.appendChild(el); row.appendChild(lab);
  };
  const fam = document.createElement("select");
  for (const f of ["flux", "sd3", "sd15", "wan"]) { const o = document.createElement("option"); o.value = o.textContent = f; fam.appendChild(o); }
  add("family", fam);
  if (!widget(node, "steps")) { const e = document.createElement("input"); e.type = "number"; add("steps", e); }
  if (!widget(node, "scheduler")) { const e = document.createElement("input"); e.type = "text"; add("scheduler", e); }
  for (const k of ["width", "height"]) { const e = document.createElement("input"); e.type = "number"; add(k, e); }
  return { row, ctxVals };
}

function attachPlanPreview(node) {
  const box = document.createElement("div");
  box.className = "spectral-preview";
  const canvas = document.createElement("canvas");
  canvas.width = 420; canvas.height = 170;
  canvas.style.cssText = "width:100%;height:170px";
  const state = { plan: null, error: null, updates: 0, requests: 0, lastBody: null };
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const sched = linkedSchedule(node) || node;
      const body = Object.assign({}, ctrl.ctxVals, scheduleValues(sched));
      for (const k of ["steps", "scheduler"]) { const w = widget(node, k); if (w) body[k] = w.value; }
      state.requests += 1; state.lastBody = body;
      try { state.plan = await fetchPlan(body); state.error = null; } catch (e) { state.error = String(e.message || e); }
      state.updates += 1;
      drawPlan(canvas, state);
    }, 150);
  };
  const ctrl = contextControls(node, refresh);
  box.appendChild(ctrl.row); box.appendChild(canvas);
  node.addDOMWidget("spectral_preview", "spectral_preview", box, { serialize: false, getMinHeight: () => 200 });
  for (const w of node.widgets || []) {
    if (w.name === "spectral_preview") continue;
    const cb = w.callback;
    w.callback = function () { const r = cb?.apply(this, arguments); refresh(); return r; };
  }
  const onConn = node.onConnectionsChange;
  node.onConnectionsChange = function () { const r = onConn?.apply(this, arguments); refresh(); return r; };
  node.spectralPreview = { state, refresh, canvas };
  drawPlan(canvas, state);
  refresh();
}

// ---- FrequencyBandGain band editor --------------------------------------------------------------
const FMAX = 1.5, GMAX = 4.0;

function drawBands(canvas, node) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 28, R = W - 8, T = 10, B = H - 20;
  const v = (n) => widget(node, n)?.value;
  const xs = (f) => L + (f / FMAX) * (R - L), ys = (g) => B - (g / GMAX) * (B - T);
  ctx.fillStyle = "#1e1e1e"; ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#555"; ctx.strokeRect(L, T, R - L, B - T);
  ctx.fillStyle = "#aaa"; ctx.font = "10px sans-serif";
  ctx.fillText("gain", 2, T + 8); ctx.fillText("1", L - 10, ys(1) + 3); ctx.fillText("Nyquist", xs(1) - 16, H - 6);
  ctx.strokeStyle = "#444"; ctx.beginPath(); ctx.moveTo(L, ys(1)); ctx.lineTo(R, ys(1)); ctx.moveTo(xs(1), T); ctx.lineTo(xs(1), B); ctx.stroke();
  const transfer = v("mode") === "transfer";
  const cuts = transfer ? [v("cut_low")] : [v("cut_low"), v("cut_high")];
  const gains = transfer ? [1, 1] : [v("gain_low"), v("gain_mid"), v("gain_high")];
  const soft = v("soft") || 0;
  const gainAt = (f) => {
    let g = gains[0];
    cuts.forEach((c, i) => {
      const z = soft > 0 ? Math.min(1, Math.max(0, (f - (c - soft / 2)) / soft)) : (f >= c ? 1 : 0);
      g += (gains[i + 1] - gains[i]) * (0.5 - 0.5 * Math.cos(Math.PI * z));
    });
    return g;
  };
  ctx.strokeStyle = "#7fc97f"; ctx.lineWidth = 2; ctx.beginPath();
  for (let i = 0; i <= 200; i++) { const f = (i / 200) * FMAX; const x = xs(f), y = ys(gainAt(f)); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); }
  ctx.stroke(); ctx.lineWidth = 1;
  ctx.strokeStyle = "#ffcc66";
  for (const c of cuts) { ctx.beginPath(); ctx.moveTo(xs(c), T); ctx.lineTo(xs(c), B); ctx.stroke(); }
  if (transfer) { ctx.fillStyle = "#ccc"; ctx.fillText("low band: A", L + 4, T + 12); ctx.fillText("high band: B", xs(cuts[0]) + 4, T + 12); }
  return { xs, ys, cuts, transfer, L, R, T, B };
}

function attachBandEditor(node) {
  const canvas = document.createElement("canvas");
  canvas.width = 360; canvas.height = 140; canvas.style.cssText = "width:100%;height:140px;cursor:crosshair";
  let geo = null, drag = null;
  const setWidget = (name, value) => {
    const w = widget(node, name); if (!w) return;
    const o = w.options || {};
    const min = o.min ?? 0, max = o.max ?? 1e9;
    w.value = Math.round(Math.min(max, Math.max(min, value)) * 100) / 100;
    w.callback?.(w.value);
  };
  const redraw = () => { geo = drawBands(canvas, node); node.setDirtyCanvas?.(true, true); };
  const pos = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  // Dragging near a cut moves the cut; elsewhere sets the gain of the band under the pointer.
  const apply = (x, y) => {
    const f = ((x - geo.L) / (geo.R - geo.L)) * FMAX, g = ((geo.B - y) / (geo.B - geo.T)) * GMAX;
    if (drag === "cut_low" || drag === "cut_high") setWidget(drag, f);
    else if (drag && !geo.transfer) setWidget(drag, g);
    redraw();
  };
  canvas.addEventListener("pointerdown", (e) => {
    const [x, y] = pos(e);
    const near = geo.cuts.map((c, i) => [Math.abs(geo.xs(c) - x), i]).sort((a, b) => a[0] - b[0])[0];
    if (near && near[0] < 6) drag = near[1] === 0 ? "cut_low" : "cut_high";
    else { const f = ((x - geo.L) / (geo.R - geo.L)) * FMAX; drag = f < geo.cuts[0] ? "gain_low" : (geo.cuts[1] === undefined || f < geo.cuts[1] ? "gain_mid" : "gain_high"); }
    canvas.setPointerCapture?.(e.pointerId); apply(x, y);
  });
  canvas.addEventListener("pointermove", (e) => { if (drag) { const [x, y] = pos(e); apply(x, y); } });
  canvas.addEventListener("pointerup", () => { drag = null; });
  node.addDOMWidget("band_editor", "band_editor", canvas, { serialize: false, getMinHeight: () => 150 });
  for (const w of node.widgets || []) {
    if (w.name === "band_editor") continue;
    const cb = w.callback;
    w.callback = function () { const r = cb?.apply(this, arguments); redraw(); return r; };
  }
  node.spectralBandEditor = { canvas, redraw, setWidget };
  redraw();
}

app.registerExtension({
  name: "spectral_progressive.widgets",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const attach = { DeltaSchedule: attachPlanPreview, SpectralProgressiveSampler: attachPlanPreview,
      FrequencyBandGain: attachBandEditor }[nodeData.name];
    if (!attach) return;
    const onCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onCreated?.apply(this, arguments);
      attach(this);
      return r;
    };
  },
});

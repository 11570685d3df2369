// The game-dynamics explorer in the browser: controls, three canvases, and the round trip to the kernel.
//
// Every control change sends the settings (with a request number) to the kernel, which answers with a frame:
// the field on a grid, the trajectory and its distance to the equilibrium as float32 buffers, the eigenvalues,
// the verdicts and the controls that apply. While a request is out, further changes wait and go as one.
// After drawing a frame the .gc-explorer element carries data-frame (frames drawn), data-request (the request it
// answers), data-latency-ms (from the first change it answers to the end of its drawing; the browser paints
// it at its next display refresh), data-compute-ms (the kernel's share) and data-draw-ms (the drawing's).

const TRAJ = ["#1f77b4", "#d62728"];
const ARROW = ["rgba(80, 80, 80, 0.55)", "rgba(214, 39, 40, 0.4)"];
const FIELD = { w: 340, h: 340 };
const EIGS = { w: 340, h: 340 };
const DIST = { w: 690, h: 130 };

function floats(v) {
  if (v == null) return new Float32Array(0);
  if (v instanceof Float32Array) return v;
  if (v instanceof ArrayBuffer) return new Float32Array(v);
  if (ArrayBuffer.isView(v)) {
    if (v.byteOffset % 4 === 0) return new Float32Array(v.buffer, v.byteOffset, v.byteLength / 4);
    return new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  }
  return new Float32Array(v);
}

function canvas2d(canvas, size) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(size.w * dpr);
  canvas.height = Math.round(size.h * dpr);
  canvas.style.width = `${size.w}px`;
  canvas.style.height = `${size.h}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

function niceTicks(lo, hi, count = 5) {
  const span = hi - lo;
  if (!(span > 0) || !isFinite(span)) return [lo];
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push(Math.abs(t) < 1e-12 ? 0 : t);
  return out;
}

function fmt(x) {
  if (!isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return x.toExponential(1);
  return String(Number(x.toPrecision(3)));
}

// A plot box with data ranges: maps data to pixels and back, and draws its frame, ticks and labels.
function plotBox(ctx, box, xr, yr, labels, tickFmt = fmt) {
  const sx = (v) => box.x + ((v - xr[0]) / (xr[1] - xr[0])) * box.w;
  const sy = (v) => box.y + box.h - ((v - yr[0]) / (yr[1] - yr[0])) * box.h;
  const inv = (px, py) => [
    xr[0] + ((px - box.x) / box.w) * (xr[1] - xr[0]),
    yr[0] + ((box.y + box.h - py) / box.h) * (yr[1] - yr[0]),
  ];
  ctx.save();
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.strokeStyle = "#999";
  ctx.lineWidth = 1;
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(xr[0], xr[1])) {
    ctx.fillText(tickFmt(t, "x"), sx(t), box.y + box.h + 3);
    ctx.beginPath();
    ctx.moveTo(sx(t), box.y + box.h);
    ctx.lineTo(sx(t), box.y + box.h + 3);
    ctx.stroke();
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(yr[0], yr[1], 4)) {
    const label = tickFmt(t, "y");
    if (label) ctx.fillText(label, box.x - 4, sy(t));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(labels[0], box.x + box.w / 2, box.y + box.h + 30);
  ctx.save();
  ctx.translate(box.x - 34, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "top";
  ctx.fillText(labels[1], 0, -8);
  ctx.restore();
  ctx.restore();
  return { sx, sy, inv, box };
}

function clipTo(ctx, box) {
  ctx.beginPath();
  ctx.rect(box.x, box.y, box.w, box.h);
  ctx.clip();
}

function drawField(ctx, f) {
  const lim = f.lim;
  const box = { x: 46, y: 8, w: FIELD.w - 56, h: FIELD.h - 50 };
  const ax = plotBox(ctx, box, [-lim, lim], [-lim, lim], f.axis_labels);
  ctx.save();
  clipTo(ctx, box);
  const n = f.grid;
  const cell = box.w / n;
  const len = 0.42 * cell;
  f.planes.forEach((plane, k) => {
    const F = floats(plane.field);
    ctx.strokeStyle = ARROW[k % ARROW.length];
    ctx.lineWidth = 1.1;
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const u = F[2 * (i * n + j)];
        const v = F[2 * (i * n + j) + 1];
        const norm = Math.hypot(u, v);
        if (!(norm > 0) || !isFinite(norm)) continue;
        const p = -lim + (2 * lim * j) / (n - 1);
        const q = -lim + (2 * lim * i) / (n - 1);
        const dx = (u / norm) * len;
        const dy = (-v / norm) * len; // screen y points down
        const cx = ax.sx(p);
        const cy = ax.sy(q);
        const x0 = cx - dx / 2, y0 = cy - dy / 2, x1 = cx + dx / 2, y1 = cy + dy / 2;
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
        const a = Math.atan2(dy, dx);
        ctx.moveTo(x1, y1);
        ctx.lineTo(x1 - 4 * Math.cos(a - 0.45), y1 - 4 * Math.sin(a - 0.45));
        ctx.moveTo(x1, y1);
        ctx.lineTo(x1 - 4 * Math.cos(a + 0.45), y1 - 4 * Math.sin(a + 0.45));
      }
    }
    ctx.stroke();
  });
  if (f.clip != null) {
    ctx.strokeStyle = "#8c564b";
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    for (const c of [f.clip, -f.clip]) {
      ctx.moveTo(box.x, ax.sy(c));
      ctx.lineTo(box.x + box.w, ax.sy(c));
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  f.planes.forEach((plane, k) => {
    const T = floats(plane.trajectory);
    ctx.strokeStyle = TRAJ[k % TRAJ.length];
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let started = false;
    for (let t = 0; t < T.length / 2; t++) {
      const x = T[2 * t], y = T[2 * t + 1];
      if (!isFinite(x) || !isFinite(y)) break;
      const px = Math.max(-1e4, Math.min(1e4, ax.sx(x)));
      const py = Math.max(-1e4, Math.min(1e4, ax.sy(y)));
      if (started) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      started = true;
    }
    ctx.stroke();
  });
  ctx.fillStyle = "#000";
  ctx.beginPath();
  ctx.arc(ax.sx(f.start[0]), ax.sy(f.start[1]), 4, 0, 2 * Math.PI);
  ctx.fill();
  star(ctx, ax.sx(0), ax.sy(0), 7);
  ctx.restore();
  if (f.planes.length > 1) {
    ctx.font = "11px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    const width = Math.max(...f.planes.map((plane) => ctx.measureText(plane.label).width));
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(box.x + 1, box.y + 1, width + 8, 13 * f.planes.length + 5);
    f.planes.forEach((plane, k) => {
      ctx.fillStyle = TRAJ[k % TRAJ.length];
      ctx.fillText(plane.label, box.x + 4, box.y + 3 + 13 * k);
    });
  }
  return ax;
}

function star(ctx, x, y, r) {
  ctx.save();
  ctx.fillStyle = "#000";
  ctx.beginPath();
  for (let i = 0; i < 10; i++) {
    const rr = i % 2 ? r * 0.45 : r;
    const a = -Math.PI / 2 + (i * Math.PI) / 5;
    ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath();
  ctx.fill();
  ctx.restore();
}

function drawEigs(ctx, f) {
  const mu = floats(f.eigenvalues);
  const ex = floats(f.flow_image);
  let big = 1;
  for (const arr of [mu, ex]) for (let i = 0; i < arr.length / 2; i++) big = Math.max(big, Math.hypot(arr[2 * i], arr[2 * i + 1]));
  const R = Math.min(3, 1.15 * big);
  const box = { x: 46, y: 8, w: EIGS.w - 56, h: EIGS.h - 50 };
  const ax = plotBox(ctx, box, [-R, R], [-R, R], ["Re μ", "Im μ"]);
  ctx.save();
  clipTo(ctx, box);
  ctx.strokeStyle = "#ccc";
  ctx.beginPath();
  ctx.moveTo(ax.sx(-R), ax.sy(0));
  ctx.lineTo(ax.sx(R), ax.sy(0));
  ctx.moveTo(ax.sx(0), ax.sy(-R));
  ctx.lineTo(ax.sx(0), ax.sy(R));
  ctx.stroke();
  ctx.strokeStyle = "#000";
  ctx.setLineDash([5, 4]);
  ctx.beginPath();
  ctx.arc(ax.sx(0), ax.sy(0), ax.sx(1) - ax.sx(0), 0, 2 * Math.PI);
  ctx.stroke();
  ctx.setLineDash([]);
  const point = (re, im, filled, color) => {
    const r = Math.hypot(re, im);
    const s = r > 0.97 * R ? (0.97 * R) / r : 1; // beyond the window: drawn on its edge, as a square
    const x = ax.sx(re * s), y = ax.sy(im * s);
    ctx.beginPath();
    if (s < 1) ctx.rect(x - 4, y - 4, 8, 8);
    else ctx.arc(x, y, filled ? 4.5 : 6, 0, 2 * Math.PI);
    if (filled) {
      ctx.fillStyle = color;
      ctx.fill();
    } else {
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  };
  for (let i = 0; i < ex.length / 2; i++) point(ex[2 * i], ex[2 * i + 1], false, "#ff7f0e");
  for (let i = 0; i < mu.length / 2; i++) point(mu[2 * i], mu[2 * i + 1], true, "#1f77b4");
  ctx.restore();
}

function drawDistance(ctx, f) {
  const d = floats(f.distance);
  let lo = Infinity, hi = -Infinity;
  for (const v of d) if (isFinite(v) && v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!isFinite(lo)) { lo = 1e-3; hi = 1; }
  let ylo = Math.floor(Math.log10(Math.max(lo, 1e-300)));
  let yhi = Math.ceil(Math.log10(hi));
  if (yhi - ylo < 1) { ylo -= 1; yhi += 1; }
  const box = { x: 56, y: 6, w: DIST.w - 66, h: DIST.h - 44 };
  const tick = (t, axis) => (axis !== "y" ? fmt(t) : Number.isInteger(t) ? `1e${t}` : ""); // decades only
  const ax = plotBox(ctx, box, [0, f.steps], [ylo, yhi], ["step", "distance"], tick);
  ctx.save();
  clipTo(ctx, box);
  ctx.strokeStyle = "#bbb";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(box.x, ax.sy(Math.log10(d[0])));
  ctx.lineTo(box.x + box.w, ax.sy(Math.log10(d[0])));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.strokeStyle = "#2ca02c";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let last = null;
  for (let k = 0; k < d.length; k++) {
    if (!isFinite(d[k])) break;
    const y = ax.sy(Math.log10(Math.max(d[k], 1e-300)));
    if (k === 0) ctx.moveTo(ax.sx(k), y);
    else ctx.lineTo(ax.sx(k), y);
    last = [ax.sx(k), y];
  }
  ctx.stroke();
  if (f.blowup_step != null && last) {
    ctx.fillStyle = "#d62728";
    ctx.font = "bold 12px sans-serif";
    ctx.textAlign = "left";
    ctx.fillText(`× blew up at step ${f.blowup_step}`, Math.min(last[0] + 4, box.x + box.w - 130), Math.max(last[1], box.y + 12));
  }
  ctx.restore();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function roundSig(x, digits = 4) {
  return Number(x.toPrecision(digits));
}

// 1.0, 1.1, ..., 9.9 times each power of ten from lo to hi
function logValues(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (let m = 10; m < 100; m++) {
      const v = Number((m * Math.pow(10, e - 1)).toPrecision(2));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

function nearest(values, x) {
  let best = 0;
  values.forEach((v, i) => { if (Math.abs(Math.log(v / x)) < Math.abs(Math.log(values[best] / x))) best = i; });
  return best;
}

// One control: its element and a getter for its value; onChange runs on every change.
function makeControl(spec, value, onChange) {
  const wrap = el("div", { class: "gc-control", "data-control": spec.name });
  const label = el("span", { class: "gc-label", text: spec.label });
  wrap.append(label);
  let get;
  if (spec.kind === "select") {
    const sel = el("select", { name: spec.name });
    for (const [v, text] of spec.options) sel.append(el("option", { value: v, text }));
    sel.value = value;
    sel.addEventListener("change", onChange);
    wrap.append(sel);
    get = () => sel.value;
  } else if (spec.kind === "checkbox") {
    const box = el("input", { type: "checkbox", name: spec.name });
    box.checked = !!value;
    box.addEventListener("change", onChange);
    label.prepend(box);
    get = () => box.checked;
  } else if (spec.kind === "matrix") {
    // four number inputs, row by row; an entry being typed ("", "-") keeps its last number
    const grid = el("div", { class: "gc-matrix" });
    const last = value.map(Number);
    value.forEach((v, i) => {
      const input = el("input", { type: "number", name: `${spec.name}${i}`, min: spec.min, max: spec.max, step: spec.step });
      input.value = v;
      input.addEventListener("input", () => {
        if (input.value === "" || !isFinite(Number(input.value))) return;
        last[i] = Number(input.value);
        onChange();
      });
      grid.append(input);
    });
    wrap.append(grid);
    get = () => [...last];
  } else if (spec.kind === "log") {
    // a slider over round values with two significant digits, evenly spaced in log scale within each decade
    const values = logValues(spec.min, spec.max);
    const input = el("input", { type: "range", name: spec.name, min: 0, max: values.length - 1, step: 1 });
    input.dataset.values = JSON.stringify(values);
    input.value = nearest(values, value);
    const out = el("output", { class: "gc-value" });
    out.textContent = fmt(value);
    const read = () => values[Number(input.value)];
    input.addEventListener("input", () => { out.textContent = fmt(read()); onChange(); });
    wrap.append(input, out);
    get = read;
  } else {
    const integer = Number.isInteger(spec.step) && Number.isInteger(spec.min);
    const input = el("input", { type: "range", name: spec.name, min: spec.min, max: spec.max, step: spec.step });
    input.value = value;
    const out = el("output", { class: "gc-value" });
    const read = () => {
      const x = Number(input.value);
      return integer ? Math.round(x) : roundSig(x);
    };
    out.textContent = fmt(value);
    input.addEventListener("input", () => { out.textContent = fmt(read()); onChange(); });
    wrap.append(input, out);
    get = read;
  }
  return { wrap, get };
}

function render({ model, el: root }) {
  const specs = model.get("specs");
  const initial = model.get("settings");
  const values = { ...initial };
  delete values.request;
  const state = { seq: initial.request || 0, inflight: null, pendingSince: null, frames: 0 };

  const container = el("div", { class: "gc-explorer" });
  const controls = el("div", { class: "gc-controls" });
  const groups = {};
  const inputs = {};
  for (const spec of specs) {
    if (!groups[spec.group]) {
      groups[spec.group] = el("fieldset", { class: "gc-group" }, el("legend", { text: spec.group }));
      controls.append(groups[spec.group]);
    }
    const c = makeControl(spec, values[spec.name], () => {
      values[spec.name] = c.get();
      changed();
    });
    inputs[spec.name] = c;
    groups[spec.group].append(c.wrap);
  }
  const startText = el("div", { class: "gc-control gc-start", "data-control": "start" });
  (groups.run || controls).append(startText);
  const showStart = () => { startText.textContent = `start (${fmt(values.start[0])}, ${fmt(values.start[1])}): click the field to move it`; };
  showStart();

  const title = el("div", { class: "gc-title" });
  const fieldCanvas = el("canvas", { class: "gc-field" });
  const eigCanvas = el("canvas", { class: "gc-eigs" });
  const distCanvas = el("canvas", { class: "gc-distance" });
  const fieldCaption = el("div", { class: "gc-caption" });
  const eigCaption = el("div", { class: "gc-caption" });
  const plots = el("div", { class: "gc-plots" },
    el("div", { class: "gc-panel" }, fieldCaption, fieldCanvas),
    el("div", { class: "gc-panel" }, eigCaption, eigCanvas),
    el("div", { class: "gc-panel gc-wide" }, el("div", { class: "gc-caption", text: "distance to the equilibrium (log scale; dashed: the start's)" }), distCanvas));
  const verdict = el("div", { class: "gc-verdict" });
  const note = el("div", { class: "gc-note" });
  const eigText = el("div", { class: "gc-eigtext" });
  const error = el("div", { class: "gc-error" });
  container.append(controls, title, plots, verdict, note, eigText, error);
  root.append(container);

  const ctxField = canvas2d(fieldCanvas, FIELD);
  const ctxEigs = canvas2d(eigCanvas, EIGS);
  const ctxDist = canvas2d(distCanvas, DIST);
  let fieldAxes = null;

  function send() {
    if (state.pendingSince === null) return;
    if (state.inflight && performance.now() - state.inflight.t0 < 10000) return; // one request at a time
    state.seq += 1;
    state.inflight = { request: state.seq, t0: state.pendingSince };
    state.pendingSince = null;
    model.set("settings", { ...values, request: state.seq });
    model.save_changes();
  }

  function changed() {
    if (state.pendingSince === null) state.pendingSince = performance.now();
    send();
  }

  fieldCanvas.addEventListener("click", (event) => {
    if (!fieldAxes) return;
    const rect = fieldCanvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    const b = fieldAxes.box;
    if (px < b.x || px > b.x + b.w || py < b.y || py > b.y + b.h) return;
    const [p, q] = fieldAxes.inv(px, py);
    values.start = [roundSig(p, 3), roundSig(q, 3)];
    showStart();
    changed();
  });

  function draw(f) {
    if (!f || (!f.error && !f.planes)) return;
    error.textContent = f.error || "";
    error.hidden = !f.error;
    if (f.error) return;
    const on = new Set(f.controls);
    for (const [name, c] of Object.entries(inputs)) {
      c.wrap.hidden = !on.has(name);
      for (const input of c.wrap.querySelectorAll("input, select")) input.disabled = !on.has(name);
    }
    title.textContent = f.title;
    fieldCaption.textContent = `the field ${f.field_name} (directions) and the run from the start (dot)`;
    eigCaption.textContent = `eigenvalues μ of F_h' (dots) against the unit circle; rings: e^{hλ}, the exact flow; ρ = ${Number(f.rho).toPrecision(6)}`;
    fieldAxes = drawField(ctxField, f);
    drawEigs(ctxEigs, f);
    drawDistance(ctxDist, f);
    const [d0, d1] = f.distances;
    verdict.replaceChildren(
      el("div", {}, el("b", { text: "linearized: " }), el("span", { class: `gc-v gc-${f.verdict.replace(/ /g, "-")}`, text: f.verdict }), ` (${f.reason})`),
      el("div", {}, el("b", { text: "simulated: " }), el("span", { class: `gc-v gc-${f.simulated}`, text: f.simulated }),
        ` after ${f.blowup_step != null ? `${f.blowup_step} of ` : ""}${f.steps} steps: distance ${fmt(d0)} → ${fmt(d1)}`));
    note.textContent = f.note ? `${f.agree ? "note" : "why they differ"}: ${f.note}` : "";
    note.hidden = !f.note;
    eigText.textContent = `eigenvalues of the field's Jacobian: ${f.continuous_text}; of F_h': ${f.discrete_text}`;
  }

  function onFrame() {
    const f = model.get("frame");
    const t = performance.now();
    draw(f);
    const done = performance.now();
    state.frames += 1;
    if (state.inflight && f.request === state.inflight.request) {
      container.dataset.latencyMs = (done - state.inflight.t0).toFixed(1);
      container.dataset.drawMs = (done - t).toFixed(1);
      container.dataset.computeMs = Number(f.compute_ms || 0).toFixed(1);
      state.inflight = null;
    }
    container.dataset.request = String(f.request);
    container.dataset.frame = String(state.frames);
    send();
  }

  model.on("change:frame", onFrame);
  onFrame();
  return () => model.off("change:frame", onFrame);
}

export default { render };

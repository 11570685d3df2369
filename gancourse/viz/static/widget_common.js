// Helpers shared by the course's canvas widgets (the game-dynamics explorer, the GAN lab, the divergence explorer,
// the image explorer, the DragGAN canvas).
// Each widget's module is this file followed by its own (gancourse.viz.lab_widget.module_source).

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

// The float32 buffers of a message, by the names it lists in msg.buffers.
function namedBuffers(msg, buffers) {
  const out = {};
  (msg.buffers || []).forEach((name, i) => { out[name] = floats(buffers[i]); });
  return out;
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
  if (typeof x !== "number") return String(x);
  if (!isFinite(x)) return x > 0 ? "∞" : x < 0 ? "-∞" : "NaN";
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return x.toExponential(1);
  return String(Number(x.toPrecision(3)));
}

// A plot box with data ranges: maps data to pixels and back, and draws its frame, ticks and axis labels.
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
  ctx.translate(box.x - 36, box.y + box.h / 2);
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

// Curves y_k(x) on one plot: series = [{label, values (Float32Array), color, dash}], yRange = [lo, hi] or null
// (then from the finite values, with 0 included); a legend in the top left corner.
function drawSeries(ctx, size, x, series, yRange, labels, box = null) {
  box = box || { x: 52, y: 8, w: size.w - 68, h: size.h - 46 };
  let x0 = x.length ? x[0] : 0, x1 = x.length ? x[x.length - 1] : 1;
  if (!(x1 > x0)) x1 = x0 + 1;
  let lo = 0, hi = 0;
  if (yRange) [lo, hi] = yRange;
  else {
    for (const s of series) for (const v of s.values) if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!(hi > lo)) hi = lo + 1;
    const pad = 0.05 * (hi - lo);
    hi += pad;
    if (lo < 0) lo -= pad;
  }
  const ax = plotBox(ctx, box, [x0, x1], [lo, hi], labels);
  ctx.save();
  clipTo(ctx, box);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let pen = false;
    for (let k = 0; k < s.values.length && k < x.length; k++) {
      const v = s.values[k];
      if (!isFinite(v)) { pen = false; continue; }
      const px = ax.sx(x[k]), py = ax.sy(Math.max(lo - (hi - lo), Math.min(hi + (hi - lo), v)));
      if (pen) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
    if (s.values.length === 1 && isFinite(s.values[0])) {
      ctx.fillStyle = s.color;
      ctx.beginPath();
      ctx.arc(ax.sx(x[0]), ax.sy(s.values[0]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.setLineDash([]);
  ctx.restore();
  legend(ctx, box, series);
  return ax;
}

function legend(ctx, box, series) {
  ctx.save();
  ctx.font = "11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  const width = Math.max(0, ...series.map((s) => ctx.measureText(s.label).width));
  ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
  ctx.fillRect(box.x + 2, box.y + 2, width + 26, 13 * series.length + 4);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    ctx.moveTo(box.x + 5, box.y + 10 + 13 * k);
    ctx.lineTo(box.x + 19, box.y + 10 + 13 * k);
    ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.fillText(s.label, box.x + 22, box.y + 4 + 13 * k);
  });
  ctx.restore();
}

// viridis, from 0 (dark blue) to 1 (yellow): 9 anchors, linearly interpolated
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
  [92, 200, 99], [170, 220, 50], [253, 231, 37]];

function viridis(t) {
  if (!isFinite(t)) return [200, 200, 200];
  const u = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const f = u - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

// Draw image k of a float32 array of N images (S, S, C) at (x, y), scaled to `size` pixels.
function drawImage(ctx, arr, k, S, C, x, y, size) {
  const img = new ImageData(S, S);
  const base = k * S * S * C;
  for (let p = 0; p < S * S; p++) {
    const o = 4 * p, i = base + p * C;
    const r = arr[i], g = C === 3 ? arr[i + 1] : r, b = C === 3 ? arr[i + 2] : r;
    img.data[o] = 255 * r; img.data[o + 1] = 255 * g; img.data[o + 2] = 255 * b; img.data[o + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = S; off.height = S;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, x, y, size, size);
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

// One control: its element, a getter and a setter for its value; onChange runs on every change by the user.
// Kinds: select (options [[value, text]], numbers stay numbers), checkbox, matrix (number inputs, row by row), log
// (a slider over round values spaced evenly in log scale), range (min, max, step), and "custom" (the widget fills
// the element itself).
function makeControl(spec, value, onChange) {
  const wrap = el("div", { class: "gc-control", "data-control": spec.name });
  const label = el("span", { class: "gc-label", text: spec.label });
  wrap.append(label);
  let get, set;
  if (spec.kind === "select") {
    const sel = el("select", { name: spec.name });
    const numeric = spec.options.length && typeof spec.options[0][0] === "number";
    for (const [v, text] of spec.options) sel.append(el("option", { value: String(v), text }));
    sel.value = String(value);
    sel.addEventListener("change", onChange);
    wrap.append(sel);
    get = () => (numeric ? Number(sel.value) : sel.value);
    set = (v) => { sel.value = String(v); };
  } else if (spec.kind === "checkbox") {
    const box = el("input", { type: "checkbox", name: spec.name });
    box.checked = !!value;
    box.addEventListener("change", onChange);
    label.prepend(box);
    get = () => box.checked;
    set = (v) => { box.checked = !!v; };
  } else if (spec.kind === "matrix") {
    // number inputs, row by row; an entry being typed ("", "-") keeps its last number
    const grid = el("div", { class: "gc-matrix" });
    const inputs = [];
    const last = value.map(Number);
    value.forEach((v, i) => {
      const input = el("input", { type: "number", name: `${spec.name}${i}`, min: spec.min, max: spec.max, step: spec.step });
      input.value = v;
      input.addEventListener("input", () => {
        if (input.value === "" || !isFinite(Number(input.value))) return;
        last[i] = Number(input.value);
        onChange();
      });
      inputs.push(input);
      grid.append(input);
    });
    wrap.append(grid);
    get = () => [...last];
    set = (v) => { v.forEach((x, i) => { last[i] = Number(x); inputs[i].value = x; }); };
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
    set = (v) => { input.value = nearest(values, v); out.textContent = fmt(read()); };
  } else if (spec.kind === "range") {
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
    set = (v) => { input.value = v; out.textContent = fmt(read()); };
  } else {
    get = () => value;
    set = () => {};
  }
  return { wrap, get, set, spec };
}

// Controls grouped in fieldsets, in the order of their specs; returns {element, inputs: name -> control}.
function buildControls(specs, values, onChange) {
  const controls = el("div", { class: "gc-controls" });
  const groups = {};
  const inputs = {};
  for (const spec of specs) {
    if (!groups[spec.group]) {
      groups[spec.group] = el("fieldset", { class: "gc-group", "data-group": spec.group }, el("legend", { text: spec.group }));
      controls.append(groups[spec.group]);
    }
    const c = makeControl(spec, values[spec.name], () => onChange(spec, c));
    inputs[spec.name] = c;
    groups[spec.group].append(c.wrap);
  }
  return { element: controls, inputs, groups };
}

// Show the controls named in `on` (hide and disable the others), and disable the options listed in `disabled`.
function showControls(inputs, on, disabled = {}) {
  for (const [name, c] of Object.entries(inputs)) {
    if (c.spec.local) continue;
    const visible = on.has(name);
    c.wrap.hidden = !visible;
    for (const input of c.wrap.querySelectorAll("input, select, button")) input.disabled = !visible;
    const sel = c.wrap.querySelector("select");
    if (sel) {
      const off = new Set((disabled[name] || []).map(String));
      for (const opt of sel.options) opt.disabled = off.has(opt.value);
    }
  }
}

// The request / answer loop of an explorer: a change goes to the kernel with a request number (one request at a
// time; changes made meanwhile wait and go together), and the kernel answers each with a frame, which `draw`
// draws, or with an error, which `showError` shows. The container element carries data-frame (frames drawn),
// data-request (the request the drawing answers), data-latency-ms (from the first change it answers to the end of
// its drawing), data-compute-ms (the kernel's share) and data-draw-ms.
function explorerLoop(model, container, draw, showError) {
  const state = { seq: 0, inflight: null, pendingSince: null, pending: {}, frames: 0 };
  function send() {
    if (state.pendingSince === null) return;
    if (state.inflight && performance.now() - state.inflight.t0 < 10000) return;
    state.seq += 1;
    state.inflight = { request: state.seq, t0: state.pendingSince };
    state.pendingSince = null;
    model.send({ type: "change", request: state.seq, changes: state.pending });
    state.pending = {};
  }
  function change(changes) {
    Object.assign(state.pending, changes);
    if (state.pendingSince === null) state.pendingSince = performance.now();
    send();
  }
  function onMessage(msg, buffers) {
    if (!msg || (msg.type !== "frame" && msg.type !== "error")) return;
    const t = performance.now();
    if (msg.type === "error") showError(msg.error);
    else {
      showError("");
      draw(msg, namedBuffers(msg, buffers));
      state.frames += 1;
    }
    const done = performance.now();
    if (state.inflight && msg.request >= state.inflight.request) {
      container.dataset.latencyMs = (done - state.inflight.t0).toFixed(1);
      container.dataset.drawMs = (done - t).toFixed(1);
      container.dataset.computeMs = Number(msg.compute_ms || 0).toFixed(1);
      state.inflight = null;
    }
    container.dataset.request = String(Math.max(Number(container.dataset.request || 0), msg.request || 0));
    container.dataset.frame = String(state.frames);
    send();
  }
  model.on("msg:custom", onMessage);
  model.send({ type: "hello" });
  return { change, dispose: () => model.off("msg:custom", onMessage) };
}

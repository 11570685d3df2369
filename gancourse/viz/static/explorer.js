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

// The live 2D GAN lab in the browser: controls, play / pause / step / reset, three canvases, and the frames.
//
// The kernel trains and sends frames (JSON plus float32 buffers); each one drawn is acknowledged, so the kernel
// never runs more than two frames ahead of the drawing. A control change goes to the kernel with a request number
// (further changes wait while one is out, then go together); the first frame that answers it ends its latency.
// The "show" checkboxes only change the drawing. The .gc-lab element carries data-frame (frames drawn),
// data-request (the request the drawing answers), data-latency-ms, data-draw-ms, data-compute-ms (the kernel's
// share), data-step (the engine's step),
// data-playing, data-fps (frames drawn per second over the last second), data-kernel-fps and data-steps-per-s
// (the kernel's rates).

const MAIN = { w: 400, h: 400 };
const CURVE = { w: 400, h: 186 };
const COLORS = { d_loss: "#1f77b4", g_loss: "#d62728", penalty: "#7f7f7f", modes: "#2ca02c", hq: "#9467bd",
  reverse_kl: "#ff7f0e", energy: "#2ca02c", sliced_w1: "#9467bd" };
const CURVE_LABELS = { d_loss: "D loss", g_loss: "G loss", penalty: "penalty" };

function drawMain(ctx, f, a, show, drawing) {
  const W = f.window;
  const box = { x: 44, y: 8, w: MAIN.w - 54, h: MAIN.h - 50 };
  const ax = plotBox(ctx, box, [-W, W], [-W, W], ["x₁", "x₂"]);
  ctx.save();
  clipTo(ctx, box);
  if (show.show_heat) {
    const n = f.heat_n, [lo, hi] = f.heat_range;
    const img = new ImageData(n, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const [r, g, b] = viridis((a.heat[i * n + j] - lo) / (hi - lo));
        const o = 4 * ((n - 1 - i) * n + j); // row i holds y_i, and y grows upwards
        img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = n; off.height = n;
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, box.x, box.y, box.w, box.h);
  }
  if (show.show_manifold) {
    const m = f.manifold_n, M = a.manifold;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.6)";
    ctx.lineWidth = 0.8;
    ctx.beginPath();
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) { // along a row, then (below) along a column
        const o = 2 * (i * m + j);
        if (j === 0) ctx.moveTo(ax.sx(M[o]), ax.sy(M[o + 1])); else ctx.lineTo(ax.sx(M[o]), ax.sy(M[o + 1]));
      }
      for (let j = 0; j < m; j++) {
        const o = 2 * (j * m + i);
        if (j === 0) ctx.moveTo(ax.sx(M[o]), ax.sy(M[o + 1])); else ctx.lineTo(ax.sx(M[o]), ax.sy(M[o + 1]));
      }
    }
    ctx.stroke();
  }
  const dots = (P, color, r) => {
    ctx.fillStyle = color;
    ctx.beginPath();
    for (let k = 0; k < P.length / 2; k++) {
      const x = ax.sx(P[2 * k]), y = ax.sy(P[2 * k + 1]);
      if (!isFinite(x) || !isFinite(y)) continue;
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fill();
  };
  if (show.show_real) {
    dots(a.real, "rgba(20, 20, 20, 0.75)", 1.6);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    for (let k = 0; k < a.centers.length / 2; k++) {
      const x = ax.sx(a.centers[2 * k]), y = ax.sy(a.centers[2 * k + 1]);
      ctx.moveTo(x - 4, y); ctx.lineTo(x + 4, y); ctx.moveTo(x, y - 4); ctx.lineTo(x, y + 4);
    }
    ctx.stroke();
  }
  if (show.show_fake) dots(a.fake, "rgba(255, 34, 68, 0.8)", 1.7);
  if (show.show_arrows) {
    const L = 0.16 * W;
    ctx.strokeStyle = "#ffb000";
    ctx.lineWidth = 1.1;
    ctx.beginPath();
    for (let k = 0; k < a.arrows.length / 2; k++) {
      const x0 = ax.sx(a.fake[2 * k]), y0 = ax.sy(a.fake[2 * k + 1]);
      const x1 = ax.sx(a.fake[2 * k] + L * a.arrows[2 * k]), y1 = ax.sy(a.fake[2 * k + 1] + L * a.arrows[2 * k + 1]);
      if (![x0, y0, x1, y1].every(isFinite) || Math.hypot(x1 - x0, y1 - y0) < 1) continue;
      ctx.moveTo(x0, y0); ctx.lineTo(x1, y1);
      const t = Math.atan2(y1 - y0, x1 - x0);
      ctx.moveTo(x1, y1); ctx.lineTo(x1 - 4 * Math.cos(t - 0.5), y1 - 4 * Math.sin(t - 0.5));
      ctx.moveTo(x1, y1); ctx.lineTo(x1 - 4 * Math.cos(t + 0.5), y1 - 4 * Math.sin(t + 0.5));
    }
    ctx.stroke();
  }
  if (drawing) {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (const [x, y] of drawing) {
      const px = ax.sx(x), py = ax.sy(y);
      ctx.moveTo(px - 4, py - 4); ctx.lineTo(px + 4, py + 4); ctx.moveTo(px - 4, py + 4); ctx.lineTo(px + 4, py - 4);
    }
    ctx.stroke();
  }
  ctx.restore();
  return ax;
}

function render({ model, el: root }) {
  const specs = model.get("specs");
  const values = { ...model.get("settings") };
  const state = { seq: 0, inflight: null, pendingSince: null, pending: {}, frames: 0, last: null, arrays: null,
    drawTimes: [], drawing: (values.points || []).map((p) => [...p]), axes: null, down: false };

  const container = el("div", { class: "gc-lab" });
  const { element: controls, inputs } = buildControls(specs, values, (spec, c) => {
    values[spec.name] = c.get();
    if (spec.local) localChange();
    else changed({ [spec.name]: values[spec.name] });
  });
  // the drawing's control: a hint and a button that clears the points
  const pointsWrap = inputs.points.wrap;
  const hint = el("span", { class: "gc-hint" });
  const clear = el("button", { type: "button", class: "gc-button", name: "clear", text: "clear" });
  pointsWrap.append(hint, clear);
  const showHint = () => {
    const n = state.drawing.length;
    hint.textContent = `${n} point${n === 1 ? "" : "s"}: click or drag on the canvas`;
  };
  showHint();
  clear.addEventListener("click", () => { state.drawing = []; showHint(); redraw(); });

  const play = el("button", { type: "button", class: "gc-button gc-play", name: "play", text: "▶ play" });
  const stepButton = el("button", { type: "button", class: "gc-button", name: "step", text: "step" });
  const reset = el("button", { type: "button", class: "gc-button", name: "reset", text: "reset" });
  const status = el("span", { class: "gc-status" });
  const bar = el("div", { class: "gc-bar" }, play, stepButton, reset, status);
  const title = el("div", { class: "gc-title" });
  const mainCanvas = el("canvas", { class: "gc-main" });
  const lossCanvas = el("canvas", { class: "gc-losses" });
  const metricCanvas = el("canvas", { class: "gc-metrics" });
  const mainCaption = el("div", { class: "gc-caption" });
  const metricCaption = el("div", { class: "gc-caption" });
  const plots = el("div", { class: "gc-plots" },
    el("div", { class: "gc-panel" }, mainCaption, mainCanvas),
    el("div", { class: "gc-panel" },
      el("div", { class: "gc-caption", text: "losses: each frame's mean" }), lossCanvas, metricCaption, metricCanvas));
  const error = el("div", { class: "gc-error" });
  error.hidden = true;
  container.append(controls, bar, title, plots, error);
  root.append(container);
  const ctxMain = canvas2d(mainCanvas, MAIN);
  const ctxLoss = canvas2d(lossCanvas, CURVE);
  const ctxMetric = canvas2d(metricCanvas, CURVE);

  const button = (type) => () => model.send({ type });
  play.addEventListener("click", () => model.send({ type: state.last && state.last.playing ? "pause" : "play" }));
  stepButton.addEventListener("click", button("step"));
  reset.addEventListener("click", button("reset"));

  function send() {
    if (state.pendingSince === null) return;
    if (state.inflight && performance.now() - state.inflight.t0 < 10000) return; // one request at a time
    state.seq += 1;
    state.inflight = { request: state.seq, t0: state.pendingSince };
    state.pendingSince = null;
    model.send({ type: "change", request: state.seq, changes: state.pending });
    state.pending = {};
  }

  function changed(change) {
    Object.assign(state.pending, change);
    if (state.pendingSince === null) state.pendingSince = performance.now();
    send();
  }

  // a change of what is drawn: redrawn here at once, and counted as an answered request
  function localChange() {
    const t0 = performance.now();
    state.seq += 1;
    redraw();
    const done = performance.now();
    container.dataset.latencyMs = (done - t0).toFixed(1);
    container.dataset.drawMs = (done - t0).toFixed(1);
    container.dataset.computeMs = "0";
    container.dataset.request = String(Math.max(Number(container.dataset.request || 0), state.seq));
  }

  function canvasPoint(event) {
    if (!state.axes) return null;
    const rect = mainCanvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    const b = state.axes.box;
    if (px < b.x || px > b.x + b.w || py < b.y || py > b.y + b.h) return null;
    return state.axes.inv(px, py).map((v) => roundSig(v, 3));
  }

  function addPoint(event, spacing) {
    const p = canvasPoint(event);
    if (!p) return;
    const last = state.drawing[state.drawing.length - 1];
    const W = state.last ? state.last.window : 2;
    if (last && Math.hypot(p[0] - last[0], p[1] - last[1]) < spacing * W) return;
    if (state.drawing.length >= 500) return;
    state.drawing.push(p);
    showHint();
    redraw();
  }

  const drawingOn = () => values.data === "drawn";
  mainCanvas.addEventListener("mousedown", (event) => {
    if (!drawingOn()) return;
    state.down = true;
    addPoint(event, 0);
  });
  mainCanvas.addEventListener("mousemove", (event) => { if (state.down && drawingOn()) addPoint(event, 0.04); });
  window.addEventListener("mouseup", () => {
    if (!state.down) return;
    state.down = false;
    if (drawingOn() && state.drawing.length) changed({ points: state.drawing.map((p) => [...p]) });
  });

  function redraw() {
    const f = state.last, a = state.arrays;
    if (!f || !a) return;
    state.axes = drawMain(ctxMain, f, a, values, drawingOn() ? state.drawing : null);
    const curves = ["d_loss", "g_loss", "penalty"].map((k) => ({ label: CURVE_LABELS[k], values: a[`curve_${k}`], color: COLORS[k] }));
    drawSeries(ctxLoss, CURVE, a.curve_step, curves, null, ["step", "loss"]);
    const metrics = f.metric_labels.map(([k, label]) => ({ label, values: a[`metric_${k}`], color: COLORS[k] || "#000" }));
    drawSeries(ctxMetric, CURVE, a.metric_step, metrics, f.metric_unit_range ? [0, 1.02] : null, ["step", "metric"]);
  }

  function showFrame(f, arrays) {
    state.last = f;
    state.arrays = arrays;
    const on = new Set(f.controls);
    showControls(inputs, on, f.disabled);
    if (!state.inflight && state.pendingSince === null) { // the kernel's settings (also those set from Python)
      for (const [name, c] of Object.entries(inputs)) {
        if (c.spec.local || !(name in f.settings) || name === "points") continue;
        if (c.get() !== f.settings[name]) { c.set(f.settings[name]); values[name] = c.get(); }
      }
      if (JSON.stringify(state.drawing) !== JSON.stringify(f.settings.points) && !state.down && f.settings.data === "drawn") {
        state.drawing = f.settings.points.map((p) => [...p]);
        showHint();
      }
      values.data = f.settings.data;
    }
    title.textContent = f.title;
    mainCaption.textContent = `${f.heat_label} (colour, ${fmt(f.heat_range[0])} to ${fmt(f.heat_range[1])}), the data `
      + "(black), G's samples (red), G on a grid of latent codes (white) and -∂L_G/∂x on the samples (orange)"
      + (drawingOn() ? "; click or drag to draw points" : "");
    metricCaption.textContent = `metrics: ${f.metrics_text}`;
    play.textContent = f.playing ? "❚❚ pause" : "▶ play";
    container.dataset.playing = f.playing ? "1" : "0";
    error.textContent = f.diverged || "";
    error.hidden = !f.diverged;
    redraw();
  }

  function onMessage(msg, buffers) {
    if (!msg || (msg.type !== "frame" && msg.type !== "error")) return;
    const t = performance.now();
    if (msg.type === "error") {
      error.textContent = msg.error;
      error.hidden = false;
      if (state.last) { state.last.playing = msg.playing; container.dataset.playing = msg.playing ? "1" : "0"; }
    } else {
      error.hidden = true;
      showFrame(msg, namedBuffers(msg, buffers));
      state.frames += 1;
      state.drawTimes.push(t);
      while (state.drawTimes.length > 2 && t - state.drawTimes[0] > 1000) state.drawTimes.shift();
    }
    const done = performance.now();
    if (state.inflight && msg.request >= state.inflight.request) {
      container.dataset.latencyMs = (done - state.inflight.t0).toFixed(1);
      container.dataset.drawMs = (done - t).toFixed(1);
      container.dataset.computeMs = Number(msg.compute_ms || 0).toFixed(1);
      state.inflight = null;
    }
    const n = state.drawTimes.length;
    const fps = f => (n >= 2 && f ? (n - 1) / ((state.drawTimes[n - 1] - state.drawTimes[0]) / 1000) : 0);
    Object.assign(container.dataset, {
      frame: String(state.frames), number: String(msg.number),
      request: String(Math.max(Number(container.dataset.request || 0), msg.request || 0)),
      step: String(state.last ? state.last.step : 0), fps: fps(msg.playing).toFixed(1),
      kernelFps: Number(msg.fps || 0).toFixed(1), stepsPerS: Number(msg.steps_per_s || 0).toFixed(0),
    });
    if (state.last) {
      status.textContent = `step ${state.last.step.toLocaleString("en")}` + (msg.playing
        ? ` · ${container.dataset.fps} frames/s drawn · kernel ${container.dataset.kernelFps} frames/s, ${container.dataset.stepsPerS} steps/s`
        : " · paused");
    }
    if (msg.type === "frame") model.send({ type: "ack", number: msg.number });
    send();
  }

  model.on("msg:custom", onMessage);
  model.send({ type: "hello" });
  return () => model.off("msg:custom", onMessage);
}

export default { render };

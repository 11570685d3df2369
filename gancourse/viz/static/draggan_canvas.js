// The DragGAN canvas in the browser: the current image enlarged, clicked handles (red) and targets (blue) with an
// arrow from each handle to its target, the last drag's tracked path (orange), buttons and a status line.
//
// Clicks and button presses go to the kernel through explorerLoop (widget_common.js) as changes: `points` (every
// clicked point, handle, target, handle, ...), `steps` and `action` (drag, undo, reset, clear). The kernel answers
// with a frame (the image as a float32 buffer (S, S, C) in [0, 1], the points, the path (T, K, 2), the status) or
// an error, which is shown while the last drawing stays. A click is drawn at once and confirmed by the frame.
// While a drag runs, `progress` messages (the image and the tracked handles so far) are drawn as they come; the
// .gc-drag element counts them in data-progress.

const HANDLE = "#d62728", TARGET = "#1f77b4", PATH = "#ff9f1c";

function arrow(ctx, x0, y0, x1, y1) {
  const a = Math.atan2(y1 - y0, x1 - x0), head = 9;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - head * Math.cos(a - 0.4), y1 - head * Math.sin(a - 0.4));
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - head * Math.cos(a + 0.4), y1 - head * Math.sin(a + 0.4));
  ctx.stroke();
}

function dot(ctx, x, y, color) {
  ctx.fillStyle = color;
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.arc(x, y, 5, 0, 2 * Math.PI);
  ctx.fill();
  ctx.stroke();
}

function render({ model, el: root }) {
  const specs = model.get("specs");
  const values = { ...model.get("settings") };
  const scale = model.get("scale");
  const state = { points: [], confirmed: [], last: null, image: null, path: null, showPath: true, busy: false,
    progress: 0 };

  const container = el("div", { class: "gc-drag" });
  const { element: controls } = buildControls(specs, values, (spec, c) => {
    values[spec.name] = c.get();
    loop.change({ [spec.name]: values[spec.name] });
  });
  const button = (name, text, title) => el("button", { type: "button", class: "gc-button", name, text, title });
  const dragButton = button("drag", "Drag", "move every handle to its target");
  const undoButton = button("undo", "Undo", "forget the last drag");
  const resetButton = button("reset", "Reset", "back to the first image, without points");
  const clearButton = button("clear", "Clear points", "remove the clicked points, keep the image");
  const bar = el("div", { class: "gc-bar" }, dragButton, undoButton, resetButton, clearButton);
  const canvas = el("canvas", { class: "gc-image", title: "click a handle, then its target" });
  const caption = el("div", { class: "gc-caption" });
  const status = el("div", { class: "gc-status" });
  const error = el("div", { class: "gc-error" });
  error.hidden = true;
  container.append(controls, bar, caption, canvas, status, error);
  root.append(container);
  let ctx = null, size = 0;

  function redraw() {
    if (!state.last || !state.image) return;
    const f = state.last, S = f.size;
    if (size !== S) { ctx = canvas2d(canvas, { w: S * scale, h: S * scale }); size = S; }
    drawImage(ctx, state.image, 0, S, f.channels, 0, 0, S * scale);
    const at = (v) => (v + 0.5) * scale; // the centre of pixel v
    const [T, K] = f.path_shape;
    if (T > 1 && state.showPath) { // the tracked handles of the last drag
      ctx.strokeStyle = PATH;
      ctx.lineWidth = 2;
      for (let k = 0; k < K; k++) {
        ctx.beginPath();
        for (let t = 0; t < T; t++) {
          const x = at(state.path[2 * (t * K + k)]), y = at(state.path[2 * (t * K + k) + 1]);
          if (t === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
        }
        ctx.stroke();
      }
    }
    const pts = state.points;
    ctx.strokeStyle = "#ffd400";
    ctx.lineWidth = 2;
    for (let i = 0; i + 1 < pts.length; i += 2) {
      arrow(ctx, at(pts[i][0]), at(pts[i][1]), at(pts[i + 1][0]), at(pts[i + 1][1]));
    }
    pts.forEach((p, i) => dot(ctx, at(p[0]), at(p[1]), i % 2 === 0 ? HANDLE : TARGET));
    container.dataset.points = String(pts.length);
  }

  function draw(f, a) {
    state.last = f;
    state.image = a.image;
    state.path = a.path;
    state.points = f.points.map((p) => [...p]);
    state.confirmed = state.points.map((p) => [...p]);
    state.showPath = true;
    state.busy = false;
    undoButton.disabled = f.drags === 0; // nothing to undo
    caption.textContent = `${f.size}x${f.size} image, ${f.drags} drag${f.drags === 1 ? "" : "s"} applied: `
      + "click a handle (red), then its target (blue)";
    status.textContent = f.status;
    redraw();
  }
  const showError = (text) => {
    error.textContent = text;
    error.hidden = !text;
    if (text) { // the kernel refused: back to the points it holds
      state.busy = false;
      state.points = state.confirmed.map((p) => [...p]);
      redraw();
    }
  };
  const loop = explorerLoop(model, container, draw, showError);

  function onProgress(msg, buffers) { // a running drag: its image and tracked handles so far
    if (!msg || msg.type !== "progress" || !state.last) return;
    state.image = namedBuffers(msg, buffers).image;
    state.points = msg.points.map((p) => [...p]);
    state.showPath = false;
    status.textContent = `dragging... step ${msg.step} of at most ${msg.steps}: handle-to-target distance `
      + `${msg.distance.toFixed(1)} px${msg.points.length > 2 ? " (mean)" : ""}`;
    redraw();
    state.progress += 1;
    container.dataset.progress = String(state.progress);
  }
  model.on("msg:custom", onProgress);

  canvas.addEventListener("click", (event) => {
    if (!state.last || state.busy) return;
    const rect = canvas.getBoundingClientRect();
    const S = state.last.size;
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * S);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * S);
    if (x < 0 || y < 0 || x >= S || y >= S) return;
    state.points.push([x, y]);
    redraw();
    loop.change({ points: state.points.map((p) => [...p]) });
  });
  dragButton.addEventListener("click", () => {
    if (state.busy) return;
    state.busy = true;
    status.textContent = "dragging...";
    loop.change({ action: "drag", points: state.points.map((p) => [...p]) });
  });
  for (const [b, action] of [[undoButton, "undo"], [resetButton, "reset"], [clearButton, "clear"]]) {
    b.addEventListener("click", () => loop.change({ action }));
  }
  return () => { model.off("msg:custom", onProgress); loop.dispose(); };
}

export default { render };

// The image explorer in the browser: a latent walk, the image at a position t of it, and a grid of samples at a
// truncation psi, all drawn from float32 buffers (N, S, S, C) in [0, 1] sent by the kernel.

const THUMB = 44, BIG = 176, CELL = 40;

function render({ model, el: root }) {
  const specs = model.get("specs");
  const values = { ...model.get("settings") };
  const container = el("div", { class: "gc-images" });
  const { element: controls } = buildControls(specs, values, (spec, c) => {
    values[spec.name] = c.get();
    loop.change({ [spec.name]: values[spec.name] });
  });
  const walkCanvas = el("canvas", { class: "gc-walk" });
  const atCanvas = el("canvas", { class: "gc-at" });
  const gridCanvas = el("canvas", { class: "gc-grid" });
  const walkCaption = el("div", { class: "gc-caption" });
  const atCaption = el("div", { class: "gc-caption" });
  const gridCaption = el("div", { class: "gc-caption" });
  const error = el("div", { class: "gc-error" });
  error.hidden = true;
  container.append(controls,
    el("div", { class: "gc-plots" }, el("div", { class: "gc-panel" }, walkCaption, walkCanvas)),
    el("div", { class: "gc-plots" }, el("div", { class: "gc-panel" }, atCaption, atCanvas),
      el("div", { class: "gc-panel" }, gridCaption, gridCanvas)),
    error);
  root.append(container);
  let ctxWalk = null, ctxAt = null, ctxGrid = null, shape = null;

  function draw(f, a) {
    const S = f.size, C = f.channels, n = f.n_walk, g = f.grid;
    const key = `${S}/${n}/${g}`;
    if (shape !== key) { // canvases sized for this generator
      ctxWalk = canvas2d(walkCanvas, { w: n * (THUMB + 2), h: THUMB + 10 });
      ctxAt = canvas2d(atCanvas, { w: BIG, h: BIG });
      ctxGrid = canvas2d(gridCanvas, { w: g * (CELL + 1), h: g * (CELL + 1) });
      shape = key;
    }
    for (const ctx of [ctxWalk, ctxAt, ctxGrid]) { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height); }
    for (let k = 0; k < n; k++) drawImage(ctxWalk, a.walk, k, S, C, k * (THUMB + 2), 0, THUMB);
    const x = f.settings.t * ((n - 1) * (THUMB + 2)) + THUMB / 2; // where t falls along the strip
    ctxWalk.fillStyle = "#d62728";
    ctxWalk.beginPath();
    ctxWalk.moveTo(x, THUMB + 1); ctxWalk.lineTo(x - 5, THUMB + 9); ctxWalk.lineTo(x + 5, THUMB + 9);
    ctxWalk.fill();
    drawImage(ctxAt, a.at, 0, S, C, 0, 0, BIG);
    for (let k = 0; k < g * g; k++) drawImage(ctxGrid, a.grid, k, S, C, (k % g) * (CELL + 1), Math.floor(k / g) * (CELL + 1), CELL);
    const s = f.settings;
    walkCaption.textContent = `G along the ${s.method === "slerp" ? "great circle" : "straight line"} from z_a (seed ${s.seed_a}) to z_b (seed ${s.seed_b}), codes scaled by ψ = ${fmt(s.psi)}; the red mark is t`;
    atCaption.textContent = `G(ψ z(t)) at t = ${fmt(s.t)}: |z(t)| = ${fmt(f.code_norm)} (a typical code: √d = ${fmt(f.typical_norm)})`;
    gridCaption.textContent = `${g * g} samples at ψ = ${fmt(s.psi)}: diversity (per-pixel std) ${f.diversity.toFixed(3)}`;
  }
  const showError = (text) => { error.textContent = text; error.hidden = !text; };
  const loop = explorerLoop(model, container, draw, showError);
  return loop.dispose;
}

export default { render };

// The divergence explorer in the browser: sliders for two 1D Gaussian mixtures p and q (or the offset theta of
// WGAN's parallel lines), the densities with the optimal discriminator D*, the values of KL, reverse KL, JSD, TV
// and W1, and their curves as q slides (or as theta moves). The kernel computes; the browser draws.

const PANEL = { w: 410, h: 250 };
const DIV_COLORS = { kl: "#1f77b4", reverse_kl: "#17becf", jsd: "#d62728", tv: "#9467bd", w1: "#2ca02c", w: "#2ca02c" };

function num(v) {
  if (typeof v === "string") return v === "inf" ? Infinity : v === "-inf" ? -Infinity : NaN;
  return v;
}

function vline(ctx, ax, x, color) {
  ctx.save();
  ctx.strokeStyle = color;
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.moveTo(ax.sx(x), ax.box.y);
  ctx.lineTo(ax.sx(x), ax.box.y + ax.box.h);
  ctx.stroke();
  ctx.restore();
}

function hline(ctx, ax, y, color, text) {
  ctx.save();
  clipTo(ctx, ax.box);
  ctx.strokeStyle = color;
  ctx.setLineDash([2, 3]);
  ctx.beginPath();
  ctx.moveTo(ax.box.x, ax.sy(y));
  ctx.lineTo(ax.box.x + ax.box.w, ax.sy(y));
  ctx.stroke();
  ctx.fillStyle = color;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "bottom";
  ctx.fillText(text, ax.box.x + ax.box.w - 3, ax.sy(y) - 1);
  ctx.restore();
}

function drawDensities(ctx, f, a) {
  let hi = 0;
  for (const v of a.panel_p) hi = Math.max(hi, v);
  for (const v of a.panel_q) hi = Math.max(hi, v);
  const series = [
    { label: "p (data)", values: a.panel_p, color: "#1f77b4" },
    { label: "q (model)", values: a.panel_q, color: "#d62728" },
    { label: "D*(x) = p / (p + q), right axis from 0 to 1", values: a.panel_d_star.map((d) => d * hi * 1.08), color: "#2ca02c", dash: [5, 3] },
  ];
  return drawSeries(ctx, PANEL, a.x, series, [0, hi * 1.1], ["x", "density"]);
}

function drawLines(ctx, f, a) {
  const box = { x: 52, y: 8, w: PANEL.w - 62, h: PANEL.h - 46 };
  const ax = plotBox(ctx, box, [-2.3, 2.3], [-0.1, 1.1], ["x₁", "x₂"]);
  ctx.save();
  clipTo(ctx, box);
  for (const [name, color] of [["panel_p0", "#1f77b4"], ["panel_p_theta", "#d62728"]]) {
    const P = a[name];
    ctx.fillStyle = color;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(ax.sx(P[0]), ax.sy(0));
    ctx.lineTo(ax.sx(P[0]), ax.sy(1));
    ctx.stroke();
    for (let k = 0; k < P.length / 2; k++) {
      ctx.beginPath();
      ctx.arc(ax.sx(P[2 * k]), ax.sy(P[2 * k + 1]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.restore();
  legend(ctx, box, [{ label: "P₀ = (0, Z)", color: "#1f77b4" }, { label: `P_θ = (θ, Z), θ = ${fmt(f.settings.theta)}`, color: "#d62728" }]);
}

function drawCurves(ctx, f, a) {
  const lines = f.example === "lines";
  let top = 1.2;
  for (const [k] of f.labels) {
    if (k === "kl" || k === "reverse_kl") continue; // unbounded: they leave the plot at the top
    for (const v of a[`curve_${k}`]) if (isFinite(v)) top = Math.max(top, 1.1 * v);
  }
  const series = f.labels.map(([k, label]) => ({ label, values: a[`curve_${k}`], color: DIV_COLORS[k] || "#000" }));
  const ax = drawSeries(ctx, PANEL, a.sweep, series, [0, top], [lines ? "θ" : "t (q shifted by t)", "value"]);
  hline(ctx, ax, f.log2, "#d62728", "log 2");
  hline(ctx, ax, 1, "#9467bd", "1");
  vline(ctx, ax, lines ? f.settings.theta : 0, "#333");
  ctx.save();
  for (const [k] of f.labels) { // the current values, on the marker
    const v = num(f.values[k]);
    const y = isFinite(v) ? ax.sy(Math.min(v, top)) : ax.box.y + 4;
    ctx.fillStyle = DIV_COLORS[k] || "#000";
    ctx.beginPath();
    ctx.arc(ax.sx(lines ? f.settings.theta : 0), y, 3.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();
}

function render({ model, el: root }) {
  const specs = model.get("specs");
  const values = { ...model.get("settings") };
  const container = el("div", { class: "gc-divergences" });
  const { element: controls, inputs } = buildControls(specs, values, (spec, c) => {
    values[spec.name] = c.get();
    loop.change({ [spec.name]: values[spec.name] });
  });
  const panelCanvas = el("canvas", { class: "gc-panel-left" });
  const curveCanvas = el("canvas", { class: "gc-curves" });
  const panelCaption = el("div", { class: "gc-caption" });
  const curveCaption = el("div", { class: "gc-caption" });
  const table = el("div", { class: "gc-values" });
  const error = el("div", { class: "gc-error" });
  error.hidden = true;
  container.append(controls,
    el("div", { class: "gc-plots" }, el("div", { class: "gc-panel" }, panelCaption, panelCanvas),
      el("div", { class: "gc-panel" }, curveCaption, curveCanvas)), table, error);
  root.append(container);
  const ctxPanel = canvas2d(panelCanvas, PANEL);
  const ctxCurve = canvas2d(curveCanvas, PANEL);

  function draw(f, a) {
    const on = new Set(f.controls), inactive = new Set(f.inactive);
    showControls(inputs, on);
    for (const name of inactive) for (const input of inputs[name].wrap.querySelectorAll("input")) input.disabled = true;
    const v = (k) => fmt(num(f.values[k]));
    if (f.example === "lines") {
      drawLines(ctxPanel, f, a);
      panelCaption.textContent = "two parallel segments: for θ ≠ 0 their supports are disjoint";
      curveCaption.textContent = "as θ moves: JSD stays log 2 and TV 1 (KL is infinite) for every θ ≠ 0, while W1 = |θ|";
      table.replaceChildren(el("span", { text: `JSD ${v("jsd")}` }), el("span", { text: `KL ${v("kl")}` }),
        el("span", { text: `TV ${v("tv")}` }), el("span", { text: `W1 ${v("w")} (|θ| = ${fmt(Math.abs(f.settings.theta))})` }));
    } else {
      drawDensities(ctxPanel, f, a);
      panelCaption.textContent = "the densities p and q, and the optimal discriminator D* (dashed; 1/2 where p = q)";
      curveCaption.textContent = "the divergences between p and q shifted by t (the current q is t = 0, the marker); KL leaves the plot at the top";
      table.replaceChildren(...["kl", "reverse_kl", "jsd", "tv", "w1"].map((k) => el("span", { text: `${f.labels.find((l) => l[0] === k)[1]} ${v(k)}` })),
        el("span", { text: `V(D*, G) = 2 JSD − log 4 = ${v("v_star")}` }));
    }
    drawCurves(ctxCurve, f, a);
  }
  const showError = (text) => { error.textContent = text; error.hidden = !text; };
  const loop = explorerLoop(model, container, draw, showError);
  return loop.dispose;
}

export default { render };

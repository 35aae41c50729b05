// The network unrolled in time: one column per position, rows for the inputs x_t, each
// layer's hidden state h_t (per direction) and the outputs y_t, with the arrows between them.
// Owns that plot, its per-step lighting (forward pass, then BPTT's gradient on a log scale)
// and the small form that edits one input value.

const WINDOW = 60; // most positions drawn at once; longer sequences page through windows
const COLUMN_PX = 14; // narrower screens show fewer positions, at least this wide each
const GRAD_BINS = 10; // gradient arrows are drawn in this many colour bins
const COLOR = { pending: "#e4e7ed", pendingNode: "#f3f4f7", overflow: "#b3261e", recurrent: "#e07b00",
  feed: "#8a94a6", active: "#2f6fde", changed: "#d6336c", ink: "#1b2230" };
const DIVERGING = [[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]];
const SEQUENTIAL = [[0, "#440154"], [0.25, "#3b528b"], [0.5, "#21918c"], [0.75, "#5ec962"], [1, "#fde725"]];
const MARGIN = { l: 110, r: 100, t: 34, b: 78 }; // the right margin holds the colour bar
const NARROW_MARGIN = { l: 80, r: 84, t: 34, b: 78 };
// no "Share chart" (it uploads to Plotly Cloud) and no selection tools; "Download plot as a PNG" stays
const PLOT_CONFIG = { responsive: true, displaylogo: false, showSendToCloud: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
// trace order: arrow bins, then nodes, changed-by-edit rings, the current-step ring, colour bar
const BIN = { pending: 0, feed: 1, recurrent: 2, active: 3, overflow: 4, grad: 5 };
const NODE_TRACE = BIN.grad + GRAD_BINS;

const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** Colour at u in [0, 1] on a list of [stop, "#rrggbb"] pairs. */
function colorAt(stops, u) {
  const v = Number.isNaN(u) ? 0.5 : Math.max(0, Math.min(1, u));
  let k = 1;
  while (k < stops.length - 1 && stops[k][0] < v) k++;
  const [[s0, c0], [s1, c1]] = [stops[k - 1], stops[k]];
  const [a, b, w] = [rgb(c0), rgb(c1), s1 > s0 ? (v - s0) / (s1 - s0) : 0];
  return `rgb(${a.map((x, i) => Math.round(x + (b[i] - x) * w)).join(",")})`;
}

const fmt = (v) => (v == null ? "overflow (not finite)" : Number(v).toPrecision(4));
const fmtVec = (v) =>
  Array.isArray(v) ? `[${v.slice(0, 6).map(fmt).join(", ")}${v.length > 6 ? ", …" : ""}]` : fmt(v);
const meanOf = (v) => (v == null || v.some((x) => x == null) ? null : v.reduce((s, x) => s + x, 0) / v.length);
// capped so a colour range's width stays a finite number
const maxAbs = (values) => Math.min(1e300, values.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 1e-12));
/** Euclidean norm that does not overflow for entries above 1e154; null if any entry is. */
function norm(v) {
  if (v == null || v.some((x) => x == null)) return null;
  const m = v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  return m === 0 ? 0 : m * Math.sqrt(v.reduce((s, x) => s + (x / m) ** 2, 0));
}
const log10 = (n) => (n == null ? null : n > 0 ? Math.log10(n) : -Infinity);

/** Per-model numbers the drawing needs: node means, gradient norms and colour ranges. */
function summarize(model) {
  const { trace, config } = model;
  const hMean = trace.hidden.map((layer) => layer.map((dir) => dir.map(meanOf)));
  const hNorm = trace.hidden.map((layer) => layer.map((dir) => dir.map(norm)));
  const outputs = config.output_mode === "last" ? [trace.outputs] : trace.outputs;
  const grad = trace.grad_hidden ? trace.grad_hidden.map((layer) => layer.map((dir) => dir.map(norm))) : null;
  const xGrad = trace.grad_inputs ? trace.grad_inputs.map(norm) : null;
  const logs = [...(grad ? grad.flat(2) : []), ...(xGrad || [])].map(log10).filter(Number.isFinite);
  const gmax = logs.length ? logs.reduce((a, g) => Math.max(a, g)) : 0;
  let gmin = logs.length ? Math.max(logs.reduce((a, g) => Math.min(a, g)), gmax - 12) : -1;
  if (gmin >= gmax) gmin = gmax - 1;
  return {
    hMean, hNorm, grad, xGrad, outputs, gmin, gmax,
    // colours span the means seen, so small states still show (tanh-bounded cells: at most 1)
    hScale: config.cell === "rnn_relu" ? maxAbs(hMean.flat(2)) : Math.min(1, maxAbs(hMean.flat(2))),
    xScale: maxAbs(trace.inputs.map(meanOf)),
    yScale: maxAbs(outputs.map(meanOf)),
  };
}

/** Nodes and arrows of positions [start, end), in data coordinates, arrows cut short of nodes. */
function buildScene(model, stats, start, end, box) {
  const { L, D, T, trace } = model;
  const last = model.config.output_mode === "last";
  const [nodes, index, segments] = [[], new Map(), []];
  const add = (node) => index.set(node.id, nodes.push(node) - 1);
  const topRow = 1 + L * D;
  const gradColor = (n) => {
    const g = log10(n);
    return g == null ? null : colorAt(SEQUENTIAL, (g - stats.gmin) / (stats.gmax - stats.gmin));
  };
  for (let t = start; t < end; t++) {
    const x = trace.inputs[t];
    add({ id: `x${t}`, kind: "x", t, x: t, y: 0, fwd: colorAt(DIVERGING, 0.5 + meanOf(x) / stats.xScale / 2),
      bwd: stats.xGrad ? gradColor(stats.xGrad[t]) : null,
      text: `input x<sub>${t}</sub> = ${fmtVec(x)}<br>click to edit`,
      gradText: stats.xGrad ? `<br>‖dL/dx‖ = ${fmt(stats.xGrad[t])}` : "" });
    for (let l = 0; l < L; l++) {
      for (let d = 0; d < D; d++) {
        const mean = stats.hMean[l][d][t];
        const g = stats.grad ? stats.grad[l][d][t] : null;
        add({ id: `h${l}.${d}.${t}`, kind: "h", l, d, t, x: t + d * 0.5, y: 1 + l * D + d,
          fwd: mean == null ? null : colorAt(DIVERGING, 0.5 + mean / stats.hScale / 2),
          bwd: stats.grad ? gradColor(g) : null,
          text: `h<sub>${t}</sub>, ${model.label(l, d)}<br>${mean == null ? "overflow (not finite)"
            : `mean ${fmt(mean)} · norm ${fmt(stats.hNorm[l][d][t])}`}`,
          gradText: stats.grad ? `<br>‖dL/dh‖ = ${fmt(g)}${g > 0 ? ` (log10 ${Math.log10(g).toFixed(2)})` : ""}` : "" });
      }
    }
    if (!last || t === T - 1) {
      const y = stats.outputs[last ? 0 : t];
      const target = trace.targets == null ? null : last ? trace.targets : trace.targets[t];
      const mean = meanOf(y);
      add({ id: `y${t}`, kind: "y", t, x: t, y: topRow,
        fwd: mean == null ? null : colorAt(DIVERGING, 0.5 + mean / stats.yScale / 2), bwd: "#ffffff",
        text: `output y<sub>${t}</sub> = ${fmtVec(y)}${target == null ? "" : `<br>target ${fmtVec(target)}`}`,
        gradText: trace.targets == null ? "" : "<br>the loss's gradient starts here" });
    }
  }
  const link = (tailId, headId, type) => {
    if (index.has(tailId) && index.has(headId)) segments.push({ tail: index.get(tailId), head: index.get(headId), type });
  };
  for (const node of nodes) {
    const { l, d, t } = node;
    if (node.kind === "h") {
      if (l === 0) link(`x${t}`, node.id, "feed");
      else for (let e = 0; e < D; e++) link(`h${l - 1}.${e}.${t}`, node.id, "feed");
      link(`h${l}.${d}.${d === 0 ? t - 1 : t + 1}`, node.id, "recurrent");
    } else if (node.kind === "y") {
      for (let e = 0; e < D; e++) link(`h${L - 1}.${e}.${t}`, node.id, "feed");
    }
  }
  // cut each arrow short of its nodes, in pixels, so the arrowhead shows
  const sx = box.width / (box.x1 - box.x0);
  const sy = box.height / (box.y1 - box.y0);
  for (const s of segments) {
    const [a, b] = [nodes[s.tail], nodes[s.head]];
    const len = Math.hypot((b.x - a.x) * sx, (b.y - a.y) * sy);
    const cutTail = box.node / 2 + 1;
    const cutHead = box.node / 2 + (box.head ? box.head / 2 + 1 : 1);
    const [f0, f1] = len > cutTail + cutHead ? [cutTail / len, 1 - cutHead / len] : [0, 1];
    Object.assign(s, { x0: a.x + (b.x - a.x) * f0, y0: a.y + (b.y - a.y) * f0,
      x1: a.x + (b.x - a.x) * f1, y1: a.y + (b.y - a.y) * f1 });
  }
  return { start, end, nodes, index, segments, box };
}

/** The form under the plot that changes one input value. */
class InputEditor {
  constructor(container, onEditInput) {
    this.onEditInput = onEditInput;
    this.model = null;
    this.form = Object.assign(document.createElement("form"), { className: "input-editor", noValidate: true });
    this.form.innerHTML = `<span class="input-editor-title">Edit an input</span>
      <label>Position t <input name="position" type="number" min="0" step="1" value="0"></label>
      <label>Feature <select name="feature"></select></label>
      <label>Value <input name="value" type="number" step="any"></label>
      <button type="submit">Apply input edit</button>
      <span class="input-editor-hint" aria-live="polite">Click an input node x<sub>t</sub> to pick it.</span>`;
    container.insertAdjacentElement("afterend", this.form);
    this.fields = this.form.elements;
    this.hint = this.form.querySelector(".input-editor-hint");
    this.form.addEventListener("submit", (e) => this._submit(e));
    for (const name of ["position", "feature"]) this.fields[name].addEventListener("change", () => this._showCurrent());
  }

  setModel(model) {
    this.model = model;
    const features = model.trace.inputs[0].length;
    const select = this.fields.feature;
    if (select.options.length !== features) {
      select.replaceChildren(...Array.from({ length: features }, (_, f) => new Option(String(f), String(f))));
    }
    this.fields.position.max = String(model.T - 1);
    this._showCurrent();
  }

  /** Pick position t (from a click on x_t) and put the cursor in the value box. */
  open(position) {
    this.fields.position.value = String(position);
    this._showCurrent();
    this.fields.value.focus();
    this.fields.value.select();
  }

  _read() {
    const [position, feature] = [Number(this.fields.position.value), Number(this.fields.feature.value || 0)];
    return { position, feature, ok: this.model && Number.isInteger(position) && position >= 0 && position < this.model.T };
  }

  _showCurrent() {
    const { position, feature, ok } = this._read();
    if (!ok) return;
    this.fields.value.value = String(this.model.trace.inputs[position][feature]);
    this.hint.textContent = `x${position}[${feature}] is now ${fmt(this.model.trace.inputs[position][feature])}.`;
  }

  _submit(event) {
    event.preventDefault();
    const { position, feature, ok } = this._read();
    const value = Number(this.fields.value.value);
    if (!ok) this.hint.textContent = `Position must be a whole number from 0 to ${this.model ? this.model.T - 1 : 0}.`;
    else if (this.fields.value.value.trim() === "" || !Number.isFinite(value)) this.hint.textContent = "Value must be a number.";
    else {
      this.hint.textContent = `Applying x${position}[${feature}] = ${value}…`;
      // afterwards show the value in effect: the new one, or the old one if the edit was refused
      Promise.resolve(this.onEditInput(position, feature, value)).finally(() => this._showCurrent());
    }
  }
}

export class UnrolledView {
  /** @param {HTMLElement} container @param {{onEditInput: (position, feature, value) => void}} options */
  constructor(container, { onEditInput }) {
    this.container = container;
    this.editor = new InputEditor(container, onEditInput);
    this.overlay = new StepOverlay(container, () => this.scene);
    [this.model, this.stats, this.scene] = [null, null, null]; // the trace, its summary, the drawn window
    this.drawnKey = ""; // window start and phase on screen; a change needs a full redraw
    this.changed = new Set(); // node ids whose values moved with the last input edit
    this.cursor = 0;
    this.clickBound = false;
    this.size = ""; // container size last drawn for: arrows are cut in pixels
    new ResizeObserver(() => {
      if (`${container.clientWidth}x${container.clientHeight}` !== this.size) this._redraw();
    }).observe(container);
  }

  setModel(model) {
    // more rows need more height: about 48 px a row beyond the default
    this.container.style.height = `${Math.max(380, MARGIN.t + MARGIN.b + 48 * (model.L * model.D + 2))}px`;
    this.changed = this.model ? changedNodes(this.model, model) : new Set();
    this.model = model;
    this.stats = summarize(model);
    this.editor.setModel(model);
    this.cursor = Math.min(this.cursor, model.length - 1);
    this._redraw();
  }

  update(cursor) {
    if (!this.model) return;
    this.cursor = cursor;
    const start = this._windowStart(cursor);
    if (`${start}|${this.model.phase(cursor)}` !== this.drawnKey) this._render(start);
    else this.overlay.place(this._covers(cursor), this._currentNode(cursor));
  }

  /** The last cursor of the phase on screen: the plot is drawn as it will be then, and
   * covers hide what is not computed yet, so a step only moves a few HTML boxes. */
  _phaseEnd(cursor) {
    const model = this.model;
    return this._mode(cursor) === "gradient" ? model.length - 1 : model.forwardCount - 1;
  }

  /** Boxes over what the cursor has not reached: one per row, in data coordinates. */
  _covers(c) {
    const model = this.model;
    const { start, end } = this.scene;
    const grad = this._mode(c) === "gradient";
    const covers = [];
    const band = (y, d, hidden) => {
      const ts = [];
      for (let t = start; t < end; t++) if (hidden(t)) ts.push(t);
      if (ts.length) covers.push({ x0: ts[0] + d * 0.5 - 0.5, x1: ts[ts.length - 1] + d * 0.5 + 0.5, y });
    };
    for (let l = 0; l < model.L; l++) {
      for (let d = 0; d < model.D; d++) {
        const y = 1 + l * model.D + d;
        band(y, d, (t) => (grad ? !model.backwardDone(l, d, t, c) : !model.forwardDone(l, d, t, c)));
      }
    }
    if (grad) {
      band(0, 0, (t) => ![...Array(model.D).keys()].every((d) => model.backwardDone(0, d, t, c)));
    } else {
      const last = model.config.output_mode === "last";
      band(1 + model.L * model.D, 0, (t) => (!last || t === model.T - 1) && !model.outputDone(t, c));
    }
    return covers;
  }

  /** The node of the step at the cursor, or null at the summary. */
  _currentNode(c) {
    const e = this.model.event(c);
    if (e.kind === "summary") return null;
    const i = this.scene.index.get(`h${e.layer}.${e.direction}.${e.position}`);
    return i === undefined ? null : this.scene.nodes[i];
  }

  _redraw() {
    if (this.model) this._render(this._windowStart(this.cursor));
  }

  /** "forward" while the forward pass runs, "gradient" once BPTT has started. */
  _mode(cursor) {
    return this.model.hasGradients && this.model.phase(cursor) !== "forward" ? "gradient" : "forward";
  }

  _margin() {
    return this.container.clientWidth < 640 ? NARROW_MARGIN : MARGIN;
  }

  /** How many positions fit: WINDOW on a wide screen, fewer on a narrow one. */
  _windowSize() {
    const { l, r } = this._margin();
    return Math.max(8, Math.min(WINDOW, Math.floor((this.container.clientWidth - l - r) / COLUMN_PX)));
  }

  /** First position drawn: windows move by half their width, keeping the step near the middle. */
  _windowStart(cursor) {
    const { T, length } = this.model;
    const size = this._windowSize();
    if (T <= size) return 0;
    const page = Math.floor(size / 2);
    const e = this.model.event(Math.min(cursor, length - 2));
    return Math.max(0, Math.min(Math.floor((e.position - page / 2) / page) * page, T - size));
  }

  _box(start, end) {
    const { L, D } = this.model;
    const margin = this._margin();
    const width = Math.max(100, this.container.clientWidth - margin.l - margin.r);
    const height = Math.max(120, this.container.clientHeight - margin.t - margin.b);
    const [x0, x1, y0, y1] = [start - 0.6, end - 0.4 + (D === 2 ? 0.5 : 0), -0.6, L * D + 1.6];
    const column = width / (x1 - x0);
    const node = Math.max(4, Math.min(24, column * 0.42, (height / (y1 - y0)) * 0.5));
    // dense windows leave no room for arrowheads: the layout already says which way time runs
    const head = column >= 30 ? Math.max(4, Math.min(9, node * 0.45)) : 0;
    return { x0, x1, y0, y1, width, height, node, head, column, margin };
  }

  /** Full draw of the window starting at `start` for the current cursor (Plotly.react). */
  _render(start) {
    const model = this.model;
    const end = Math.min(model.T, start + this._windowSize());
    this.size = `${this.container.clientWidth}x${this.container.clientHeight}`;
    this.scene = buildScene(model, this.stats, start, end, this._box(start, end));
    const mode = this._mode(this.cursor);
    this.drawnKey = `${start}|${model.phase(this.cursor)}`;
    const frame = this._frame(this._phaseEnd(this.cursor));
    const traces = this._traces(mode).map((trace, i) => {
      for (const [key, values] of Object.entries(frame)) if (values[i] !== undefined) setPath(trace, key, values[i]);
      return trace;
    });
    Plotly.react(this.container, traces, this._layout(mode), PLOT_CONFIG);
    this.overlay.place(this._covers(this.cursor), this._currentNode(this.cursor));
    if (!this.clickBound) {
      this.clickBound = true;
      this.container.on("plotly_click", (e) => this._click(e));
    }
  }

  _click(event) {
    const point = event.points.find((p) => p.curveNumber === NODE_TRACE);
    const node = point && this.scene.nodes[point.pointNumber];
    if (node && node.kind === "x") this.editor.open(node.t);
  }

  /** The traces' fixed parts; per-frame arrays come from _frame. */
  _traces(mode) {
    const { box } = this.scene;
    const { gmin, gmax } = this.stats;
    const grad = mode === "gradient";
    const arrow = (name, color, width, showlegend = true) => ({
      type: "scatter", mode: box.head ? "lines+markers" : "lines", name, showlegend, hoverinfo: "skip",
      line: { color, width }, marker: { color, symbol: "arrow", angleref: "previous", size: 0 },
    });
    const bins = Array.from({ length: GRAD_BINS }, (_, i) =>
      arrow(`gradient bin ${i}`, colorAt(SEQUENTIAL, (i + 0.5) / GRAD_BINS), 2.5, false));
    const ring = (name, color, size, width) => ({
      type: "scatter", mode: "markers", name, hoverinfo: "skip",
      marker: { symbol: "circle-open", color, size, line: { width, color } },
    });
    const colorbar = grad
      ? { colorscale: SEQUENTIAL, cmin: gmin, cmax: gmax, title: "log10 gradient ‖dL/dh‖" }
      : { colorscale: DIVERGING, cmin: -this.stats.hScale, cmax: this.stats.hScale, title: "mean of h" };
    return [
      arrow(grad ? "gradient not arrived yet" : "not computed yet", COLOR.pending, 1.2),
      arrow(grad ? "output: where the gradient starts" : "input and output weights", COLOR.feed, 1.5),
      arrow("W_hh: one recurrent matrix, shared by every step", COLOR.recurrent, 2.5, !grad),
      arrow("this step", COLOR.active, 3.5, false),
      arrow("overflow", COLOR.overflow, 2.5, false),
      ...bins,
      { type: "scatter", mode: "markers", name: "nodes", showlegend: false, hoverinfo: "text",
        hoverlabel: { align: "left" }, x: this.scene.nodes.map((n) => n.x), y: this.scene.nodes.map((n) => n.y),
        marker: { size: box.node, line: { color: "#5b6577", width: 1 } } },
      ring("changed by your input edit", COLOR.changed, box.node * 1.45, 2),
      ring("current step", COLOR.ink, box.node * 1.9, 3),
      { type: "scatter", mode: "markers", x: [null], y: [null], showlegend: false, hoverinfo: "skip",
        marker: { color: [colorbar.cmin], colorscale: colorbar.colorscale, cmin: colorbar.cmin, cmax: colorbar.cmax,
          showscale: true, colorbar: { title: { text: colorbar.title, side: "right" }, thickness: 12, len: 0.9 } } },
    ];
  }

  _layout(mode) {
    const model = this.model;
    const { start, end, box } = this.scene;
    const rows = ["input x"];
    for (let l = 0; l < model.L; l++) for (let d = 0; d < model.D; d++) rows.push(`h ${model.label(l, d)}`);
    rows.push("output y");
    const done = model.phase(this.cursor) === "done";
    const narrow = box.margin === NARROW_MARGIN; // a title never wraps: keep it short there
    let title = mode === "gradient"
      ? `${done ? "Done" : narrow ? "BPTT" : "Backpropagation through time"}: colour = log10 of the gradient${narrow ? "" : " reaching each state"}`
      : `${done ? "Forward pass done (no targets, so no gradients)" : "Forward pass"}: colour = mean of ${narrow ? "h" : "each hidden state"}`;
    if (end - start < model.T) {
      title += narrow ? ` · ${start}–${end - 1} of ${model.T}` : ` · positions ${start}–${end - 1} of ${model.T} (follows the step)`;
    }
    const dtick = [1, 2, 5, 10, 20].find((step) => step * box.column >= 28) || 50; // labels >= 28 px apart
    const ticks = [...Array(end - start).keys()].map((k) => start + k).filter((t) => t % dtick === 0);
    const annotations = [];
    for (let l = 0; l < model.L && end - start > 1; l++) {
      for (let d = 0; d < model.D; d++) {
        const name = `weight_hh_l${l}${d === 1 ? "_reverse" : ""}`;
        annotations.push({ x: start + 0.5 + d * 0.5, y: 1 + l * model.D + d, yshift: box.node / 2 + 7,
          text: "W<sub>hh</sub> shared", showarrow: false, font: { size: 10, color: COLOR.recurrent },
          bgcolor: "rgba(255,255,255,0.85)",
          hovertext: `The same recurrent matrix ${name} carries h from step to step along this whole chain.` });
      }
    }
    return {
      title: { text: title, x: 0.01, xanchor: "left", font: { size: 13 } },
      margin: box.margin,
      hovermode: "closest",
      showlegend: true,
      legend: { orientation: "h", x: 0, y: -48 / box.height, yanchor: "top", font: { size: 11 } },
      xaxis: { title: { text: "position t", standoff: 4 }, range: [box.x0, box.x1], tickvals: ticks,
        showgrid: false, zeroline: false, fixedrange: true },
      yaxis: { range: [box.y0, box.y1], tickvals: rows.map((_, i) => i), ticktext: rows,
        tickfont: { size: box.margin === NARROW_MARGIN ? 10 : 12 },
        showgrid: false, zeroline: false, fixedrange: true },
      annotations,
      plot_bgcolor: "#ffffff",
      paper_bgcolor: "#ffffff",
    };
  }

  /** What changes from step to step: arrow bins, node colours and texts, the rings. Keyed for restyle. */
  _frame(c) {
    const [model, { nodes, segments, box }, { gmin, gmax }] = [this.model, this.scene, this.stats];
    const grad = this._mode(c) === "gradient";
    const done = nodes.map((n) => (n.kind === "h" ? model.forwardDone(n.l, n.d, n.t, c)
      : n.kind === "y" ? model.outputDone(n.t, c) : true));
    const reached = grad ? nodes.map((n) => (n.kind === "h" ? model.backwardDone(n.l, n.d, n.t, c)
      : n.kind === "x" ? [...Array(model.D).keys()].every((d) => model.backwardDone(0, d, n.t, c)) : true)) : done;
    const e = model.event(c);
    const current = e.kind === "summary" ? -1 : this.scene.index.get(`h${e.layer}.${e.direction}.${e.position}`) ?? -1;
    // the step being computed is marked by the HTML ring, not by recolouring arrows
    const fresh = () => false;

    const bins = Array.from({ length: NODE_TRACE }, () => ({ x: [], y: [], size: [] }));
    for (const s of segments) {
      let bin = BIN.pending;
      if (!grad) {
        if (done[s.head]) bin = fresh(s.head) ? BIN.active : s.type === "recurrent" ? BIN.recurrent : BIN.feed;
      } else if (nodes[s.head].kind === "y") {
        bin = BIN.feed;
      } else if (reached[s.head]) {
        const g = log10(this.stats.grad[nodes[s.head].l][nodes[s.head].d][nodes[s.head].t]);
        bin = g == null ? BIN.overflow
          : BIN.grad + Math.max(0, Math.min(GRAD_BINS - 1, Math.floor(((g - gmin) / (gmax - gmin)) * GRAD_BINS)));
      }
      const b = bins[bin];
      b.x.push(s.x0, s.x1, null);
      b.y.push(s.y0, s.y1, null);
      if (box.head) b.size.push(0, box.head, 0);
    }
    const color = nodes.map((n, i) => (!reached[i] ? COLOR.pendingNode : (grad ? n.bwd : n.fwd) ?? COLOR.overflow));
    const size = nodes.map((n, i) => (reached[i] ? box.node : box.node * 0.65));
    const symbol = color.map((col) => (col === COLOR.overflow ? "x" : "circle"));
    const text = nodes.map((n, i) => (!done[i] ? `${n.text.split("<br>")[0]}: not computed yet`
      : grad ? n.text + (reached[i] ? n.gradText : "<br>gradient not arrived yet") : n.text));
    const shown = (ids) => ids.filter((i) => i >= 0 && done[i]);
    const changed = shown(nodes.map((n, i) => (this.changed.has(n.id) ? i : -1)));
    const ring = []; // the current step's ring is an HTML overlay (StepOverlay)
    const [nodeX, nodeY] = [(list) => list.map((i) => nodes[i].x), (list) => list.map((i) => nodes[i].y)];
    // one entry per restyled trace; undefined leaves that trace's attribute alone
    const skip = bins.map(() => undefined);
    return {
      x: [...bins.map((b) => b.x), undefined, nodeX(changed), nodeX(ring)],
      y: [...bins.map((b) => b.y), undefined, nodeY(changed), nodeY(ring)],
      "marker.size": [...bins.map((b) => (box.head ? b.size : undefined)), size, undefined, undefined],
      "marker.color": [...skip, color, undefined, undefined],
      "marker.symbol": [...skip, symbol, undefined, undefined],
      hovertext: [...skip, text, undefined, undefined],
    };
  }
}

/** HTML boxes over the plot: covers on what is not computed yet, and the current step's
 * ring. Moving them costs microseconds; restyling the plot costs a full redraw. */
class StepOverlay {
  constructor(container, scene) {
    this.container = container;
    this.scene = scene;
    this.layer = document.createElement("div");
    this.layer.className = "step-overlay";
    this.ring = document.createElement("div");
    this.ring.className = "step-ring";
    this.layer.append(this.ring);
    this.covers = [];
  }

  /** covers: [{x0, x1, y}] in data coordinates; node: {x, y} or null. */
  place(covers, node) {
    const layout = this.container._fullLayout;
    if (!layout || !layout.xaxis) return;
    if (this.layer.parentNode !== this.container) this.container.append(this.layer);
    const [xa, ya] = [layout.xaxis, layout.yaxis];
    const px = (x) => xa._offset + xa.l2p(x);
    const py = (y) => ya._offset + ya.l2p(y);
    while (this.covers.length < covers.length) {
      const div = document.createElement("div");
      div.className = "step-cover";
      div.title = "not computed yet";
      this.layer.append(div);
      this.covers.push(div);
    }
    this.covers.forEach((div, i) => {
      const c = covers[i];
      div.hidden = !c;
      if (!c) return;
      // from the incoming arrows below the row to just above its nodes
      const floor = ya._offset + ya._length; // never over the axis labels
      // from just above the nodes (not over the W_hh label) down over the arrows coming in
      const top = py(c.y) - this.scene().box.node / 2 - 3;
      const [left, right, bottom] = [px(c.x0), px(c.x1), Math.min(floor, py(c.y - 0.5))];
      Object.assign(div.style, { left: `${left}px`, width: `${right - left}px`, top: `${top}px`, height: `${bottom - top}px` });
    });
    const size = this.scene().box.node * 1.9;
    this.ring.hidden = !node;
    if (node) {
      Object.assign(this.ring.style, { left: `${px(node.x) - size / 2}px`, top: `${py(node.y) - size / 2}px`,
        width: `${size}px`, height: `${size}px` });
    }
  }
}

/** Set a dotted attribute path ("marker.size") on a trace object. */
function setPath(object, path, value) {
  const keys = path.split(".");
  const target = keys.slice(0, -1).reduce((o, key) => (o[key] ??= {}), object);
  target[keys[keys.length - 1]] = value;
}

/** Ids of h and y nodes whose values differ after an input edit (same network, one input changed). */
function changedNodes(before, after) {
  const out = new Set();
  if (JSON.stringify(before.config) !== JSON.stringify(after.config) || before.T !== after.T) return out;
  const diff = (a, b) => JSON.stringify(a) !== JSON.stringify(b);
  const edited = [...Array(after.T).keys()].filter((t) => diff(after.trace.inputs[t], before.trace.inputs[t]));
  if (edited.length !== 1) return out;
  out.add(`x${edited[0]}`);
  for (let l = 0; l < after.L; l++) {
    for (let d = 0; d < after.D; d++) {
      for (let t = 0; t < after.T; t++) {
        if (diff(before.trace.hidden[l][d][t], after.trace.hidden[l][d][t])) out.add(`h${l}.${d}.${t}`);
      }
    }
  }
  const outputs = (m) => (m.config.output_mode === "last" ? { [m.T - 1]: m.trace.outputs } : m.trace.outputs);
  const [a, b] = [outputs(before), outputs(after)];
  for (const t of Object.keys(b)) if (diff(a[t], b[t])) out.add(`y${t}`);
  return out;
}

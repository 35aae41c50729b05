// Unit-by-position heatmaps of one layer's hidden state, cell state, gates or gradient,
// filling in as the steps run. Owns that plot and the two selects choosing what it shows.

import { isNarrow } from "./gradients.js";

export const DIVERGING = [[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]];
const SIGMOID = [[0, "#f7fcf5"], [0.5, "#74c476"], [1, "#00441b"]];
export const SEQUENTIAL = [[0, "#440154"], [0.25, "#3b528b"], [0.5, "#21918c"], [0.75, "#5ec962"], [1, "#fde725"]];
const OVERFLOW = "#6b6f76";
// no "Share chart" button: it would upload the data to Plotly Cloud
const PLOT_CONFIG = { responsive: true, displaylogo: false, showSendToCloud: false };
const GATE_LABELS = {
  input: "Input gate i",
  forget: "Forget gate f",
  cell: "Cell gate g (candidate)",
  output: "Output gate o",
  reset: "Reset gate r",
  update: "Update gate z",
  new: "New gate n (candidate)",
};
const TANH_GATES = new Set(["cell", "new"]); // the candidate gates; the others are sigmoids

/** The choices for the "Show" select: {value, label, source (L, D, T, H), scale}. */
function kindsFor(model) {
  const { trace, config } = model;
  const kinds = [{ value: "hidden", label: "Hidden state h", source: trace.hidden,
    scale: config.cell === "rnn_relu" ? "symmetric" : "tanh" }];
  if (trace.cell) kinds.push({ value: "cell", label: "Cell state c", source: trace.cell, scale: "symmetric" });
  for (const [name, source] of Object.entries(trace.gates || {})) {
    kinds.push({ value: `gate:${name}`, label: GATE_LABELS[name] || `${name} gate`, source,
      scale: TANH_GATES.has(name) ? "tanh" : "sigmoid" });
  }
  if (trace.grad_hidden) {
    kinds.push({ value: "grad", label: "Gradient dL/dh (log10 |.|)", source: trace.grad_hidden, scale: "log" });
  }
  return kinds;
}

/**
 * One (l, d) slice as a heatmap grid: z (H rows of T, Float32Array: Plotly takes them as they
 * are) with NaN for overflow, the overflow mask (only if any), and the colour range.
 * @param {Float32Array[]} rows (T, H) rows of one layer-direction
 * @param {[number, number] | null} fixed log10 range of the gradients' colours, or their own
 */
function buildGrid(kind, rows, H, fixed = null) {
  const T = rows.length;
  const z = Array.from({ length: H }, () => new Float32Array(T));
  const log = kind.scale === "log";
  let hasOverflow = false;
  let [lowest, highest, largest] = [Infinity, -Infinity, 1e-12];
  for (let t = 0; t < T; t++) {
    const row = rows[t];
    for (let u = 0; u < H; u++) {
      let v = row[u];
      if (!Number.isFinite(v)) {
        hasOverflow = true;
        v = NaN;
      } else if (log) {
        v = v === 0 ? -Infinity : Math.log10(Math.abs(v));
      }
      z[u][t] = v;
      if (Number.isFinite(v)) {
        if (v < lowest) lowest = v;
        if (v > highest) highest = v;
        if (Math.abs(v) > largest) largest = Math.abs(v);
      }
    }
  }
  let range;
  if (kind.scale === "tanh") range = [-1, 1];
  else if (kind.scale === "sigmoid") range = [0, 1];
  else if (kind.scale === "symmetric") {
    const m = Math.min(1e300, largest); // capped so the range's width stays finite
    range = [-m, m];
  } else {
    const hi = Number.isFinite(highest) ? highest : 0;
    const lo = Number.isFinite(lowest) ? Math.max(lowest, hi - 12) : hi - 1;
    range = fixed ?? [lo < hi ? lo : hi - 1, hi];
    for (const row of z) for (let t = 0; t < T; t++) if (row[t] === -Infinity) row[t] = range[0];
  }
  let overflow = null;
  if (hasOverflow) {
    overflow = z.map((row, u) => Array.from({ length: T }, (_, t) => (Number.isFinite(rows[t][u]) ? null : 1)));
  }
  return { z, overflow, hasOverflow, range, T, H };
}

export class StatesView {
  /** @param {HTMLElement} container @param {{kindSelect: HTMLSelectElement, layerSelect: HTMLSelectElement}} options */
  constructor(container, { kindSelect, layerSelect }) {
    this.container = container;
    this.kindSelect = kindSelect;
    this.layerSelect = layerSelect;
    this.model = null;
    this.kinds = [];
    this.grid = null; // the selected slice, all positions
    this.filledKey = ""; // positions on screen; unchanged means only the cursor line moves
    this.cursorLineX = null;
    this.cursor = 0;
    this.fixedRange = null; // log10 range of gradient colours, the same for every run
    kindSelect.addEventListener("change", () => this._select());
    layerSelect.addEventListener("change", () => this._select());
  }

  setModel(model) {
    this.model = model;
    this.cursor = Math.min(this.cursor, model.length - 1);
    this._fillSelects();
    this._select();
  }

  update(cursor) {
    if (!this.model) return;
    this.cursor = cursor;
    const [lo, hi] = this._filled(cursor);
    const x = this._cursorX();
    const key = `${lo}:${hi}:${x}`;
    if (key === this.filledKey) return;
    this.filledKey = key;
    this.cursorLineX = x;
    this._place(lo, hi, x);
  }

  /** Move the HTML cover and step line: no Plotly redraw (a heatmap redraw costs ~20 ms). */
  _place(lo, hi, x) {
    const layout = this.container._fullLayout;
    if (!layout || !layout.xaxis) return;
    if (!this.overlay) {
      this.overlay = document.createElement("div");
      this.overlay.className = "heat-overlay";
      this.cover = document.createElement("div");
      this.cover.className = "heat-cover";
      this.cover.title = "not computed yet";
      this.line = document.createElement("div");
      this.line.className = "heat-line";
      this.overlay.append(this.cover, this.line);
    }
    if (this.overlay.parentNode !== this.container) this.container.append(this.overlay);
    const [xa, ya] = [layout.xaxis, layout.yaxis];
    const px = (v) => xa._offset + xa.l2p(v);
    const [top, bottom] = [ya._offset, ya._offset + ya._length];
    const [c0, c1] = this._cover(lo, hi);
    this.cover.hidden = c1 <= c0;
    Object.assign(this.cover.style, { left: `${px(c0)}px`, width: `${Math.max(0, px(c1) - px(c0))}px`,
      top: `${top}px`, height: `${bottom - top}px` });
    this.line.hidden = x < 0;
    Object.assign(this.line.style, { left: `${px(x)}px`, top: `${top}px`, height: `${bottom - top}px` });
  }

  /** The x range the "not computed yet" cover hides: every position outside [lo, hi). */
  _cover(lo, hi) {
    const T = this.grid.T;
    if (hi - lo >= T) return [T - 0.5, T - 0.5];
    return lo === 0 ? [hi - 0.5, T - 0.5] : [-0.5, lo - 0.5];
  }

  _fillSelects() {
    const model = this.model;
    this.kinds = kindsFor(model);
    const kind = this.kindSelect.value;
    this.kindSelect.replaceChildren(...this.kinds.map((k) => new Option(k.label, k.value)));
    if (this.kinds.some((k) => k.value === kind)) this.kindSelect.value = kind;
    const layer = this.layerSelect.value;
    const layers = [];
    for (let l = 0; l < model.L; l++) {
      for (let d = 0; d < model.D; d++) {
        const label = model.label(l, d);
        layers.push(new Option(label[0].toUpperCase() + label.slice(1), `${l},${d}`));
      }
    }
    this.layerSelect.replaceChildren(...layers);
    if (layers.some((o) => o.value === layer)) this.layerSelect.value = layer;
  }

  /** Gradient colours over a fixed [lo, hi] range of log10 sizes (null: each run's own). */
  setFixedScale(range) {
    this.fixedRange = range;
    if (this.grid) this._select();
  }

  _selection() {
    const kind = this.kinds.find((k) => k.value === this.kindSelect.value) || this.kinds[0];
    const [l, d] = (this.layerSelect.value || "0,0").split(",").map(Number);
    return { kind, l, d };
  }

  /** Rebuild the grid for the selected kind and layer, and draw it whole (Plotly.react). */
  _select() {
    if (!this.model) return;
    const { kind, l, d } = this._selection();
    this.grid = buildGrid(kind, kind.source[l][d], this.model.H, this.fixedRange);
    const [lo, hi] = this._filled(this.cursor);
    this.cursorLineX = this._cursorX();
    this.filledKey = `${lo}:${hi}:${this.cursorLineX}`;
    const { z, overflow } = this.grid;
    const layout = this._layout(kind, l, d);
    Plotly.react(this.container, this._traces(kind, z, overflow), layout, PLOT_CONFIG);
    if (!this.followsRedraws) {
      // the cover sits in pixels of the axes: a resized plot (window narrowed, phone turned) moves them
      this.container.on("plotly_afterplot", () => this._placeAtCursor());
      this.followsRedraws = true;
    }
    this._place(lo, hi, this.cursorLineX);
  }

  _placeAtCursor() {
    if (!this.model || !this.grid) return;
    const [lo, hi] = this._filled(this.cursor);
    this._place(lo, hi, this._cursorX());
  }

  /** Positions [lo, hi) of the selected slice known at the cursor. */
  _filled(cursor) {
    const model = this.model;
    const { kind, d } = this._selection();
    const T = model.T;
    const pass = kind.scale === "log" ? "backward" : "forward";
    // the first position this pass shows: forward runs 0..T-1 (→) or T-1..0 (←), BPTT the reverse
    const first = (d === 0) !== (pass === "backward") ? 0 : T - 1;
    const start = model.stepOf(pass, d, first);
    const count = start < 0 ? 0 : Math.max(0, Math.min(T, cursor - start + 1));
    return first === 0 ? [0, count] : [T - count, T];
  }

  /** Where the dotted line marks the step being computed: only while it is in this slice. */
  _cursorX() {
    const e = this.model.event(this.cursor);
    const { kind, d } = this._selection();
    const pass = kind.scale === "log" ? "backward" : "forward";
    return e.kind === pass ? e.positions[d] : -10; // every layer shows its step at once
  }

  _traces(kind, zMain, zOver) {
    const { range, T, H } = this.grid;
    const small = T <= 60 && H <= 40; // thin gaps between cells only while cells are big
    const colorscale = kind.scale === "log" ? SEQUENTIAL : kind.scale === "sigmoid" ? SIGMOID : DIVERGING;
    const what = kind.scale === "log" ? "log10 |dL/dh| = %{z:.2f}" : "value %{z:.4g}";
    const common = { type: "heatmap", x: [...Array(T).keys()], y: [...Array(H).keys()],
      hoverongaps: false, xgap: small ? 1 : 0, ygap: small ? 1 : 0,
      hovertemplate: `position %{x}, unit %{y}<br>${what}<extra></extra>` };
    const traces = [
      // fixed ranges, symmetric about 0 for states, so a colour means the same value at every step
      { ...common, z: zMain, colorscale, zmin: range[0], zmax: range[1],
        colorbar: { title: { text: kind.scale === "log" ? "log10 |dL/dh|" : "value", side: "right" }, thickness: 12 } },
    ];
    if (zOver) {
      traces.push({ ...common, z: zOver, colorscale: [[0, OVERFLOW], [1, OVERFLOW]], zmin: 0, zmax: 1,
        showscale: false, hovertemplate: "position %{x}, unit %{y}<br>overflow (not finite)<extra></extra>" });
    }
    return traces;
  }

  _layout(kind, l, d) {
    // true during the run and after it: a title must not go stale when the run ends
    const phrase = kind.scale === "log" ? "each column once BPTT reaches it" : "each column once the run reaches it";
    // a phone has room for what is shown, not how it fills in
    let title = isNarrow(this.container) ? `${kind.label}, ${this.model.label(l, d)}` : `${kind.label}, ${this.model.label(l, d)}: ${phrase}`;
    if (this.grid.hasOverflow) title += " · grey = overflow";
    return {
      title: { text: title, x: 0.01, xanchor: "left", font: { size: 13 } },
      margin: { l: 50, r: 10, t: 34, b: 40 },
      xaxis: { title: { text: "position t", standoff: 4 }, range: [-0.5, this.grid.T - 0.5], zeroline: false },
      yaxis: { title: { text: "unit" }, range: [-0.5, this.grid.H - 0.5], zeroline: false },
      plot_bgcolor: "#ffffff",
      paper_bgcolor: "#ffffff",
    };
  }
}

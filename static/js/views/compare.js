// Compare mode: the gradient profiles ||dL/dh_t|| of a tanh RNN, an LSTM and a GRU run on the
// same task, input and seed (layer 1, forward direction), with their Jacobian product norms
// dashed, on one log axis, and a marker at the position the shared timeline has reached.
// Once the three are trained (CompareController.train), the profiles are those of the
// trained networks on the task's probe sequence, the untrained ones dotted beside them,
// and a second plot draws the three loss curves on one axis. A third draws the three
// networks' hidden states over time side by side, on one fixed colour scale: h lies in
// (-1, 1) for all three cells, so [-1, 1] is the scale, and a colour means the same value
// in each. Above them all, the three networks unrolled as chains of cells (layer 1), which
// fill in as the shared timeline runs forward and take the colour of the gradient reaching
// each step as BPTT runs back, on one log colour scale for the three.

import {
  DANGER,
  MUTED,
  OVERFLOW_Y,
  OVERLAY_AXIS,
  ZERO_Y,
  baseLayout,
  legendPlace,
  drawable,
  hint,
  isNarrow,
  logAxis,
  logRange,
  plotConfig,
  quickRestyle,
  special,
  specialsTrace,
} from "./gradients.js";
import { DIVERGING, SEQUENTIAL } from "./states.js";
import { RECURRENT } from "./unrolled.js";

const CELLS = [
  { key: "rnn_tanh", name: "tanh RNN", color: "#d9480f" },
  { key: "lstm", name: "LSTM", color: "#2f6fde" },
  { key: "gru", name: "GRU", color: "#2b8a3e" },
];

/** Plotly's axis suffix of the i-th subplot: "", "2", "3". */
const axisSuffix = (i) => (i === 0 ? "" : String(i + 1));

/** Layer 1's (forward) gradient profile (T,) of a TraceModel, or null without targets. */
const profile = (model) => model.gradHiddenNorms()?.[0][0] ?? null;

// the chains' boxes under the gradient colours: 0 not computed yet, 1 state computed,
// 2 gradient not finite, 3 gradient exactly 0 (cut by truncation: none, not a little)
const STEP_COLORS = [[0, "#e2e6ea"], [1 / 3, "#b8bfc9"], [2 / 3, DANGER], [1, "#ffffff"]];
const CHAIN_GROUND = "#f1f3f5"; // a ground the white "exactly 0" boxes stand out on
const DECADES = 30; // the chains' colour scale spans at most this many powers of ten
// playback moves the cursor every frame; the three plots (~10-50 ms a step at T=1000)
// follow it at most ten times a second, and not while off the screen
const MIN_INTERVAL_MS = 100;

/** [lo, hi] of log10 of the finite positive gradients of all three: one scale for all. */
function gradientRange(cells) {
  let [lo, hi] = [Infinity, -Infinity];
  for (const c of cells) {
    for (const g of c.grad || []) {
      if (g > 0 && Number.isFinite(g)) [lo, hi] = [Math.min(lo, Math.log10(g)), Math.max(hi, Math.log10(g))];
    }
  }
  if (!Number.isFinite(hi)) return [-1, 0];
  lo = Math.floor(Math.max(lo, hi - DECADES));
  hi = Math.ceil(hi);
  return lo < hi ? [lo, hi] : [hi - 1, hi];
}

export class CompareView {
  /**
   * @param {HTMLElement} container @param {HTMLElement} [lossContainer] for trained runs
   * @param {HTMLElement} [statesContainer] the three networks' hidden states side by side
   * @param {HTMLElement} [networksContainer] the three networks unrolled, one chain each
   */
  constructor(container, lossContainer = null, statesContainer = null, networksContainer = null) {
    this.container = container;
    this.lossContainer = lossContainer;
    this.statesContainer = statesContainer;
    this.networksContainer = networksContainer;
    this.cells = []; // [{key, name, color, model, grad: (T,) | null, jac: (T,) | null, before}]
    this.trained = null; // steps, once the three are trained
    this._position = undefined;
    this.fixedRange = null; // log10 range of the chains' colours, the same for every run
    this._applied = -Infinity; // when the plots last followed the timeline
    this._timer = null; // their next turn, while playback outpaces them
    this._moves = 0; // position moves asked for: a task drawing an older one is skipped
    this.visible = true; // near the screen: off it, the timeline is followed on return
    if (typeof IntersectionObserver !== "undefined") {
      const section = container.closest("section") ?? container;
      new IntersectionObserver(
        (entries) => {
          this.visible = entries.some((e) => e.isIntersecting);
          if (this.visible) this.update(this._fraction);
        },
        { rootMargin: "200px" },
      ).observe(section);
    }
  }

  /** Untrained: @param {{rnn_tanh: TraceModel, lstm: TraceModel, gru: TraceModel}} models */
  setModels(models) {
    this.trained = null;
    if (this.lossContainer) this.lossContainer.hidden = true; // no loss curves before training
    this._draw(models, {});
  }

  /** The profiles of `models`, with those of `before` (same keys, or none) dotted. */
  _draw(models, before) {
    this.cells = CELLS.filter((c) => models[c.key]).map((c) => {
      const model = models[c.key];
      const jacs = model.trace.jacobian_product_norm;
      const untrained = before[c.key] ? profile(before[c.key]) : null;
      return { ...c, model, grad: profile(model), jac: jacs ? jacs[0][0] : null, before: untrained };
    });
    this.reference = this.cells[0]?.model ?? null;
    this._position = undefined;
    if (!this.reference) return;
    Plotly.react(this.container, this._traces(), this._layout(), plotConfig("compare"));
    this._drawStates();
    this._drawNetworks();
    this._apply(this._fraction); // where the timeline already is
  }

  /** The three networks unrolled (layer 1, forward direction), a row of T cells each: a
   * grey box once the forward pass has computed the step's state, coloured by log10
   * ||dL/dh_t|| on one scale for all three once BPTT has reached it. */
  _drawNetworks() {
    const el = this.networksContainer;
    if (!el) return;
    el.hidden = false;
    const narrow = isNarrow(el);
    const T = this.reference.T;
    const names = this.cells.map((c) => c.name);
    this.range = this.fixedRange ?? gradientRange(this.cells);
    const hover = this.cells.map((c) =>
      Array.from({ length: T }, (_, t) => {
        const g = c.grad?.[t];
        const size = g == null ? (c.grad ? "not finite" : "no gradient (no targets)") : g === 0 ? "exactly 0" : `${g.toPrecision(3)} (log10 ${Math.log10(g).toFixed(2)})`;
        return `${c.name}, t=${t}<br>||∂L/∂h<sub>t</sub>|| = ${size}`;
      }),
    );
    // gaps of a third of a step, where there is room, show the recurrent link between steps
    const column = Math.max(1, el.clientWidth - (narrow ? 140 : 180)) / T;
    const common = { type: "heatmap", x: Array.from({ length: T }, (_, t) => t), y: names, xgap: column >= 6 ? Math.round(column / 3) : 0, ygap: 18, hoverongaps: false };
    const traces = [
      { ...common, name: "steps", z: this._stepGrid(), colorscale: STEP_COLORS, zmin: 0, zmax: 3, showscale: false, text: hover, hovertemplate: "%{text}<extra></extra>" },
      { ...common, name: "gradient", z: this._gradientGrid(null), coloraxis: "coloraxis", text: hover, hovertemplate: "%{text}<extra></extra>" },
      // out of the axes' range: keeps the colour bar (and so the plot's width) while no step
      // has a gradient yet, which would otherwise hide it in the forward pass
      { type: "scatter", name: "scale", x: [null, null], y: [null, null], mode: "markers", marker: { color: this.range, coloraxis: "coloraxis" }, hoverinfo: "skip", showlegend: false },
    ];
    const [lo, hi] = this.range;
    const title = narrow ? "The three unrolled: gradient reaching each step" : "The three networks unrolled (layer 1): each step's colour is the gradient BPTT brings it, on one scale";
    const layout = {
      ...baseLayout(title),
      xaxis: { title: { text: "position t" }, range: [-0.5, T - 0.5], zeroline: false, showgrid: false },
      yaxis: { autorange: "reversed", showgrid: false, tickfont: { size: narrow ? 12 : 13 }, ticksuffix: " " },
      coloraxis: { colorscale: SEQUENTIAL, cmin: lo, cmax: hi, colorbar: { title: { text: narrow ? "log10" : "log10 ||∂L/∂h||" }, thickness: 12 } },
      // the recurrent link through each chain, seen between its boxes
      shapes: names.map((n) => ({ type: "line", xref: "x", yref: "y", x0: -0.5, x1: T - 0.5, y0: n, y1: n, layer: "below", line: { color: RECURRENT, width: 2 } })),
      margin: { l: narrow ? 76 : 84, r: 12, t: 40, b: 40 },
      plot_bgcolor: CHAIN_GROUND,
    };
    this._chainState = null;
    Plotly.react(el, traces, layout, plotConfig("compare-networks"));
  }

  /** (cells, T) levels of the chains' boxes (STEP_COLORS); `reached` and `computed` (T,)
   * booleans, or null for every position, as `_gradientGrid` takes them. */
  _stepGrid(reached = null, computed = null) {
    const T = this.reference.T;
    return this.cells.map((c) =>
      Array.from({ length: T }, (_, t) => {
        const hit = reached == null || reached[t];
        if (hit && c.grad && (c.grad[t] == null || !Number.isFinite(c.grad[t]))) return 2;
        if (hit && c.grad?.[t] === 0) return 3;
        return computed == null || computed[t] ? 1 : 0;
      }),
    );
  }

  /** (cells, T) log10 gradient sizes where BPTT has reached (all of them for null), else null. */
  _gradientGrid(reached) {
    const [lo] = this.range;
    return this.cells.map((c) =>
      Array.from({ length: this.reference.T }, (_, t) => {
        const g = c.grad?.[t];
        if (g == null || !Number.isFinite(g) || g === 0 || (reached && !reached[t])) return null;
        return Math.max(Math.log10(g), lo);
      }),
    );
  }

  /** Layer 1's (forward) hidden states of each cell as a unit x position heatmap, side by
   * side (stacked on a narrow screen), one colour axis fixed at [-1, 1]. */
  _drawStates() {
    const el = this.statesContainer;
    if (!el) return;
    el.hidden = false;
    const narrow = isNarrow(el);
    const n = this.cells.length;
    const traces = this.cells.map((c, i) => {
      const rows = c.model.trace.hidden[0][0]; // (T, H)
      const H = rows[0].length;
      // any finite value (drawable() is for log axes, which cannot show h <= 0)
      const z = Array.from({ length: H }, (_, u) => Array.from(rows, (row) => (Number.isFinite(row[u]) ? row[u] : null)));
      const axis = axisSuffix(i);
      return {
        type: "heatmap",
        name: c.name,
        z,
        xaxis: `x${axis}`,
        yaxis: `y${axis}`,
        coloraxis: "coloraxis",
        hovertemplate: `${c.name}, t=%{x}, unit %{y}<br>h = %{z:.3f}<extra></extra>`,
      };
    });
    const when = this.trained ? `after ${this.trained} training steps` : "before training";
    const layout = {
      ...baseLayout(narrow ? `Hidden state h, layer 1, ${when}` : `Hidden state h, layer 1, ${when}: one colour scale for all three`),
      grid: narrow ? { rows: n, columns: 1, pattern: "independent", ygap: 0.3 } : { rows: 1, columns: n, pattern: "independent", xgap: 0.08 },
      coloraxis: { colorscale: DIVERGING, cmin: -1, cmax: 1, colorbar: { title: { text: narrow ? "h" : "h, all three" }, thickness: 12 } },
      annotations: this.cells.map((c, i) => {
        const axis = axisSuffix(i);
        return { text: c.name, xref: `x${axis} domain`, yref: `y${axis} domain`, x: 0.5, y: 1.02, xanchor: "center", yanchor: "bottom", showarrow: false, font: { color: c.color } };
      }),
      shapes: this.cells.map((_, i) => {
        const axis = axisSuffix(i);
        return { type: "line", xref: `x${axis}`, yref: `y${axis} domain`, x0: -1, x1: -1, y0: 0, y1: 1, line: { color: MUTED, width: 1.5, dash: "dot" }, visible: false };
      }),
      margin: { l: 40, r: 12, t: 48, b: 36 },
    };
    el.style.height = narrow ? `${150 * n + 80}px` : ""; // stacked on a phone: room for three
    for (let i = 0; i < n; i++) {
      const axis = axisSuffix(i);
      // stacked, only the last names its axis: the names above would meet the cell's label
      layout[`xaxis${axis}`] = { title: { text: narrow && i < n - 1 ? "" : "position t" }, zeroline: false };
      layout[`yaxis${axis}`] = { title: { text: i === 0 || narrow ? "unit" : "" }, zeroline: false };
    }
    Plotly.react(el, traces, layout, plotConfig("compare-states"));
  }

  /**
   * The three trained: per cell {losses: [[step, loss]], evalLoss, before, after}, after
   * `steps` steps each. Profiles of the probe sequence, and the loss curves.
   */
  setTrained(results, steps) {
    this.trained = steps;
    const after = Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.after]));
    const before = Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.before]));
    this._draw(after, before);
    if (!this.lossContainer) return;
    this.lossContainer.hidden = false;
    const traces = CELLS.filter((c) => results[c.key]).map((c) => {
      const r = results[c.key];
      const held = r.evalLoss == null ? "not finite" : r.evalLoss.toPrecision(3);
      return {
        name: `${c.name} (held-out ${held})`,
        x: r.losses.map(([step]) => step),
        y: r.losses.map(([, loss]) => drawable(loss)),
        mode: "lines",
        line: { color: c.color, width: 2 },
        hovertemplate: `${c.name}, step %{x}<br>loss %{y:.4g}<extra></extra>`,
      };
    });
    const values = traces.flatMap((t) => t.y);
    Plotly.react(
      this.lossContainer,
      traces,
      {
        ...baseLayout(isNarrow(this.lossContainer) ? `Training loss, ${steps} steps each (log)` : `Training loss, ${steps} steps each from the same seed (log scale)`),
        xaxis: { title: { text: "training step" }, zeroline: false },
        yaxis: logAxis("loss (log scale)", logRange(values)),
        ...legendPlace(this.lossContainer),
      },
      plotConfig("compare-loss"),
    );
  }

  /** @param {number} fraction 0..1 of the shared timeline */
  update(fraction) {
    this._fraction = fraction;
    if (!this.reference || !this.visible || this._timer) return;
    const wait = this._applied + MIN_INTERVAL_MS - performance.now();
    if (wait <= 0) return this._apply(fraction);
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this.visible) this._apply(this._fraction);
    }, wait);
  }

  /** Every plot at a fraction of the shared timeline, now. */
  _apply(fraction) {
    const m = this.reference;
    if (!m || fraction === undefined) return;
    this._applied = performance.now();
    this._shown = fraction;
    const f = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) : 1;
    const e = m.event(Math.round(f * (m.length - 1)));
    const position = e.kind === "summary" ? null : e.position;
    this._updateNetworks(Math.round(f * (m.length - 1)));
    if (position === this._position) return;
    this._position = position;
    // each plot in a task of its own (~20-30 ms each at T=1000), the newest position only
    const run = ++this._moves;
    setTimeout(() => run === this._moves && this._moveStatesLine(position), 0);
    setTimeout(() => run === this._moves && this._moveMarker(position), 0);
  }

  /** The shared position's dotted line on the states heatmaps. */
  _moveStatesLine(position) {
    if (this.statesContainer && this.statesContainer.data) {
      const moved = {};
      this.cells.forEach((_, i) => {
        moved[`shapes[${i}].x0`] = position ?? -1;
        moved[`shapes[${i}].x1`] = position ?? -1;
        moved[`shapes[${i}].visible`] = position != null;
      });
      Plotly.relayout(this.statesContainer, moved);
    }
  }

  /** The shared position's line and markers on the gradient profiles. */
  _moveMarker(position) {
    const at = this.cells.map((c) => (position == null || !c.grad ? null : c.grad[position]));
    const n = 2 * this.cells.length + 2; // after the lines, the specials and the legend key
    quickRestyle(
      this.container,
      new Map([
        [n, { x: [position, position] }],
        [n + 1, { x: this.cells.map(() => position), y: at.map(drawable) }],
      ]),
    );
  }

  /** The chains' colours over a fixed [lo, hi] range of log10 sizes (null: the three's own). */
  setFixedScale(range) {
    this.fixedRange = range;
    if (!this.reference || !this.networksContainer?.data) return;
    this._drawNetworks();
    this._apply(this._fraction);
  }

  /** The chains at timeline cursor c: boxes filled up to the forward pass's position, and
   * coloured back to BPTT's. */
  _updateNetworks(c) {
    const el = this.networksContainer;
    const m = this.reference;
    if (!el || !el.data) return;
    const ts = Array.from({ length: m.T }, (_, t) => t);
    const computed = ts.map((t) => m.forwardDone(0, 0, t, c));
    const reached = ts.map((t) => m.backwardDone(0, 0, t, c));
    const key = `${computed.filter(Boolean).length}/${reached.filter(Boolean).length}`;
    if (key === this._chainState) return;
    this._chainState = key;
    Plotly.restyle(el, { z: [this._stepGrid(reached, computed), this._gradientGrid(reached)] }, [0, 1]);
  }

  _traces() {
    const T = this.reference.T;
    const xs = Array.from({ length: T }, (_, t) => t);
    const traces = [];
    const marks = { x: [], kind: [], who: [] }; // overflow and zero, which a log axis cannot draw
    for (const c of this.cells) {
      traces.push({
        name: c.name,
        legendgroup: c.key,
        x: xs,
        y: c.grad ? c.grad.map(drawable) : [],
        mode: "lines",
        line: { color: c.color, width: 2.5 },
        hovertemplate: `${c.name}, t=%{x}<br>||∂L/∂h|| = %{y:.3g}<extra></extra>`,
        showlegend: c.grad != null,
      });
      traces.push({
        name: c.grad ? `${c.name}, Jacobian product` : c.name,
        legendgroup: c.key,
        x: xs,
        y: c.jac ? c.jac.map(drawable) : [],
        mode: "lines",
        line: { color: c.color, width: 1.5, dash: "dash" },
        opacity: 0.6,
        hovertemplate: `${c.name}, t=%{x}<br>||∂h_last/∂h_t|| = %{y:.3g}<extra></extra>`,
        showlegend: c.grad == null, // without gradients the cell is named here
      });
      for (const values of [c.grad, c.jac]) {
        (values || []).forEach((v, t) => {
          const kind = special(v);
          if (!kind) return;
          marks.x.push(t);
          marks.kind.push(kind);
          marks.who.push(`${c.name}: ${kind}`);
        });
      }
    }
    traces.push({
      ...specialsTrace(marks.x, marks.kind),
      y: marks.kind.map((k) => (k === "zero" ? ZERO_Y : OVERFLOW_Y)),
      hovertext: marks.who,
    });
    traces.push({
      name: "Jacobian product (dashed)",
      x: [null],
      y: [null],
      mode: "lines",
      line: { color: MUTED, width: 1.5, dash: "dash" },
      hoverinfo: "skip",
      showlegend: this.cells.some((c) => c.jac != null),
    });
    traces.push({
      name: "shared position",
      x: [null, null],
      y: [0, 1],
      yaxis: "y2",
      mode: "lines",
      line: { color: MUTED, width: 1, dash: "dot" },
      hoverinfo: "skip",
      showlegend: false,
    });
    traces.push({
      name: "at this position",
      x: this.cells.map(() => null),
      y: this.cells.map(() => null),
      mode: "markers",
      marker: { color: this.cells.map((c) => c.color), size: 10, line: { color: "#ffffff", width: 1.5 } },
      text: this.cells.map((c) => c.name),
      hovertemplate: "%{text}, t=%{x}<br>||∂L/∂h|| = %{y:.3g}<extra></extra>",
      showlegend: false,
    });
    for (const c of this.cells) {
      if (!c.before) continue;
      traces.push({
        name: `${c.name}, before training`,
        legendgroup: c.key,
        x: xs,
        y: c.before.map(drawable),
        mode: "lines",
        line: { color: c.color, width: 1.5, dash: "dot" },
        opacity: 0.7,
        hovertemplate: `${c.name} before training, t=%{x}<br>||∂L/∂h|| = %{y:.3g}<extra></extra>`,
      });
    }
    return traces;
  }

  _layout() {
    const values = this.cells.flatMap((c) => [...(c.grad || []), ...(c.jac || []), ...(c.before || [])]);
    const noTargets = this.cells.every((c) => !c.grad);
    const label = this.reference.D === 2 ? "layer 1, forward direction" : "layer 1";
    const when = this.trained ? `after ${this.trained} training steps (dotted: before), ` : "";
    return {
      ...baseLayout(isNarrow(this.container) ? "Gradient reaching each position (log)" : `Gradient reaching each position, ${when}${label} (log scale)`),
      xaxis: { title: { text: "position t" }, range: [-0.5, this.reference.T - 0.5], zeroline: false },
      yaxis: logAxis("size (log scale)", logRange(values)),
      yaxis2: OVERLAY_AXIS,
      annotations: noTargets ? [hint("No targets: no gradients, only the Jacobian products")] : [],
      ...legendPlace(this.container),
    };
  }
}

// The gradient horizon (after RNNbow): where the gradient reaching each hidden state comes
// from. Left, a heatmap of ||the part of dL/dh_t sent by the loss at position τ|| for every
// position t (rows) and loss position τ (columns), log scale; right, one loss's part as it
// travels back through time, beside the total; below, which losses make up the gradient at
// the chosen position (each part's share of it: part · total / ||total||², summing to 1).
//
// Wiring: `new HorizonView(container, {load, summaryEl?, fixedRange?})` where
// `load({layer, direction, position})` resolves to the POST /api/v1/horizon answer for the
// page's trace request (body: `horizonBody(traceBody, layer, direction, position)`);
// `setModel(model)` on every new trace (reloads the open layer-direction); `select(layer,
// direction, position)` to choose what to split (e.g. on a node click); `setSource(k)` to
// follow another loss (a click on the heatmap does it); `update(cursor)` marks the position
// BPTT has reached. `fixedRange` [lo, hi] in log10 units fixes the colour scale across runs.

import { isNarrow } from "./gradients.js";
import { whenPlotly } from "./registry.js";

const PLOT_CONFIG = { responsive: true, displaylogo: false, showSendToCloud: false, displayModeBar: false };
const MUTED = "#868e96";
const LINE = "#2f6fde";
const DECADES = 12; // the colour scale spans at most this many powers of ten below the largest

/** The /horizon request for one layer-direction and position of the page's trace request. */
export function horizonBody(traceBody, layer, direction, position) {
  const { truncate, jacobians, ...rest } = traceBody; // the split is of full BPTT
  return { ...rest, layer, direction, position };
}

const log10 = (v) => (v != null && Number.isFinite(v) && v > 0 ? Math.log10(v) : null);

/** Each part's share of the total at one position: part · total / ||total||² (sums to 1). */
export function shares(parts, total) {
  let tt = 0;
  for (const v of total) tt += v * v;
  return parts.map((part) => {
    if (tt === 0) return 0;
    let s = 0;
    for (let u = 0; u < total.length; u++) s += part[u] * total[u];
    return s / tt;
  });
}

export class HorizonView {
  /**
   * @param {HTMLElement} container the plot
   * @param {{load?: Function, summaryEl?: HTMLElement, fixedRange?: [number, number] | null}} [options]
   */
  constructor(container, { load = null, summaryEl = null, fixedRange = null } = {}) {
    this.container = container;
    this.load = load;
    this.summaryEl = summaryEl;
    this.fixedRange = fixedRange;
    this.model = null;
    this.answer = null;
    this.sourceIndex = null; // index into answer.sources of the loss followed
    this.where = null;
    this._request = 0;
    this._marker = undefined;
  }

  /** A new trace: the open split is loaded again. */
  setModel(model) {
    this.model = model;
    if (this.where && this.load) {
      const { layer, direction, position } = this.where;
      const fits = layer < model.L && direction < model.D && position < model.T;
      this.select(fits ? layer : 0, fits ? direction : 0, fits ? position : model.T - 1);
    }
  }

  /** Split the gradient of (layer, direction) with `position` in full; asks `load`. */
  async select(layer, direction, position) {
    this.where = { layer, direction, position };
    if (!this.load) return;
    const request = ++this._request;
    try {
      const answer = await this.load({ layer, direction, position });
      await whenPlotly(); // a node clicked in the page's first second comes before Plotly.js
      if (request === this._request) this.show(answer);
    } catch (err) {
      if (request !== this._request) return;
      if (this.summaryEl) this.summaryEl.textContent = `The gradient horizon cannot be shown: ${err.message}`;
    }
  }

  /** Draw a /horizon answer. */
  show(answer) {
    this.answer = answer;
    this.where = { layer: answer.layer, direction: answer.direction, position: answer.position };
    const N = answer.sources.length;
    if (this.sourceIndex == null || this.sourceIndex >= N) this.sourceIndex = N - 1;
    this._marker = undefined;
    Plotly.react(this.container, this._traces(), this._layout(), PLOT_CONFIG);
    if (!this._clickBound && this.container.on) {
      this.container.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (point && point.data.type === "heatmap") this.setSource(point.pointIndex[1]);
      });
      this._clickBound = true;
    }
    this._summarize();
  }

  /** Follow the loss at answer.sources[k] back through time. */
  setSource(k) {
    if (!this.answer) return;
    this.sourceIndex = k;
    Plotly.react(this.container, this._traces(), this._layout(), PLOT_CONFIG);
    this._summarize();
  }

  /** Mark the position BPTT has reached in this layer-direction at the cursor. */
  update(cursor) {
    if (!this.answer || !this.model) return;
    const e = this.model.event(cursor);
    const { direction } = this.where;
    const t = e.kind === "backward" ? (e.positions ? e.positions[direction] : e.position) : null;
    if (t === this._marker) return;
    if (!this.container.data || this.container.data.length < 4) return; // the plot is still being drawn
    this._marker = t;
    Plotly.restyle(this.container, { x: [[t, t]] }, [3]);
  }

  /** The drawn line: positions t and ||part of the followed loss at t||. */
  get series() {
    if (!this.answer) return null;
    const k = this.sourceIndex;
    return {
      source: this.answer.sources[k],
      positions: this.answer.norms.map((_, t) => t),
      values: this.answer.norms.map((row) => row[k]),
    };
  }

  _range(z) {
    if (this.fixedRange) return this.fixedRange;
    let hi = -Infinity;
    for (const row of z) for (const v of row) if (v != null && v > hi) hi = v;
    if (!Number.isFinite(hi)) return [-1, 0];
    let lo = hi;
    for (const row of z) for (const v of row) if (v != null && v < lo) lo = v;
    return [Math.max(lo, hi - DECADES), hi === lo ? hi + 1 : hi];
  }

  _traces() {
    const a = this.answer;
    const T = a.norms.length;
    const positions = Array.from({ length: T }, (_, t) => t);
    const z = a.norms.map((row) => row.map(log10));
    const [zmin, zmax] = this._range(z);
    const s = this.series;
    const total = Math.hypot(...a.total); // ||dL/dh|| at `position`: the parts' sum
    return [
      {
        type: "heatmap",
        x: a.sources,
        y: positions,
        z,
        zmin,
        zmax,
        colorscale: "Viridis",
        colorbar: isNarrow(this.container)
          ? { title: { text: "log₁₀", side: "top" }, x: 1.01, xanchor: "left", y: 0.79, yanchor: "middle", len: 0.4, thickness: 10 }
          : { title: { text: "log₁₀", side: "top" }, x: 0.4, len: 0.9, thickness: 10 },
        hovertemplate: "loss at τ=%{x} → h at t=%{y}<br>log₁₀ ||part|| = %{z:.2f}<extra></extra>",
        xaxis: "x",
        yaxis: "y",
      },
      {
        name: `from the loss at τ = ${s.source}`,
        x: positions,
        y: s.values.map((v) => (v > 0 ? v : null)),
        mode: "lines+markers",
        line: { color: LINE, width: 2 },
        marker: { size: 5 },
        hovertemplate: "t=%{x}: ||part|| = %{y:.3g}<extra></extra>",
        xaxis: "x2",
        yaxis: "y2",
      },
      {
        name: `||∂L/∂h|| at t = ${a.position} (all losses)`,
        x: [a.position],
        y: [total > 0 ? total : null],
        mode: "markers",
        marker: { color: "#d9480f", size: 10, symbol: "diamond" },
        hovertemplate: "total at t=%{x}: %{y:.3g}<extra></extra>",
        xaxis: "x2",
        yaxis: "y2",
      },
      {
        name: "BPTT is here",
        x: [null, null],
        y: [0, 1],
        mode: "lines",
        line: { color: MUTED, width: 1, dash: "dot" },
        hoverinfo: "skip",
        showlegend: false,
        xaxis: "x2",
        yaxis: "y3",
      },
    ];
  }

  _layout() {
    const a = this.answer;
    // a phone: the heatmap above the line plot, not beside it (side by side they overlapped)
    const narrow = isNarrow(this.container);
    // the plot's height is its container's: a taller layout spilled over the summary below
    this.container.style.height = narrow ? "640px" : "380px";
    const [heat, line] = narrow ? [{ x: [0, 1], y: [0.6, 1] }, { x: [0, 1], y: [0, 0.38] }] : [{ x: [0, 0.36], y: [0, 1] }, { x: [0.56, 1], y: [0, 1] }];
    return {
      margin: { l: 50, r: narrow ? 56 : 10, t: narrow ? 40 : 56, b: narrow ? 120 : 45 },
      showlegend: true,
      // stacked, the legend goes under the line plot it belongs to
      legend: narrow
        ? { orientation: "h", x: 0, xanchor: "left", y: -0.15, yanchor: "top", font: { size: 11 } }
        : { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom", font: { size: 11 } },
      title: { text: `Where the gradient comes from: layer ${a.layer + 1}${a.direction ? " ←" : ""}`, font: { size: 14 }, x: 0.01, y: 0.98, yanchor: "top" },
      // few loss positions (the adding problem has one): ticks at them, not at halves between
      xaxis: { domain: heat.x, title: { text: "loss position τ" }, zeroline: false, ...(a.sources.length <= 8 ? { tickvals: a.sources } : {}) },
      yaxis: { domain: heat.y, title: { text: "state position t" }, autorange: "reversed", zeroline: false },
      xaxis2: { domain: line.x, title: { text: "state position t" }, anchor: "y2", zeroline: false },
      yaxis2: { domain: line.y, type: "log", title: { text: "||part of ∂L/∂h_t||" }, anchor: "x2", exponentformat: "power", zeroline: false },
      yaxis3: { domain: line.y, overlaying: "y2", range: [0, 1], visible: false },
    };
  }

  _summarize() {
    if (!this.summaryEl) return;
    const a = this.answer;
    const share = shares(a.hidden, a.total);
    const ranked = share.map((v, k) => [v, k]).sort((x, y) => Math.abs(y[0]) - Math.abs(x[0])).slice(0, 3);
    const parts = ranked.map(([v, k]) => `the loss at τ = ${a.sources[k]} (${(100 * v).toFixed(1)}%)`);
    this.summaryEl.textContent =
      `At t = ${a.position} the gradient is the sum of ${a.sources.length} part(s), one per loss position; ` +
      `the largest shares come from ${parts.join(", ")}. Click a column of the heatmap to follow that loss back.`;
    this.summaryEl.dataset.shares = JSON.stringify(share);
  }
}

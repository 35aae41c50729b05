// The gradient profile: ||dL/dh_t|| per layer and direction as BPTT reaches each position,
// the Jacobian product norm ||dh_last/dh_t|| faintly behind it, on a log scale, and the
// trace's gradient verdict (app/rnn/verdict.py) in words. Also exports the plotting
// helpers the other views share.

// no "Share chart" button: it would upload to Plotly Cloud, and the page works offline
export const PLOT_CONFIG = { responsive: true, displaylogo: false, showSendToCloud: false };

/** Plotly config for one view: the modebar keeps its PNG download, named after the view. */
export const plotConfig = (name) => ({ ...PLOT_CONFIG, toImageButtonOptions: { filename: `unroll-${name}` } });
export const COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#e67700", "#5c940d"];
export const MUTED = "#5b6577";
export const DANGER = "#b3261e";
// a hidden [0, 1] axis laid over the value axis: overflow and zero markers, and the position
// marker, sit on it whatever the log axis shows
export const OVERLAY_AXIS = { overlaying: "y", range: [0, 1], visible: false, fixedrange: true };
export const OVERFLOW_Y = 0.95;
export const ZERO_Y = 0.04;

/**
 * New data for some traces without a full redraw: Plotly's animation path with no transition
 * skips the whole-figure recalculation that restyle does, so a frame costs a fraction of a
 * millisecond. Every trace is passed (unchanged ones as {}) because a partial transition can
 * drop the others from the drawing; axes keep their ranges, so the layout must fix them.
 * Keep each trace's point count fixed (null for "not yet") so no point is created unstyled.
 * @param {HTMLElement} el @param {Map<number, object>} updates trace index -> partial trace
 */
export function quickRestyle(el, updates) {
  const indices = el.data.map((_, i) => i);
  Plotly.animate(
    el,
    { data: indices.map((i) => updates.get(i) || {}), traces: indices },
    { mode: "immediate", transition: { duration: 0 }, frame: { duration: 0, redraw: false } },
  ).catch(() => {}); // a newer frame interrupted this one: nothing to do
}

/** A plot this narrow (a phone) stacks, shortens its title or puts its legend under it. */
export const isNarrow = (container) => container.clientWidth < 600;

/** Title at the top left, legend on the right: the layout every view starts from. */
export function baseLayout(title) {
  return {
    margin: { l: 60, r: 12, t: 32, b: 40 },
    title: { text: title, font: { size: 13 }, x: 0.01, xanchor: "left" },
    legend: { x: 1.02, xanchor: "left", y: 1, yanchor: "top", font: { size: 11 }, tracegroupgap: 2 },
  };
}

/** A plot's height with its legend under it (`.plot.legend-below` in app.css). */
const LEGEND_BELOW_PX = 480;

/**
 * Where a view's legend goes: on the right, or (a phone) under the plot, which then grows
 * taller (`.plot.legend-below` in app.css): beside it, it left the plot a third of the width.
 */
export function legendPlace(container, hasLegend = true) {
  const narrow = hasLegend && isNarrow(container);
  container.classList.toggle("legend-below", narrow);
  if (!narrow) return {};
  return {
    legend: { orientation: "h", x: 0, xanchor: "left", y: -0.22, yanchor: "top", font: { size: 11 } },
    margin: { l: 60, r: 12, t: 32, b: 150 },
    height: LEGEND_BELOW_PX, // said, not measured: the container grew in this same task
  };
}

/** A centred grey hint over the plot area. */
export function hint(text, visible = true) {
  // on a white ground: on a phone the plot area is narrow and the hint meets the axis labels
  return { text, visible, xref: "paper", yref: "paper", x: 0.5, y: 0.55, showarrow: false, font: { color: MUTED, size: 13 }, bgcolor: "rgba(255, 255, 255, 0.9)" };
}

/** A number for people: 2 to 3 significant digits, exponent form when tiny or huge. */
export function formatNumber(v, digits = 3) {
  if (v == null || !Number.isFinite(v)) return "not finite";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(digits - 2).replace("e+", "e");
  return String(Number(v.toPrecision(digits)));
}

/** A value a log axis can draw, else null (overflow and zero are drawn as markers instead). */
export const drawable = (v) => (v > 0 && Number.isFinite(v) ? v : null);

/** "overflow", "zero" or null: what a value needs a marker for on a log axis. */
export const special = (v) => (v == null || !Number.isFinite(v) ? "overflow" : v === 0 ? "zero" : null);

/**
 * Markers for values a log axis cannot draw, on the overlay axis: overflow at the top, zero
 * at the bottom, named in the legend. y starts all null: update it to show them.
 * @param {number[]} x positions @param {string[]} kinds "overflow" or "zero" for each
 */
export function specialsTrace(x, kinds) {
  const names = [...new Set(kinds)].map((k) => (k === "zero" ? "zero (bottom)" : "overflow (top)"));
  return {
    name: names.join(", ") || "overflow",
    x,
    y: x.map(() => null),
    hovertext: kinds,
    yaxis: "y2",
    mode: "markers",
    marker: { symbol: "x", color: DANGER, size: 8 },
    hovertemplate: "t=%{x}: %{hovertext}<extra></extra>",
    showlegend: kinds.length > 0,
  };
}

/** A log axis over `range` (log10 units): a label at every power of ten when that fits. */
export function logAxis(title, range) {
  const axis = { title: { text: title }, type: "log", range, exponentformat: "power" };
  if (range[1] - range[0] <= 7) axis.dtick = 1;
  return axis;
}

/** [lo, hi] in log10 units covering the positive finite values, with room above for markers. */
export function logRange(values, fallback = [-3, 1]) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (drawable(v) == null) continue;
    const e = Math.log10(v);
    lo = Math.min(lo, e);
    hi = Math.max(hi, e);
  }
  if (!Number.isFinite(lo)) return fallback;
  const pad = Math.max(0, 1 - (hi - lo)) / 2;
  return [lo - pad - 0.3, hi + pad + 0.6];
}

const VERDICT_CLASSES = ["vanishing", "exploding", "overflow", "stable", "none"];

export class GradientView {
  /** @param {HTMLElement} container @param {{verdictEl: HTMLElement}} options */
  constructor(container, { verdictEl }) {
    this.container = container;
    this.verdictEl = verdictEl;
    this.model = null;
    this.series = []; // [{l, d, grad: (T,) | null, jac: (T,) | null}]
    this.specials = []; // [{series, kind: "grad" | "jac", t, text}] points drawn as markers
    this.verdict = null;
    this._key = null;
    this._hint = true;
  }

  setModel(model) {
    this.model = model;
    const grads = model.gradHiddenNorms();
    const jacs = model.trace.jacobian_product_norm;
    this.series = [];
    for (let l = 0; l < model.L; l++) {
      for (let d = 0; d < model.D; d++) {
        this.series.push({ l, d, grad: grads ? grads[l][d] : null, jac: jacs ? jacs[l][d] : null });
      }
    }
    this.positions = Array.from({ length: model.T }, (_, t) => t);
    this.specials = this.series.flatMap((s, i) =>
      ["grad", "jac"].flatMap((kind) =>
        (s[kind] || []).map((v, t) => ({ series: i, kind, t, text: special(v) })).filter((p) => p.text),
      ),
    );
    this.verdict = this._verdict();
    this._key = null;
    this._hint = true; // the layout starts with the hint shown
    Plotly.react(this.container, this._traces(), this._layout(), plotConfig("gradients"));
  }

  update(cursor) {
    if (!this.model) return;
    const shown = this._shown(cursor);
    const e = this.model.event(cursor);
    const markerAt = e.kind === "summary" ? null : e.position;
    const key = `${markerAt}|${shown.map((s) => `${s.count}:${s.jac}`).join(",")}`;
    if (key === this._key) return;
    this._key = key;
    quickRestyle(this.container, this._data(shown, markerAt));
    const hintVisible = !this.model.hasGradients || shown.every((s) => s.count === 0);
    if (hintVisible !== this._hint) Plotly.relayout(this.container, { "annotations[0].visible": hintVisible });
    this._hint = hintVisible;
    this._showVerdict(this.model.phase(cursor) !== "forward");
  }

  /** Per series: which gradients BPTT has reached, and whether the forward pass is complete. */
  _shown(cursor) {
    const m = this.model;
    return this.series.map((s) => {
      const grad = this.positions.map((t) => s.grad != null && m.backwardDone(s.l, s.d, t, cursor));
      return {
        grad,
        count: grad.filter(Boolean).length,
        // ||dh_last/dh_t|| needs the whole forward pass of that layer and direction
        jac: s.jac != null && m.forwardDone(s.l, s.d, s.d === 1 ? 0 : m.T - 1, cursor),
      };
    });
  }

  _data(shown, markerAt) {
    const updates = new Map();
    this.series.forEach((s, i) => {
      if (s.grad) updates.set(2 * i, { y: s.grad.map((v, t) => (shown[i].grad[t] ? drawable(v) : null)) });
      if (s.jac) updates.set(2 * i + 1, { y: s.jac.map((v) => (shown[i].jac ? drawable(v) : null)) });
    });
    const visible = (p) => (p.kind === "grad" ? shown[p.series].grad[p.t] : shown[p.series].jac);
    const n = 2 * this.series.length;
    updates.set(n, { y: this.specials.map((p) => (!visible(p) ? null : p.text === "zero" ? ZERO_Y : OVERFLOW_Y)) });
    updates.set(n + 1, { x: [markerAt, markerAt] });
    return updates;
  }

  _traces() {
    const traces = [];
    const blank = this.positions.map(() => null);
    this.series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      const label = this.model.label(s.l, s.d);
      traces.push({
        name: this.series.length === 1 ? "gradient ||∂L/∂h_t||" : label,
        legendgroup: label,
        x: this.positions,
        y: blank,
        mode: this.model.T > 150 ? "lines" : "lines+markers", // a marker per position costs SVG nodes
        line: { color, width: 2 },
        marker: { color, size: 4 },
        hovertemplate: `t=%{x}<br>||∂L/∂h|| = %{y:.3g}<extra>${label}</extra>`,
        showlegend: s.grad != null,
      });
      traces.push({
        name: `Jacobian product, ${label}`,
        legendgroup: "jacobian",
        x: this.positions,
        y: blank,
        mode: "lines",
        line: { color, width: 1.5, dash: "dot" },
        opacity: 0.5,
        hovertemplate: `t=%{x}<br>||∂h_last/∂h_t|| = %{y:.3g}<extra>${label}</extra>`,
        showlegend: false,
      });
    });
    traces.push(specialsTrace(this.specials.map((p) => p.t), this.specials.map((p) => p.text)));
    traces.push({
      name: "current position",
      x: [null, null],
      y: [0, 1],
      yaxis: "y2",
      mode: "lines",
      line: { color: MUTED, width: 1, dash: "dash" },
      hoverinfo: "skip",
      showlegend: false,
    });
    // one legend entry toggles every Jacobian product line
    traces.push({
      name: "Jacobian product (dotted)",
      legendgroup: "jacobian",
      x: [null],
      y: [null],
      mode: "lines",
      line: { color: MUTED, width: 1.5, dash: "dot" },
      showlegend: this.series.some((s) => s.jac != null),
    });
    return traces;
  }

  _layout() {
    const m = this.model;
    const values = this.series.flatMap((s) => [...(s.grad || []), ...(s.jac || [])]);
    return {
      ...baseLayout("Gradient reaching each position (log scale)"),
      xaxis: { title: { text: "position t" }, range: [-0.5, m.T - 0.5], zeroline: false },
      yaxis: logAxis("size (log scale)", logRange(values)),
      yaxis2: OVERLAY_AXIS,
      showlegend: true,
      annotations: [hint(m.hasGradients ? "Gradients appear as BPTT runs" : "No targets: no gradients")],
      ...legendPlace(this.container),
    };
  }

  /**
   * The trace's own verdict (app/rnn/verdict.py): the label, the measured rate per step,
   * what reaches the first position, the reason in words and its notes. A progressive
   * answer's later frames replace it, so it is the final one once the diagnostics are in.
   */
  _verdict() {
    const m = this.model;
    if (!m.hasGradients) return { kind: "none", label: "No targets: no gradients", parts: [] };
    const v = m.trace.verdict;
    if (!v) return { kind: "none", label: "The verdict comes with the gradients", parts: [] };
    const kind = v.verdict === "overflowed" ? "overflow" : v.verdict;
    const label = { vanishing: "Vanishing", exploding: "Exploding", overflowed: "Overflowed", stable: "Stable", none: "No verdict" }[v.verdict];
    const where = m.L > 1 || m.D > 1 ? ` (${m.label(v.layer, v.direction)})` : "";
    const rate = v.rate != null ? `, ×${formatNumber(v.rate, 3)} per step` : "";
    // the reason starts with the label and says the rate in words: the label line has them
    const reason = (v.reason || "").replace(/^(vanishing|exploding|stable|overflowed|none):\s*/i, "");
    // the same digits as the server's reason, which names this number again; with a loss at
    // every position the solid line also carries each later loss, so say which line it is
    const which = v.source === "jacobian_product" && m.config.output_mode === "sequence" ? " (the dashed Jacobian product: the solid line also holds every later position's own loss)" : "";
    const start = v.surviving_to_start == null ? "" : `${Number(v.surviving_to_start).toPrecision(3)} of the last position's gradient reaches step 0${v.truncated ? " (truncated BPTT)" : ""}${which}`;
    // each part is a sentence of its own: capitalised
    const parts = [start, reason, ...(v.notes || []).map((n) => `Note: ${n}`)].filter(Boolean).map((p) => p[0].toUpperCase() + p.slice(1));
    const cut = v.truncated ? ", and cut by truncated BPTT" : "";
    return { kind, label: `${label}${where}${rate}${cut}`, parts };
  }

  _showVerdict(visible) {
    const el = this.verdictEl;
    if (!el) return;
    const v = this.verdict;
    const show = visible || v.kind === "none";
    el.classList.remove(...VERDICT_CLASSES);
    if (!show) {
      el.replaceChildren();
      return;
    }
    el.classList.add(v.kind);
    const title = Object.assign(document.createElement("strong"), { className: "verdict-label", textContent: `${v.label}${v.parts.length ? ":" : ""}` });
    const details = v.parts.map((text) => {
      const span = Object.assign(document.createElement("span"), { className: "verdict-detail", textContent: ` ${text}.` });
      span.style.fontWeight = "400"; // the label stands out, the words read as prose
      return span;
    });
    el.replaceChildren(title, ...details);
  }
}

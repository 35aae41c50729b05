// Outputs against targets, and the loss at each step. Forecasts show the series, the
// targets and the predicted next values (a fan of future values when forecasting several);
// classification shows the probability given to the right class; "last" mode, bars.

import { COLORS, DANGER, MUTED, OVERFLOW_Y, baseLayout, formatNumber, isNarrow, legendPlace, plotConfig, quickRestyle } from "./gradients.js";

const MARKERS_UP_TO = 150; // positions drawn with markers; longer sequences as plain lines

const softmax = (logits) => {
  if (logits.some((v) => v == null)) return null;
  const top = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
};
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);
const first = (row) => (Array.isArray(row) ? row[0] : row);

/** True when targets[t][0] is the next input value: a forecast of the series itself. */
function isForecast(trace) {
  const { inputs, targets } = trace;
  if (!Array.isArray(targets) || inputs.length < 2 || trace.config.input_size !== 1) return false;
  for (let t = 0; t + 1 < inputs.length; t++) {
    const a = first(targets[t]);
    const b = inputs[t + 1][0];
    if (a == null || Math.abs(a - b) > 1e-9 * (1 + Math.abs(b))) return false;
  }
  return true;
}

function valueRange(values) {
  const finite = values.filter((v) => v != null && Number.isFinite(v));
  if (!finite.length) return [-1, 1];
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const pad = Math.max((hi - lo) * 0.08, 0.05);
  return [lo - pad, hi + pad];
}

export class OutputView {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    this.model = null;
    this.kind = null; // "forecast" | "sequence" | "classes" | "last"
    this.index = {}; // trace index of each dynamic trace
    this._key = null;
  }

  setModel(model) {
    this.model = model;
    const tr = model.trace;
    const c = model.config;
    if (c.output_mode !== "sequence") this.kind = "last";
    else if (c.head === "classification") this.kind = "classes";
    else this.kind = isForecast(tr) ? "forecast" : "sequence";
    this.shift = this.kind === "forecast" ? 1 : 0; // a forecast made at t is drawn at t + 1
    this.horizon = this.kind === "forecast" ? c.output_size : 1;
    this.positions = Array.from({ length: model.T }, (_, t) => t);
    this.drawnAt = this.positions.map((t) => t + this.shift);
    this.losses = tr.loss_per_step;
    this.index = {};
    this._key = null;
    const traces = this.kind === "last" ? this._lastTraces() : [...this._valueTraces(), ...this._lossTraces()];
    const layout = this.kind === "last" ? this._lastLayout() : this._sequenceLayout();
    Plotly.react(this.container, traces, layout, plotConfig("outputs"));
  }

  update(cursor) {
    if (!this.model) return;
    const done = this.positions.map((t) => this.model.outputDone(t, cursor));
    const count = done.filter(Boolean).length;
    const latest = this._latest(cursor, done, count);
    const key = `${count}|${latest}`;
    if (key === this._key) return;
    this._key = key;
    if (this.kind === "last") this._updateLast(count > 0);
    else quickRestyle(this.container, this._sequenceData(done, latest));
  }

  /** Where the fan starts: the newest output, or the end once all are known. */
  _latest(cursor, done, count) {
    if (count === 0) return null;
    if (count === this.model.T) return this.model.T - 1;
    const e = this.model.event(cursor);
    return e.kind === "forward" && done[e.position] ? e.position : done.lastIndexOf(true);
  }

  _title() {
    const last = this.model.config.head === "classification" ? "Class probabilities after the last step" : "Output after the last step";
    return {
      classes: "How sure the network is of the right class",
      forecast: "The series, the targets and the forecasts",
      sequence: "Outputs against targets",
      last,
    }[this.kind];
  }

  // ------------------------------------------------------------ sequence modes

  _valueTraces() {
    const tr = this.model.trace;
    const blank = this.positions.map(() => null);
    if (this.kind === "classes") {
      const rows = this.positions.map((t) => this._classRow(t));
      this.classProbability = rows.map((r) => r.y);
      this.index.prediction = 0;
      return [
        {
          name: tr.targets != null ? "right class" : "top class",
          x: this.positions,
          y: blank,
          hovertext: rows.map((r) => r.text),
          mode: this._many() ? "lines" : "lines+markers",
          line: { color: COLORS[0], width: 1.5 },
          marker: { size: Math.max(3, Math.min(7, 300 / this.model.T)), color: rows.map((r) => r.color) },
          hovertemplate: "%{hovertext}<extra></extra>",
        },
      ];
    }
    const forecast = this.kind === "forecast";
    const traces = [
      {
        name: forecast ? "series (input)" : tr.config.input_size > 1 ? "input, feature 1" : "input",
        x: this.positions,
        y: tr.inputs.map((row) => row[0]),
        mode: "lines",
        line: { color: "#adb5bd", width: 2 },
      },
    ];
    if (tr.targets != null) {
      const x = [...this.drawnAt];
      const y = tr.targets.map(first);
      // the true values after the end, under the fan drawn at the last position
      for (let j = 1; j < this.horizon; j++) {
        x.push(this.model.T + j);
        y.push(tr.targets[this.model.T - 1][j]);
      }
      traces.push(this._many()
        ? { name: "target", x, y, mode: "lines", line: { color: "#1b2230", width: 1, dash: "dot" } }
        : { name: "target", x, y, mode: "markers", marker: { color: "#1b2230", size: 6, symbol: "circle-open" } });
    }
    this.index.prediction = traces.length;
    traces.push({
      name: "prediction",
      x: this.drawnAt,
      y: blank,
      hovertext: this.drawnAt.map((t) => `predicted for t=${t}`),
      mode: this._many() ? "lines" : "lines+markers",
      line: { color: COLORS[0], width: 2 },
      marker: { color: COLORS[0], size: 4 },
      hovertemplate: "%{hovertext}: %{y:.3g}<extra></extra>",
    });
    if (this.horizon > 1) {
      this.index.fan = traces.length;
      const none = Array(this.horizon + 1).fill(null);
      traces.push({
        name: `next ${this.horizon} values`,
        x: none,
        y: none,
        mode: "lines+markers",
        line: { color: COLORS[1], width: 2 },
        marker: { color: COLORS[1], size: 6 },
        hovertemplate: "t=%{x}: %{y:.3g}<extra>forecast</extra>",
      });
    }
    return traces;
  }

  /** Probability of the target class at t (of the top class without targets), for hover too. */
  _classRow(t) {
    const tr = this.model.trace;
    const p = softmax(tr.outputs[t]);
    if (!p) return { y: null, color: DANGER, text: `t=${t}: not finite` };
    const guess = argmax(p);
    const want = tr.targets == null ? guess : Math.round(tr.targets[t]);
    const target = tr.targets == null ? "" : `, target ${want}`;
    const text = `t=${t}: predicted class ${guess}${target}<br>probability ${formatNumber(p[want])}`;
    return { y: p[want], color: guess === want ? COLORS[2] : DANGER, text };
  }

  _lossTraces() {
    this.index.loss = this.index.prediction + (this.index.fan != null ? 2 : 1);
    this.index.overflow = this.index.loss + 1;
    return [
      {
        name: "loss",
        // zero-height to start with, so every point exists; a long sequence's as an area
        // (a thousand SVG bars cost a frozen page, one filled path does not)
        ...(this._many()
          ? { type: "scatter", mode: "lines", fill: "tozeroy", line: { color: "#9aa5b8", width: 1, shape: "hv" } }
          : { type: "bar", marker: { color: "#9aa5b8" } }),
        x: this.drawnAt,
        y: this.positions.map(() => 0),
        yaxis: "y2",
        hovertext: this.positions.map((t) => `loss of the output at t=${t}`),
        hovertemplate: "%{hovertext}: %{y:.3g}<extra></extra>",
      },
      {
        x: this.drawnAt,
        y: this.positions.map(() => null),
        yaxis: "y3",
        name: "not finite (top)",
        mode: "markers",
        marker: { symbol: "x", color: DANGER, size: 8 },
        hovertemplate: "t=%{x}: not finite<extra></extra>",
        showlegend: this._anyOverflow(),
      },
    ];
  }

  /** Long sequences are drawn as lines: one SVG path each instead of a marker per position. */
  _many() {
    return this.model.T > MARKERS_UP_TO;
  }

  _anyOverflow() {
    const tr = this.model.trace;
    const bad = (v) => v == null || !Number.isFinite(v);
    return (this.losses || []).some(bad) || (this.kind !== "classes" && tr.outputs.flat().some(bad));
  }

  _sequenceLayout() {
    const tr = this.model.trace;
    const classes = this.kind === "classes";
    const range = classes ? [-0.05, 1.05] : valueRange([...tr.inputs.map((r) => r[0]), ...(tr.targets || []).flat(), ...tr.outputs.flat()]);
    const losses = (this.losses || []).filter((v) => v != null && Number.isFinite(v));
    const lossTop = (losses.length && Math.max(...losses) * 1.1) || 1;
    const xEnd = this.model.T - 1 + this.shift + this.horizon - 1;
    const noLoss = tr.targets == null ? "No targets: no loss" : "No loss per step";
    return {
      ...baseLayout(this._title()),
      ...legendPlace(this.container),
      xaxis: {
        // a phone's width holds the short title only
        title: { text: this.shift ? (isNarrow(this.container) ? "time step predicted" : "time step (each forecast drawn at the step it predicts)") : "position t" },
        anchor: "y2",
        range: [-0.5, xEnd + 0.5],
        zeroline: false,
      },
      yaxis: { title: { text: classes ? "probability" : "value" }, domain: [0.36, 1], range, zeroline: false },
      yaxis2: { title: { text: "loss" }, domain: [0, 0.24], range: [0, lossTop], fixedrange: true },
      yaxis3: { overlaying: "y2", range: [0, 1], visible: false, fixedrange: true },
      bargap: 0.15,
      annotations: this.losses ? [] : [{ text: noLoss, xref: "paper", yref: "paper", x: 0.5, y: 0.1, showarrow: false, font: { color: MUTED } }],
    };
  }

  _sequenceData(done, latest) {
    const tr = this.model.trace;
    const updates = new Map();
    const values = this.kind === "classes" ? this.classProbability : tr.outputs.map(first);
    updates.set(this.index.prediction, { y: this.positions.map((t) => (done[t] ? values[t] : null)) });
    if (this.index.fan != null) updates.set(this.index.fan, this._fan(latest));
    const losses = this.losses || [];
    updates.set(this.index.loss, { y: this.positions.map((t) => (done[t] && losses[t] != null ? losses[t] : 0)) });
    const overflow = (t) => losses[t] === null || (this.kind !== "classes" && first(tr.outputs[t]) == null);
    updates.set(this.index.overflow, { y: this.positions.map((t) => (done[t] && overflow(t) ? OVERFLOW_Y : null)) });
    return updates;
  }

  /** The k values forecast at `latest`, drawn after the last value seen there. */
  _fan(latest) {
    const none = Array(this.horizon + 1).fill(null);
    if (latest == null) return { x: none, y: none };
    const row = this.model.trace.outputs[latest];
    return {
      x: [latest, ...row.map((_, j) => latest + 1 + j)],
      y: [this.model.trace.inputs[latest][0], ...row],
    };
  }

  // ------------------------------------------------------------ last mode

  _lastTraces() {
    const tr = this.model.trace;
    const classification = tr.config.head === "classification";
    const O = tr.outputs.length;
    this.labels = Array.from({ length: O }, (_, k) => (classification ? `class ${k}` : `output ${k + 1}`));
    const traces = [];
    if (tr.targets != null) {
      const want = Math.round(first(tr.targets));
      traces.push({
        name: classification ? "target class" : "target",
        type: "bar",
        x: this.labels,
        y: this.labels.map((_, k) => (classification ? Number(k === want) : [tr.targets].flat()[k])),
        marker: { color: classification ? "#dfe3ea" : "#adb5bd" },
      });
    }
    this.index.prediction = traces.length;
    traces.push({
      name: classification ? "probability" : "prediction",
      type: "bar",
      x: this.labels,
      y: this.labels.map(() => null),
      marker: { color: COLORS[0] },
      hovertemplate: "%{x}: %{y:.3g}<extra></extra>",
    });
    return traces;
  }

  _lastLayout() {
    const tr = this.model.trace;
    const classification = tr.config.head === "classification";
    const values = [0, ...[tr.targets ?? []].flat(), ...tr.outputs];
    return {
      ...baseLayout(this._title()),
      ...legendPlace(this.container),
      barmode: classification ? "overlay" : "group",
      bargap: this.labels.length < 3 ? 0.5 : 0.2,
      xaxis: { type: "category" },
      yaxis: { title: { text: classification ? "probability" : "value" }, range: classification ? [0, 1.05] : valueRange(values) },
      annotations: [{ text: "The output appears after the last step", xref: "paper", yref: "paper", x: 0.5, y: 1, yanchor: "bottom", showarrow: false, font: { color: MUTED } }],
    };
  }

  /** Happens once per pass (output known or not), so a full update is fine here. */
  _updateLast(known) {
    const tr = this.model.trace;
    const values = known ? (tr.config.head === "classification" ? softmax(tr.outputs) : tr.outputs) : null;
    const overflow = known && (values == null || values.some((v) => v == null));
    let text = this._title();
    if (known && tr.loss != null) text += ` · loss ${formatNumber(tr.loss)}`;
    if (overflow) text += " · overflow: some outputs are not finite";
    Plotly.update(
      this.container,
      { y: [values || this.labels.map(() => null)] },
      { "title.text": text, "annotations[0].visible": !known },
      [this.index.prediction],
    );
  }
}

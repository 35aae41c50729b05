// The hidden state's path: one layer-direction's states h_1 .. h_T projected on the first
// two principal components of the run (PCA fitted on this trace's states; while training,
// on every training probe's states pooled), drawn as a path in SVG that grows with the
// cursor.
//
// Wiring: `new TrajectoryView(container, {layerSelect?})`, then `setModel(model)` for
// every new trace and `update(cursor)` on every cursor move. Over training,
// `setProbes(models)` fits once on all probes, and `showProbe(i)` draws probe i with the
// earlier ones faded, in the same axes. A trace shown after training is fitted on its own
// states, as a shared link's fresh page fits it, and the probes' paths are redrawn in its
// axes: the teacher's picture and the link's are the same. Needs only `model.trace.hidden` [l][d][t] -> H
// numbers, `model.T`, `model.L`, `model.D`, `model.forwardDone(l, d, t, c)`, `model.label(l, d)`.

import { fitPCA } from "../pca.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 420;
const HEIGHT = 320;
const PAD = 36;
const EARLY = [68, 1, 84]; // viridis ends: the colour walks from the first position to the last
const LATE = [253, 231, 37];

function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function mix(f) {
  const c = EARLY.map((a, i) => Math.round(a + (LATE[i] - a) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

export class TrajectoryView {
  /**
   * @param {HTMLElement} container
   * @param {{layerSelect?: HTMLSelectElement}} [options] a select of layer-directions it fills
   */
  constructor(container, { layerSelect = null } = {}) {
    this.container = container;
    this.layerSelect = layerSelect;
    this.model = null;
    this.layer = 0;
    this.direction = 0;
    this.pca = null; // {components, explained, project}
    this.points = []; // (T) [pc1, pc2] or null for an overflowed state
    this.probes = null; // [{model, points}] of training's snapshots
    this.fittedOnProbes = false; // the axes: every probe's states (while training) or the trace's
    this._drawnUpTo = undefined;
    this.container.classList.add("trajectory-view");
    this.svg = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "trajectory" });
    this.caption = document.createElement("p");
    this.caption.className = "hint trajectory-caption";
    this.container.replaceChildren(this.svg, this.caption);
    if (layerSelect) {
      layerSelect.addEventListener("change", () => {
        const [l, d] = layerSelect.value.split(",").map(Number);
        this.setLayer(l, d);
      });
    }
  }

  /** A new trace: fit PCA on its states (training's probes, if any, follow into its axes) and redraw. */
  setModel(model) {
    this.model = model;
    if (this.layer >= model.L || this.direction >= model.D) [this.layer, this.direction] = [0, 0];
    this._fillSelect();
    this._fitModel();
    this._project();
    this._drawnUpTo = undefined;
    this._draw(model.length - 1);
  }

  /** Show another layer-direction of the same trace. */
  setLayer(layer, direction) {
    [this.layer, this.direction] = [layer, direction];
    if (!this.model) return;
    if (this.fittedOnProbes) this._fit(this.probes.map((p) => p.model));
    else this._fitModel();
    if (this.probes) for (const p of this.probes) p.points = this._pointsOf(p.model);
    this._project();
    this._drawnUpTo = undefined;
    this._draw(this.model.length - 1);
  }

  /** Fit once on every probe's states (training), so the paths share one pair of axes. */
  setProbes(models) {
    if (!models || !models.length) {
      this.probes = null;
      this.fittedOnProbes = false;
      return;
    }
    this._fit(models);
    this.fittedOnProbes = true;
    this.probes = models.map((model) => ({ model, points: this._pointsOf(model) }));
  }

  /** Draw probe i (and the earlier ones faded) as the current trace. */
  showProbe(i) {
    if (!this.probes) return;
    const probe = this.probes[Math.max(0, Math.min(i, this.probes.length - 1))];
    this.model = probe.model;
    this.points = probe.points;
    this._probeIndex = this.probes.indexOf(probe);
    this._drawnUpTo = undefined;
    this._draw(probe.model.length - 1);
  }

  /** Grow the path to the positions the forward pass has computed at this cursor. */
  update(cursor) {
    if (!this.model) return;
    const known = this._known(cursor);
    if (known === this._drawnUpTo) return;
    this._draw(cursor);
  }

  // ------------------------------------------------------------------ internals

  _rows(model) {
    return model.trace.hidden[this.layer][this.direction];
  }

  _fit(models) {
    const rows = models.flatMap((m) => Array.from(this._rows(m)));
    try {
      this.pca = fitPCA(rows, 2);
    } catch {
      this.pca = null; // every state overflowed: nothing to fit, nothing to draw
    }
  }

  /** Fit on the shown trace alone; the probes' paths, if any, are projected into its axes. */
  _fitModel() {
    this._fit([this.model]);
    this.fittedOnProbes = false;
    if (this.probes) for (const p of this.probes) p.points = this._pointsOf(p.model);
  }

  _pointsOf(model) {
    return Array.from(this._rows(model), (row) => (this.pca ? this.pca.project(row) : null));
  }

  _project() {
    this.points = this._pointsOf(this.model);
  }

  /** Positions computed at the cursor, in input order. */
  _known(cursor) {
    const m = this.model;
    const known = [];
    for (let t = 0; t < m.T; t++) if (m.forwardDone(this.layer, this.direction, t, cursor)) known.push(t);
    return known.length === m.T ? m.T : known.join(",");
  }

  _fillSelect() {
    const s = this.layerSelect;
    if (!s) return;
    const value = `${this.layer},${this.direction}`;
    s.replaceChildren();
    for (let l = 0; l < this.model.L; l++) {
      for (let d = 0; d < this.model.D; d++) {
        const option = document.createElement("option");
        option.value = `${l},${d}`;
        option.textContent = this.model.label(l, d);
        s.appendChild(option);
      }
    }
    s.value = value;
  }

  _scales() {
    // the probes' paths and the trace shown (after training, often another input): all in frame
    const all = [...(this.probes ? this.probes.flatMap((p) => p.points) : []), ...this.points].filter(Boolean);
    const xs = all.map((p) => p[0]);
    const ys = all.map((p) => p[1]);
    const span = (v) => {
      const lo = Math.min(...v);
      const hi = Math.max(...v);
      return hi > lo ? [lo, hi] : [lo - 1, hi + 1];
    };
    const [x0, x1] = span(xs.length ? xs : [0]);
    const [y0, y1] = span(ys.length ? ys : [0]);
    return {
      x: (v) => PAD + ((v - x0) / (x1 - x0)) * (WIDTH - 2 * PAD),
      y: (v) => HEIGHT - PAD - ((v - y0) / (y1 - y0)) * (HEIGHT - 2 * PAD),
    };
  }

  _draw(cursor) {
    const m = this.model;
    const known = this._known(cursor);
    this._drawnUpTo = known;
    if (!this.pca) {
      this.svg.replaceChildren();
      this.caption.textContent = "Every hidden state overflowed: there is no path to draw.";
      return;
    }
    const { x, y } = this._scales();
    this.svg.replaceChildren();
    svg("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, class: "axis" }, this.svg);
    svg("line", { x1: PAD, y1: PAD, x2: PAD, y2: HEIGHT - PAD, class: "axis" }, this.svg);
    const [e1, e2] = this.pca.explained.map((f) => `${(100 * f).toFixed(0)}%`);
    svg("text", { x: WIDTH / 2, y: HEIGHT - 8, "text-anchor": "middle", class: "axis-label" }, this.svg).textContent =
      `PC1 (${e1} of the variance)`;
    const ylab = svg("text", { x: 12, y: HEIGHT / 2, "text-anchor": "middle", class: "axis-label",
      transform: `rotate(-90 12 ${HEIGHT / 2})` }, this.svg);
    ylab.textContent = `PC2 (${e2})`;
    if (this.probes && this._probeIndex > 0) {
      for (const probe of this.probes.slice(0, this._probeIndex)) {
        svg("polyline", { points: this._polyline(probe.points, x, y), class: "earlier-probe",
          fill: "none", stroke: "#adb5bd", "stroke-width": 1, opacity: 0.5 }, this.svg);
      }
    }
    const shown = [];
    for (let t = 0; t < m.T; t++) if (m.forwardDone(this.layer, this.direction, t, cursor)) shown.push(t);
    const path = shown.map((t) => this.points[t]);
    svg("polyline", { points: this._polyline(path, x, y), fill: "none", stroke: "#495057",
      "stroke-width": 1.5, class: "path" }, this.svg);
    const last = shown[shown.length - 1];
    for (const t of shown) {
      const p = this.points[t];
      if (!p) continue;
      const dot = svg("circle", { cx: x(p[0]), cy: y(p[1]), r: t === last ? 6 : 3.5,
        fill: mix(m.T > 1 ? t / (m.T - 1) : 0), stroke: t === last ? "#212529" : "none",
        "data-position": t, "data-pc1": p[0], "data-pc2": p[1], class: "state" }, this.svg);
      svg("title", {}, dot).textContent = `t=${t}: (${p[0].toPrecision(3)}, ${p[1].toPrecision(3)})`;
    }
    const overflowed = this.points.filter((p) => p == null).length;
    const where = m.label(this.layer, this.direction);
    this.caption.textContent =
      `${where}: the hidden state at each position, projected on the two directions in which ` +
      `the states of ${this.fittedOnProbes ? "every training probe" : "this run"} vary most ` +
      `(${e1} and ${e2} of the variance). Dark is early, yellow is late.` +
      (this.probes && this._probeIndex > 0 ? " Grey: the training probe's path at earlier snapshots." : "") +
      (overflowed ? ` ${overflowed} overflowed state(s) cannot be drawn.` : "");
  }

  _polyline(points, x, y) {
    return points.filter(Boolean).map((p) => `${x(p[0]).toFixed(2)},${y(p[1]).toFixed(2)}`).join(" ");
  }
}

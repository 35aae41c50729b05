// The network unrolled in time, drawn on a canvas: one column per position, rows for the
// inputs x_t, each layer-direction's hidden state h_t and the outputs y_t, with the arrows
// between them; the forward pass lights up node by node, then BPTT's gradient (log scale).
// Only the window of positions around the step is drawn, in full every step (a few
// milliseconds), and an overview strip below shows the whole length at a glance (level of
// detail: one pixel column holds many positions) with the window marked; a click on it
// seeks. Owns that drawing, its hover text and the small form that edits one input value.

import { TraceModel, notFinite } from "../trace_model.js";
import { InputEditor } from "./input_editor.js";
import { DIVERGING, SEQUENTIAL } from "./states.js";

const WINDOW = 60; // most positions drawn at once
const COLUMN_PX = 14; // narrower screens show fewer positions, at least this wide each
// on a phone (or any touch screen) a position's column is a finger's width, and a tap
// anywhere in a node's cell picks it: 40 px tap targets, a few positions at a time
const TOUCH_COLUMN_PX = 40;
const TOUCH_OVERVIEW_PX = 40; // the overview strip is a tap target too (it seeks)
const PALETTE_SIZE = 64; // colours are picked from this many steps of each scale
const ZERO = -2; // a node's state when its gradient is exactly 0 (cut by truncated BPTT)
/** The recurrent arrows' colour (W_hh), also Compare's chains' links. */
export const RECURRENT = "#e07b00";
const COLOR = { pending: "#d5dae3", pendingNode: "#eef0f4", overflow: "#b3261e", recurrent: RECURRENT, zero: "#ffffff", zeroArrow: "#c3c9d2",
  feed: "#8a94a6", ink: "#1b2230", changed: "#d6336c", grid: "#5b6577", label: "#1b2230", muted: "#5b6577" };
const WIDE = { l: 118, r: 14, t: 6, b: 26, row: 46 };
const NARROW = { l: 78, r: 8, t: 6, b: 26, row: 40 };
const OVERVIEW_ROW_PX = 4;

const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** Colour at u in [0, 1] on a list of [stop, "#rrggbb"] pairs. */
function colorAt(stops, u) {
  const v = Number.isNaN(u) ? 0.5 : Math.max(0, Math.min(1, u));
  let k = 1;
  while (k < stops.length - 1 && stops[k][0] < v) k++;
  const [[s0, c0], [s1, c1]] = [stops[k - 1], stops[k]];
  const [a, b, w] = [rgb(c0), rgb(c1), s1 > s0 ? (v - s0) / (s1 - s0) : 0];
  return a.map((x, i) => Math.round(x + (b[i] - x) * w));
}

/** PALETTE_SIZE colours of a scale, as CSS strings and as [r, g, b]. */
function palette(stops) {
  const rgbs = Array.from({ length: PALETTE_SIZE }, (_, i) => colorAt(stops, i / (PALETTE_SIZE - 1)));
  return { css: rgbs.map((c) => `rgb(${c.join(",")})`), rgb: rgbs };
}
const DIVERGING_PALETTE = palette(DIVERGING);
const SEQUENTIAL_PALETTE = palette(SEQUENTIAL);
const paletteIndex = (u) => (Number.isNaN(u) ? -1 : Math.max(0, Math.min(PALETTE_SIZE - 1, Math.round(u * (PALETTE_SIZE - 1)))));

const fmt = (v) => (notFinite(v) ? "overflow (not finite)" : Number(v).toPrecision(4));
const fmtVec = (v) => {
  if (v == null || typeof v === "number") return fmt(v);
  const list = Array.from(v);
  return `[${list.slice(0, 6).map(fmt).join(", ")}${list.length > 6 ? ", …" : ""}]`;
};
const meanOf = TraceModel.mean;
/** Euclidean norm that does not overflow for entries above 1e154; null if any entry is not finite. */
const norm = TraceModel.norm;
const log10 = (n) => (n == null ? null : n > 0 ? Math.log10(n) : -Infinity);
// capped so a colour range's width stays a finite number
const maxAbs = (values) => Math.min(1e300, values.reduce((m, v) => (v != null && Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 1e-12));

/**
 * Per-model numbers the drawing needs: node colours (palette indices), norms and ranges.
 * `previous` (the stats of the same forward pass, before its gradients came) lends its
 * forward half: the gradient frame of a large trace then costs only its own numbers.
 */
function summarize(model, fixedRange = null, previous = null) {
  const { trace, L, D, T } = model;
  const same = previous?.forward.hidden === trace.hidden && previous.forward.outputs === trace.outputs;
  const forward = same ? previous.forward : summarizeForward(model);
  const { hMean, hScale, fwd, outputsRows: outputs } = forward;
  const grad = model.gradHiddenNorms();
  const xGrad = trace.grad_inputs ? trace.grad_inputs.map(norm) : null;
  let [gmin, gmax] = [Infinity, -Infinity];
  for (const g of [...(grad ? grad.flat(2) : []), ...(xGrad || [])]) {
    const e = log10(g);
    if (e != null && Number.isFinite(e)) [gmin, gmax] = [Math.min(gmin, e), Math.max(gmax, e)];
  }
  if (!Number.isFinite(gmax)) [gmin, gmax] = [-1, 0];
  gmin = Math.max(gmin, gmax - 12);
  if (gmin >= gmax) gmin = gmax - 1;
  if (fixedRange) [gmin, gmax] = fixedRange;
  const sequential = (g) => {
    const e = log10(g);
    if (g === 0) return ZERO; // none at all is not "a little": its own colour, not the scale's end
    return e == null ? -1 : paletteIndex((Math.max(e, gmin) - gmin) / (gmax - gmin));
  };
  // per row (0 = inputs, then each layer-direction, then outputs) and position: palette index, -1 overflow
  const bwd = [xGrad ? xGrad.map(sequential) : new Array(T).fill(-1)];
  for (let l = 0; l < L; l++) {
    for (let d = 0; d < D; d++) bwd.push(grad ? grad[l][d].map(sequential) : new Array(T).fill(-1));
  }
  bwd.push(fwd[fwd.length - 1]);
  return { forward, hMean, grad, xGrad, outputs, gmin, gmax, hScale, fwd, bwd };
}

/** The forward half of `summarize`: state means and their colours, which gradients leave alone. */
function summarizeForward(model) {
  const { trace, config, L, D, T } = model;
  const hMean = trace.hidden.map((layer) => layer.map((dir) => dir.map(meanOf)));
  const outputs = config.output_mode !== "sequence" ? [trace.outputs] : trace.outputs;
  const hScale = config.cell === "rnn_relu" ? maxAbs(hMean.flat(2)) : Math.min(1, maxAbs(hMean.flat(2)));
  const xMean = trace.inputs.map(meanOf);
  const yMean = outputs.map(meanOf);
  const [xScale, yScale] = [maxAbs(xMean), maxAbs(yMean)];
  const diverging = (v, scale) => (v == null ? -1 : paletteIndex(0.5 + v / scale / 2));
  const fwd = [xMean.map((v) => diverging(v, xScale))];
  for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) fwd.push(hMean[l][d].map((v) => diverging(v, hScale)));
  const yRow = new Array(T).fill(-1);
  if (config.output_mode !== "sequence") yRow[T - 1] = diverging(yMean[0], yScale);
  else yMean.forEach((v, t) => (yRow[t] = diverging(v, yScale)));
  fwd.push(yRow);
  return { hidden: trace.hidden, outputs: trace.outputs, hMean, hScale, fwd, outputsRows: outputs };
}

export class UnrolledView {
  /**
   * @param {HTMLElement} container
   * @param {{onEditInput: (position, feature, value) => void, onSeek?: (cursor: number) => void}} options
   */
  constructor(container, { onEditInput, onSeek = () => {}, onNode = null }) {
    this.onNode = onNode; // (layer, direction, position) on a hidden-state node's click
    this.container = container;
    this.onSeek = onSeek;
    container.classList.add("unrolled");
    container.innerHTML = `<div class="unrolled-title"></div>
      <div class="unrolled-stage">
        <canvas class="unrolled-main" role="img" aria-label="The network unrolled in time"></canvas>
        <div class="unrolled-tip" role="tooltip" hidden></div>
      </div>
      <div class="unrolled-overview-row">
        <canvas class="unrolled-overview" aria-label="The whole sequence: click to jump there"></canvas>
      </div>
      <div class="unrolled-legend"></div>`;
    this.titleEl = container.querySelector(".unrolled-title");
    this.canvas = container.querySelector(".unrolled-main");
    this.tip = container.querySelector(".unrolled-tip");
    this.overview = container.querySelector(".unrolled-overview");
    this.legendEl = container.querySelector(".unrolled-legend");
    this.editor = new InputEditor(container, onEditInput);
    [this.model, this.stats, this.geo] = [null, null, null];
    this.changed = new Set(); // node ids whose values moved with the last input edit
    this.cursor = 0;
    this.start = 0; // first position drawn
    this.overviewImage = null; // {mode, canvas}: the whole length, drawn once per model and mode
    this.legendKey = "";
    this.canvas.addEventListener("mousemove", (e) => this._hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.canvas.addEventListener("click", (e) => this._click(e));
    const seek = (e) => this._seekFromOverview(e);
    this.overview.addEventListener("pointerdown", (e) => {
      this.overview.setPointerCapture(e.pointerId);
      seek(e);
    });
    this.overview.addEventListener("pointermove", (e) => e.buttons && seek(e));
    // only a new width needs a new drawing: the height changes with our own canvas, and
    // redrawing for it repeated the first picture's drawing in the next frame
    new ResizeObserver(() => {
      if (this.geo && Math.max(200, this.container.clientWidth) === this.geo.width) return;
      this.draw();
    }).observe(container);
  }

  setModel(model) {
    this.changed = this.model ? changedNodes(this.model, model) : new Set();
    this.model = model;
    this.stats = summarize(model, this.fixedRange, this.stats);
    this.editor.setModel(model);
    this.cursor = Math.min(this.cursor, model.length - 1);
    this.overviewImage = null;
    this.legendKey = "";
    this.draw();
  }

  update(cursor) {
    if (!this.model) return;
    this.cursor = cursor;
    this.draw();
  }

  /** Gradient colours over a fixed [lo, hi] range of log10 norms (null: each run's own range). */
  setFixedScale(range) {
    this.fixedRange = range;
    if (this.model) this.setModel(this.model);
  }

  /** "gradient" once BPTT has started, else "forward". */
  _mode(cursor) {
    return this.model.hasGradients && this.model.phase(cursor) !== "forward" ? "gradient" : "forward";
  }

  /** Sizes in CSS pixels for the container's width; resizes the canvases when they change. */
  _geometry() {
    const model = this.model;
    const width = Math.max(200, this.container.clientWidth);
    const m = width < 640 ? NARROW : WIDE;
    const touch = m === NARROW || (typeof matchMedia === "function" && matchMedia("(pointer: coarse)").matches);
    const rows = model.L * model.D + 2;
    const plotWidth = width - m.l - m.r;
    const fit = Math.floor(plotWidth / (touch ? TOUCH_COLUMN_PX : COLUMN_PX));
    const size = Math.max(touch ? 3 : 8, Math.min(WINDOW, model.T, fit));
    const column = plotWidth / size;
    const height = m.t + rows * m.row + m.b;
    const overviewHeight = Math.max(touch ? TOUCH_OVERVIEW_PX - 4 : 12, model.L * model.D * OVERVIEW_ROW_PX) + 4;
    const radius = Math.max(2.5, Math.min(10, column * 0.3, m.row * 0.2));
    const geo = { width, height, m, rows, plotWidth, size: Math.min(size, model.T), column, radius, overviewHeight, touch };
    const dpr = window.devicePixelRatio || 1;
    for (const [canvas, h] of [[this.canvas, height], [this.overview, overviewHeight]]) {
      if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(h * dpr)) {
        canvas.width = Math.round(width * dpr);
        canvas.height = Math.round(h * dpr);
        canvas.style.width = `${width}px`;
        canvas.style.height = `${h}px`;
      }
    }
    geo.dpr = dpr;
    return geo;
  }

  /** Row r (0 = inputs, then each layer-direction, last = outputs): its y in CSS pixels. */
  _y(r) {
    const { m, rows } = this.geo;
    return m.t + (rows - 1 - r) * m.row + m.row / 2;
  }

  _x(t) {
    const { m, column } = this.geo;
    return m.l + (t - this.start + 0.5) * column;
  }

  /** First position drawn: the window follows the forward direction's position. */
  _windowStart(cursor) {
    const { T } = this.model;
    const size = this.geo.size;
    const e = this.model.event(cursor);
    if (e.kind === "summary") return Math.max(0, Math.min(this.start, T - size));
    return Math.max(0, Math.min(e.positions[0] - Math.floor(size / 2), T - size));
  }

  /** Draw everything for the cursor: a few thousand canvas calls, milliseconds. */
  draw() {
    if (!this.model || !this.container.clientWidth) return;
    this.geo = this._geometry();
    const { model, stats, geo } = this;
    const c = this.cursor;
    const mode = this._mode(c);
    const grad = mode === "gradient";
    this.start = this._windowStart(c);
    const end = Math.min(model.T, this.start + geo.size);
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(geo.dpr, 0, 0, geo.dpr, 0, 0);
    ctx.clearRect(0, 0, geo.width, geo.height);
    const { L, D, T } = model;
    const top = geo.rows - 1;
    const last = model.config.output_mode !== "sequence";
    const rowOf = (l, d) => 1 + l * D + d;
    const xReached = (t) => [...Array(D).keys()].every((d) => model.backwardDone(0, d, t, c));
    // what a node at (row, t) shows: a palette index, -1 overflow, null pending, undefined absent
    const nodeState = (r, t) => {
      if (r === top) {
        if (last && t !== T - 1) return undefined;
        if (grad) return "output";
        return model.outputDone(t, c) ? stats.fwd[r][t] : null;
      }
      if (r === 0) return grad ? (xReached(t) ? stats.bwd[0][t] : null) : stats.fwd[0][t];
      const [l, d] = [Math.floor((r - 1) / D), (r - 1) % D];
      if (grad) return model.backwardDone(l, d, t, c) ? stats.bwd[r][t] : null;
      return model.forwardDone(l, d, t, c) ? stats.fwd[r][t] : null;
    };
    const colors = grad ? SEQUENTIAL_PALETTE.css : DIVERGING_PALETTE.css;

    // arrows, grouped by colour: one path each
    const paths = new Map();
    const radius = geo.radius;
    const heads = geo.column >= 30;
    const arrow = (r0, t0, r1, t1, color) => {
      const [x0, y0, x1, y1] = [this._x(t0), this._y(r0), this._x(t1), this._y(r1)];
      const len = Math.hypot(x1 - x0, y1 - y0);
      if (len <= 2 * radius + 2) return;
      const [ux, uy] = [(x1 - x0) / len, (y1 - y0) / len];
      const gap = radius + 2;
      let path = paths.get(color);
      if (!path) paths.set(color, (path = { lines: [], heads: [] }));
      path.lines.push([x0 + ux * gap, y0 + uy * gap, x1 - ux * gap, y1 - uy * gap]);
      if (heads) path.heads.push([x1 - ux * gap, y1 - uy * gap, ux, uy]);
    };
    const into = (r, t) => {
      const state = nodeState(r, t);
      if (grad) return state == null ? COLOR.pending : state === -1 ? COLOR.overflow : state === ZERO ? COLOR.zeroArrow : state === "output" ? COLOR.feed : colors[state];
      return state == null ? COLOR.pending : null;
    };
    for (let t = this.start; t < end; t++) {
      for (let l = 0; l < L; l++) {
        for (let d = 0; d < D; d++) {
          const r = rowOf(l, d);
          const color = into(r, t);
          const prev = d === 0 ? t - 1 : t + 1;
          if (prev >= this.start && prev < end) arrow(r, prev, r, t, color ?? COLOR.recurrent);
          if (l === 0) arrow(0, t, r, t, color ?? COLOR.feed);
          else for (let e = 0; e < D; e++) arrow(rowOf(l - 1, e), t, r, t, color ?? COLOR.feed);
        }
      }
      if (nodeState(top, t) !== undefined) {
        const color = grad ? COLOR.feed : into(top, t) ?? COLOR.feed;
        for (let e = 0; e < D; e++) arrow(rowOf(L - 1, e), t, top, t, color);
      }
    }
    ctx.lineCap = "round";
    for (const [color, path] of paths) {
      ctx.strokeStyle = color;
      ctx.lineWidth = color === COLOR.pending ? 1.2 : color === COLOR.feed ? 1.5 : 2.2;
      ctx.beginPath();
      for (const [x0, y0, x1, y1] of path.lines) {
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
      }
      ctx.stroke();
      if (path.heads.length) {
        ctx.fillStyle = color;
        ctx.beginPath();
        for (const [x, y, ux, uy] of path.heads) {
          ctx.moveTo(x, y);
          ctx.lineTo(x - ux * 6 - uy * 3.5, y - uy * 6 + ux * 3.5);
          ctx.lineTo(x - ux * 6 + uy * 3.5, y - uy * 6 - ux * 3.5);
          ctx.closePath();
        }
        ctx.fill();
      }
    }

    // nodes
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLOR.grid;
    for (let r = 0; r < geo.rows; r++) {
      for (let t = this.start; t < end; t++) {
        const state = nodeState(r, t);
        if (state === undefined) continue;
        const [x, y] = [this._x(t), this._y(r)];
        if (state === -1) {
          ctx.strokeStyle = COLOR.overflow;
          ctx.lineWidth = 2;
          ctx.beginPath();
          ctx.moveTo(x - radius, y - radius);
          ctx.lineTo(x + radius, y + radius);
          ctx.moveTo(x + radius, y - radius);
          ctx.lineTo(x - radius, y + radius);
          ctx.stroke();
          ctx.strokeStyle = COLOR.grid;
          ctx.lineWidth = 1;
          continue;
        }
        ctx.fillStyle = state == null ? COLOR.pendingNode : state === "output" ? "#ffffff" : state === ZERO ? COLOR.zero : colors[state];
        ctx.beginPath();
        ctx.arc(x, y, state == null ? radius * 0.65 : radius, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }

    // rings: the step at the cursor (every layer-direction at once) and nodes an edit changed
    const ring = (r, t, color, scale, width) => {
      if (t < this.start || t >= end) return;
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.arc(this._x(t), this._y(r), radius * scale, 0, 2 * Math.PI);
      ctx.stroke();
    };
    for (const id of this.changed) {
      const [r, t] = id.split(":").map(Number);
      const state = nodeState(r, t);
      if (state != null) ring(r, t, COLOR.changed, 1.5, 2);
    }
    const e = model.event(c);
    if (e.kind !== "summary") {
      for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) ring(rowOf(l, d), e.positions[d], COLOR.ink, 1.9, 2.5);
    }

    // row labels and position ticks
    ctx.fillStyle = COLOR.label;
    ctx.font = `${geo.m === NARROW ? 10 : 12}px system-ui, sans-serif`;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const labels = ["input x", ...Array.from({ length: L * D }, (_, i) => `h ${model.label(Math.floor(i / D), i % D)}`), "output y"];
    labels.forEach((text, r) => ctx.fillText(text, geo.m.l - 10, this._y(r)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = COLOR.muted;
    const dtick = [1, 2, 5, 10, 20].find((step) => step * geo.column >= 28) || 50;
    for (let t = this.start; t < end; t++) if (t % dtick === 0) ctx.fillText(String(t), this._x(t), geo.height - geo.m.b + 6);

    this._drawOverview(mode, end);
    this._describe(mode, end);
    if (!performance.getEntriesByName("first-picture").length) performance.mark("first-picture");
  }

  /** The whole length: a strip per layer-direction, dimmed where the cursor has not been, the window outlined. */
  _drawOverview(mode, end) {
    const { model, geo } = this;
    const { L, D, T } = model;
    const width = Math.max(1, Math.floor(geo.plotWidth));
    if (!this.overviewImage || this.overviewImage.mode !== mode || this.overviewImage.width !== width) {
      this.overviewImage = { mode, width, canvas: this._overviewImage(mode, width) };
    }
    const ctx = this.overview.getContext("2d");
    ctx.setTransform(geo.dpr, 0, 0, geo.dpr, 0, 0);
    ctx.clearRect(0, 0, geo.width, geo.overviewHeight);
    const rowPx = (geo.overviewHeight - 4) / (L * D);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.overviewImage.canvas, geo.m.l, 2, width, geo.overviewHeight - 4);
    ctx.fillStyle = COLOR.muted;
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(geo.m === NARROW ? `all ${T}` : `all ${T} positions`, geo.m.l - 8, geo.overviewHeight / 2);
    // dim what the cursor has not shown yet, per row
    const c = this.cursor;
    const pass = mode === "gradient" ? "backward" : "forward";
    const px = (t) => geo.m.l + (t / T) * width;
    ctx.fillStyle = "rgba(246, 247, 249, 0.82)";
    for (let l = 0; l < L; l++) {
      for (let d = 0; d < D; d++) {
        const first = model.stepOf(pass, d, 0) <= model.stepOf(pass, d, T - 1) ? 0 : T - 1;
        const start = model.stepOf(pass, d, first);
        const shown = Math.max(0, Math.min(T, c - start + 1));
        const [lo, hi] = first === 0 ? [shown, T] : [0, T - shown];
        if (hi > lo) ctx.fillRect(px(lo), 2 + (l * D + d) * rowPx, px(hi) - px(lo), rowPx);
      }
    }
    ctx.strokeStyle = COLOR.ink;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(px(this.start), 1, Math.max(2, px(end) - px(this.start)), geo.overviewHeight - 2);
  }

  /** An offscreen canvas, one pixel column per bucket of positions, one pixel row per layer-direction. */
  _overviewImage(mode, width) {
    const { model, stats } = this;
    const { L, D, T } = model;
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [width, L * D];
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(width, L * D);
    const pal = mode === "gradient" ? SEQUENTIAL_PALETTE.rgb : DIVERGING_PALETTE.rgb;
    const source = mode === "gradient" ? stats.bwd : stats.fwd;
    for (let r = 0; r < L * D; r++) {
      const row = source[r + 1];
      for (let px = 0; px < width; px++) {
        const t0 = Math.floor((px * T) / width);
        const t1 = Math.max(t0 + 1, Math.floor(((px + 1) * T) / width));
        // a bucket shows its strongest value: a gradient that survives anywhere in it shows
        let best = null; // palette index; states: the farthest from the middle
        let [overflow, zero] = [false, false];
        for (let t = t0; t < t1; t++) {
          const v = row[t];
          if (v === -1) overflow = true;
          else if (v === ZERO) zero = true;
          else if (best === null || (mode === "gradient" ? v > best : Math.abs(v - PALETTE_SIZE / 2) > Math.abs(best - PALETTE_SIZE / 2))) best = v;
        }
        const color = overflow ? rgb(COLOR.overflow) : best !== null ? pal[best] : zero ? rgb(COLOR.zero) : pal[0];
        const at = (r * width + px) * 4;
        image.data.set([...color, 255], at);
      }
    }
    ctx.putImageData(image, 0, 0);
    return canvas;
  }

  _seekFromOverview(event) {
    if (!this.model || !this.geo) return;
    const box = this.overview.getBoundingClientRect();
    const u = (event.clientX - box.left - this.geo.m.l) / this.geo.plotWidth;
    const t = Math.max(0, Math.min(this.model.T - 1, Math.floor(u * this.model.T)));
    const pass = this._mode(this.cursor) === "gradient" ? "backward" : "forward";
    this.onSeek(this.model.stepOf(pass, 0, t));
  }

  /** The title above and the legend below: HTML, rewritten only when their words change. */
  _describe(mode, end) {
    const { model, stats, geo } = this;
    const done = model.phase(this.cursor) === "done";
    const narrow = geo.m === NARROW;
    let title = mode === "gradient"
      ? `${done ? "Done" : narrow ? "BPTT" : "Backpropagation through time"}: colour = log10 of the gradient${narrow ? "" : " reaching each state"}`
      : `${done ? "Forward pass done (no targets, so no gradients)" : "Forward pass"}: colour = mean of ${narrow ? "h" : "each hidden state"}`;
    if (end - this.start < model.T) title += ` · positions ${this.start}–${end - 1} of ${model.T}`;
    if (this.titleEl.textContent !== title) this.titleEl.textContent = title;
    const zeros = mode === "gradient" && stats.bwd.some((row) => row.includes(ZERO));
    const key = `${mode}|${this.changed.size > 0}|${model.D}|${zeros}`;
    if (key === this.legendKey) return;
    this.legendKey = key;
    const [stops, lo, hi, what] = mode === "gradient"
      ? [SEQUENTIAL, stats.gmin, stats.gmax, "log10 ‖dL/dh‖"]
      : [DIVERGING, -stats.hScale, stats.hScale, "mean of h"];
    const gradient = stops.map(([s, c]) => `${c} ${s * 100}%`).join(", ");
    // the text in a span of its own: a legend item is a flex box, and a bare <sub> in it
    // became an item of its own ("W  hh  :")
    const item = (cls, text) => `<span class="legend-item"><i class="${cls}"></i><span>${text}</span></span>`;
    this.legendEl.innerHTML = `<span class="legend-item colorbar"><span>${what}</span> ${lo.toPrecision(2)}
        <i style="background: linear-gradient(to right, ${gradient})"></i> ${hi.toPrecision(2)}</span>
      ${mode === "forward" ? item("swatch recurrent", model.D === 2
        ? "W<sub>hh</sub> forward (→ rows) and W<sub>hh</sub> reverse (← rows): each direction's own recurrent matrix per layer, the same at every step"
        : "W<sub>hh</sub>: one recurrent matrix per layer, the same at every step") : ""}
      ${item("swatch pending", mode === "gradient" ? "gradient not arrived yet" : "not computed yet")}
      ${zeros ? item("swatch zero", "exactly 0 (cut by truncated BPTT)") : ""}
      ${item("ring", "this step, every layer at once")}
      ${this.changed.size ? item("ring changed", "changed by your input edit") : ""}`;
  }

  /** The node under the pointer: {r, t} or null. */
  _nodeAt(event) {
    if (!this.geo) return null;
    const box = this.canvas.getBoundingClientRect();
    const [x, y] = [event.clientX - box.left, event.clientY - box.top];
    const t = this.start + Math.floor((x - this.geo.m.l) / this.geo.column);
    const r = this.geo.rows - 1 - Math.floor((y - this.geo.m.t) / this.geo.m.row);
    if (t < this.start || t >= Math.min(this.model.T, this.start + this.geo.size) || r < 0 || r >= this.geo.rows) return null;
    // a mouse points at the node itself; a finger anywhere in its cell (column x row)
    if (!this.geo.touch && Math.hypot(x - this._x(t), y - this._y(r)) > this.geo.radius + 5) return null;
    const last = this.model.config.output_mode !== "sequence";
    if (r === this.geo.rows - 1 && last && t !== this.model.T - 1) return null;
    return { r, t, x, y };
  }

  _hover(event) {
    const node = this._nodeAt(event);
    const clickable = node && (node.r === 0 || (this.onNode && node.r < this.geo.rows - 1));
    this.canvas.style.cursor = clickable ? "pointer" : "default";
    if (!node) {
      this.tip.hidden = true;
      return;
    }
    this.tip.innerHTML = this._text(node.r, node.t);
    this.tip.hidden = false;
    const left = Math.min(node.x + 12, this.geo.width - this.tip.offsetWidth - 4);
    Object.assign(this.tip.style, { left: `${Math.max(0, left)}px`, top: `${node.y + 12}px` });
  }

  _click(event) {
    const node = this._nodeAt(event);
    // a tap has no mouseleave: its hover text would stay over the labels below
    if (this.geo?.touch || event.pointerType === "touch") this.tip.hidden = true;
    if (node && node.r === 0) this.editor.open(node.t);
    else if (node && this.onNode && node.r < this.geo.rows - 1) {
      const D = this.model.D;
      this.onNode(Math.floor((node.r - 1) / D), (node.r - 1) % D, node.t);
    }
  }

  /** Hover text of a node: its values, and in BPTT the gradient reaching it. */
  _text(r, t) {
    const { model, stats } = this;
    const { trace, D } = model;
    const c = this.cursor;
    const grad = this._mode(c) === "gradient";
    const top = this.geo.rows - 1;
    if (r === 0) {
      const g = stats.xGrad ? `<br>‖dL/dx‖ = ${fmt(stats.xGrad[t])}` : "";
      return `input x<sub>${t}</sub> = ${fmtVec(trace.inputs[t])}${grad ? g : ""}<br>click to edit`;
    }
    if (r === top) {
      const last = model.config.output_mode !== "sequence";
      if (!model.outputDone(t, c)) return `output y<sub>${t}</sub>: not computed yet`;
      const y = last ? stats.outputs[0] : stats.outputs[t];
      const target = trace.targets == null ? null : last ? trace.targets : trace.targets[t];
      return `output y<sub>${t}</sub> = ${fmtVec(y)}${target == null ? "" : `<br>target ${fmtVec(target)}`}`;
    }
    const [l, d] = [Math.floor((r - 1) / D), (r - 1) % D];
    const head = `h<sub>${t}</sub>, ${model.label(l, d)}`;
    if (!model.forwardDone(l, d, t, c)) return `${head}: not computed yet`;
    const mean = stats.hMean[l][d][t];
    let text = `${head}<br>${mean == null ? "overflow (not finite)" : `mean ${fmt(mean)} · norm ${fmt(norm(trace.hidden[l][d][t]))}`}`;
    text += `<br>h = ${fmtVec(trace.hidden[l][d][t])}`; // per unit (the first six)
    if (this.onNode) text += "<br>click to look inside this step";
    if (grad) {
      const g = stats.grad[l][d][t];
      text += model.backwardDone(l, d, t, c)
        ? `<br>‖dL/dh‖ = ${fmt(g)}${g > 0 ? ` (log10 ${Math.log10(g).toFixed(2)})` : ""}`
        : "<br>gradient not arrived yet";
    }
    return text;
  }
}

/** Ids ("row:position") of nodes whose values differ after an input edit (same network, one input changed). */
function changedNodes(before, after) {
  const out = new Set();
  if (JSON.stringify(before.config) !== JSON.stringify(after.config) || before.T !== after.T) return out;
  const same = (a, b) => {
    if (a == null || b == null) return a === b;
    if (typeof a === "number") return Object.is(a, b);
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
    return true;
  };
  const edited = [...Array(after.T).keys()].filter((t) => !same(after.trace.inputs[t], before.trace.inputs[t]));
  if (edited.length !== 1) return out;
  out.add(`0:${edited[0]}`);
  const { L, D, T } = after;
  for (let l = 0; l < L; l++) {
    for (let d = 0; d < D; d++) {
      for (let t = 0; t < T; t++) {
        if (!same(before.trace.hidden[l][d][t], after.trace.hidden[l][d][t])) out.add(`${1 + l * D + d}:${t}`);
      }
    }
  }
  const outputs = (m) => (m.config.output_mode !== "sequence" ? { [m.T - 1]: m.trace.outputs } : m.trace.outputs);
  const [a, b] = [outputs(before), outputs(after)];
  const top = 1 + L * D;
  for (const t of Object.keys(b)) if (JSON.stringify(a[t]) !== JSON.stringify(b[t])) out.add(`${top}:${t}`);
  return out;
}

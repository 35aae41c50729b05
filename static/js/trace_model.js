// The trace as the page sees it: the server's trace (JSON, or binary decoded by
// transport.js) in one shape, plus the timeline the server published with it, so every
// view asks "what is known at cursor c?" the same way.
//
// Shapes after loading: hidden, cell, gates[name], grad_hidden and grad_cell are indexed
// [layer][direction][position] -> a Float32Array (or Float64Array) row of H units (views into one buffer, no
// copies; NaN and infinities mark an overflow). The per-position diagnostics
// (grad_step_norms, jacobian_norm, jacobian_product_norm) are [layer][direction] -> plain
// arrays of T numbers with null where not finite, as in the JSON API; inputs, targets,
// outputs and loss_per_step are as the server sent them.
//
// The timeline (app/api/timeline.py) is read, never re-derived: a phase's step k shows,
// for direction d, position (reversed[d] ? T-1-k : k), every layer at once.

import { NDArray } from "./transport.js";

const STATE_FIELDS = ["hidden", "cell", "grad_hidden", "grad_cell"];
const POSITION_FIELDS = ["grad_step_norms", "jacobian_norm", "jacobian_product_norm"];

/** A nested JSON array of numbers (null for non-finite) as one Float32Array, and its shape. */
function packNested(nested) {
  const shape = [];
  for (let v = nested; Array.isArray(v); v = v[0]) shape.push(v.length);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let i = 0;
  const walk = (v) => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out[i++] = v == null ? NaN : v;
  };
  walk(nested);
  return new NDArray(out, shape);
}

/** (L, D, T, H) values as [l][d][t] -> Float32Array row views. */
function stateRows(value) {
  if (value == null) return null;
  const array = value instanceof NDArray ? value : packNested(value);
  const [L, D, T, H] = array.shape;
  const rows = [];
  for (let l = 0; l < L; l++) {
    const layer = [];
    for (let d = 0; d < D; d++) {
      const dir = new Array(T);
      for (let t = 0; t < T; t++) {
        const at = ((l * D + d) * T + t) * H;
        dir[t] = array.data.subarray(at, at + H);
      }
      layer.push(dir);
    }
    rows.push(layer);
  }
  return rows;
}

/** Any array (NDArray or nested) as nested plain arrays, null where not finite. */
function plainNested(value) {
  if (!(value instanceof NDArray)) return value;
  const { data, shape } = value;
  const build = (dim, offset) => {
    const size = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: shape[dim] }, (_, i) =>
      dim === shape.length - 1
        ? Number.isFinite(data[offset + i]) ? data[offset + i] : null
        : build(dim + 1, offset + i * size),
    );
  };
  return build(0, 0);
}

/** A trace in the page's shapes (see the top of this file). */
function normalize(raw) {
  const trace = { ...raw };
  for (const field of STATE_FIELDS) trace[field] = stateRows(raw[field]);
  trace.gates = {};
  for (const [name, value] of Object.entries(raw.gates || {})) trace.gates[name] = stateRows(value);
  for (const field of [...POSITION_FIELDS, "grad_inputs"]) trace[field] = plainNested(raw[field]);
  return trace;
}

/** True for a number that overflowed: null (JSON) or NaN and infinities (typed arrays). */
export const notFinite = (v) => v == null || !Number.isFinite(v);

export class TraceModel {
  /**
   * @param {object} trace the server's trace (TraceOut), JSON or decoded binary
   * @param {object} [timeline] the published timeline (defaults to the trace's own)
   */
  constructor(trace, timeline = trace.timeline) {
    this.trace = normalize(trace);
    this.config = trace.config;
    this.T = trace.inputs.length;
    this.L = this.config.num_layers;
    this.D = this.config.bidirectional ? 2 : 1;
    this.H = this.config.hidden_size;
    this.hasGradients = this.trace.grad_hidden != null;
    this.timeline = timeline;
    this.phases = Object.fromEntries(timeline.phases.map((p) => [p.phase, p]));
    this.forwardSteps = this.phases.forward.steps;
  }

  /** The same trace with the BPTT results of a later `gradients` frame. */
  withGradients(frame) {
    const model = Object.create(TraceModel.prototype);
    Object.assign(model, this);
    model.trace = { ...this.trace, truncate: frame.truncate, grads: frame.grads, verdict: frame.verdict ?? this.trace.verdict };
    for (const field of ["grad_hidden", "grad_cell"]) model.trace[field] = stateRows(frame[field]);
    for (const field of ["grad_step_norms", "grad_inputs"]) model.trace[field] = plainNested(frame[field]);
    model.hasGradients = model.trace.grad_hidden != null;
    model._gradNorms = undefined;
    return model;
  }

  /** The same trace with the Jacobian norms and spectrum of a later `diagnostics` frame. */
  withDiagnostics(frame) {
    const model = Object.create(TraceModel.prototype);
    Object.assign(model, this);
    model.trace = { ...this.trace, spectrum: frame.spectrum, verdict: frame.verdict ?? this.trace.verdict };
    for (const field of ["jacobian_norm", "jacobian_product_norm"]) model.trace[field] = plainNested(frame[field]);
    model._gradNorms = this._gradNorms;
    return model;
  }

  get length() {
    return this.timeline.length;
  }

  _phaseAt(c) {
    const cursor = Math.max(0, Math.min(c, this.length - 1));
    return this.timeline.phases.find((p) => cursor >= p.start && cursor < p.start + p.steps);
  }

  /** The step at a cursor: {kind, step, positions (per direction), position (direction 0's)}. */
  event(cursor) {
    const c = Math.max(0, Math.min(cursor, this.length - 1));
    const p = this._phaseAt(c);
    if (p.phase === "summary") return { kind: "summary", step: 0, positions: [], position: null };
    const k = c - p.start;
    const positions = p.reversed.map((r) => (r ? this.T - 1 - k : k));
    return { kind: p.phase, step: k, positions, position: positions[0] };
  }

  /** The timeline step showing (any layer, direction d, position t) in a phase, or -1
   * (also for BPTT's steps while its gradients have not arrived). */
  stepOf(kind, d, t) {
    const p = this.phases[kind];
    if (!p || (kind === "backward" && !this.hasGradients)) return -1;
    return p.start + (p.reversed[d] ? this.T - 1 - t : t);
  }

  /** True once the forward step of (l, d, t) has been shown at cursor c (inclusive). */
  forwardDone(l, d, t, c) {
    return this.stepOf("forward", d, t) <= c;
  }

  /** True once BPTT has reached (l, d, t) at cursor c (inclusive). */
  backwardDone(l, d, t, c) {
    const i = this.stepOf("backward", d, t);
    return i >= 0 && i <= c;
  }

  /** The step at which the head's output at t is shown: every top-layer direction has shown t. */
  outputStep(t) {
    const at = this.config.output_mode !== "sequence" ? this.T - 1 : t;
    let step = 0;
    for (let d = 0; d < this.D; d++) step = Math.max(step, this.stepOf("forward", d, at));
    return step;
  }

  outputDone(t, c) {
    return this.outputStep(t) <= c;
  }

  /** Phase at a cursor: "forward", "backward" or "done". */
  phase(c) {
    const kind = this._phaseAt(c).phase;
    return kind === "summary" ? "done" : kind;
  }

  /** Euclidean norm of a row that does not overflow for entries above 1e154; null if not finite. */
  static norm(v) {
    if (v == null) return null;
    if (ArrayBuffer.isView(v)) {
      // one indexed pass: a float32 row's squares neither overflow nor vanish in a double,
      // and the page's first gradient frame runs this over a million numbers before the
      // JIT has warmed up (the iterator version took 60-250 ms of one task)
      let s = 0;
      for (let i = 0; i < v.length; i++) s += v[i] * v[i];
      if (Number.isFinite(s) && s > 1e-280) return Math.sqrt(s);
    }
    let m = 0;
    for (const x of v) {
      if (notFinite(x)) return null;
      m = Math.max(m, Math.abs(x));
    }
    if (m === 0) return 0;
    let s = 0;
    for (const x of v) s += (x / m) ** 2;
    return m * Math.sqrt(s);
  }

  /** Mean of a row, null if any entry is not finite (an overflowed state). */
  static mean(v) {
    if (v == null) return null;
    if (typeof v === "number") return notFinite(v) ? null : v;
    if (ArrayBuffer.isView(v)) {
      let s = 0;
      for (let i = 0; i < v.length; i++) s += v[i];
      if (Number.isFinite(s)) return s / v.length; // else NaN or inf somewhere: looked for below
    }
    let s = 0;
    for (const x of v) {
      if (notFinite(x)) return null;
      s += x;
    }
    return s / v.length;
  }

  /** (L, D, T) norms of dL/dh_t, null where not finite. */
  gradHiddenNorms() {
    if (this._gradNorms === undefined) {
      this._gradNorms = this.hasGradients
        ? this.trace.grad_hidden.map((layer) => layer.map((dir) => dir.map(TraceModel.norm)))
        : null;
    }
    return this._gradNorms;
  }

  /** Label for a layer-direction: "layer 1 →" or "layer 1 ←". */
  label(l, d) {
    return `layer ${l + 1}${this.D === 2 ? (d === 0 ? " →" : " ←") : ""}`;
  }

  /** The trace as JSON would have it (typed rows as lists, non-finite as null): for export. */
  toJSON() {
    return JSON.parse(
      JSON.stringify(this.trace, (key, value) =>
        ArrayBuffer.isView(value) ? Array.from(value, (x) => (Number.isFinite(x) ? x : null)) : value,
      ),
    );
  }
}

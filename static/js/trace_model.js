// The trace as the page sees it: the server's trace plus the timeline of steps, so every
// view can ask "what is known at cursor c?" the same way.
//
// A trace is the JSON of POST /api/v1/trace (or a session's `trace` frame): arrays indexed
// [layer][direction][position][unit]. The timeline lists the forward steps in compute
// order, then the backward steps in BPTT order, then the summary: the same order as the
// server's stream and session frames.

export class TraceModel {
  /** @param {object} trace the server's trace (TraceOut) */
  constructor(trace) {
    this.trace = trace;
    this.config = trace.config;
    this.T = trace.inputs.length;
    this.L = this.config.num_layers;
    this.D = this.config.bidirectional ? 2 : 1;
    this.H = this.config.hidden_size;
    this.hasGradients = trace.grad_hidden != null;
    this.timeline = [];
    // forwardIndex[l][d][t] / backwardIndex[l][d][t]: the timeline index of that step
    this.forwardIndex = this._grid(-1);
    this.backwardIndex = this._grid(-1);
    for (let l = 0; l < this.L; l++) {
      for (let d = 0; d < this.D; d++) {
        for (let k = 0; k < this.T; k++) {
          const t = d === 1 ? this.T - 1 - k : k;
          this.forwardIndex[l][d][t] = this.timeline.length;
          this.timeline.push({ kind: "forward", layer: l, direction: d, position: t, step: k });
        }
      }
    }
    this.forwardCount = this.timeline.length;
    if (this.hasGradients) {
      for (let l = this.L - 1; l >= 0; l--) {
        for (let d = 0; d < this.D; d++) {
          for (let k = 0; k < this.T; k++) {
            const t = d === 1 ? k : this.T - 1 - k;
            this.backwardIndex[l][d][t] = this.timeline.length;
            this.timeline.push({ kind: "backward", layer: l, direction: d, position: t, step: k });
          }
        }
      }
    }
    this.timeline.push({ kind: "summary" });
  }

  _grid(fill) {
    return Array.from({ length: this.L }, () =>
      Array.from({ length: this.D }, () => new Array(this.T).fill(fill)),
    );
  }

  get length() {
    return this.timeline.length;
  }

  /** The event at a cursor: {kind, layer, direction, position, step}. */
  event(cursor) {
    return this.timeline[Math.max(0, Math.min(cursor, this.timeline.length - 1))];
  }

  /** True once the forward step (l, d, t) has run at cursor c (inclusive). */
  forwardDone(l, d, t, c) {
    return this.forwardIndex[l][d][t] <= c;
  }

  /** True once BPTT has reached (l, d, t) at cursor c (inclusive). */
  backwardDone(l, d, t, c) {
    const i = this.backwardIndex[l][d][t];
    return i >= 0 && i <= c;
  }

  /** The head's output at position t is known once the top layer's last direction has run. */
  outputDone(t, c) {
    const top = this.L - 1;
    const last = this.D - 1;
    if (this.config.output_mode === "last") {
      return this.forwardDone(top, last, this.T - 1, c);
    }
    return this.forwardDone(top, last, t, c);
  }

  /** Phase at a cursor: "forward", "backward" or "done". */
  phase(c) {
    const e = this.event(c);
    return e.kind === "summary" ? "done" : e.kind;
  }

  /** Euclidean norm of a vector (null entries count as non-finite). */
  static norm(v) {
    if (v == null) return null;
    let s = 0;
    for (const x of v) {
      if (x == null) return null;
      s += x * x;
    }
    return Math.sqrt(s);
  }

  /** (L, D, T) norms of dL/dh_t, null where not finite. */
  gradHiddenNorms() {
    if (!this._gradNorms) {
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
}

/**
 * Classify a gradient profile: the ratio of the Jacobian product norm at the first position
 * reached to the last. Returns {verdict: "vanishing"|"exploding"|"stable"|"overflow", ratio}.
 */
export function gradientVerdict(productNorms) {
  if (!productNorms || productNorms.length < 2) return { verdict: "stable", ratio: 1 };
  if (productNorms.some((v) => v == null)) return { verdict: "overflow", ratio: null };
  const positive = productNorms.filter((v) => v > 0);
  const smallest = positive.length ? Math.min(...positive) : 0;
  const largest = Math.max(...productNorms);
  if (largest > 1e3) return { verdict: "exploding", ratio: largest };
  if (smallest < 1e-3 || positive.length < productNorms.length) {
    return { verdict: "vanishing", ratio: smallest };
  }
  return { verdict: "stable", ratio: smallest };
}

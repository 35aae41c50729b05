// Training as it runs: the progress bar and status line, the loss curve (train loss per
// step, eval loss per probe) and the gradient profile over training as a heatmap (one row
// per progress frame, one column per position). The status line follows every animation
// frame; the charts take the frames gathered meanwhile at most every CHART_INTERVAL_MS,
// each chart in a task of its own (an extension redraws a whole chart: both at once made
// 70-105 ms tasks at T=100, H=64), and only while it is on or near the screen: a chart
// out of sight keeps what arrives and draws it all when it scrolls near (a lesson's
// training runs with the charts below the fold cost the page as much CPU as the server).

import { COLORS, DANGER, OVERFLOW_Y, OVERLAY_AXIS, baseLayout, drawable, formatNumber, hint, legendPlace, plotConfig } from "./gradients.js";
import { throttled } from "../dom.js";
import { nextTask } from "./registry.js";

const CHART_INTERVAL_MS = 500; // the loss curve grows at most twice a second
// the profile heatmap once a second while a run goes on: each extension re-renders the whole
// heatmap (~2.5x the loss curve's work), and its rows are what changes slowest to the eye
const HEATMAP_INTERVAL_MS = 1000;
// the status line changes at most 8 times a second (the goal is 4): each change is a frame
// of style, layout and paint, and progress frames come ~20 times a second
const STATUS_INTERVAL_MS = 125;

/** Loss points not drawn yet: training's per step, eval's per probe, non-finite ones. */
function emptyLoss() {
  return { steps: [], losses: [], evalSteps: [], evalLosses: [], overflow: [] };
}

/** [[step, loss]] of every step a progress frame covers (`losses` ends at its own step). */
export function everyLoss(frame) {
  const first = frame.step - frame.losses.length + 1;
  return frame.losses.map((loss, i) => [first + i, loss]);
}

export class TrainingView {
  /**
   * @param {{lossEl: HTMLElement, heatmapEl: HTMLElement, progressEl: HTMLProgressElement,
   *          statusEl: HTMLElement}} elements
   */
  constructor({ lossEl, heatmapEl, progressEl, statusEl }) {
    this.lossEl = lossEl;
    this.heatmapEl = heatmapEl;
    this.progressEl = progressEl;
    this.statusEl = statusEl;
    this.pending = []; // progress frames not drawn yet
    this.pendingEval = []; // probe frames whose eval loss is not drawn yet
    this.pendingRows = { rows: [], steps: [] }; // heatmap rows for the task after a flush
    this.heatmapTask = null; // that task, while it is due
    // the heatmap's next extension, at its own pace: the task above, once its interval is up
    this.heatmap = throttled(() => {
      if (this.near.heatmap) this.heatmapTask ??= nextTask().then(() => this._extendHeatmap());
    }, HEATMAP_INTERVAL_MS);
    this.charts = throttled(() => this._flush(), CHART_INTERVAL_MS); // the charts' next flush
    this.stepLine = throttled(() => this._showStep(), STATUS_INTERVAL_MS); // the status line's steps
    this.running = false;
    this.started = false; // a run has started: show() and showHistory() leave its charts alone
    this.lossBuffer = emptyLoss(); // loss points for the chart when it is near the screen
    this.curve = { steps: [], losses: [] }; // the current run's loss points, all of them
    this.earlier = []; // [{name, steps, losses}] runs kept on the chart beside the current
    this.runName = null;
    this.fixedRange = null; // log10 range of the profile's colours, the same for every run
    this.near = { loss: false, heatmap: false }; // until the observer says otherwise
    // a chart to clear before it grows again: loss {axes} (axes shown: a run has data), heatmap
    this.reset = { loss: null, heatmap: false };
    const observer = new IntersectionObserver((changes) => this._visibility(changes), { rootMargin: "200px" });
    observer.observe(lossEl);
    observer.observe(heatmapEl);
  }

  _visibility(changes) {
    for (const change of changes) {
      const key = change.target === this.lossEl ? "loss" : "heatmap";
      this.near[key] = change.isIntersecting;
      if (change.isIntersecting && window.Plotly) this._drawNear();
    }
  }

  /** The empty charts, once Plotly is there (drawn when near the screen). */
  show() {
    // a run that started first (Train pressed while Plotly.js loaded) keeps its charts
    if (!this.started) this.reset = { loss: { axes: false }, heatmap: true };
    this._drawNear();
  }

  /** A finished run's loss curve as a shared link keeps it (a few points): drawn, not replayed. */
  showHistory(points) {
    if (this.started) return; // a run of this page's own came first: its curve stays
    this.reset.loss = { axes: true };
    this.lossBuffer = emptyLoss();
    this.lossBuffer.steps = points.map((p) => p.step);
    this.lossBuffer.losses = points.map((p) => drawable(p.loss));
    this._drawNear();
  }

  /** Draw what waits for the charts on or near the screen; the others wait until they are. */
  _drawNear() {
    if (this.near.loss) this._drawLossBuffer();
    if (!this.near.heatmap || this.heatmapTask) return;
    // a finished or stopped run's last rows at once; a running one's at the heatmap's pace
    if (this.running) this.heatmap.soon();
    else this.heatmap.now();
  }

  /**
   * A run starts. `keep` (a name) keeps the run before it on the chart, dotted grey under
   * that name, as a lesson's experiment compares its runs; without it the chart is cleared.
   * `name` names this run's curve.
   */
  start(frame, { keep = null, name = null } = {}) {
    this.earlier = keep && this.curve.steps.length ? [...this.earlier, { name: keep, ...this.curve }] : [];
    this.curve = { steps: [], losses: [] }; // every loss point of this run, for `keep`
    this.runName = name;
    this.steps = frame.steps;
    this.step = 0;
    this.loss = null;
    this.evalLoss = null;
    [this.pending, this.pendingEval] = [[], []];
    this.pendingRows = { rows: [], steps: [] };
    this.lossBuffer = emptyLoss();
    this.heatmapRows = 0;
    this.running = true;
    this.started = true;
    const bidirectional = frame.config && frame.config.bidirectional;
    this.profileLabel = `layer 1${bidirectional ? ", forward direction" : ""}`;
    this.progressEl.max = 1;
    this.progressEl.value = 0;
    this._status(`Starting: ${frame.steps} steps of ${frame.batch_size} sequences`);
    this.reset = { loss: { axes: true }, heatmap: true };
    this._drawNear();
  }

  progress(frame) {
    if (!this.running) return;
    this.pending.push(frame);
    [this.step, this.loss] = [frame.step, frame.loss];
    this.stepLine.soon();
    this.charts.soon();
  }

  probe(frame) {
    if (!this.running) return;
    this.evalLoss = frame.eval_loss;
    this.pendingEval.push(frame); // drawn with the next chart flush
    this.charts.soon();
  }

  done(frame) {
    this.running = false; // first: the flush then draws the heatmap's last rows at once
    this.charts.now();
    const took = frame.wall_time_s != null ? `${frame.wall_time_s.toFixed(1)} s` : "";
    const evalText =
      frame.eval_loss != null
        ? `eval loss ${formatNumber(frame.eval_loss, 2)} on 1,000 fresh sequences`
        : "eval loss not finite: the training diverged";
    const head = frame.stopped
      ? `Stopped at step ${frame.steps} of ${this.steps}${took ? ` after ${took}` : ""}`
      : `Done in ${took}`;
    if (!frame.stopped) this.progressEl.value = 1;
    const parts = [head, evalText];
    if (frame.model_id == null && frame.note) parts.push(frame.note);
    this._status(parts.join(" · "));
  }

  stopped() {
    if (!this.running) return;
    this.running = false;
    this.charts.now();
    this._status(`Stopped at step ${this.step} of ${this.steps}`);
  }

  // ------------------------------------------------------------ drawing

  /** Draw what progress and probes brought since the last flush (via `charts` only). */
  _flush() {
    const evals = this.pendingEval;
    this.pendingEval = [];
    const buffer = this.lossBuffer;
    for (const f of evals) {
      buffer.evalSteps.push(f.step);
      buffer.evalLosses.push(drawable(f.eval_loss));
      if (f.eval_loss == null) buffer.overflow.push(f.step);
    }
    const frames = this.pending;
    this.pending = [];
    // every step's loss: frames are thinned to ~20 a second, each carries the steps since the last
    for (const [step, loss] of frames.flatMap(everyLoss)) {
      buffer.steps.push(step);
      buffer.losses.push(drawable(loss));
      this.curve.steps.push(step);
      this.curve.losses.push(drawable(loss));
      if (loss == null) buffer.overflow.push(step);
    }
    const rows = frames.map((f) => (f.grad_profile?.[0]?.[0] || []).map((v) => (drawable(v) == null ? null : Math.log10(v))));
    this.pendingRows.rows.push(...rows);
    this.pendingRows.steps.push(...frames.map((f) => f.step));
    this._drawNear();
    if (frames.length) [this.step, this.loss] = [frames.at(-1).step, frames.at(-1).loss];
    this.stepLine.now(); // the flush shows the step
  }

  /** What the loss chart has not drawn yet (a cleared chart first, after a new start). */
  _drawLossBuffer() {
    if (this.reset.loss) {
      this._drawLoss(this.reset.loss.axes);
      this.reset.loss = null;
    }
    const b = this.lossBuffer;
    this.lossBuffer = emptyLoss();
    // one extension for the three traces: each call redraws the chart
    const parts = [[b.steps, b.losses], [b.evalSteps, b.evalLosses], [b.overflow, b.overflow.map(() => OVERFLOW_Y)]];
    const traces = [0, 1, 2].filter((i) => parts[i][0].length);
    if (!traces.length) return;
    Plotly.extendTraces(this.lossEl, { x: traces.map((i) => parts[i][0]), y: traces.map((i) => parts[i][1]) }, traces);
  }

  /** The heatmap's rows gathered since its last extension, in the task after the loss curve's. */
  _extendHeatmap() {
    this.heatmapTask = null;
    if (!this.near.heatmap) return; // scrolled away meanwhile: the rows wait
    const { rows, steps } = this.pendingRows;
    if (this.reset.heatmap) {
      this.reset.heatmap = false;
      this.heatmapRows = 0;
      if (!rows.length) this._drawHeatmap(null); // the cleared chart, with its hint
    }
    if (!rows.length) return;
    this.pendingRows = { rows: [], steps: [] };
    if (this.heatmapRows === 0) this._drawHeatmap({ rows, steps });
    else Plotly.extendTraces(this.heatmapEl, { z: [rows], y: [steps] }, [0]);
    this.heatmapRows += rows.length;
  }

  _showStep() {
    this.progressEl.value = this.steps ? this.step / this.steps : 0;
    const parts = [`Step ${this.step} of ${this.steps}`];
    if (this.step > 0) parts.push(`loss ${this.loss == null ? "not finite" : formatNumber(this.loss, 2)}`);
    if (this.evalLoss != null) parts.push(`eval ${formatNumber(this.evalLoss, 2)}`);
    this._status(parts.join(" · "));
  }

  _status(text) {
    this.stepLine.stop(); // a step still waiting would overwrite this
    this.statusEl.textContent = text;
  }

  /** The loss chart, empty: with its axes (a run has or will have points) or with a hint. */
  _drawLoss(axes) {
    const traces = [
      {
        name: this.runName ? `${this.runName}: training loss` : "training loss (one batch)",
        x: [],
        y: [],
        mode: "lines",
        line: { color: COLORS[0], width: 1.5 },
        hovertemplate: "step %{x}<br>loss %{y:.3g}<extra></extra>",
      },
      {
        name: "eval loss (held-out)",
        x: [],
        y: [],
        mode: "lines+markers",
        line: { color: COLORS[1], width: 2 },
        marker: { size: 6 },
        hovertemplate: "step %{x}<br>eval loss %{y:.3g}<extra></extra>",
      },
      {
        name: "not finite (top)",
        x: [],
        y: [],
        yaxis: "y2",
        mode: "markers",
        marker: { symbol: "x", color: DANGER, size: 8 },
        hovertemplate: "step %{x}: loss not finite<extra></extra>",
      },
      // earlier runs kept for comparison, after the three traces that grow
      ...this.earlier.map((run) => ({
        name: `${run.name}: training loss`,
        x: run.steps,
        y: run.losses,
        mode: "lines",
        line: { color: "#868e96", width: 1.5, dash: "dot" },
        hovertemplate: `${run.name}, step %{x}<br>loss %{y:.3g}<extra></extra>`,
      })),
    ];
    const layout = {
      ...baseLayout("Loss"),
      ...legendPlace(this.lossEl, axes), // an empty chart stays short
      // no axes until there is something to measure
      xaxis: { title: { text: "training step" }, rangemode: "tozero", visible: axes },
      yaxis: { title: { text: "loss (log scale)" }, type: "log", exponentformat: "power", dtick: "D2", visible: axes },
      yaxis2: OVERLAY_AXIS,
      annotations: axes ? [] : [hint("Press Train to see the loss fall")],
    };
    Plotly.react(this.lossEl, traces, layout, plotConfig("loss"));
  }

  /** The profile's colours over a fixed [lo, hi] range of log10 sizes (null: its own). */
  setFixedScale(range) {
    this.fixedRange = range;
    if (this.heatmapEl.data?.length) Plotly.restyle(this.heatmapEl, this._scale(), [0]);
  }

  _scale() {
    const r = this.fixedRange;
    return r ? { zauto: false, zmin: r[0], zmax: r[1] } : { zauto: true };
  }

  /** @param {{rows: (number|null)[][], steps: number[]} | null} first the first rows, if any */
  _drawHeatmap(first) {
    const T = first ? first.rows[0].length : 0;
    const traces = first
      ? [
          {
            type: "heatmap",
            x: Array.from({ length: T }, (_, t) => t),
            y: first.steps,
            z: first.rows,
            colorscale: "Viridis",
            ...this._scale(),
            colorbar: { title: { text: "log10 ||∂L/∂h_t||", side: "right" }, thickness: 12 },
            hovertemplate: "step %{y}, t=%{x}<br>log10 ||∂L/∂h|| = %{z:.2f}<extra></extra>",
          },
        ]
      : [];
    const label = this.profileLabel || "layer 1";
    const layout = {
      ...baseLayout(`Gradient reaching each position over training, ${label}`),
      xaxis: { title: { text: "position t" }, zeroline: false, visible: first != null },
      yaxis: { title: { text: "training step" }, zeroline: false, visible: first != null },
      annotations: first ? [] : [hint(this.running ? "The gradient profile appears as training runs" : "Press Train to see the gradient profile")],
    };
    Plotly.react(this.heatmapEl, traces, layout, plotConfig("gradient-profile"));
  }
}

// Training from the page: the request from the settings, the stream of progress and probe
// frames, and Stop. Progress goes to the training view as it comes (drawn once per
// animation frame); probe snapshots are decimated: at most one per PROBE_INTERVAL_MS is
// handed on (the newest), so redrawing the views never holds up the page or Stop.

import * as api from "./api.js";
import { trainRequest } from "./requests.js";
import { TraceModel } from "./trace_model.js";
import { whenPlotly } from "./views/registry.js";
import { everyLoss } from "./views/training.js";

const PROBE_INTERVAL_MS = 1500; // what the eye can follow of a network changing under training
const HISTORY_POINTS = 24; // of the loss curve, kept in a shared link

/** At most n points spread evenly over `points`, the last always among them. */
function thin(points, n) {
  if (points.length <= n) return points;
  return Array.from({ length: n }, (_, i) => points[Math.round((i * (points.length - 1)) / (n - 1))]);
}

export class TrainingController {
  /**
   * @param {{state: object, view: import("./views/training.js").TrainingView,
   *          trainButton: HTMLButtonElement, stopButton: HTMLButtonElement,
   *          onStart: () => void, onProbe: (model: TraceModel) => void,
   *          onTrained: (modelId: string, summary: object) => Promise<void>,
   *          onError: (err: Error) => void}} options: onTrained gets what the run says of the
   *   weights: {task, steps, loss (the last training loss), evalLoss, diverged}
   */
  constructor({ state, view, trainButton, stopButton, onStart, onProbe, onTrained, onError }) {
    Object.assign(this, { state, view, trainButton, stopButton, onStart, onProbe, onTrained, onError });
    this.abort = null;
    this.probe = null; // the newest probe not handed on yet
    this.probeTimer = 0;
    this.lastProbe = 0;
    trainButton.addEventListener("click", () => this.train());
    stopButton.addEventListener("click", () => this.stop());
  }

  get running() {
    return this.abort != null;
  }

  async train() {
    if (this.running) return;
    let body;
    try {
      body = trainRequest(this.state);
    } catch (err) {
      this.onError(err);
      return;
    }
    this.abort = new AbortController();
    this.trainButton.disabled = true;
    this.stopButton.disabled = false;
    try {
      await whenPlotly(); // the loss curve is a Plotly chart: a click in the first second came first
    } catch (err) {
      this.onError(err);
      this._finish();
      return;
    }
    if (!this.running) return; // stopped while waiting
    this.onStart();
    let trained = null;
    this.lastLoss = null;
    this.diverged = false;
    this.losses = []; // {step, loss} of every step
    try {
      await api.trainStream(body, (frame) => this._frame(frame, (done) => (trained = done)), this.abort.signal);
      this._flushProbe();
      if (trained?.model_id) {
        const summary = {
          task: body.task.name,
          steps: trained.steps,
          loss: this.lastLoss,
          evalLoss: trained.eval_loss,
          // a non-finite loss or evaluation: the run blew up, whatever weights it left
          diverged: this.diverged || trained.eval_loss == null,
          history: thin(this.losses, HISTORY_POINTS),
        };
        await this.onTrained(trained.model_id, summary);
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this._finish();
    }
  }

  /** Stop at once: the stream is dropped (the server stops when it sees that) and nothing more is drawn. */
  stop() {
    if (!this.running) return;
    this.abort.abort();
    this.view.stopped();
    this._finish();
  }

  _finish() {
    clearTimeout(this.probeTimer);
    this.probe = null;
    this.abort = null;
    this.trainButton.disabled = false;
    this.stopButton.disabled = true;
  }

  _frame(frame, setTrained) {
    if (!this.running) return;
    if (frame.type === "train_config") this.view.start(frame);
    else if (frame.type === "progress") {
      this.view.progress(frame);
      for (const [step, loss] of everyLoss(frame)) {
        this.losses.push({ step, loss });
        if (loss == null) this.diverged = true;
      }
      if (frame.loss != null) this.lastLoss = frame.loss;
    }
    else if (frame.type === "probe") {
      this.view.probe(frame);
      this.probe = frame;
      this._scheduleProbe();
    } else if (frame.type === "done") {
      this.view.done(frame);
      setTrained(frame);
    } else if (frame.type === "error") {
      this.onError(new api.ApiError(frame.detail, frame.field, frame.status));
    }
  }

  _scheduleProbe() {
    if (this.probeTimer) return;
    const wait = Math.max(0, this.lastProbe + PROBE_INTERVAL_MS - performance.now());
    this.probeTimer = setTimeout(() => {
      this.probeTimer = 0;
      this._flushProbe();
    }, wait);
  }

  _flushProbe() {
    if (!this.probe) return;
    const frame = this.probe;
    this.probe = null;
    this.lastProbe = performance.now();
    this.onProbe(new TraceModel(frame.trace));
  }
}

// Compare mode: the same request run as a tanh RNN, an LSTM and a GRU over a session of its
// own (binary answers, one after another, so a heavy one never waits on the server's
// one-heavy-computation-per-client rule), loaded only while Compare is open, cancellable
// on the server, and guarded so a stale answer never replaces a newer one. "Train all
// three" trains each in turn on the same task, seed and budget (the training settings),
// one stream at a time, and shows their loss curves and their gradient profiles on the
// task's fixed probe sequence before and after training.

import * as api from "./api.js";
import { TraceModel } from "./trace_model.js";
import { whenPlotly } from "./views/registry.js";
import { everyLoss } from "./views/training.js";

const CELLS = ["rnn_tanh", "lstm", "gru"];
const CELL_NAMES = { rnn_tanh: "tanh RNN", lstm: "LSTM", gru: "GRU" };
// what compare draws: states and gradients; not the parameter or cell-state gradients
const ANSWER_OPTIONS = { encoding: "binary", omit: ["grads", "grad_cell"] };

export class CompareController {
  /**
   * @param {{view: import("./views/compare.js").CompareView,
   *          progress: import("./views/progress.js").ProgressView, onError: (err: Error) => void}} options
   */
  constructor({ view, progress, onError }) {
    Object.assign(this, { view, progress, onError });
    this.session = null; // opened on first use
    this.run = 0;
    this.loading = false;
    this.abort = null; // a training run's stream, while "Train all three" runs
    this.results = null; // the last trained comparison drawn
  }

  /** Load the three traces for a trace request `body` with fresh weights from `init`. */
  async load(body, init) {
    this.cancel(false);
    const run = ++this.run;
    this.loading = true;
    this.session ??= new api.Session();
    const models = {};
    try {
      for (const cell of CELLS) {
        this.progress.start(`Running the same input through a ${CELL_NAMES[cell]}…`);
        const request = { ...body, config: { ...body.config, cell }, model_id: undefined, init };
        const answer = await this.session.send({ type: "configure", ...request, ...ANSWER_OPTIONS });
        if (run !== this.run) return false;
        models[cell] = new TraceModel(answer.find((f) => f.type === "trace").trace);
      }
      await whenPlotly();
      if (run !== this.run) return false;
      this.view.setModels(models);
      this.progress.done();
      return true;
    } catch (err) {
      if (run !== this.run || (err instanceof api.ApiError && err.status === 409)) return false;
      this.progress.done();
      this.onError(err);
      return false;
    } finally {
      if (run === this.run) this.loading = false;
    }
  }

  /**
   * Train the three cells in turn with the training request `body` (its cell replaced), each
   * from the same seed; resolves with true once all three are drawn, false if cancelled or
   * superseded. `this.results` keeps what was drawn: per cell {modelId, losses: [[step,
   * loss]], evalLoss, before, after} (before and after: TraceModels of the probe sequence).
   */
  async train(body) {
    this.cancel(false);
    const run = ++this.run;
    this.loading = true;
    this.abort = new AbortController();
    const results = {};
    try {
      for (const cell of CELLS) {
        const request = { ...body, config: { ...body.config, cell }, probe_every: body.steps };
        const result = { losses: [], before: null, after: null, evalLoss: null, modelId: null };
        this.progress.start(`Training the ${CELL_NAMES[cell]}: step 0 of ${body.steps}…`);
        await api.trainStream(request, (frame) => this._trainFrame(frame, result, cell, body.steps, run), this.abort.signal);
        if (run !== this.run) return false;
        if (!result.after || !result.modelId) throw new api.ApiError(`The ${CELL_NAMES[cell]} did not finish training.`);
        results[cell] = result;
      }
      await whenPlotly();
      if (run !== this.run) return false;
      this.results = results;
      this.view.setTrained(results, body.steps);
      this.progress.done();
      return true;
    } catch (err) {
      if (run !== this.run || err.name === "AbortError") return false;
      this.progress.done();
      this.onError(err);
      return false;
    } finally {
      if (run === this.run) {
        this.loading = false;
        this.abort = null;
      }
    }
  }

  _trainFrame(frame, result, cell, steps, run) {
    if (run !== this.run) return;
    if (frame.type === "progress") {
      result.losses.push(...everyLoss(frame));
      // the line's text only: start() would restart its clock at every frame
      this.progress.stageSoon(`Training the ${CELL_NAMES[cell]}: step ${frame.step} of ${steps}…`);
    } else if (frame.type === "probe") {
      const model = new TraceModel(frame.trace);
      if (frame.step === 0) result.before = model;
      else result.after = model;
    } else if (frame.type === "done") {
      // on 1,000 fresh sequences; null (shown "not finite") if training diverged. A probe's
      // eval_loss is another measure, on a fixed batch: never shown in its place
      result.modelId = frame.model_id;
      result.evalLoss = frame.eval_loss;
    } else if (frame.type === "error") {
      throw new api.ApiError(frame.detail, frame.field, frame.status);
    }
  }

  /** Stop loading or training: the server stops the computation in progress. */
  cancel(say = true) {
    if (!this.loading) return;
    this.run++;
    this.loading = false;
    if (this.abort) {
      this.abort.abort(); // a dropped stream stops the server's training
      this.abort = null;
    } else {
      this.session.send({ type: "cancel" }).catch(() => {});
    }
    if (say) this.progress.cancelled("Compare cancelled.");
    else this.progress.done();
  }
}

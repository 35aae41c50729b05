// Compare mode: the same request run as a tanh RNN, an LSTM and a GRU over a session of its
// own (binary answers, one after another, so a heavy one never waits on the server's
// one-heavy-computation-per-client rule), loaded only while Compare is open, cancellable
// on the server, and guarded so a stale answer never replaces a newer one.

import * as api from "./api.js";
import { TraceModel } from "./trace_model.js";
import { whenPlotly } from "./views/registry.js";

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

  /** Stop loading: the server stops the computation in progress. */
  cancel(say = true) {
    if (!this.loading) return;
    this.run++;
    this.loading = false;
    this.session.send({ type: "cancel" }).catch(() => {});
    if (say) this.progress.cancelled("Compare cancelled.");
    else this.progress.done();
  }
}

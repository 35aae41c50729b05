// Compare mode: the same request run as a tanh RNN, an LSTM and a GRU, loaded only while
// Compare is open, cancellable, and guarded so a stale answer never replaces a newer one.

import * as api from "./api.js";
import { TraceModel } from "./trace_model.js";
import { whenPlotly } from "./views/registry.js";

const CELLS = ["rnn_tanh", "lstm", "gru"];

export class CompareController {
  /**
   * @param {{view: import("./views/compare.js").CompareView,
   *          progress: import("./views/progress.js").ProgressView, onError: (err: Error) => void}} options
   */
  constructor({ view, progress, onError }) {
    Object.assign(this, { view, progress, onError });
    this.run = 0;
    this.abort = null;
  }

  /** Load the three traces for a trace request `body` with fresh weights from `init`. */
  async load(body, init) {
    this.cancel(false);
    const run = ++this.run;
    this.abort = new AbortController();
    this.progress.start("Running the same input through a tanh RNN, an LSTM and a GRU…");
    try {
      const models = {};
      await Promise.all(
        CELLS.map(async (cell) => {
          const request = { ...body, config: { ...body.config, cell }, model_id: undefined, init };
          models[cell] = new TraceModel(await api.runTrace(request, this.abort.signal));
        }),
      );
      await whenPlotly();
      if (run !== this.run) return false;
      this.view.setModels(models);
      this.progress.done();
      return true;
    } catch (err) {
      if (run !== this.run || err.name === "AbortError") return false;
      this.progress.done();
      this.onError(err);
      return false;
    } finally {
      if (run === this.run) this.abort = null;
    }
  }

  /** Stop loading (the requests are dropped, so the server stops them too). */
  cancel(say = true) {
    if (!this.abort) return;
    this.run++;
    this.abort.abort();
    this.abort = null;
    if (say) this.progress.cancelled("Compare cancelled.");
    else this.progress.done();
  }
}

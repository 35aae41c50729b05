// The live session as the page drives it: configure and edits sent over the WebSocket
// with binary, progressive answers (docs/session-protocol.md), the progress line with the
// cost model's warning and Cancel, and a run guard so a stale answer never replaces a newer one.

import * as api from "./api.js";
import { TraceModel } from "./trace_model.js";

const WARN_SECONDS = 3; // the cost model's estimate above which the page warns first
// how the page's session answers: typed arrays, the picture before the diagnostics, and
// not the gradients no view draws (parameters' and the cell state's)
const ANSWER_OPTIONS = { encoding: "binary", progressive: true, omit: ["grads", "grad_cell"] };

const isCancelled = (err) => err instanceof api.ApiError && err.status === 409 && /cancelled by/.test(err.message);

export class SessionController {
  /**
   * @param {{progress: import("./views/progress.js").ProgressView,
   *          onModel: (model: TraceModel) => void, onGradients: (model: TraceModel) => void,
   *          onDiagnostics: (model: TraceModel) => void}} options: the forward pass's model
   *   first, then the same with its gradients, then with its Jacobian norms and spectrum
   */
  constructor({ progress, onModel, onGradients, onDiagnostics }) {
    this.session = new api.Session();
    this.progress = progress;
    this.onModel = onModel;
    this.onGradients = onGradients;
    this.onDiagnostics = onDiagnostics;
    this.run = 0; // answers to superseded commands are dropped
    this.model = null;
    this.session.open().catch(() => {}); // the handshake overlaps the first sample request
  }

  /**
   * Configure the session with a trace request body; resolves with true once answered (the
   * model went to onModel as soon as it arrived), false if superseded or cancelled.
   */
  async configure(body) {
    const run = ++this.run;
    this.progress.start("Sending the network and sequence…");
    this._warn(body, run);
    return this._command({ type: "configure", ...body, ...ANSWER_OPTIONS }, run);
  }

  /** An edit (edit_input or edit_weight); resolves with the server's `edit` echo, or null. */
  async edit(command) {
    const run = ++this.run;
    this.progress.start("Recomputing with your edit…");
    let edit = null;
    const ok = await this._command(command, run, (frame) => (edit = frame.edit));
    return ok ? edit : null;
  }

  /** Stop the computation in progress, on the server too. */
  cancel() {
    this.run++; // whatever still arrives for it is not drawn
    this.session.send({ type: "cancel" }).catch(() => {}); // answered 409 before any configure
    this.progress.cancelled();
  }

  async _command(command, run, onTrace = () => {}) {
    try {
      await this.session.send(command, { onFrame: (frame) => run === this.run && this._frame(frame, onTrace) });
      if (run === this.run) this.progress.done();
      return run === this.run;
    } catch (err) {
      if (run !== this.run || isCancelled(err)) return false;
      this.progress.done();
      throw err;
    }
  }

  _frame(frame, onTrace) {
    if (frame.type === "stage") {
      this.progress.stage(`Computing the ${frame.detail}…`);
    } else if (frame.type === "trace") {
      onTrace(frame);
      this.model = new TraceModel(frame.trace);
      this.onModel(this.model);
    } else if (frame.type === "gradients" && this.model) {
      this.model = this.model.withGradients(frame);
      this.onGradients(this.model);
    } else if (frame.type === "diagnostics" && this.model) {
      this.model = this.model.withDiagnostics(frame);
      this.onDiagnostics(this.model);
    }
  }

  /** The cost model's estimate, shown beside the progress when it is more than a few seconds. */
  async _warn(body, run) {
    try {
      const estimate = await api.estimateTrace(body, "session");
      if (run !== this.run || !this.progress.active || estimate.seconds < WARN_SECONDS) return;
      this.progress.warn(`This run is estimated at about ${Math.round(estimate.seconds)} s of work on this server: Cancel stops it.`);
    } catch {
      // the estimate is advice: the run itself reports any refusal
    }
  }
}

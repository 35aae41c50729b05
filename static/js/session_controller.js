// The live session as the page drives it: configure and edits sent over the WebSocket
// with binary, progressive answers (docs/session-protocol.md), the progress line with the
// cost model's warning and Cancel, and a run guard so a stale answer never replaces a newer one.
// It keeps the edits in effect (for Undo, the share link and exports) and, after a
// reconnect, configures the new server session again and replays them.

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
  constructor({ progress, onModel, onGradients, onDiagnostics, onEdits = () => {} }) {
    this.session = new api.Session();
    this.progress = progress;
    this.onModel = onModel;
    this.onGradients = onGradients;
    this.onDiagnostics = onDiagnostics;
    this.onEdits = onEdits; // (edits) after every change to the edits in effect
    this.run = 0; // answers to superseded commands are dropped
    this.model = null;
    this.body = null; // the configured request, as sent
    this.generation = 0; // the socket it was configured on
    this.edits = []; // in effect, oldest first: {command, old}
    this.session.open().catch(() => {}); // the handshake overlaps the first sample request
  }

  /**
   * Configure the session with a trace request body, then apply `edits` (commands, e.g.
   * from a shared link); resolves with true once answered (the model went to onModel as
   * soon as it arrived), false if superseded or cancelled.
   */
  async configure(body, edits = []) {
    const run = ++this.run;
    const expected = body.inputs?.[0]?.length;
    if (body.model_id && expected != null && body.config.input_size !== expected) {
      throw new api.ApiError(
        `The loaded weights take ${body.config.input_size} input value(s) per step, but this input has ${expected}: ` +
          "they are kept. Pick a task or series that fits them, or Remove them to use random weights.",
        "model_id",
      );
    }
    this.progress.start("Sending the network and sequence…");
    this._warn(body, run);
    const ok = await this._command({ type: "configure", ...body, ...ANSWER_OPTIONS }, run);
    if (!ok) return false;
    this.body = body;
    this.generation = this.session.generation;
    this.edits = [];
    try {
      for (const command of edits) if (!(await this.edit(command))) break;
    } catch (err) {
      console.warn("an edit of the link could not be applied", err); // the ones before it stand
    }
    this.onEdits(this.edits);
    return true;
  }

  /** An edit (edit_input or edit_weight); resolves with the server's `edit` echo, or null. */
  async edit(command) {
    if (!(await this._live())) return null;
    const run = ++this.run;
    this.progress.start("Recomputing with your edit…");
    let edit = null;
    const applied = (frames) => {
      edit = frames.find((f) => f.type === "trace")?.edit ?? null;
      if (!edit) return;
      this.edits.push({ command, old: edit.old });
      this.onEdits(this.edits);
    };
    const ok = await this._command(command, run, () => {}, applied);
    return ok ? edit : null;
  }

  /** Undo the last edit (the same edit with its old value); false if there is none. */
  async undo() {
    const last = this.edits.at(-1);
    if (!last || !(await this._live())) return false;
    const run = ++this.run;
    this.progress.start("Undoing your last edit…");
    const undone = () => {
      const at = this.edits.lastIndexOf(last);
      if (at >= 0) this.edits.splice(at, 1);
      this.onEdits(this.edits);
    };
    return this._command({ ...last.command, value: last.old }, run, () => {}, undone);
  }

  /** Back to the configured network and input: every edit dropped. */
  async resetEdits() {
    if (!this.edits.length || !(await this._live())) return false;
    const run = ++this.run;
    this.progress.start("Back to the configured network…");
    const dropped = () => {
      this.edits = [];
      this.onEdits(this.edits);
    };
    return this._command({ type: "reset" }, run, () => {}, dropped);
  }

  /** The inputs on screen: the configured ones with the input edits applied. */
  currentInputs() {
    const inputs = this.body.inputs.map((row) => [...row]);
    for (const { command: c } of this.edits) if (c.type === "edit_input") inputs[c.position][c.feature] = c.value;
    return inputs;
  }

  /** The weights on screen stored as a model (edits included): its id. */
  async save() {
    if (!(await this._live())) throw new api.ApiError("The network is still loading: try again in a moment.");
    const answer = await this.session.send({ type: "save" });
    return answer.at(-1).model_id;
  }

  /** The request that reproduces what is on screen: edited inputs, and edited weights as a stored model. */
  async currentRequest() {
    const body = { ...this.body, inputs: this.currentInputs() };
    if (this.edits.some((e) => e.command.type === "edit_weight")) {
      const { init, ...rest } = body; // the stored model replaces the drawn weights
      return { ...rest, model_id: await this.save() };
    }
    return body;
  }

  /**
   * The server session answers edits only while it is the one configured: after a
   * reconnect (a new socket is a new, empty session) send configure again and replay the
   * edits in effect. False if it could not be restored.
   */
  async _live() {
    if (!this.body) return false;
    await this.session.open();
    if (this.generation === this.session.generation) return true;
    const run = ++this.run;
    this.progress.start("Reconnected: sending the network and your edits again…");
    if (!(await this._command({ type: "configure", ...this.body, ...ANSWER_OPTIONS }, run))) return false;
    this.generation = this.session.generation;
    for (const { command } of this.edits) {
      if (!(await this._command(command, ++this.run))) return false;
    }
    return true;
  }

  /** Stop the computation in progress, on the server too. */
  cancel() {
    this.run++; // whatever still arrives for it is not drawn
    this.session.send({ type: "cancel" }).catch(() => {}); // answered 409 before any configure
    this.progress.cancelled();
  }

  /**
   * Send a command; true if answered and still current. `onAnswer(frames)` runs whenever
   * the server answered, current or not: an edit superseded on screen is still in effect.
   */
  async _command(command, run, onTrace = () => {}, onAnswer = () => {}) {
    try {
      onAnswer(await this.session.send(command, { onFrame: (frame) => run === this.run && this._frame(frame, onTrace) }));
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

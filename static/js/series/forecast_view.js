// The honest forecast: a held-out window of the series (dates on the time axis for real
// prices) with the network's forecast beside "tomorrow = today" and the window mean, each
// one's held-out loss, a plain-words verdict, the error at each future step for direct and
// recursive forecasting and the baselines, and one click to train the "regular model" that
// sees only today's value (memoryless) for comparison.
//
// Consumes POST /api/v1/forecast/score ({baselines, labels, loss?}), POST
// /api/v1/forecast/horizon ({errors, example, forecast, params}) and, for the buttons,
// POST /api/v1/train/stream (its train_config, progress and done frames).

import { trainModel } from "./client.js";
import { forecastVerdict, formatLoss, rawExample } from "./forecast_units.js";
import { chartLayout, react } from "./plot.js";
import { el, throttledText } from "../dom.js";

const LINES = {
  truth: { name: "what happened", color: "#1b2230", dash: "solid", width: 2.5 },
  direct: { name: "network, direct", color: "#2f6fde", dash: "solid", width: 2.5 },
  recursive: { name: "network, recursive", color: "#862e9c", dash: "solid", width: 2.5 },
  naive: { name: "tomorrow = today", color: "#5b6577", dash: "dash", width: 2 },
  window_mean: { name: "window mean", color: "#e67700", dash: "dot", width: 2 },
};
const DEFAULT_TRAINING = {
  config: { cell: "gru", hidden_size: 16, num_layers: 1, bidirectional: false },
  optimizer: { name: "adam", learning_rate: 0.01 },
  batch_size: 32,
  steps: 300,
  clip_norm: 1.0,
  seed: 0,
};
const MAX_STEPS = 20; // the API's cap on future values

export class ForecastView {
  /**
   * @param {HTMLElement} container emptied and filled by the view
   * @param {{client: {postJSON: Function, trainStream: Function}, steps?: number,
   *          onModel?: (kind: string, modelId: string) => void}} options
   *   client: see client.js (apiClient); steps: future values in the horizon chart (5);
   *   onModel: told of every model the view trains ("memoryless", "direct", "recursive").
   */
  constructor(container, { client, steps = 5, onModel = () => {} }) {
    this.container = container;
    this.client = client;
    this.onModel = onModel;
    this.task = null;
    this.seed = 0;
    this.trainBody = null;
    this.models = { direct: null, recursive: null, memoryless: null, network: null };
    this.steps = steps;
    this.generation = 0; // answers of an older setting are dropped
    this.abort = null;
    this._build();
  }

  // ------------------------------------------------------------------ public API

  /**
   * A forecasting task and the seed its held-out windows come from (the training seed).
   * Forgets every model. `trainBody`: the page's POST /train/stream body, the budget for
   * the comparison models (its config, optimizer, batch size, steps and seed).
   * @param {{name: string}} task e.g. {name: "stocks", ticker: "IBM", length: 40, horizon: 1}
   */
  setTask(task, { seed = 0, trainBody = null } = {}) {
    this.stop();
    this.task = { ...task };
    this.seed = seed;
    this.trainBody = trainBody;
    this.models = { direct: null, recursive: null, memoryless: null, network: null };
    return this._refresh();
  }

  /**
   * The page's network, trained on this task (a stored model id). With a horizon of 2 or
   * more it forecasts directly, with 1 it is run on its own outputs (recursive).
   */
  setModel(modelId, { trainBody = this.trainBody } = {}) {
    this.trainBody = trainBody;
    const horizon = this.task?.horizon ?? 1;
    this.models.network = modelId;
    if (horizon >= 2) {
      this.models.direct = { id: modelId, horizon };
      // the chart goes as far as the direct model does
      this.steps = horizon;
      this.stepsInput.value = String(horizon);
    } else this.models.recursive = modelId;
    return this._refresh();
  }

  /** Future values in the horizon chart, 1 to 20. */
  setSteps(steps) {
    this.steps = Math.max(1, Math.min(MAX_STEPS, Math.round(steps)));
    this.stepsInput.value = String(this.steps);
    return this._refresh();
  }

  /** Train the regular model that sees only today's value (an Elman RNN with W_hh held at
   *  zero, memoryless), with the page's budget, and score it beside the others. */
  trainMemoryless() {
    const base = this._base();
    const cell = base.config.cell === "rnn_relu" ? "rnn_relu" : "rnn_tanh";
    const body = { ...base, config: { ...base.config, cell, bidirectional: false }, memoryless: true };
    return this._train("memoryless", body, "the model that sees only today's value");
  }

  /** Train the forecaster the page lacks: a one-step model (for recursive forecasts) or a
   *  model with horizon = steps (for direct ones), with the page's budget. */
  trainCompanion() {
    const kind = this._missing();
    if (!kind) return Promise.resolve();
    const horizon = kind === "direct" ? this.steps : 1;
    const body = { ...this._base(), task: { ...this.task, horizon } };
    const what = kind === "direct" ? `a ${horizon}-step model (direct)` : "a one-step model (recursive)";
    return this._train(kind, body, what);
  }

  /** Stop a comparison training in flight. */
  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  // ------------------------------------------------------------------ requests

  _base() {
    const base = { ...DEFAULT_TRAINING, seed: this.seed, ...(this.trainBody || {}) };
    const steps = base.steps;
    // two probes (start, end) are enough here: the comparison is its held-out loss
    return { ...base, task: { ...this.task }, probe_every: steps, store: true, model_id: null };
  }

  /** "direct" or "recursive": the forecaster the horizon chart still lacks, or null. */
  _missing() {
    if (!this.models.recursive) return "recursive";
    if (!this.models.direct || this.models.direct.horizon < this.steps) return "direct";
    return null;
  }

  async _train(kind, body, what) {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    this._setBusy(true);
    this._status(`Training ${what}: starting…`);
    try {
      const steps = body.steps;
      const result = await trainModel(
        this.client,
        body,
        (frame) => {
          if (frame.type === "progress") this.statusLine.soon(`Training ${what}: step ${frame.step} of ${steps}`);
        },
        abort.signal,
      );
      if (result.stopped || !result.modelId) {
        this._status(result.note || `Stopped training ${what}.`);
        return;
      }
      if (kind === "direct") this.models.direct = { id: result.modelId, horizon: body.task.horizon };
      else this.models[kind] = result.modelId;
      this.onModel(kind, result.modelId);
      this._status(`Trained ${what} with the same budget (${steps} steps).`);
      await this._refresh();
    } catch (err) {
      if (err.name !== "AbortError") this._error(err);
    } finally {
      if (this.abort === abort) this.abort = null;
      this._setBusy(false);
    }
  }

  async _refresh() {
    if (!this.task) return;
    const generation = ++this.generation;
    this._error(null);
    const { postJSON } = this.client;
    const score = (modelId) =>
      postJSON("/forecast/score", { task: this.task, seed: this.seed, ...(modelId ? { model_id: modelId } : {}) });
    const horizonBody = { task: this.task, steps: this.steps, seed: this.seed };
    if (this.models.recursive) horizonBody.recursive = this.models.recursive;
    if (this.models.direct && this.models.direct.horizon >= this.steps) horizonBody.direct = this.models.direct.id;
    try {
      const base = await score(this.models.network);
      if (generation !== this.generation) return;
      if (!base.baselines) {
        this._notForecasting();
        return;
      }
      const [memoryless, horizon] = await Promise.all([
        this.models.memoryless ? score(this.models.memoryless) : null,
        postJSON("/forecast/horizon", horizonBody),
      ]);
      if (generation !== this.generation) return;
      this.body.hidden = false;
      this.note.hidden = true;
      this.scores = { base, memoryless };
      this.horizon = horizon;
      this._drawScores();
      this._syncButtons();
      await Promise.all([this._drawExample(), this._drawHorizon()]);
    } catch (err) {
      if (generation === this.generation) this._error(err);
    }
  }

  // ------------------------------------------------------------------ drawing

  _build() {
    this.container.replaceChildren();
    this.container.classList.add("sv", "sv-forecast");
    this.note = el("p", { className: "hint", hidden: true });
    this.errorEl = el("p", { className: "sv-error", hidden: true });
    this.errorEl.setAttribute("role", "alert");
    this.exampleTitle = el("h3", { className: "sv-chart-title" });
    this.exampleEl = el("div", { className: "sv-plot" });
    this.table = el("table", { className: "sv-scores" });
    this.verdictEl = el("p", { className: "sv-verdict" });
    this.verdictEl.setAttribute("aria-live", "polite");
    this.heldOutEl = el("p", { className: "hint" });
    this.stepsInput = el("input", { type: "number", min: 1, max: MAX_STEPS, step: 1, value: String(this.steps) });
    this.stepsInput.addEventListener("change", () => {
      const v = Number(this.stepsInput.value);
      if (Number.isInteger(v) && v >= 1 && v <= MAX_STEPS) this.setSteps(v);
      else this.stepsInput.value = String(this.steps);
    });
    this.memorylessButton = el("button", { type: "button", textContent: "Compare: a model that sees only today's value" });
    this.memorylessButton.addEventListener("click", () => this.trainMemoryless());
    this.companionButton = el("button", { type: "button" });
    this.companionButton.addEventListener("click", () => this.trainCompanion());
    this.stopButton = el("button", { type: "button", textContent: "Stop", hidden: true });
    this.stopButton.addEventListener("click", () => this.stop());
    this.statusEl = el("p", { className: "sv-status" });
    this.statusEl.setAttribute("aria-live", "polite");
    this.statusLine = throttledText(this.statusEl);
    this.horizonEl = el("div", { className: "sv-plot" });
    const steps = el("label", { className: "sv-field" }, ["Future values ", this.stepsInput]);
    const explain = el("details", { className: "explain" }, [
      el("summary", { textContent: "What am I seeing?" }),
      el("p", {
        textContent:
          "Every number here is measured on held-out data the network never trained on: for real prices, only " +
          "windows that start on or after the split date. 'Tomorrow = today' repeats the last value (for daily " +
          "returns it predicts no change); the window mean averages the window so far. A network that cannot beat " +
          "them has learned nothing the last value did not already say.",
      }),
      el("p", {
        textContent:
          "Several future values, two ways: a direct model outputs all of them at once from its last state; a " +
          "recursive one is trained one step ahead with the true values as inputs (teacher forcing), then runs " +
          "free, each prediction fed back as the next input, so its errors compound. The regular model sees only " +
          "today's value: an Elman network whose recurrent matrix W_hh is held at zero, so it has no memory.",
      }),
    ]);
    this.body = el("div", {}, [
      this.exampleTitle,
      this.exampleEl,
      this.verdictEl,
      this.table,
      this.heldOutEl,
      el("div", { className: "sv-actions" }, [this.memorylessButton, this.companionButton, this.stopButton, steps]),
      this.statusEl,
      (this.horizonTitle = el("h3", { className: "sv-chart-title", textContent: "Error at each future step, on held-out data" })),
      this.horizonEl,
      explain,
    ]);
    this.container.append(this.note, this.errorEl, this.body);
  }

  _notForecasting() {
    this.body.hidden = true;
    this.note.hidden = false;
    this.note.textContent = `The ${this.task.name} task does not forecast a series: pick sine, random_walk, stocks or your own series.`;
  }

  _drawScores() {
    const { base, memoryless } = this.scores;
    const naive = base.baselines.naive;
    const rows = [];
    if (base.loss != null || this.models.network) rows.push(["network", "the network", base.loss]);
    if (memoryless) rows.push(["memoryless", "sees only today's value", memoryless.loss]);
    for (const [key, label] of Object.entries(base.labels)) rows.push([key, label, base.baselines[key]]);
    const head = el("tr", {}, [
      el("th", { textContent: "forecast", scope: "col" }),
      el("th", { textContent: "held-out loss", scope: "col" }),
      el("th", { textContent: "against tomorrow = today", scope: "col" }),
    ]);
    const body = rows.map(([key, label, loss]) => {
      const cell = el("td", { className: "sv-loss", textContent: formatLoss(loss) });
      cell.dataset.key = key;
      cell.dataset.value = String(loss);
      const ratio = loss != null && Number.isFinite(loss) ? `${(loss / naive).toFixed(2)}×` : "";
      return el("tr", { className: key === "network" ? "sv-network" : "" }, [el("th", { scope: "row", textContent: label }), cell, el("td", { textContent: ratio })]);
    });
    this.table.replaceChildren(el("thead", {}, [head]), el("tbody", {}, body));
    const verdict = forecastVerdict({
      loss: base.loss ?? null,
      naive,
      windowMean: base.baselines.window_mean,
      taskName: this.task.name,
    });
    this.verdictEl.textContent = verdict.text;
    this.verdictEl.className = `sv-verdict ${verdict.kind}`;
    this.heldOutEl.textContent = this._heldOutText(base.size);
  }

  _heldOutText(size) {
    const p = this.horizon?.params || {};
    let unit = "the task's normalised values";
    if (this.horizon?.forecast === "change") unit = "a day's log return over the typical daily move";
    else if (this.task.name === "stocks") unit = "the log price against the window's first day, over the typical daily move";
    else if (this.task.name === "custom") unit = p.normalisation === "none" ? "the series' own units" : "standard deviations of the training part";
    if (this.task.name === "stocks") {
      return `Mean squared error on ${size} held-out windows of ${p.ticker}, all on or after ${p.split} (${p.test_days} trading days to ${p.last_date}), in units of ${unit}.`;
    }
    if (this.task.name === "custom" && !p.test_values) {
      return `Mean squared error on ${size} training windows, in ${unit}: with test_fraction 0 nothing is held out, so these losses flatter every forecast.`;
    }
    if (this.task.name === "custom") {
      return `Mean squared error on ${size} windows from the held-out last ${p.test_values} values, in ${unit}.`;
    }
    return `Mean squared error on ${size} fresh held-out sequences, in ${unit}.`;
  }

  _drawExample() {
    const ex = rawExample(this.horizon);
    const future = ex.x.slice(ex.T - 1); // each forecast starts from the last known value
    const last = ex.context[ex.T - 1];
    const traces = [
      {
        name: "what it reads",
        x: ex.x.slice(0, ex.T),
        y: ex.context,
        mode: "lines",
        line: { color: LINES.truth.color, width: 1.5 },
        hovertemplate: "%{x}<br>%{y:.4g}<extra></extra>",
      },
    ];
    for (const key of ["truth", "naive", "window_mean", "recursive", "direct"]) {
      const values = key === "truth" ? ex.truth : ex.forecasts[key];
      if (!values) continue;
      const line = LINES[key];
      traces.push({
        name: line.name,
        x: future,
        y: [last, ...values],
        mode: "lines+markers",
        line: { color: line.color, dash: line.dash, width: line.width },
        marker: { size: 5 },
        hovertemplate: `${line.name}<br>%{x}: %{y:.4g}<extra></extra>`,
      });
    }
    this.exampleTitle.textContent =
      this.task.name === "stocks"
        ? `${this.horizon.params.ticker}: a held-out window and the next ${ex.truth.length} trading days`
        : `A held-out window and the next ${ex.truth.length} values`;
    const layout = chartLayout(
      { type: ex.dated ? "date" : "linear", title: { text: ex.dated ? "" : "position" } },
      { title: { text: ex.unit } },
    );
    return react(this.exampleEl, traces, layout, "forecast");
  }

  _drawHorizon() {
    const { errors, steps, size } = this.horizon;
    // its own sample of windows: step 1's 'tomorrow = today' is not the table's number
    this.horizonTitle.textContent = `Error at each future step, on ${size} held-out windows (a sample of its own, so step 1 differs from the table by chance)`;
    const x = Array.from({ length: steps }, (_, j) => j + 1);
    const traces = ["direct", "recursive", "naive", "window_mean"]
      .filter((key) => errors[key])
      .map((key) => ({
        name: LINES[key].name,
        x,
        y: errors[key],
        mode: "lines+markers",
        line: { color: LINES[key].color, dash: LINES[key].dash, width: LINES[key].width },
        marker: { size: 6 },
        hovertemplate: `${LINES[key].name}<br>step %{x}: %{y:.3g}<extra></extra>`,
      }));
    const layout = chartLayout(
      { title: { text: "steps ahead" }, dtick: 1 },
      { title: { text: "mean squared error" }, rangemode: "tozero" },
    );
    return react(this.horizonEl, traces, layout, "forecast-horizon");
  }

  _syncButtons() {
    const missing = this._missing();
    this.companionButton.hidden = !missing || !this.models.network;
    if (missing === "direct") this.companionButton.textContent = `Train a ${this.steps}-step model to forecast directly`;
    else if (missing === "recursive") this.companionButton.textContent = "Train a one-step model to forecast recursively";
    this.memorylessButton.hidden = this.models.memoryless != null;
  }

  _setBusy(busy) {
    this.memorylessButton.disabled = busy;
    this.companionButton.disabled = busy;
    this.stopButton.hidden = !busy;
  }

  _status(text) {
    this.statusLine.now(text);
  }

  _error(err) {
    this.errorEl.hidden = !err;
    this.errorEl.textContent = err ? err.message : "";
  }
}

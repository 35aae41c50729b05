// Filling a gap from both sides: a one-direction and a bidirectional network trained on the
// gap task with the same budget, side by side: both loss curves, both predictions in the gap
// of one held-out sequence beside the guesses that need no network (carry the last value
// across, draw a straight line), and the loss inside the gap of each.
//
// Consumes POST /api/v1/train/stream (progress, probe and done frames), POST
// /api/v1/forecast/score ({gap, gap_baselines}), POST /api/v1/tasks/gap/sample (the probe
// sequence: {inputs, targets}) and POST /api/v1/trace ({outputs}, forward only).

import { trainModel } from "./client.js";
import { formatLoss } from "./forecast_units.js";
import { chartLayout, extend, react } from "./plot.js";
import { el, throttled, throttledText } from "../dom.js";

const CHART_INTERVAL_MS = 500; // the loss curves grow at most twice a second, as training's
const RUNS = [
  { key: "one", bidirectional: false, name: "one direction (→)", color: "#d9480f" },
  { key: "both", bidirectional: true, name: "bidirectional (→ ←)", color: "#2f6fde" },
];
const GUESSES = {
  carry_forward: { name: "carry the last value across", legend: "last value carried", color: "#5b6577", dash: "dash" },
  interpolate: { name: "straight line across", legend: "straight line", color: "#2b8a3e", dash: "dot" },
};
const DEFAULT_TRAINING = {
  config: { cell: "gru", hidden_size: 16, num_layers: 1 },
  optimizer: { name: "adam", learning_rate: 0.01 },
  batch_size: 32,
  steps: 300,
  clip_norm: 1.0,
  seed: 0,
};

/**
 * The guesses without a network for one sequence, as the server scores them: values (T,)
 * with the gap zeroed, gap (T,) booleans -> {carry_forward: (T,), interpolate: (T,)}.
 */
export function gapGuesses(values, gap) {
  const start = gap.indexOf(true);
  const end = start + gap.filter(Boolean).length; // first visible position after the gap
  const before = values[start - 1];
  const after = values[end];
  const carry = values.map((v, t) => (gap[t] ? before : v));
  const line = values.map((v, t) => (gap[t] ? before + ((t - start + 1) / (end - start + 1)) * (after - before) : v));
  return { carry_forward: carry, interpolate: line };
}

export class GapView {
  /**
   * @param {HTMLElement} container emptied and filled by the view
   * @param {{client: {postJSON: Function, trainStream: Function}}} options see client.js
   */
  constructor(container, { client }) {
    this.container = container;
    this.client = client;
    this.task = { name: "gap", length: 30, gap: 8 };
    this.trainBody = null;
    this.abort = null;
    this.results = {}; // key -> {modelId, config, score, outputs}
    this._build();
  }

  // ------------------------------------------------------------------ public API

  /**
   * The gap task's parameters and the budget both networks get: the page's POST
   * /train/stream body (its config's cell, hidden size and layers, optimizer, batch size,
   * steps and seed); only `bidirectional` differs between the two runs.
   * @param {{task?: {length?: number, gap?: number}, trainBody?: object}} run
   */
  setRun({ task = {}, trainBody = null } = {}) {
    this.stop();
    this.task = { ...this.task, ...task, name: "gap" };
    this.trainBody = trainBody;
    this.results = {};
    this._drawLoss();
    this._status(`Press "Train both" to train each network for ${this._body(false).steps} steps on the same data.`);
    this._clearResults();
  }

  /** Train the one-direction network, then the bidirectional one, and compare them. */
  async start() {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    this.results = {};
    this._clearResults();
    this._drawLoss();
    this.startButton.disabled = true;
    this.stopButton.hidden = false;
    try {
      for (const [index, run] of RUNS.entries()) {
        const body = this._body(run.bidirectional);
        const pending = [];
        // the loss curve grows at most every CHART_INTERVAL_MS: each extension redraws the chart
        const chart = throttled(() => {
          if (!pending.length) return;
          const frames = pending.splice(0);
          extend(this.lossEl, { x: [frames.map((f) => f.step)], y: [frames.map((f) => f.loss)] }, [index]);
        }, CHART_INTERVAL_MS);
        const result = await trainModel(
          this.client,
          body,
          (frame) => {
            if (frame.type !== "progress") return;
            pending.push(frame);
            this.statusLine.soon(`Training the ${run.name} network: step ${frame.step} of ${body.steps}`);
            chart.soon();
          },
          abort.signal,
        );
        chart.now();
        if (result.stopped || !result.modelId) {
          this._status(result.note || "Stopped.");
          return;
        }
        this.results[run.key] = { modelId: result.modelId, config: result.config };
      }
      this._status("Scoring both on held-out sequences…");
      await this._compare();
    } catch (err) {
      if (err.name !== "AbortError") this._error(err);
    } finally {
      if (this.abort === abort) this.abort = null;
      this.startButton.disabled = false;
      this.stopButton.hidden = true;
    }
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  // ------------------------------------------------------------------ requests

  _body(bidirectional) {
    const base = { ...DEFAULT_TRAINING, ...(this.trainBody || {}) };
    return {
      ...base,
      config: { ...base.config, bidirectional },
      task: { ...this.task },
      probe_every: base.steps, // the comparison needs the trained weights, not the probes
      store: true,
      model_id: null,
    };
  }

  async _compare() {
    const { postJSON } = this.client;
    const seed = this._body(false).seed;
    const params = { length: this.task.length, gap: this.task.gap };
    const sample = await postJSON("/tasks/gap/sample", { params, seed, split: "test", probe: true });
    const inputs = sample.inputs[0];
    await Promise.all(
      RUNS.map(async (run) => {
        const r = this.results[run.key];
        const [score, trace] = await Promise.all([
          postJSON("/forecast/score", { task: this.task, model_id: r.modelId, seed }),
          postJSON("/trace", { config: r.config, model_id: r.modelId, inputs, jacobians: false }),
        ]);
        r.score = score;
        r.outputs = trace.outputs.map((row) => row[0]);
      }),
    );
    this.sample = { values: inputs.map((x) => x[0]), gap: inputs.map((x) => x[1] > 0.5), truth: sample.targets[0].map((y) => y[0]) };
    await this._drawResults();
  }

  // ------------------------------------------------------------------ drawing

  _build() {
    this.container.replaceChildren();
    this.container.classList.add("sv", "sv-gap");
    this.startButton = el("button", { type: "button", className: "primary", textContent: "Train both" });
    this.startButton.addEventListener("click", () => this.start());
    this.stopButton = el("button", { type: "button", textContent: "Stop", hidden: true });
    this.stopButton.addEventListener("click", () => this.stop());
    this.statusEl = el("p", { className: "sv-status" });
    this.statusEl.setAttribute("aria-live", "polite");
    this.statusLine = throttledText(this.statusEl);
    this.errorEl = el("p", { className: "sv-error", hidden: true });
    this.errorEl.setAttribute("role", "alert");
    this.lossEl = el("div", { className: "sv-plot" });
    this.predictionEls = RUNS.map(() => el("div", { className: "sv-plot" }));
    this.predictionTitles = RUNS.map((run) => el("h3", { className: "sv-chart-title", textContent: `The ${run.name} network in the gap` }));
    this.verdictEl = el("p", { className: "sv-verdict" });
    this.verdictEl.setAttribute("aria-live", "polite");
    this.table = el("table", { className: "sv-scores" });
    this.resultsEl = el("div", { hidden: true }, [
      this.verdictEl,
      this.table,
      el(
        "div",
        { className: "sv-two" },
        RUNS.map((_, i) => el("div", {}, [this.predictionTitles[i], this.predictionEls[i]])),
      ),
    ]);
    const explain = el("details", { className: "explain" }, [
      el("summary", { textContent: "What am I seeing?" }),
      el("p", {
        textContent:
          "A random walk with a stretch hidden in its middle; the network must output every true value, the hidden " +
          "ones included. A one-direction layer reaching the gap has read only what came before it: its best guess " +
          "is about the last value. A bidirectional layer also reads the sequence backwards, so inside the gap it " +
          "knows where the walk comes out and can draw a line across. Both get the same cell, hidden size per " +
          "direction, steps, batches and seed; the bidirectional one has a second set of recurrent weights.",
      }),
    ]);
    this.container.append(
      el("div", { className: "sv-actions" }, [this.startButton, this.stopButton]),
      this.statusEl,
      this.errorEl,
      el("h3", { className: "sv-chart-title", textContent: "Training loss, same budget" }),
      this.lossEl,
      this.resultsEl,
      explain,
    );
    this._drawLoss();
  }

  _drawLoss() {
    const traces = RUNS.map((run) => ({
      name: run.name,
      x: [],
      y: [],
      mode: "lines",
      line: { color: run.color, width: 1.5 },
      hovertemplate: `${run.name}<br>step %{x}: %{y:.3g}<extra></extra>`,
    }));
    const layout = chartLayout({ title: { text: "training step" }, rangemode: "tozero" }, { title: { text: "loss (log scale)" }, type: "log", exponentformat: "power", dtick: "D2" });
    return react(this.lossEl, traces, layout, "gap-loss");
  }

  _clearResults() {
    this.resultsEl.hidden = true;
    this._error(null);
  }

  async _drawResults() {
    const { values, gap, truth } = this.sample;
    const guesses = gapGuesses(values, gap);
    const x = values.map((_, t) => t);
    const start = gap.indexOf(true);
    const end = start + gap.filter(Boolean).length - 1;
    const inGap = (series) => series.map((v, t) => (t >= start - 1 && t <= end + 1 ? v : null));
    const seen = values.map((v, t) => (gap[t] ? null : v));
    this.resultsEl.hidden = false;
    const charts = RUNS.map((run, i) => {
      const traces = [
        { name: "what it sees", x, y: seen, mode: "lines+markers", line: { color: "#1b2230", width: 1.5 }, marker: { size: 4 } },
        { name: "hidden truth", x, y: inGap(truth), mode: "lines", line: { color: "#1b2230", width: 1.5, dash: "dot" } },
        ...Object.entries(GUESSES).map(([key, g]) => ({
          name: g.legend,
          x,
          y: inGap(guesses[key]),
          mode: "lines",
          line: { color: g.color, dash: g.dash, width: 1.5 },
        })),
        { name: run.name, x, y: this.results[run.key].outputs, mode: "lines", line: { color: run.color, width: 2.5 } },
      ];
      const layout = {
        ...chartLayout({ title: { text: "position" } }, { title: { text: "value" } }),
        shapes: [{ type: "rect", xref: "x", yref: "paper", x0: start - 0.5, x1: end + 0.5, y0: 0, y1: 1, fillcolor: "#f1f3f6", line: { width: 0 }, layer: "below" }],
      };
      return react(this.predictionEls[i], traces, layout, `gap-${run.key}`);
    });
    const scores = RUNS.map((run) => [run.key, `${run.name} network`, this.results[run.key].score.gap]);
    const baselines = this.results.one.score.gap_baselines;
    for (const [key, g] of Object.entries(GUESSES)) scores.push([key, g.name, baselines[key]]);
    const head = el("tr", {}, ["", "loss inside the gap", "loss outside it"].map((t) => el("th", { scope: "col", textContent: t })));
    const rows = scores.map(([key, label, s]) => {
      const cell = el("td", { className: "sv-loss", textContent: formatLoss(s.gap_loss) });
      cell.dataset.key = key;
      cell.dataset.value = String(s.gap_loss);
      return el("tr", {}, [el("th", { scope: "row", textContent: label }), cell, el("td", { textContent: formatLoss(s.outside_loss) })]);
    });
    this.table.replaceChildren(el("thead", {}, [head]), el("tbody", {}, rows));
    const one = this.results.one.score.gap.gap_loss;
    const both = this.results.both.score.gap.gap_loss;
    const wins = both < one;
    this.verdictEl.className = `sv-verdict ${wins ? "beats" : "ties"}`;
    this.verdictEl.textContent = wins
      ? `Reading from both sides wins: inside the gap the bidirectional network's loss is ${formatLoss(both)}, the one-direction network's ${formatLoss(one)} (a straight line across: ${formatLoss(baselines.interpolate.gap_loss)}).`
      : `With this budget the bidirectional network does not fill the gap better (${formatLoss(both)} against ${formatLoss(one)}): train longer, and it should, since it sees both edges of the gap.`;
    this._status(`Both trained for ${this._body(false).steps} steps with seed ${this._body(false).seed}; losses on 1000 held-out sequences.`);
    await Promise.all(charts);
  }

  _status(text) {
    this.statusLine.now(text);
  }

  _error(err) {
    this.errorEl.hidden = !err;
    this.errorEl.textContent = err ? err.message : "";
  }
}

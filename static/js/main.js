// Wiring only: settings <-> controls <-> URL, requests to the server, and the views.

import * as api from "./api.js";
import { Controls } from "./controls.js";
import { Player } from "./player.js";
import { parse, serialize, taskParams, parseSeries, hiddenControls } from "./state.js";
import { TraceModel } from "./trace_model.js";
import { CompareView } from "./views/compare.js";
import { GradientView } from "./views/gradients.js";
import { OutputView } from "./views/outputs.js";
import { SpectrumView } from "./views/spectrum.js";
import { StatesView } from "./views/states.js";
import { TrainingView } from "./views/training.js";
import { UnrolledView } from "./views/unrolled.js";
import { WeightEditor } from "./views/weights.js";

const $ = (id) => document.getElementById(id);
const SIDE_VIEWS = new Set(["gradients", "outputs", "spectrum"]);
const SIDE_VIEW_INTERVAL_MS = 100;

class App {
  constructor() {
    this.state = parse(location.search);
    this.session = new api.Session();
    this.model = null; // TraceModel on screen
    this.request = null; // the trace request body behind it
    this.trainAbort = null;
    this.runId = 0; // drops answers to superseded requests

    this.controls = new Controls(document, this.state, {
      onChange: (key) => this.settingChanged(key),
    });
    this.views = {
      unrolled: new UnrolledView($("unrolled"), {
        onEditInput: (position, feature, value) => this.editInput(position, feature, value),
      }),
      states: new StatesView($("states"), { kindSelect: $("state-kind"), layerSelect: $("state-layer") }),
      gradients: new GradientView($("gradients"), { verdictEl: $("gradient-verdict") }),
      outputs: new OutputView($("outputs")),
      spectrum: new SpectrumView($("spectrum"), { blockSelect: $("spectrum-block") }),
    };
    this.weightEditor = new WeightEditor($("weight-editor"), {
      onEditWeight: (name, index, value) => this.editWeight(name, index, value),
    });
    this.training = new TrainingView({
      lossEl: $("loss-curve"),
      heatmapEl: $("profile-heatmap"),
      progressEl: $("train-progress"),
      statusEl: $("train-status"),
    });
    this.compare = new CompareView($("compare"));
    this.player = new Player({
      timeline: $("timeline"),
      phase: $("phase"),
      playButton: $("play"),
      onCursor: (cursor) => this.showCursor(cursor),
      onPause: () => this.showCursor(this.player.cursor), // bring the side plots up to date
    });
    this.lastSideDraw = 0;
    this.player.setSpeed(this.state.speed);
    this.controls.bindSpeed($("speed"));
    this.bindButtons();
  }

  // ------------------------------------------------------------------ settings

  settingChanged(key) {
    if (key === "speed") {
      this.player.setSpeed(this.state.speed);
      this.syncUrl();
      return;
    }
    if (key === "hide") {
      this.syncUrl();
      return;
    }
    const trainingOnly = ["optimizer", "learningRate", "batchSize", "steps", "clipNorm", "clipValue"];
    if (!trainingOnly.includes(key)) {
      // a different network or input: weights from an upload or training no longer apply
      if (["cell", "hiddenSize", "numLayers", "bidirectional", "task", "length", "horizon", "symbols", "customSeries"].includes(key) && this.state.modelId) {
        this.state.modelId = "";
        this.setModelStatus("");
      }
      this.state.cursor = 0;
      this.syncUrl();
      this.loadTrace();
      return;
    }
    this.syncUrl();
  }

  syncUrl() {
    history.replaceState(null, "", serialize(this.state));
  }

  // ------------------------------------------------------------------ trace

  configBody(sample) {
    const s = this.state;
    return {
      cell: s.cell,
      input_size: sample.input_size,
      hidden_size: s.hiddenSize,
      num_layers: s.numLayers,
      bidirectional: s.bidirectional,
      output_size: sample.output_size,
      head: sample.head,
      output_mode: sample.output_mode,
    };
  }

  async sequence() {
    const s = this.state;
    if (s.task === "custom") {
      const series = parseSeries(s.customSeries);
      if (series.length < 3) {
        throw new api.ApiError("Your own sequence: type or paste at least 3 numbers.", "customSeries");
      }
      return {
        input_size: 1, output_size: 1, head: "regression", output_mode: "sequence",
        inputs: series.slice(0, -1).map((v) => [v]),
        targets: series.slice(1).map((v) => [v]),
      };
    }
    const sample = await api.sampleTask(s.task, taskParams(s), s.seed);
    return { ...sample, inputs: sample.inputs[0], targets: sample.targets[0] };
  }

  async traceBody() {
    const s = this.state;
    const sample = await this.sequence();
    const body = {
      config: this.configBody(sample),
      inputs: sample.inputs,
      targets: sample.targets,
      truncate: s.truncate > 0 ? s.truncate : null,
      jacobians: true,
    };
    if (s.modelId) {
      const info = await api.modelInfo(s.modelId);
      body.config = info.config;
      body.model_id = s.modelId;
    } else {
      body.init = { scheme: s.initScheme, scale: s.initScale, seed: s.seed };
    }
    return body;
  }

  async loadTrace() {
    const run = ++this.runId;
    this.clearError();
    try {
      const body = await this.traceBody();
      const answer = await this.session.send({ type: "configure", ...body });
      if (run !== this.runId) return;
      const traceFrame = answer.find((f) => f.type === "trace");
      this.request = body;
      this.setModel(new TraceModel(traceFrame.trace), this.state.cursor);
      if (this.state.compare) this.loadCompare();
    } catch (err) {
      if (run === this.runId) this.showError(err);
    }
  }

  setModel(model, cursor = 0) {
    this.model = model;
    for (const view of Object.values(this.views)) view.setModel(model);
    this.weightEditor.setModel(model);
    this.player.setLength(model.length, cursor);
  }

  showCursor(cursor) {
    if (!this.model) return;
    this.state.cursor = cursor;
    // while playing, the side plots redraw at most ~10 times a second: a Plotly redraw
    // costs far more than a frame, and the unrolled view and heatmap carry the motion
    const now = performance.now();
    const atEnd = cursor >= this.model.length - 1;
    const skipSide = this.player.playing && !atEnd && now - this.lastSideDraw < SIDE_VIEW_INTERVAL_MS;
    if (!skipSide) this.lastSideDraw = now;
    for (const [name, view] of Object.entries(this.views)) {
      if (!(skipSide && SIDE_VIEWS.has(name))) view.update(cursor);
    }
    if (this.state.compare) this.compare.update(cursor / Math.max(1, this.model.length - 1));
    this.player.describe(this.model, cursor);
  }

  async editInput(position, feature, value) {
    try {
      const answer = await this.session.send({ type: "edit_input", position, feature, value });
      const traceFrame = answer.find((f) => f.type === "trace");
      this.request.inputs[position][feature] = value;
      this.setModel(new TraceModel(traceFrame.trace), this.player.cursor);
      this.notice(`Input x${position}[${feature}] set to ${value}: the change spreads forward from step ${position}.`);
    } catch (err) {
      this.showError(err);
    }
  }

  /** Change one weight in the session; resolves with the edit (its `old` value) or null. */
  async editWeight(name, index, value) {
    try {
      const answer = await this.session.send({ type: "edit_weight", name, index, value });
      const traceFrame = answer.find((f) => f.type === "trace");
      this.setModel(new TraceModel(traceFrame.trace), this.player.cursor);
      this.notice(`${name}[${index.join(", ")}] set to ${value}: every step that uses it is recomputed.`);
      return traceFrame.edit;
    } catch (err) {
      this.showError(err);
      return null;
    }
  }

  // ------------------------------------------------------------------ compare

  async loadCompare() {
    if (!this.request) return;
    const cells = ["rnn_tanh", "lstm", "gru"];
    try {
      const models = {};
      await Promise.all(
        cells.map(async (cell) => {
          const body = { ...this.request, config: { ...this.request.config, cell }, model_id: undefined };
          body.init = { scheme: this.state.initScheme, scale: this.state.initScale, seed: this.state.seed };
          models[cell] = new TraceModel(await api.runTrace(body));
        }),
      );
      this.compare.setModels(models);
      this.compare.update(this.player.cursor / Math.max(1, this.model.length - 1));
    } catch (err) {
      this.showError(err);
    }
  }

  toggleCompare() {
    this.state.compare = !this.state.compare;
    $("compare-section").hidden = !this.state.compare;
    $("compare-toggle").setAttribute("aria-pressed", String(this.state.compare));
    this.syncUrl();
    if (this.state.compare) this.loadCompare();
  }

  // ------------------------------------------------------------------ training

  async train() {
    const s = this.state;
    this.clearError();
    const sample = await this.sequence().catch((err) => (this.showError(err), null));
    if (!sample) return;
    const body = {
      config: { cell: s.cell, hidden_size: s.hiddenSize, num_layers: s.numLayers, bidirectional: s.bidirectional },
      task: { name: s.task, ...taskParams(s) },
      optimizer: { name: s.optimizer, learning_rate: s.learningRate },
      batch_size: s.batchSize,
      steps: s.steps,
      clip_norm: s.clipNorm > 0 ? s.clipNorm : null,
      clip_value: s.clipValue > 0 ? s.clipValue : null,
      truncate: s.truncate > 0 ? s.truncate : null,
      seed: s.seed,
      init: { scheme: s.initScheme, scale: s.initScale, seed: s.seed },
      probe_every: Math.max(1, Math.round(s.steps / 30)),
    };
    if (s.task === "custom") body.task = { name: "custom", series: parseSeries(s.customSeries), length: Math.min(s.length, parseSeries(s.customSeries).length - 1), horizon: 1 };
    this.trainAbort = new AbortController();
    $("train").disabled = true;
    $("stop").disabled = false;
    this.player.pause();
    try {
      await api.trainStream(
        body,
        (frame) => {
          if (frame.type === "train_config") this.training.start(frame);
          else if (frame.type === "progress") this.training.progress(frame);
          else if (frame.type === "probe") {
            this.training.probe(frame);
            this.setModel(new TraceModel(frame.trace), Number.MAX_SAFE_INTEGER);
          } else if (frame.type === "done") {
            this.training.done(frame);
            if (frame.model_id) {
              this.state.modelId = frame.model_id;
              this.setModelStatus(`Trained weights loaded (model ${frame.model_id.slice(0, 12)}…). Share the link to open them anywhere.`);
              this.syncUrl();
            }
          } else if (frame.type === "error") {
            this.showError(new api.ApiError(frame.detail, frame.field, frame.status));
          }
        },
        this.trainAbort.signal,
      );
      if (this.state.modelId) await this.loadTrace();
    } catch (err) {
      this.showError(err);
    } finally {
      $("train").disabled = false;
      $("stop").disabled = true;
      this.trainAbort = null;
    }
  }

  stopTraining() {
    if (this.trainAbort) this.trainAbort.abort();
    this.training.stopped();
  }

  // ------------------------------------------------------------------ weights, share, export

  async upload(file) {
    if (!file) return;
    this.clearError();
    try {
      const answer = await api.uploadModel(file, { nonlinearity: this.state.cell === "rnn_relu" ? "relu" : "tanh" });
      const c = answer.config;
      Object.assign(this.state, {
        modelId: answer.model_id,
        cell: c.cell,
        hiddenSize: c.hidden_size,
        numLayers: c.num_layers,
        bidirectional: c.bidirectional,
      });
      if (this.state.task !== "custom" || c.input_size !== 1) {
        this.notice(`Loaded ${file.name}: ${c.cell}, ${c.num_layers} layer(s), hidden size ${c.hidden_size}, input size ${c.input_size}. Pick a task whose input fits, or paste your own sequence.`);
      }
      this.controls.render();
      this.setModelStatus(`Using uploaded weights ${file.name} (model ${answer.model_id.slice(0, 12)}…).`);
      this.syncUrl();
      await this.loadTrace();
    } catch (err) {
      this.showError(err);
    }
  }

  setModelStatus(text) {
    $("model-status").textContent = text;
  }

  async share() {
    const url = new URL(serialize(this.state), location.href).toString();
    let kept = "";
    if (this.state.modelId) {
      try {
        await api.pinModel(this.state.modelId);
      } catch (error) {
        kept = ` The weights could not be kept for good (${error.message}): the link works while the store still holds them.`;
      }
    }
    try {
      await navigator.clipboard.writeText(url);
      this.notice(`Link copied: it opens this exact network, input, seed and weights.${kept}`);
    } catch {
      this.notice(`Share this link: ${url}${kept}`);
    }
  }

  download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  exportJson() {
    if (!this.model) return;
    this.download(new Blob([JSON.stringify(this.model.trace)], { type: "application/json" }), "trace.json");
  }

  async exportNpz() {
    if (!this.request) return;
    try {
      this.download(await api.downloadTraceNpz(this.request), "trace.npz");
    } catch (err) {
      this.showError(err);
    }
  }

  // ------------------------------------------------------------------ messages

  showError(err) {
    console.warn(err);
    $("error-text").textContent = err instanceof api.ApiError ? err.message : `Something went wrong: ${err.message}`;
    $("error").hidden = false;
  }

  clearError() {
    $("error").hidden = true;
  }

  notice(text) {
    const el = $("notice");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this._noticeTimer);
    this._noticeTimer = setTimeout(() => (el.hidden = true), 6000);
  }

  // ------------------------------------------------------------------ buttons and keys

  bindButtons() {
    $("play").addEventListener("click", () => this.player.toggle());
    $("step-forward").addEventListener("click", () => this.player.step(1));
    $("step-back").addEventListener("click", () => this.player.step(-1));
    $("reset").addEventListener("click", () => this.player.seek(0));
    $("run").addEventListener("click", () => this.player.seek(Number.MAX_SAFE_INTEGER));
    $("train").addEventListener("click", () => this.train());
    $("stop").addEventListener("click", () => this.stopTraining());
    $("share").addEventListener("click", () => this.share());
    $("export-json").addEventListener("click", () => this.exportJson());
    $("export-npz").addEventListener("click", () => this.exportNpz());
    $("compare-toggle").addEventListener("click", () => this.toggleCompare());
    $("error-close").addEventListener("click", () => this.clearError());
    $("upload").addEventListener("change", (e) => this.upload(e.target.files[0]));
    document.addEventListener("keydown", (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      if (["input", "select", "textarea", "button"].includes(tag) && e.target.id !== "timeline") return;
      if (e.key === " ") {
        e.preventDefault();
        this.player.toggle();
      } else if (e.key === "ArrowRight") {
        e.preventDefault();
        this.player.step(1);
      } else if (e.key === "ArrowLeft") {
        e.preventDefault();
        this.player.step(-1);
      } else if (e.key === "Home") {
        this.player.seek(0);
      } else if (e.key === "End") {
        this.player.seek(Number.MAX_SAFE_INTEGER);
      }
    });
  }

  start() {
    const hidden = hiddenControls(this.state);
    for (const el of document.querySelectorAll("[data-control]")) {
      if (hidden.has(el.dataset.control)) el.dataset.hidden = "true";
    }
    $("compare-section").hidden = !this.state.compare;
    $("compare-toggle").setAttribute("aria-pressed", String(this.state.compare));
    this.loadTrace();
  }
}

function boot() {
  if (typeof window.Plotly === "undefined") {
    document.getElementById("error-text").textContent = "Plotly did not load: the page cannot draw its plots.";
    document.getElementById("error").hidden = false;
    return;
  }
  window.unroll = new App();
  window.unroll.start();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();

// Wiring only: settings <-> controls <-> URL, the controllers that talk to the server
// (session, training, compare), the player's one cursor, and the views. A new view plugs
// in with one `this.views.add(...)` below.

import * as api from "./api.js";
import { CompareController } from "./compare_controller.js";
import { Controls } from "./controls.js";
import { Player } from "./player.js";
import { SessionController } from "./session_controller.js";
import { LessonController } from "./lesson_controller.js";
import { initOf, taskSample, traceRequest, trainRequest } from "./requests.js";
import { BidirectionalWarning } from "./series/bidirectional_warning.js";
import { apiClient } from "./series/client.js";
import { ForecastView } from "./series/forecast_view.js";
import { GapView } from "./series/gap_view.js";
import { SeriesInput } from "./series/series_input.js";
import { TextView } from "./series/text_view.js";
import { decodeEdits, decodeTrained, encodeEdits, encodeTrained, FIELDS, parse, serialize, taskParams } from "./state.js";
import { TrainingController } from "./training_controller.js";
import { CellInspector, inspectBody } from "./views/cell_inspector.js";
import { CompareView } from "./views/compare.js";
import { GradientView } from "./views/gradients.js";
import { HorizonView, horizonBody } from "./views/horizon.js";
import { OutputView } from "./views/outputs.js";
import { ProgressView } from "./views/progress.js";
import { ViewRegistry, whenPlotly } from "./views/registry.js";
import { SpectrumView } from "./views/spectrum.js";
import { StatesView } from "./views/states.js";
import { TraceModel } from "./trace_model.js";
import { TrainingView } from "./views/training.js";
import { TrajectoryView } from "./views/trajectory.js";
import { UnrolledView } from "./views/unrolled.js";
import { WeightEditor } from "./views/weights.js";

const $ = (id) => document.getElementById(id);
// settings that describe a different network or input: uploaded or trained weights no longer fit
const ARCHITECTURE = ["cell", "hiddenSize", "numLayers", "bidirectional"]; // loaded weights fix these
const NEW_NETWORK = ["cell", "hiddenSize", "numLayers", "bidirectional", "task", "length", "horizon", "symbols", "customSeries", "ticker", "normalisation", "gap"];
const TRAINING_ONLY = ["optimizer", "learningRate", "batchSize", "steps", "clipNorm", "clipValue", "memoryless"];
const PROBE_VIEWS = ["unrolled", "states", "gradients", "outputs"]; // redrawn by training snapshots
const FIXED_GRADIENT_RANGE = [-12, 2]; // log10 ||dL/dh||: vanishing at 1e-12 and exploding at 100 both show
const LEFT_LESSON = "unroll.leftLesson"; // localStorage: this browser chose Free exploration
const PHONE_WIDTH = 900; // px: below it the settings start folded away (app.css's one column)

class App {
  constructor() {
    this.state = parse(location.search);
    this.model = null; // the TraceModel on screen
    this.request = null; // the trace request body behind it
    this.controls = new Controls(document, this.state, { onChange: (key, old) => this.settingChanged(key, old) });
    this.linkEdits = decodeEdits(this.state.edits); // applied once the link's network is up
    this.player = new Player({
      timeline: $("timeline"),
      phase: $("phase"),
      playButton: $("play"),
      onCursor: (cursor) => this.showCursor(cursor),
      onPause: () => this.views.update(this.player.cursor), // bring the side plots up to date
    });

    // the views, in drawing order: the first is the first picture
    this.views = new ViewRegistry();
    this.views.add("unrolled", new UnrolledView($("unrolled"), {
      onEditInput: (position, feature, value) => this.edit({ type: "edit_input", position, feature, value }),
      onSeek: (cursor) => this.player.seek(cursor),
      onNode: (layer, direction, position) => this.inspect(layer, direction, position),
    }), { element: $("unrolled"), plotly: false });
    // inside one step, where its gradient comes from, the states' path (issue 14)
    this.inspector = this.views.add("cell_inspector", new CellInspector($("cell-inspector"), {
      load: (w) => api.postJSON("/inspect", inspectBody(this.request, w.layer, w.direction, w.position)),
      cursor: () => this.state.cursor,
    }), { element: $("cell-inspector"), plotly: false });
    this.horizon = this.views.add("horizon", new HorizonView($("horizon-plot"), {
      load: (w) => api.postJSON("/horizon", horizonBody(this.request, w.layer, w.direction, w.position)),
      summaryEl: $("horizon-summary"),
    }), { element: $("horizon-plot"), side: true });
    this.trajectory = this.views.add("trajectory", new TrajectoryView($("trajectory"), { layerSelect: $("trajectory-layer") }),
      { element: $("trajectory"), side: true, plotly: false });
    this.views.add("states", new StatesView($("states"), { kindSelect: $("state-kind"), layerSelect: $("state-layer") }), { element: $("states") });
    this.views.add("gradients", new GradientView($("gradients"), { verdictEl: $("gradient-verdict") }), { element: $("gradients"), side: true });
    this.views.add("outputs", new OutputView($("outputs")), { element: $("outputs"), side: true });
    this.views.add("spectrum", new SpectrumView($("spectrum"), { blockSelect: $("spectrum-block") }), { element: $("spectrum"), side: true });
    this.views.add("weights", new WeightEditor($("weight-editor"), {
      onEditWeight: (name, index, value) => this.edit({ type: "edit_weight", name, index, value }),
    }), { plotly: false });

    this.session = new SessionController({
      progress: new ProgressView($("progress"), { onCancel: () => this.session.cancel() }),
      onModel: (model) => this.setModel(model, this.player.cursor),
      onGradients: (model) => this.setModel(model, this.player.cursor),
      // the Jacobian norms and spectrum change only the views that draw them
      onDiagnostics: (model) => this.setModel(model, this.player.cursor, { only: ["gradients", "spectrum"] }),
      onEdits: (edits) => this.editsChanged(edits),
    });
    this.trainingView = new TrainingView({
      lossEl: $("loss-curve"),
      heatmapEl: $("profile-heatmap"),
      progressEl: $("train-progress"),
      statusEl: $("train-status"),
    });
    this.training = new TrainingController({
      state: this.state,
      view: this.trainingView,
      trainButton: $("train"),
      stopButton: $("stop"),
      onStart: () => (this.clearError(), this.player.pause(), (this.probeModels = [])),
      // a snapshot redraws the views on screen that follow training (not the eigenvalue
      // plot, the slowest to redraw: it catches up when training ends); the others when seen
      onProbe: (model) => {
        this.setModel(model, Number.MAX_SAFE_INTEGER, { only: PROBE_VIEWS });
        this.probeModels.push(model); // the path over training: one PCA fitted on every snapshot
        this.showProbePath();
      },
      onTrained: (modelId, summary) => this.trained(modelId, summary),
      onError: (err) => this.showError(err),
    });
    this.compareView = new CompareView($("compare"), $("compare-loss"), $("compare-states"), $("compare-networks"));
    this.compare = new CompareController({
      view: this.compareView,
      progress: new ProgressView($("compare-progress"), { onCancel: () => this.compare.cancel() }),
      onError: (err) => this.showError(err),
    });
    this.probeModels = [];
    this.series = { forecast: null, input: null, gap: null, text: null, taskKey: "", modelKey: "" };
    this.warning = new BidirectionalWarning($("bidirectional-warning"));
    this.lesson = new LessonController({
      root: $("lesson"),
      panelEl: $("lesson-panel"),
      listEl: $("chapter-list"),
      state: this.state,
      trainingView: this.trainingView,
      apply: (c) => this.applyChapter(c),
      onLeave: () => this.setLessonMode(false),
      onProbe: (frame) => this.lessonProbe(frame),
      onTrained: (settings, modelId) => this.lessonTrained(settings, modelId),
      onShown: (run) => this.lessonShown(run),
    });
    this.player.setSpeed(this.state.speed);
    this.controls.bindSpeed($("speed"));
    // before any button acts (capture phase): a number typed a moment ago is taken first
    document.addEventListener("click", (e) => e.target.closest?.("button") && this.controls.flush(), true);
    this.bindButtons();
  }

  // ------------------------------------------------------------------ settings

  settingChanged(key, old) {
    if (key === "fixedScale") {
      this.applyScale();
      this.syncUrl();
      return;
    }
    if (key === "speed") this.player.setSpeed(this.state.speed);
    if (!["speed", "hide", ...TRAINING_ONLY].includes(key)) {
      // loaded weights stay until removed: a network they do not fit is refused, and kept
      if (ARCHITECTURE.includes(key) && this.state.modelId && this.request) {
        this.state[key] = old;
        this.controls.render();
        const c = this.request.config;
        this.showError(new api.ApiError(`The loaded weights are a ${c.cell} with ${c.num_layers} layer(s) of ${c.hidden_size} units${c.bidirectional ? ", bidirectional" : ""}: they are kept. Remove them (beside their name under Initial weights) to change the network.`, "model_id"));
        return;
      }
      this.revert = NEW_NETWORK.includes(key) && this.state.modelId ? { key, old } : null;
      // the same network and input under another truncation: the edits still apply
      if (key === "truncate") this.linkEdits = this.session.edits.map((e) => e.command);
      this.state.cursor = 0;
      this.clearProbePath();
      this.loadTrace();
    }
    this.syncUrl();
  }

  // ------------------------------------------------------------------ the lesson

  /** Lesson mode on (at the state's chapter) or off (the free dashboard, settings open). */
  async setLessonMode(on) {
    $("mode-lesson").setAttribute("aria-pressed", String(on));
    $("mode-free").setAttribute("aria-pressed", String(!on));
    remember(LEFT_LESSON, !on); // a visitor who left the lesson gets the dashboard at / next time
    if (on) {
      $("settings-drawer").open = false;
      try {
        await this.lesson.open(this.state.chapter);
      } catch (err) {
        this.showError(err);
      }
      return;
    }
    this.lesson.close();
    if (window.innerWidth > PHONE_WIDTH) $("settings-drawer").open = true;
    this.syncUrl();
  }

  /** A chapter's settings are in the state: show them and load its network. */
  async applyChapter(chapter) {
    this.state.modelId = "";
    this.setModelStatus("");
    this.clearProbePath();
    this.controls.render();
    this.syncUrl();
    await this.loadTrace();
    if (this.request && this.model && this.model.T <= 200) this.horizon.select(0, 0, 0); // not an empty plot
    // a chapter about gradients opens with BPTT done: its view is not an empty chart (Reset replays it)
    if (this.model && ["gradients", "horizon"].includes(chapter.highlight)) this.player.seek(Number.MAX_SAFE_INTEGER);
    // a chapter about one step opens one (T2: the first with a state to start from), so its numbers show at once
    if (this.request && this.model && chapter.highlight === "cell_inspector") {
      this.inspector.inspect(0, 0, Math.min(1, this.model.T - 1));
    }
  }

  /** A training snapshot of a lesson experiment (null: a new run): the hidden state's path over training. */
  lessonProbe(frame) {
    if (!frame) {
      this.probeModels = [];
      return;
    }
    this.probeModels.push(new TraceModel(frame.trace));
    this.showProbePath();
  }

  /** Another network or input: training's path (and a draw of it still waiting) is gone. */
  clearProbePath() {
    this.probeModels = [];
    this.trajectory.setProbes(null);
  }

  /** The hidden state's path over the training snapshots so far, refitted in a task of its
   * own (the PCA grows with them), and only once the trajectory is near the screen. */
  showProbePath() {
    const probes = this.probeModels;
    this.views.whenNear("trajectory", () => {
      if (probes !== this.probeModels) return; // a new run or trace started meanwhile
      this.trajectory.setProbes(probes);
      this.trajectory.showProbe(probes.length - 1);
    });
  }

  /** A lesson experiment trained weights: the page shows its last run's network with them. */
  async lessonTrained(settings, modelId) {
    Object.assign(this.state, settings, { chapter: this.state.chapter, modelId, cursor: 0 });
    this.controls.render();
    this.setModelStatus(`Trained weights from the experiment (model ${modelId.slice(0, 12)}…).`);
    this.syncUrl();
    await this.loadTrace();
    this.player.seek(Number.MAX_SAFE_INTEGER); // the whole run at once: its path, its gradients
  }

  /**
   * A lesson experiment of traces only: the page shows its last run, its settings on the
   * live network, its input edit made through the session (the nodes it changes ringed,
   * the forward pass played to its end), or BPTT played to the end, as the chapter's text
   * asks the student to.
   */
  async lessonShown(run) {
    Object.assign(this.state, run.settings, { chapter: this.state.chapter, modelId: "", cursor: 0 });
    this.controls.render();
    this.syncUrl();
    await this.loadTrace();
    if (!this.model) return;
    const e = run.edit_input;
    if (!e) return this.player.seek(Number.MAX_SAFE_INTEGER);
    await this.edit({ type: "edit_input", position: e.position, feature: e.feature, value: e.value });
    // an edit is about the forward pass: its last step, the states coloured by their values
    if (this.model) this.player.seek(this.model.outputStep(this.model.T - 1));
  }

  /** The fixed colour scale on or off: gradient colours comparable across runs (log10 from -12 to 2). */
  applyScale() {
    const range = this.state.fixedScale ? FIXED_GRADIENT_RANGE : null;
    for (const name of ["unrolled", "states"]) this.views.get(name).setFixedScale(range);
    this.trainingView.setFixedScale(range);
    this.compareView.setFixedScale(range);
    this.horizon.fixedRange = range;
    if (this.horizon.answer) this.horizon.show(this.horizon.answer);
  }

  /** A hidden-state node clicked: look inside that step and at where its gradient comes from. */
  inspect(layer, direction, position) {
    if (!this.request) return;
    this.inspector.inspect(layer, direction, position);
    this.horizon.select(layer, direction, position);
    $("inspector-section").scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  syncUrl() {
    history.replaceState(null, "", serialize(this.state));
  }

  // ------------------------------------------------------------------ the trace

  async loadTrace() {
    this.clearError();
    const run = (this.loadRun = (this.loadRun || 0) + 1);
    try {
      this.showTaskSections();
      // nothing typed yet: the series box asks for numbers; an error would be premature
      if (this.state.task === "custom" && !this.state.customSeries.trim()) {
        // say so: the network on the page is still the previous task's
        this.notice("Your own series: give it numbers in the box 'Your own series' (paste, upload or draw). Until then the network shown is the previous task's.");
        $("series-input-section").scrollIntoView({ block: "nearest" });
        return;
      }
      const sample = await taskSample(this.state);
      const body = await traceRequest(this.state, sample);
      if (run !== this.loadRun) return;
      this.pendingCursor = this.state.cursor;
      const edits = this.linkEdits;
      this.linkEdits = [];
      if (await this.session.configure(body, edits)) {
        this.request = { ...body, inputs: this.session.currentInputs() };
        this.taskViews(sample, body); // after the first picture: their requests wait for it
        if (this.state.compare) this.compare.load(body, initOf(this.state));
      }
    } catch (err) {
      if (run === this.loadRun && err.field === "model_id" && this.revert) {
        // the change does not fit the loaded weights: undo it, they and the trace stay
        this.state[this.revert.key] = this.revert.old;
        this.revert = null;
        this.controls.render();
        this.syncUrl();
      }
      if (run === this.loadRun) {
        $("forecast-section").hidden = true;
        this.showError(err);
      }
    }
  }

  // ------------------------------------------------------------------ the task's own views (issue 13)

  /** The sections a task has before its sample arrives: your own series, the gap, the text. */
  showTaskSections() {
    const task = this.state.task;
    $("series-input-section").hidden = task !== "custom";
    $("gap-section").hidden = task !== "gap";
    $("text-section").hidden = task !== "text";
    const s = this.state;
    if (task === "custom") {
      this.series.input ??= new SeriesInput($("series-input"), {
        client: apiClient, length: s.length, horizon: s.horizon,
        onSeries: (r) => this.customSeries(r),
      });
      this.series.input.setWindow({ length: s.length, horizon: s.horizon });
    }
  }

  /** Your own series read and checked by SeriesInput: it becomes the task's series. */
  customSeries(r) {
    if (!r.fits) return; // the input shows the server's reason
    this.state.customSeries = r.series.join(", ");
    this.controls.render();
    this.settingChanged("customSeries");
  }

  /** After each sample: the warning, the forecast view, the gap and text views. */
  taskViews(sample, body) {
    const s = this.state;
    this.warning.update({ bidirectional: s.bidirectional, forecast: sample.forecast ?? null });
    const trainBody = trainRequest(s);
    // the error by horizon runs length + steps positions: none fit at the longest lengths
    const room = FIELDS.length[1].max - s.length;
    const forecasting = sample.forecast != null && room >= 1;
    $("forecast-section").hidden = !forecasting;
    const taskKey = JSON.stringify([s.task, taskParams(s), s.seed]);
    if (forecasting) {
      const forecast = (this.series.forecast ??= new ForecastView($("forecast"), { client: apiClient }));
      if (taskKey !== this.series.taskKey) {
        if (room < forecast.steps) forecast.setSteps(room);
        forecast.setTask({ name: s.task, ...taskParams(s) }, { seed: s.seed, trainBody });
      }
    }
    if (s.task === "gap") {
      this.series.gap ??= new GapView($("gap-view"), { client: apiClient });
      if (taskKey !== this.series.taskKey) this.series.gap.setRun({ task: { length: s.length, gap: s.gap }, trainBody });
    }
    if (s.task === "text") this.series.text ??= new TextView($("text-view"), { client: apiClient });
    this.series.taskKey = taskKey;
    // trained weights on this task: the views that score or read them
    const modelKey = s.modelId ? `${s.modelId}|${taskKey}` : "";
    if (modelKey && modelKey !== this.series.modelKey) {
      if (forecasting) this.series.forecast.setModel(s.modelId, { trainBody });
      if (s.task === "text") this.series.text.setModel({ modelId: s.modelId, config: body.config, context: s.length });
    }
    this.series.modelKey = modelKey;
  }

  /** A new model on screen: every view (one per task), the player and its cursor. */
  setModel(model, cursor = 0, options = {}) {
    const first = this.model == null || this.model.length !== model.length;
    if (this.pendingCursor != null && first) cursor = this.pendingCursor;
    this.pendingCursor = null;
    this.model = model;
    cursor = Math.max(0, Math.min(cursor, model.length - 1));
    this.views.setModel(model, cursor, options); // views that are behind skip the cursor until they have it
    this.player.setLength(model.length, cursor);
    this.firstPicture?.();
  }

  showCursor(cursor) {
    if (!this.model) return;
    this.state.cursor = cursor;
    this.views.update(cursor, this.player.playing);
    // always: a closed or off-screen Compare only records it, and opens where the timeline is
    this.compareView.update(cursor / Math.max(1, this.model.length - 1));
    this.player.describe(this.model, cursor);
  }

  /** An input or weight edit through the session; resolves with its echo (the old value) or null. */
  async edit(command) {
    try {
      const edit = await this.session.edit(command);
      if (!edit) return null;
      if (command.type === "edit_input") {
        this.notice(`Input x${command.position}[${command.feature}] set to ${command.value}: the change spreads forward from step ${command.position}.`);
      } else {
        this.notice(`${command.name}[${command.index.join(", ")}] set to ${command.value}: every step that uses it is recomputed.`);
      }
      return edit;
    } catch (err) {
      this.showError(err);
      return null;
    }
  }

  toggleCompare() {
    this.state.compare = !this.state.compare;
    $("compare-section").hidden = !this.state.compare;
    $("compare-toggle").setAttribute("aria-pressed", String(this.state.compare));
    this.syncUrl();
    if (this.state.compare && this.request) this.compare.load(this.request, initOf(this.state));
    if (!this.state.compare) this.compare.cancel(false);
    // opened below Training: bring it into view, where its progress shows. At once, as the
    // lesson scrolls: views drawing as a smooth scroll passes them shift it off its target
    if (this.state.compare) $("compare-section").scrollIntoView({ block: "start" });
  }

  /** Train the RNN, LSTM and GRU with the training settings, one after another. */
  async trainCompare() {
    let body;
    try {
      body = trainRequest(this.state);
    } catch (err) {
      this.showError(err);
      return;
    }
    $("compare-train").disabled = true;
    try {
      await this.compare.train(body);
    } finally {
      $("compare-train").disabled = false;
    }
  }

  /** The edits in effect changed: Undo and Reset edits, the request behind exports, the link. */
  editsChanged(edits) {
    $("undo").disabled = $("reset-edits").disabled = edits.length === 0;
    if (this.request) this.request = { ...this.request, inputs: this.session.currentInputs() };
    this.state.edits = encodeEdits(edits.map((e) => e.command));
    this.syncUrl();
  }

  async undo() {
    try {
      if (await this.session.undo()) this.notice("Last edit undone.");
    } catch (err) {
      this.showError(err);
    }
  }

  async resetEdits() {
    try {
      if (await this.session.resetEdits()) this.notice("Every edit dropped: back to the configured network and input.");
    } catch (err) {
      this.showError(err);
    }
  }

  async trained(modelId, summary) {
    this.state.modelId = modelId;
    this.state.trained = encodeTrained(summary);
    this.setModelStatus(this.trainedText(summary, modelId));
    this.syncUrl();
    await this.loadTrace();
  }

  /** What is known of trained weights, in words: a diverged run says so. */
  trainedText(summary, modelId) {
    const loss = summary.loss == null ? "not finite" : Number(summary.loss).toPrecision(3);
    const what = `${summary.task}, ${summary.steps} steps, final training loss ${loss}`;
    if (summary.diverged) {
      return `Training diverged (${what}): these weights are what it left, not a trained network. Lower the learning rate or clip the gradient norm and train again.`;
    }
    return `Trained weights loaded (${what}; model ${modelId.slice(0, 12)}…). Share the link to open them anywhere.`;
  }

  /** A trained link's loss curve, as far as the link keeps it. */
  showTrainedHistory() {
    const trained = this.state.modelId && decodeTrained(this.state.trained);
    if (trained && trained.history.length) this.trainingView.showHistory(trained.history);
  }

  /** Back to weights drawn from the settings. */
  async removeWeights() {
    Object.assign(this.state, { modelId: "", trained: "", cursor: 0 });
    this.setModelStatus("");
    this.syncUrl();
    await this.loadTrace();
  }

  // ------------------------------------------------------------------ weights, share, export

  async upload(file) {
    if (!file) return;
    this.clearError();
    try {
      const answer = await api.uploadModel(file, { nonlinearity: this.state.cell === "rnn_relu" ? "relu" : "tanh" });
      const c = answer.config;
      Object.assign(this.state, { modelId: answer.model_id, trained: "", cell: c.cell, hiddenSize: c.hidden_size, numLayers: c.num_layers, bidirectional: c.bidirectional });
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

  /** The loaded-weights line, with Remove while weights are loaded. */
  setModelStatus(text) {
    const el = $("model-status");
    el.replaceChildren(text);
    if (!text || !this.state.modelId) return;
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove-weights", textContent: "Remove" });
    remove.setAttribute("aria-label", "Remove the loaded weights");
    remove.addEventListener("click", () => this.removeWeights());
    el.append(" ", remove);
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
      this.notice(`Link copied: it opens this exact network, input, seed and weights, your edits included.${kept}`);
    } catch {
      this.notice(`Share this link: ${url}${kept}`);
    }
  }

  download(blob, name) {
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  exportJson() {
    if (!this.model) return;
    // the trace on screen already has the edits' effect; the edits themselves go with it
    const edits = this.session.edits.map(({ command, old }) => ({ ...command, old }));
    this.download(new Blob([JSON.stringify({ ...this.model.toJSON(), edits })], { type: "application/json" }), "trace.json");
  }

  /** The trace on screen as .npz: the edited inputs, and edited weights stored as a model. */
  async exportNpz() {
    if (!this.request) return;
    try {
      this.download(await api.downloadTraceNpz(await this.session.currentRequest()), "trace.npz");
    } catch (err) {
      this.showError(err);
    }
  }

  /** The unrolled network as drawn now: the picture at the cursor. */
  exportPng() {
    const canvas = document.querySelector("#unrolled canvas.unrolled-main");
    canvas?.toBlob((blob) => blob && this.download(blob, `unrolled-step-${this.player.cursor + 1}.png`), "image/png");
  }

  /** The current network's weights, edits included, as .safetensors. */
  async downloadWeights() {
    if (!this.request) return;
    try {
      const id = await this.session.save();
      this.download(await api.downloadWeights(id), `unroll-${this.request.config.cell}-${id.slice(0, 8)}.safetensors`);
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
    const on = (id, fn) => $(id).addEventListener("click", fn);
    on("play", () => this.player.toggle());
    on("step-forward", () => this.player.step(1));
    on("step-back", () => this.player.step(-1));
    on("reset", () => this.player.seek(0));
    on("run", () => this.player.seek(Number.MAX_SAFE_INTEGER));
    on("share", () => this.share());
    on("to-train", (e) => {
      // the Train button lives with the settings, folded away on a phone: open them first
      e.preventDefault();
      $("settings-drawer").open = true;
      $("train").scrollIntoView({ block: "center" });
      $("train").focus({ preventScroll: true });
    });
    on("more-actions", () => {
      const nav = $("more-actions").parentElement;
      $("more-actions").setAttribute("aria-expanded", String(nav.classList.toggle("open")));
    });
    on("export-json", () => this.exportJson());
    on("export-npz", () => this.exportNpz());
    on("export-weights", () => this.downloadWeights());
    on("export-png", () => this.exportPng());
    on("undo", () => this.undo());
    on("reset-edits", () => this.resetEdits());
    on("compare-toggle", () => this.toggleCompare());
    on("compare-train", () => this.trainCompare());
    on("error-close", () => this.clearError());
    on("mode-lesson", () => this.setLessonMode(true));
    on("mode-free", () => this.setLessonMode(false));
    $("upload").addEventListener("change", (e) => this.upload(e.target.files[0]));
    this.player.bindKeys(document);
  }

  start() {
    // hidden playback has no keys either: the link shows the step it was made at
    this.player.keysEnabled = !this.controls.applyHidden().has("playback");
    const trained = this.state.modelId && decodeTrained(this.state.trained);
    if (trained) {
      const text = this.trainedText(trained, this.state.modelId);
      this.setModelStatus(text);
      const curve = trained.history.length ? "A few points of its loss curve are drawn below." : "Its loss curve is not in the link.";
      $("train-status").textContent = `${text} ${curve}`;
    } else if (this.state.modelId) {
      this.setModelStatus(`Using stored weights (model ${this.state.modelId.slice(0, 12)}…).`);
    }
    $("compare-section").hidden = !this.state.compare;
    $("compare-toggle").setAttribute("aria-pressed", String(this.state.compare));
    if (window.innerWidth <= PHONE_WIDTH) $("settings-drawer").open = false; // the network first
    if (this.state.fixedScale) this.applyScale();
    // a first visit (no settings in the link) or a chapter link opens the lesson
    if (this.state.chapter || (location.search === "" && !remembered(LEFT_LESSON))) this.setLessonMode(true);
    else this.loadTrace();
  }
}

/** A flag kept in this browser (storage can be refused: then nothing is kept). */
function remember(key, on) {
  try {
    if (on) localStorage.setItem(key, "1");
    else localStorage.removeItem(key);
  } catch {
    // private mode or storage off: the lesson opens at / every time
  }
}

function remembered(key) {
  try {
    return localStorage.getItem(key) === "1";
  } catch {
    return false;
  }
}

function boot() {
  const app = (window.unroll = new App());
  app.start();
  // Plotly runs once the first picture is up (or after a second without one)
  const plotlyDue = new Promise((resolve) => {
    app.firstPicture = resolve;
    setTimeout(resolve, 1000);
  });
  plotlyDue
    .then(whenPlotly)
    .then(() => (app.trainingView.show(), app.showTrainedHistory()))
    .catch((err) => app.showError(err));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();

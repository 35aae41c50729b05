// Text you can read: a character model's input text with each character coloured by one
// hidden unit's activation (the "cells that track quotes" view), its top five guesses for
// the next character at the cursor, and text sampled from it at a chosen temperature.
//
// Consumes POST /api/v1/text/guesses ({vocabulary, chars (T, 5), probs (T, 5)}), POST
// /api/v1/trace ({hidden (L, D, T, H)}, forward only) and POST /api/v1/text/sample ({text}).

import { el } from "../dom.js";

const DEFAULT_TEXT =
  "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\nRough winds do shake the darling buds of May,";
export const MAX_TEXT = 400; // characters read at once: one trace, drawn as one span each
const NEGATIVE = [33, 102, 172]; // activation -1
const POSITIVE = [178, 24, 43]; // activation +1

/** A background for an activation in [-1, 1]: blue below zero, white at zero, red above. */
export function activationColor(a) {
  if (a == null || !Number.isFinite(a)) return "#ffd43b"; // overflow stands out
  const f = Math.min(1, Math.abs(a));
  const end = a < 0 ? NEGATIVE : POSITIVE;
  // mix toward the end colour, kept light enough to read dark text on
  const mix = end.map((c) => Math.round(255 + (c - 255) * f * 0.75));
  return `rgb(${mix.join(", ")})`;
}

/** What a character looks like in the strip: a newline is shown, then broken. */
const shown = (ch) => (ch === "\n" ? "↵\n" : ch);
const named = (ch) => (ch === "\n" ? "newline" : ch === " " ? "space" : `'${ch}'`);

export class TextView {
  /**
   * @param {HTMLElement} container emptied and filled by the view
   * @param {{client: {postJSON: Function}, text?: string}} options client: see client.js
   */
  constructor(container, { client, text = DEFAULT_TEXT }) {
    this.container = container;
    this.client = client;
    this.model = null; // {modelId, config, context}
    this.text = text;
    this.hidden = null; // (L, D, T, H) for this.text
    this.guesses = null; // {chars (T, 5), probs (T, 5)}
    this.unit = { layer: 0, direction: 0, index: 0 };
    this.cursor = 0;
    this.seed = 0;
    this.generation = 0;
    this._build();
  }

  // ------------------------------------------------------------------ public API

  /**
   * A model trained on the `text` task.
   * @param {{modelId: string, config: object, context?: number}} model config: the model's
   *   config as the API gives it (train_config frame, GET /models/{id}); context: the
   *   characters it was trained on at once (the task's length, 40).
   */
  setModel({ modelId, config, context = 40 }) {
    this.model = { modelId, config, context };
    this.hidden = null;
    this.guesses = null;
    this.unit = { layer: config.num_layers - 1, direction: 0, index: null };
    this._fillUnitControls();
    return this.setText(this.text);
  }

  /** Read a text: its guesses and activations, then draw. At most MAX_TEXT characters. */
  async setText(text) {
    this.text = text.slice(0, MAX_TEXT);
    if (this.textarea.value !== this.text) this.textarea.value = this.text;
    this.cursor = Math.max(0, this.text.length - 1);
    if (!this.model) return this._hint("Train a network on the Next character task to read text with it.");
    if (!this.text) return this._hint("Type some text to read.");
    const generation = ++this.generation;
    this._error(null);
    const { modelId, config } = this.model;
    try {
      const guesses = await this.client.postJSON("/text/guesses", { model_id: modelId, text: this.text, top: 5 });
      if (generation !== this.generation) return;
      const index = new Map([...guesses.vocabulary].map((ch, i) => [ch, i]));
      const V = guesses.vocabulary.length;
      const inputs = [...this.text].map((ch) => {
        const row = new Array(V).fill(0);
        row[index.get(ch)] = 1;
        return row;
      });
      const trace = await this.client.postJSON("/trace", { config, model_id: modelId, inputs, jacobians: false });
      if (generation !== this.generation) return;
      this.guesses = guesses;
      this.hidden = trace.hidden;
      if (this.unit.index == null) this.unit.index = this._liveliestUnit();
      this.unitInput.value = String(this.unit.index);
      this._drawText();
      this._drawGuesses();
    } catch (err) {
      if (generation === this.generation) this._error(err);
    }
  }

  /** Colour the text by another unit. */
  setUnit({ layer = this.unit.layer, direction = this.unit.direction, index = this.unit.index }) {
    const H = this.model?.config.hidden_size ?? 1;
    this.unit = { layer, direction, index: Math.max(0, Math.min(H - 1, index)) };
    this.unitInput.value = String(this.unit.index);
    this._drawText();
  }

  /** Move the cursor: the guesses shown follow the character at `position` (0-based). */
  setCursor(position) {
    if (!this.text) return;
    const previous = this.cursor;
    this.cursor = Math.max(0, Math.min(this.text.length - 1, position));
    const spans = this.strip.children;
    spans[previous]?.classList.remove("cursor");
    spans[this.cursor]?.classList.add("cursor");
    spans[this.cursor]?.scrollIntoView?.({ block: "nearest" });
    this._drawGuesses();
  }

  /** Draw `length` characters after the text up to the cursor, at `temperature`. */
  async sample({ temperature = Number(this.temperatureInput.value), length = Number(this.lengthInput.value) } = {}) {
    if (!this.model) return null;
    const prompt = this.text.slice(0, this.cursor + 1) || " ";
    this.temperatureInput.value = String(temperature);
    this.temperatureInput.dispatchEvent(new Event("input"));
    this.sampleButton.disabled = true;
    this._error(null);
    try {
      const answer = await this.client.postJSON("/text/sample", {
        model_id: this.model.modelId,
        prompt,
        length,
        temperature,
        seed: this.seed,
        context: this.model.context,
      });
      this.sampleEl.replaceChildren(el("span", { className: "hint", textContent: prompt.slice(-40) }), el("strong", { textContent: answer.text }));
      this.sampleNote.textContent = `${length} characters at temperature ${temperature} (seed ${this.seed}; press again for another draw).`;
      this.seed += 1;
      return answer.text;
    } catch (err) {
      this._error(err);
      return null;
    } finally {
      this.sampleButton.disabled = false;
    }
  }

  // ------------------------------------------------------------------ helpers

  /** The unit whose activation varies most along the text: a likely place to start. */
  _liveliestUnit() {
    const series = this.hidden[this.unit.layer][this.unit.direction]; // (T, H)
    const H = series[0].length;
    let best = 0;
    let bestVar = -1;
    for (let h = 0; h < H; h++) {
      const v = series.map((row) => row[h] ?? 0);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0);
      if (variance > bestVar) [best, bestVar] = [h, variance];
    }
    return best;
  }

  _activations() {
    const { layer, direction, index } = this.unit;
    const rows = this.hidden[layer][direction]; // (T, H)
    const values = rows.map((row) => row[index]);
    // ReLU states are unbounded: scale by the largest; tanh-bounded states keep [-1, 1]
    const scale = this.model.config.cell === "rnn_relu" ? Math.max(1e-12, ...values.map((v) => Math.abs(v ?? 0))) : 1;
    return values.map((v) => (v == null ? null : v / scale));
  }

  // ------------------------------------------------------------------ drawing

  _build() {
    this.container.replaceChildren();
    this.container.classList.add("sv", "sv-textview");
    this.textarea = el("textarea", { rows: 3, value: this.text });
    this.textarea.setAttribute("aria-label", "Text to read");
    const read = el("button", { type: "button", textContent: "Read this text" });
    read.addEventListener("click", () => this.setText(this.textarea.value));
    this.layerSelect = el("select");
    this.layerSelect.setAttribute("aria-label", "Layer and direction");
    this.layerSelect.addEventListener("change", () => {
      const [layer, direction] = this.layerSelect.value.split(",").map(Number);
      this.setUnit({ layer, direction });
    });
    this.layerLabel = el("label", { className: "sv-field", hidden: true }, ["Layer ", this.layerSelect]);
    this.unitInput = el("input", { type: "number", min: 0, step: 1, value: "0" });
    this.unitInput.addEventListener("change", () => {
      const v = Number(this.unitInput.value);
      if (Number.isInteger(v)) this.setUnit({ index: v });
    });
    const prev = el("button", { type: "button", textContent: "◀", title: "Previous unit" });
    prev.setAttribute("aria-label", "Previous unit");
    prev.addEventListener("click", () => this.setUnit({ index: this.unit.index - 1 }));
    const next = el("button", { type: "button", textContent: "▶", title: "Next unit" });
    next.setAttribute("aria-label", "Next unit");
    next.addEventListener("click", () => this.setUnit({ index: this.unit.index + 1 }));
    const lively = el("button", { type: "button", textContent: "Liveliest unit" });
    lively.addEventListener("click", () => this.hidden && this.setUnit({ index: this._liveliestUnit() }));
    this.strip = el("div", { className: "sv-text", tabIndex: 0 });
    this.strip.setAttribute("aria-label", "The text, each character coloured by the chosen unit; arrow keys move the cursor");
    this.strip.addEventListener("click", (e) => {
      const t = e.target.dataset?.t;
      if (t != null) this.setCursor(Number(t));
    });
    this.strip.addEventListener("keydown", (e) => {
      if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
        e.preventDefault();
        this.setCursor(this.cursor + (e.key === "ArrowLeft" ? -1 : 1));
      }
    });
    this.guessHead = el("p", { className: "sv-guess-head" });
    this.guessList = el("ol", { className: "sv-guesses" });
    this.temperatureInput = el("input", { type: "range", min: 0, max: 2, step: 0.1, value: "0.8" });
    this.temperatureInput.setAttribute("aria-label", "Temperature");
    const temperatureValue = el("output", { textContent: "0.8" });
    this.temperatureInput.addEventListener("input", () => (temperatureValue.textContent = this.temperatureInput.value));
    this.lengthInput = el("input", { type: "number", min: 1, max: 2000, step: 1, value: "200" });
    this.sampleButton = el("button", { type: "button", className: "primary", textContent: "Sample" });
    this.sampleButton.addEventListener("click", () => this.sample());
    this.sampleEl = el("div", { className: "sv-sample" });
    this.sampleNote = el("p", { className: "hint" });
    this.hintEl = el("p", { className: "hint" });
    this.errorEl = el("p", { className: "sv-error", hidden: true });
    this.errorEl.setAttribute("role", "alert");
    const scale = el("div", { className: "sv-scale" }, ["−1", el("span", { className: "sv-scale-bar" }), "+1", " activation of the chosen unit"]);
    const explain = el("details", { className: "explain" }, [
      el("summary", { textContent: "What am I seeing?" }),
      el("p", {
        textContent:
          "Each character is coloured by one hidden unit's activation just after the network read it. Step through " +
          "the units: some switch on inside a word and off at a space, some count along a line and reset at a line " +
          "break, the way Karpathy's LSTM found cells that track quotes and line length. Click a character to see what " +
          "the network expects next. Sampling draws each next character from those guesses: a low temperature " +
          "sharpens them (safe, repetitive text), a high one flattens them (adventurous, misspelt).",
      }),
    ]);
    this.container.append(
      this.textarea,
      el("div", { className: "sv-actions" }, [
        read,
        this.layerLabel,
        el("span", { className: "sv-field" }, [el("label", { className: "sv-field" }, ["Unit ", this.unitInput]), prev, next]),
        lively,
      ]),
      this.errorEl,
      this.hintEl,
      scale,
      this.strip,
      this.guessHead,
      this.guessList,
      el("h3", { className: "sv-chart-title", textContent: "Text written by the network" }),
      el("div", { className: "sv-actions" }, [
        el("label", { className: "sv-field" }, ["Temperature ", this.temperatureInput, temperatureValue]),
        el("label", { className: "sv-field" }, ["Characters ", this.lengthInput]),
        this.sampleButton,
      ]),
      this.sampleEl,
      this.sampleNote,
      explain,
    );
    this._hint("Train a network on the Next character task to read text with it.");
  }

  _fillUnitControls() {
    const c = this.model.config;
    const D = c.bidirectional ? 2 : 1;
    const options = [];
    for (let l = 0; l < c.num_layers; l++) {
      for (let d = 0; d < D; d++) {
        const label = `${l + 1}${D === 2 ? (d ? " ←" : " →") : ""}`;
        options.push(el("option", { value: `${l},${d}`, textContent: label }));
      }
    }
    this.layerSelect.replaceChildren(...options);
    this.layerSelect.value = `${this.unit.layer},${this.unit.direction}`;
    this.layerLabel.hidden = options.length < 2;
    this.unitInput.max = String(c.hidden_size - 1);
  }

  _hint(text) {
    this.hintEl.textContent = text;
    this.hintEl.hidden = !text;
  }

  _drawText() {
    if (!this.hidden) return;
    this._hint("");
    const values = this._activations();
    const { layer, direction, index } = this.unit;
    const spans = [...this.text].map((ch, t) => {
      const span = el("span", { className: "sv-char", textContent: shown(ch) });
      span.dataset.t = String(t);
      span.style.background = activationColor(values[t]);
      span.title = `${named(ch)} at ${t + 1}: unit ${index} = ${values[t] == null ? "not finite" : values[t].toFixed(2)}`;
      if (t === this.cursor) span.classList.add("cursor");
      return span;
    });
    this.strip.replaceChildren(...spans);
    this.strip.dataset.unit = `${layer},${direction},${index}`;
  }

  _drawGuesses() {
    if (!this.guesses) return;
    const t = this.cursor;
    const chars = this.guesses.chars[t];
    const probs = this.guesses.probs[t];
    const actual = this.text[t + 1];
    const before = this.text.slice(Math.max(0, t - 24), t + 1).replace(/\n/g, "↵");
    this.guessHead.textContent = `After “…${before}” the network's five likeliest next characters${actual != null ? ` (the text goes on with ${named(actual)})` : ""}:`;
    const items = chars.map((ch, i) => {
      const bar = el("span", { className: "sv-guess-bar" });
      bar.style.width = `${Math.max(1, probs[i] * 100)}%`;
      const item = el("li", {}, [
        el("span", { className: "sv-guess-char", textContent: ch === "\n" ? "↵" : ch === " " ? "␣" : ch, title: named(ch) }),
        el("span", {}, [bar]),
        el("span", { textContent: `${(probs[i] * 100).toFixed(1)}%` }),
      ]);
      if (ch === actual) item.classList.add("sv-guess-right");
      return item;
    });
    this.guessList.replaceChildren(...items);
  }

  _error(err) {
    this.errorEl.hidden = !err;
    this.errorEl.textContent = err ? err.message : "";
  }
}

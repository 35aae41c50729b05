// Your own series, three ways: upload a CSV (POST /api/v1/series: every bad line is listed
// by number, none dropped), paste numbers (checked by the server's rules: every bad value
// named by position), or draw one. Each is checked against the page's window (sequence
// length, horizon, held-out fraction) with POST /api/v1/tasks/custom/sample, so the length
// is honoured or the server's reason is shown, and handed on through `onSeries`.

import { DrawPad } from "./draw_pad.js";
import { el } from "../dom.js";

const SEPARATORS = /[\s,;]+/; // as app/rnn/series.py splits pasted text
const MAX_DRAWN = 2000;

/** "position 2: 'abc' is not a finite number" items out of a task.series 422's detail. */
export function positionErrors(detail) {
  const body = detail.replace(/^[\w.]+: /, "");
  return body.split(/; (?=position \d+:)/).filter((part) => /^position \d+:/.test(part));
}

export class SeriesInput {
  /**
   * @param {HTMLElement} container emptied and filled by the widget
   * @param {{client: {postJSON: Function, uploadSeries: Function},
   *          length?: number, horizon?: number, testFraction?: number, points?: number,
   *          onSeries?: (result: SeriesResult) => void}} options
   *   length, horizon, testFraction: the custom task's window (the page's controls);
   *   points: values a drawing becomes (200).
   * SeriesResult: {series: number[], dates: string[]|null, source: "csv"|"pasted"|"drawn",
   *   label: string, fits: boolean, reason: string|null, params: object|null}
   *   `params` (when it fits) is the task's own description: train_values, test_values...
   */
  constructor(container, { client, length = 20, horizon = 1, testFraction = 0.2, points = 200, onSeries = () => {} }) {
    this.container = container;
    this.client = client;
    this.window = { length, horizon, testFraction };
    this.onSeries = onSeries;
    this.current = null; // {series, dates, source, label} last read, valid numbers
    this.result = null; // the last SeriesResult
    this.generation = 0;
    this._build(points);
  }

  // ------------------------------------------------------------------ public API

  /** The page's window changed: check the current series against it again. */
  setWindow({ length = this.window.length, horizon = this.window.horizon, testFraction = this.window.testFraction }) {
    this.window = { length, horizon, testFraction };
    return this.current ? this._check(this.current) : Promise.resolve(null);
  }

  /** Upload a CSV file (a File or Blob) and use its chosen column. */
  async useFile(file) {
    this._select("csv");
    const generation = ++this.generation;
    this._clearProblems();
    this._status(`Reading ${file.name || "the file"}…`);
    try {
      const answer = await this.client.uploadSeries(file);
      if (generation !== this.generation) return null;
      this.csv = { answer, name: file.name || "your file" };
      this.columnSelect.replaceChildren(...answer.columns.map((c) => el("option", { value: c.name, textContent: c.name })));
      this.columnLabel.hidden = answer.columns.length < 2;
      return this._useColumn(answer.columns[0].name);
    } catch (err) {
      if (generation !== this.generation) return null;
      this.csv = null;
      this.columnLabel.hidden = true;
      const lines = err.lines || [];
      this._problems(
        lines.length ? `${lines.length === 1 ? "One line" : `${lines.length} lines`} of ${file.name || "the file"} could not be read; fix ${lines.length === 1 ? "it" : "them"} and upload again:` : err.message,
        lines.map((l) => `line ${l.line}: ${l.reason}`),
      );
      this._status("");
      return null;
    }
  }

  /** Check pasted text by the server's rules and use it. */
  async useText(text) {
    this._select("paste");
    if (this.textarea.value !== text) this.textarea.value = text;
    const series = text.trim() ? text.trim().split(SEPARATORS).map(Number) : [];
    return this._check({ series, text, dates: null, source: "pasted", label: "your numbers" });
  }

  /** Use drawn values (or any list of numbers) as the series. */
  useValues(values, source = "drawn", label = "your drawing") {
    return this._check({ series: values, dates: null, source, label });
  }

  // ------------------------------------------------------------------ checks

  _useColumn(name) {
    const { answer, name: file } = this.csv;
    const column = answer.columns.find((c) => c.name === name);
    this.columnSelect.value = name;
    const span = answer.dates ? `, ${answer.dates[0]} to ${answer.dates[answer.dates.length - 1]}` : "";
    const label = `${file}, column ${name} (${answer.rows} rows${span})`;
    return this._check({ series: column.values, dates: answer.dates, source: "csv", label });
  }

  /** Ask the server whether the custom task takes this series with the page's window. */
  async _check(current) {
    const generation = ++this.generation;
    this._clearProblems();
    const { length, horizon, testFraction } = this.window;
    const params = {
      series: current.text ?? current.series,
      length,
      horizon,
      test_fraction: testFraction,
      ...(current.dates ? { dates: current.dates } : {}),
    };
    let answer = null;
    let failure = null;
    try {
      answer = await this.client.postJSON("/tasks/custom/sample", { params, count: 1 });
    } catch (err) {
      failure = err;
    }
    if (generation !== this.generation) return null;
    if (failure && failure.field === "task.series") {
      this.current = null;
      const items = positionErrors(failure.message);
      this._problems(items.length ? "These values are not numbers; nothing was dropped, fix them:" : failure.message, items);
      this._status("");
      return null;
    }
    this.current = current;
    const N = current.series.length;
    const result = {
      series: current.series,
      dates: current.dates,
      source: current.source,
      label: current.label,
      fits: !failure,
      reason: failure ? failure.message : null,
      params: answer ? answer.params : null,
    };
    this.result = result;
    if (failure) {
      this._status(`${N} values from ${current.label}. Sequence length ${length} does not fit: ${failure.message.replace(/^task\.length: /, "")}`, "bad");
    } else {
      const p = answer.params;
      const held = p.test_values ? `scored on the held-out last ${p.test_values}` : "no held-out part";
      this._status(`${N} values from ${current.label}. Sequence length ${length} (+${horizon} to forecast) fits: training on the first ${p.train_values}, ${held}.`, "ok");
    }
    this.onSeries(result);
    return result;
  }

  // ------------------------------------------------------------------ DOM

  _build(points) {
    this.container.replaceChildren();
    this.container.classList.add("sv", "sv-input");
    const tabs = [
      ["csv", "Upload a CSV"],
      ["paste", "Paste numbers"],
      ["draw", "Draw"],
    ];
    this.tabs = el("div", { className: "sv-tabs", role: "tablist" });
    this.panes = {};
    for (const [key, label] of tabs) {
      const tab = el("button", { type: "button", textContent: label, role: "tab" });
      tab.dataset.tab = key;
      tab.addEventListener("click", () => this._select(key));
      this.tabs.append(tab);
    }
    // a tab list is one stop for Tab; the arrow keys move between its tabs
    this.tabs.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      const keys = tabs.map(([key]) => key);
      const at = keys.indexOf(this.selected);
      const next = keys[(at + (e.key === "ArrowRight" ? 1 : keys.length - 1)) % keys.length];
      this._select(next);
      this.tabs.querySelector(`[data-tab="${next}"]`).focus();
    });

    // CSV
    this.fileInput = el("input", { type: "file", accept: ".csv,.txt,text/csv,text/plain" });
    this.fileInput.addEventListener("change", () => this.fileInput.files[0] && this.useFile(this.fileInput.files[0]));
    this.columnSelect = el("select");
    this.columnSelect.addEventListener("change", () => this.csv && this._useColumn(this.columnSelect.value));
    this.columnLabel = el("label", { className: "sv-field", hidden: true }, ["Column ", this.columnSelect]);
    const drop = el("div", { className: "sv-drop" }, [
      el("label", { className: "sv-file" }, ["Choose a CSV file", this.fileInput]),
      el("p", { className: "hint", textContent: "or drop it here. An optional header row, an optional date column (YYYY-MM-DD), one or more numeric columns." }),
    ]);
    drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files[0]) this.useFile(e.dataTransfer.files[0]);
    });
    this.panes.csv = el("div", { className: "sv-pane" }, [drop, this.columnLabel]);

    // paste
    this.textarea = el("textarea", { rows: 4, placeholder: "0.1, 0.4, 0.35, 0.8, 0.7, …" });
    this.textarea.setAttribute("aria-label", "Your numbers");
    let timer = 0;
    this.textarea.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.textarea.value.trim() && this.useText(this.textarea.value), 500);
    });
    const check = el("button", { type: "button", textContent: "Check and use" });
    check.addEventListener("click", () => (clearTimeout(timer), this.useText(this.textarea.value)));
    this.panes.paste = el("div", { className: "sv-pane" }, [
      el("p", { className: "hint", textContent: "Numbers separated by commas, semicolons, spaces or new lines. Anything else is named by its position, never dropped." }),
      this.textarea,
      el("div", { className: "sv-actions" }, [check]),
    ]);

    // draw
    const padHost = el("div");
    this.pad = new DrawPad(padHost, { count: points, onStroke: (values) => this.useValues(values) });
    this.pointsInput = el("input", { type: "number", min: 2, max: MAX_DRAWN, step: 1, value: String(points) });
    this.pointsInput.addEventListener("change", () => {
      const n = Number(this.pointsInput.value);
      if (!Number.isInteger(n) || n < 2 || n > MAX_DRAWN) {
        this.pointsInput.value = String(this.pad.count);
        return;
      }
      this.pad.setCount(n);
      if (this.pad.values().length) this.useValues(this.pad.values());
    });
    const clear = el("button", { type: "button", textContent: "Clear" });
    clear.addEventListener("click", () => this.pad.clear());
    this.panes.draw = el("div", { className: "sv-pane" }, [
      padHost,
      el("div", { className: "sv-actions" }, [el("label", { className: "sv-field" }, ["Values ", this.pointsInput]), clear]),
    ]);

    this.statusEl = el("p", { className: "sv-status" });
    this.statusEl.setAttribute("aria-live", "polite");
    this.problemEl = el("div", { className: "sv-error", hidden: true });
    this.problemEl.setAttribute("role", "alert");
    for (const pane of Object.values(this.panes)) pane.setAttribute("role", "tabpanel");
    this.container.append(this.tabs, ...Object.values(this.panes), this.problemEl, this.statusEl);
    this._select("csv");
  }

  _select(key) {
    this.selected = key;
    for (const tab of this.tabs.children) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === key));
      tab.tabIndex = tab.dataset.tab === key ? 0 : -1;
    }
    for (const [name, pane] of Object.entries(this.panes)) pane.hidden = name !== key;
  }

  _status(text, kind = "") {
    this.statusEl.textContent = text;
    this.statusEl.className = `sv-status ${kind ? `sv-${kind}` : ""}`;
  }

  _clearProblems() {
    this.problemEl.hidden = true;
    this.problemEl.replaceChildren();
  }

  _problems(head, items) {
    this.problemEl.hidden = false;
    const list = el("ul", { className: "sv-lines" }, items.map((text) => el("li", { textContent: text })));
    this.problemEl.replaceChildren(el("p", { textContent: head }), ...(items.length ? [list] : []));
  }
}

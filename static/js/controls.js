// The settings form: shows the state in the controls and writes edits back to it.

import { FIELDS, hiddenControls } from "./state.js";

const NUMBER_DEBOUNCE_MS = 400; // number inputs are read once their value has settled this long
const DESCRIPTIONS_URL = { cells: "/api/v1/cells", tasks: "/api/v1/tasks" };

// Controls a teacher can hide in a shared link (the data-control names in the page). A link
// that hides any of them hides the Classroom box too, so a student cannot untick them.
const HIDEABLE = {
  model: "Network",
  data: "Task and input",
  init: "Initial weights",
  training: "Training",
  playback: "Playback",
  compare: "Compare",
  editors: "Input and weight editors",
  share: "Share",
  export: "Export",
};

// the API's parameter names in the task descriptions: the setting's current value where the
// page has it ("the next 1 values"), else plain words (a name read as prose did not parse)
const STATE_OF_PARAM = { horizon: "horizon", length: "length", symbols: "symbols", delay: "delay", lag: "lag", gap: "gap", test_fraction: "testFraction", normalisation: "normalisation" };
const PARAM_WORDS = { split: "the split date", series: "series", dates: "dates", sequences: "sequences", labels: "labels" };
const plainWords = (text, state) =>
  text.replace(/`([^`]*)`/g, (_, name) => {
    const value = STATE_OF_PARAM[name] ? state[STATE_OF_PARAM[name]] : null;
    return value != null && value !== "" ? String(value) : PARAM_WORDS[name] || name.replace(/_/g, " ");
  });

// the settings whose range the server's caps (GET /api/v1/limits) decide
const LIMITS = {
  hiddenSize: "max_hidden_size",
  numLayers: "max_num_layers",
  length: "max_sequence_length",
  batchSize: "max_batch_size",
  steps: "max_train_steps",
  truncate: "max_truncate",
};

export class Controls {
  /**
   * @param {Document} root
   * @param {object} state the settings table (mutated in place)
   * @param {{onChange: (key: string) => void}} options
   */
  constructor(root, state, { onChange }) {
    this.root = root;
    this.state = state;
    this.onChange = onChange;
    this.descriptions = { cells: {}, tasks: {} };
    this.inputs = {};
    this.timers = {};
    for (const key of Object.keys(FIELDS)) {
      const el = root.getElementById(key);
      if (!el) continue;
      this.inputs[key] = el;
      if (el.type === "number") {
        // a spinner click is a change: wait until the clicking stops, then send one configure
        const later = () => {
          clearTimeout(this.timers[key]);
          this.timers[key] = setTimeout(() => ((this.timers[key] = null), this.read(key)), NUMBER_DEBOUNCE_MS);
        };
        el.addEventListener("input", later);
        el.addEventListener("change", later);
        el.addEventListener("keydown", (e) => e.key === "Enter" && (clearTimeout(this.timers[key]), this.read(key)));
      } else {
        el.addEventListener("change", () => this.read(key));
      }
    }
    this.buildHideList();
    this.render();
    setTimeout(() => (this.loadDescriptions(), this.loadLimits()), 1000); // after the first picture's requests
  }

  /** The server's caps become the controls' ranges (a link over them gets the server's refusal). */
  async loadLimits() {
    try {
      const limits = await (await fetch("/api/v1/limits")).json();
      for (const [key, name] of Object.entries(LIMITS)) {
        const cap = limits[name];
        if (!Number.isFinite(cap) || !FIELDS[key]) continue;
        FIELDS[key][1].max = cap;
        if (this.inputs[key]) this.inputs[key].max = String(cap);
      }
    } catch {
      // the table's own ranges stand; the server still refuses what is over its caps
    }
  }

  /** Copy the state into every control. */
  render() {
    for (const [key, el] of Object.entries(this.inputs)) {
      if (el.type === "checkbox") el.checked = Boolean(this.state[key]);
      else el.value = String(this.state[key]);
    }
    const speed = this.root.getElementById("speed");
    if (speed) speed.value = String(this.state.speed);
    this.showTaskFields();
    this.describe();
  }

  /** Read one control back into the state, rejecting values outside the field's range. */
  read(key) {
    const el = this.inputs[key];
    const kind = FIELDS[key][1];
    let value;
    if (kind.type === "bool") value = el.checked;
    else if (kind.type === "int" || kind.type === "number") {
      value = Number(el.value);
      const ok = Number.isFinite(value) && value >= kind.min && value <= kind.max && (kind.type === "number" || Number.isInteger(value));
      el.setCustomValidity(ok ? "" : `between ${kind.min} and ${kind.max}`);
      this._fieldError(el, ok ? "" : `Must be ${kind.type === "int" ? "a whole number " : ""}from ${kind.min} to ${kind.max}: still using ${this.state[key]}.`);
      if (!ok) {
        el.reportValidity();
        return;
      }
    } else value = el.value;
    if (this.state[key] === value) return;
    const old = this.state[key];
    this.state[key] = value;
    if (key === "task") this.showTaskFields();
    this.describe();
    this.onChange(key, old);
  }

  /** A refused value's reason beside its field, until a value is taken (the browser's
   * own bubble fades in a few seconds and the field would go on showing what is not used). */
  _fieldError(el, text) {
    const label = el.closest("label") ?? el.parentElement;
    let note = label.querySelector(".field-error");
    if (!text) return note?.remove();
    if (!note) {
      note = Object.assign(document.createElement("span"), { className: "field-error", role: "alert" });
      label.append(note);
    }
    note.textContent = text;
  }

  /** Read every number still waiting out its debounce now: a click on Train or Run uses
   * what was typed, not the value before it. */
  flush() {
    for (const [key, timer] of Object.entries(this.timers)) {
      if (!timer) continue;
      clearTimeout(timer);
      this.timers[key] = null;
      this.read(key);
    }
  }

  showTaskFields() {
    for (const el of this.root.querySelectorAll("[data-task]")) {
      el.hidden = !el.dataset.task.split(" ").includes(this.state.task);
    }
  }

  async loadDescriptions() {
    try {
      const [cells, tasks] = await Promise.all(
        Object.values(DESCRIPTIONS_URL).map((url) => fetch(url).then((r) => r.json())),
      );
      for (const c of cells) this.descriptions.cells[c.name] = c.description;
      for (const t of tasks) this.descriptions.tasks[t.name] = t.description;
      this.describe();
    } catch {
      // descriptions are a nicety; the controls work without them
    }
  }

  describe() {
    const cell = this.root.getElementById("cell-description");
    const task = this.root.getElementById("task-description");
    if (cell) cell.textContent = this.descriptions.cells[this.state.cell] || "";
    if (task) task.textContent = plainWords(this.descriptions.tasks[this.state.task] || "", this.state);
  }

  /**
   * Hide what the link's `hide` list names; a link that hides anything hides the
   * Classroom box too (unticking there and reloading would bring the controls back).
   * @returns {Set<string>} the hidden names
   */
  applyHidden() {
    const hidden = hiddenControls(this.state);
    if (hidden.size) hidden.add("classroom");
    for (const el of this.root.querySelectorAll("[data-control]")) {
      if (hidden.has(el.dataset.control)) el.dataset.hidden = "true";
    }
    return hidden;
  }

  buildHideList() {
    const list = this.root.getElementById("hide-list");
    if (!list) return;
    const hidden = hiddenControls(this.state);
    for (const [name, title] of Object.entries(HIDEABLE)) {
      const label = this.root.createElement("label");
      const box = this.root.createElement("input");
      box.type = "checkbox";
      box.checked = hidden.has(name);
      box.setAttribute("aria-label", `Hide ${title} in the shared link`);
      box.addEventListener("change", () => {
        const set = hiddenControls(this.state);
        if (box.checked) set.add(name);
        else set.delete(name);
        this.state.hide = [...set].join(",");
        this.onChange("hide");
      });
      label.append(box, ` ${title}`);
      list.append(label);
    }
  }

  /** The speed slider lives with the transport but is a setting too. */
  bindSpeed(el) {
    el.addEventListener("input", () => {
      this.state.speed = Number(el.value);
      this.onChange("speed");
    });
  }
}

// The form under the unrolled view that changes one input value x_t[feature].

const fmt = (v) => (v == null || !Number.isFinite(v) ? "overflow (not finite)" : Number(v).toPrecision(4));

/** The form under the plot that changes one input value. */
export class InputEditor {
  constructor(container, onEditInput) {
    this.onEditInput = onEditInput;
    this.model = null;
    this.form = Object.assign(document.createElement("form"), { className: "input-editor", noValidate: true });
    this.form.dataset.control = "editors"; // a classroom link can hide it
    this.form.innerHTML = `<span class="input-editor-title">Edit an input</span>
      <label>Position t <input name="position" type="number" min="0" step="1" value="0"></label>
      <label>Feature <select name="feature"></select></label>
      <label>Value <input name="value" type="number" step="any"></label>
      <button type="submit">Apply input edit</button>
      <span class="input-editor-hint" aria-live="polite">Click an input node x<sub>t</sub> to pick it.</span>`;
    container.insertAdjacentElement("afterend", this.form);
    this.fields = this.form.elements;
    this.hint = this.form.querySelector(".input-editor-hint");
    this.form.addEventListener("submit", (e) => this._submit(e));
    for (const name of ["position", "feature"]) this.fields[name].addEventListener("change", () => this._showCurrent());
  }

  setModel(model) {
    this.model = model;
    const features = model.trace.inputs[0].length;
    const select = this.fields.feature;
    if (select.options.length !== features) {
      select.replaceChildren(...Array.from({ length: features }, (_, f) => new Option(String(f), String(f))));
    }
    this.fields.position.max = String(model.T - 1);
    this._showCurrent();
  }

  /** Pick position t (from a click on x_t) and put the cursor in the value box. */
  open(position) {
    this.fields.position.value = String(position);
    this._showCurrent();
    this.fields.value.focus();
    this.fields.value.select();
  }

  _read() {
    const [position, feature] = [Number(this.fields.position.value), Number(this.fields.feature.value || 0)];
    return { position, feature, ok: this.model && Number.isInteger(position) && position >= 0 && position < this.model.T };
  }

  _showCurrent() {
    const { position, feature, ok } = this._read();
    if (!ok) return;
    const value = this.model.trace.inputs[position][feature];
    this.fields.value.value = String(value);
    // "is now" only once it was edited: before, it is simply the input's value
    const edited = this.editedAt === `${position},${feature}`;
    this.hint.textContent = edited ? `x${position}[${feature}] is now ${fmt(value)}.` : `x${position}[${feature}] = ${fmt(value)}: type a new value and apply it.`;
  }

  _submit(event) {
    event.preventDefault();
    const { position, feature, ok } = this._read();
    const value = Number(this.fields.value.value);
    if (!ok) this.hint.textContent = `Position must be a whole number from 0 to ${this.model ? this.model.T - 1 : 0}.`;
    else if (this.fields.value.value.trim() === "" || !Number.isFinite(value)) this.hint.textContent = "Value must be a number.";
    else {
      this.hint.textContent = `Applying x${position}[${feature}] = ${value}…`;
      this.editedAt = `${position},${feature}`;
      // afterwards show the value in effect: the new one, or the old one if the edit was refused
      Promise.resolve(this.onEditInput(position, feature, value)).finally(() => this._showCurrent());
    }
  }
}


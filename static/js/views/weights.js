// The form that changes one weight: pick a parameter (PyTorch's name), a row and a column,
// type a value; the session recomputes the whole trace with it.

const GATES = { rnn_tanh: 1, rnn_relu: 1, lstm: 4, gru: 3 };

/** Every parameter's name and shape for a config, as PyTorch's state_dict lays them out. */
export function paramShapes(config) {
  const H = config.hidden_size;
  const G = GATES[config.cell];
  const D = config.bidirectional ? 2 : 1;
  const shapes = {};
  for (let l = 0; l < config.num_layers; l++) {
    for (let d = 0; d < D; d++) {
      const sfx = `l${l}${d === 1 ? "_reverse" : ""}`;
      shapes[`rnn.weight_ih_${sfx}`] = [G * H, l === 0 ? config.input_size : D * H];
      shapes[`rnn.weight_hh_${sfx}`] = [G * H, H];
      shapes[`rnn.bias_ih_${sfx}`] = [G * H];
      shapes[`rnn.bias_hh_${sfx}`] = [G * H];
    }
  }
  shapes["head.weight"] = [config.output_size, D * H];
  shapes["head.bias"] = [config.output_size];
  return shapes;
}

export class WeightEditor {
  /** @param {HTMLElement} container @param {{onEditWeight: (name, index, value) => Promise<object>}} options */
  constructor(container, { onEditWeight }) {
    this.onEditWeight = onEditWeight;
    this.shapes = {};
    this.form = Object.assign(document.createElement("form"), { className: "input-editor", noValidate: true });
    this.form.dataset.control = "editors"; // a classroom link can hide it
    this.form.innerHTML = `<span class="input-editor-title">Edit a weight</span>
      <label>Parameter <select name="name" aria-label="Parameter to edit"></select></label>
      <label>Row <input name="row" type="number" min="0" step="1" value="0"></label>
      <label>Column <input name="column" type="number" min="0" step="1" value="0"></label>
      <label>Value <input name="value" type="number" step="any" value="0"></label>
      <button type="submit">Apply weight edit</button>
      <span class="input-editor-hint" aria-live="polite"></span>`;
    container.append(this.form);
    this.fields = this.form.elements;
    this.hint = this.form.querySelector(".input-editor-hint");
    this.form.addEventListener("submit", (e) => this._submit(e));
    this.fields.name.addEventListener("change", () => this._limits());
  }

  setModel(model) {
    const shapes = paramShapes(model.config);
    // the same network (an edit's new trace, its diagnostics): the form and its hint stay
    if (JSON.stringify(shapes) === JSON.stringify(this.shapes)) return;
    this.shapes = shapes;
    const current = this.fields.name.value;
    const names = Object.keys(this.shapes);
    this.fields.name.replaceChildren(...names.map((n) => new Option(n, n)));
    this.fields.name.value = names.includes(current) ? current : "rnn.weight_hh_l0";
    this._limits();
  }

  _limits() {
    const shape = this.shapes[this.fields.name.value] || [1];
    this.fields.row.max = String(shape[0] - 1);
    this.fields.column.disabled = shape.length < 2;
    this.fields.column.max = String((shape[1] || 1) - 1);
    this.hint.textContent = `shape ${shape.join(" × ")}`;
  }

  async _submit(event) {
    event.preventDefault();
    const name = this.fields.name.value;
    const shape = this.shapes[name];
    const index = shape.length === 2
      ? [Number(this.fields.row.value), Number(this.fields.column.value)]
      : [Number(this.fields.row.value)];
    const value = Number(this.fields.value.value);
    if (index.some((i, k) => !Number.isInteger(i) || i < 0 || i >= shape[k])) {
      this.hint.textContent = `Row and column must lie inside the shape ${shape.join(" × ")}.`;
      return;
    }
    if (this.fields.value.value.trim() === "" || !Number.isFinite(value)) {
      this.hint.textContent = "Value must be a number.";
      return;
    }
    this.hint.textContent = `Applying ${name}[${index.join(", ")}] = ${value}…`;
    const edit = await this.onEditWeight(name, index, value);
    this.hint.textContent = edit
      ? `${name}[${index.join(", ")}] is now ${value} (was ${Number(edit.old).toPrecision(4)}).`
      : `shape ${shape.join(" × ")}`;
  }
}

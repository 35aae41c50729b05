// Inside one step: the cell at one (layer, direction, position) as a diagram and its
// equations filled in with the live numbers of POST /api/v1/inspect: W_ih x_t, W_hh h_{t-1},
// both biases, each gate's pre-activation and value, c_t and h_t; in the backward phase the
// same cell with the gradients flowing back through it (dL/dh_t from outside and from the
// next step, dL/dc_t, each gate's pre-activation gradient, what goes back to h_{t-1}), the
// step's own share of dL/dW_hh and the one-step Jacobian norm.
//
// Wiring: `new CellInspector(container, {load})` where `load({layer, direction, position})`
// resolves to the /inspect answer for the page's current trace request (build the body with
// `inspectBody(traceBody, layer, direction, position)`); `setModel(model)` on every new
// trace (it re-inspects the open step); `inspect(layer, direction, position)` when a node
// is clicked; `update(cursor)` on every cursor move (the backward half shows once BPTT has
// reached the step). With more than `maxUnits` units, one unit (a select) is shown beside
// the norms of the whole vectors. Every number carries `data-term` and `data-value`.

import { el } from "../dom.js";

const SVG = "http://www.w3.org/2000/svg";
let arrowIds = 0; // each diagram's arrowhead marker needs an id of its own

const GATES = {
  input: { symbol: "i", act: "σ", role: "how much new content is written" },
  forget: { symbol: "f", act: "σ", role: "how much of c_{t-1} survives" },
  cell: { symbol: "g", act: "tanh", role: "the candidate content" },
  output: { symbol: "o", act: "σ", role: "how much of the cell is shown in h" },
  reset: { symbol: "r", act: "σ", role: "how much of h_{t-1} the candidate sees" },
  update: { symbol: "z", act: "σ", role: "how much of h_{t-1} is kept" },
  new: { symbol: "n", act: "tanh", role: "the candidate state" },
};

const EQUATIONS = {
  rnn_tanh: ["h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)"],
  rnn_relu: ["h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)"],
  lstm: [
    "i, f, o = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), g = tanh(…), row blocks i | f | g | o",
    "c_t = f ⊙ c_{t-1} + i ⊙ g",
    "h_t = o ⊙ tanh(c_t)",
  ],
  gru: [
    "r, z = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), row blocks r | z | n",
    "n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))",
    "h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}",
  ],
};

/** A number as the page shows it; null and non-finite as "overflow". */
export function formatNumber(v) {
  if (v == null || !Number.isFinite(v)) return "overflow";
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}

function norm(values) {
  if (values == null) return null;
  let s = 0;
  for (const v of values) {
    if (v == null || !Number.isFinite(v)) return null;
    s += v * v;
  }
  return Math.sqrt(s);
}

/** A number cell that tests and screen readers can find: data-term, data-value. */
function num(term, value) {
  return el("td", {
    className: "num",
    textContent: formatNumber(value),
    dataset: { term, value: value == null ? "null" : String(value) },
  });
}

/** A table in a box of its own width that scrolls sideways if the table is wider: the
 * page and the text around it stay put. */
function scroller(table) {
  return el("div", { className: "table-scroll" }, [table]);
}

/** The /inspect request for one step of the page's trace request. */
export function inspectBody(traceBody, layer, direction, position) {
  const { truncate, jacobians, ...rest } = traceBody; // the step is shown with full BPTT
  return { ...rest, layer, direction, position };
}

export class CellInspector {
  /**
   * @param {HTMLElement} container
   * @param {{load?: (where: {layer: number, direction: number, position: number}) => Promise<object>,
   *   maxUnits?: number}} [options]
   */
  constructor(container, { load = null, maxUnits = 8, cursor = null } = {}) {
    this.container = container;
    this.load = load;
    this.cursor = cursor; // () => the timeline's cursor now: a step opened after a Run shows its gradients at once
    this.maxUnits = maxUnits;
    this.model = null;
    this.where = null; // {layer, direction, position}
    this.pieces = null; // the /inspect answer on screen
    this.unit = 0;
    this.showBackward = false;
    this._request = 0;
    this.container.classList.add("cell-inspector");
    this.container.replaceChildren(
      el("p", { className: "hint", textContent: "Click a node of the unrolled network to look inside that step." }),
    );
  }

  /** A new trace: the open step (if any) is inspected again with its numbers. */
  setModel(model) {
    this.model = model;
    if (this.where && this.load) {
      const { layer, direction, position } = this.where;
      if (layer < model.L && direction < model.D && position < model.T) {
        this.inspect(layer, direction, position);
        return;
      }
    }
    this.where = null;
  }

  /** Open one step: asks `load` for its pieces, then draws them. */
  async inspect(layer, direction, position) {
    this.where = { layer, direction, position };
    if (!this.load) return;
    const request = ++this._request;
    try {
      const pieces = await this.load({ layer, direction, position });
      if (request === this._request) this.show(pieces);
    } catch (err) {
      if (request !== this._request) return;
      this.container.replaceChildren(
        el("p", { className: "error-text", textContent: `This step cannot be shown: ${err.message}` }),
      );
    }
  }

  /** Draw an /inspect answer. */
  show(pieces) {
    this.pieces = pieces;
    this.where = { layer: pieces.layer, direction: pieces.direction, position: pieces.position };
    const H = pieces.h.length;
    if (this.unit >= H) this.unit = 0;
    const now = this.cursor?.();
    this.showBackward = now == null ? this.showBackward : this._backwardAt(now);
    this._render();
  }

  /** Which unit the tables show (all units have their norms beside). */
  setUnit(unit) {
    this.unit = unit;
    if (this.pieces) this._render();
  }

  /** The backward half appears once BPTT has reached the step at this cursor. */
  update(cursor) {
    if (!this.pieces) return;
    const back = this._backwardAt(cursor);
    if (back !== this.showBackward) {
      this.showBackward = back;
      this._render();
    }
  }

  /** True once BPTT has reached the open step at `cursor`. */
  _backwardAt(cursor) {
    const { layer, direction, position } = this.where;
    return this.pieces.backward != null && (!this.model || this.model.backwardDone(layer, direction, position, cursor));
  }

  // ------------------------------------------------------------------ drawing

  _render() {
    const p = this.pieces;
    const H = p.h.length;
    const names = p.gate_names.length ? p.gate_names : ["h"];
    const dir = p.direction === 1 ? " ←" : p.direction === 0 && this.model?.D === 2 ? " →" : "";
    const title = el("h3", {
      textContent: `${this._cellName(p.cell)}, layer ${p.layer + 1}${dir}, position t = ${p.position}`,
    });
    const parts = [title, this._equations(p), this._unitPicker(H), el("div", { className: "table-scroll diagram-scroll" }, [this._diagram(p, names)])];
    parts.push(this._forwardTable(p, names));
    parts.push(this._stateTable(p));
    if (this.showBackward && p.backward) parts.push(this._backwardTable(p, names));
    else if (p.backward) {
      parts.push(el("p", { className: "hint", textContent: "Play the backward pass to this step to see the gradients flowing back through it." }));
    }
    this.container.replaceChildren(...parts);
  }

  _cellName(cell) {
    return { rnn_tanh: "Elman RNN (tanh)", rnn_relu: "Elman RNN (ReLU)", lstm: "LSTM", gru: "GRU" }[cell];
  }

  _equations(p) {
    return el("div", { className: "equations" }, EQUATIONS[p.cell].map((line) => el("code", { textContent: line })));
  }

  _unitPicker(H) {
    const label = el("label", { className: "unit-picker" }, ["Unit "]);
    const select = el("select", { ariaLabel: "Unit to show" });
    for (let u = 0; u < H; u++) select.append(el("option", { value: String(u), textContent: String(u) }));
    select.value = String(this.unit);
    select.addEventListener("change", () => this.setUnit(Number(select.value)));
    label.append(select, ` of ${H}${H > this.maxUnits ? "; ‖·‖ columns cover every unit" : ""}`);
    return label;
  }

  /** One column per gate (or h_t), its terms summed down to the pre-activation and the
   * gate's value: four or five columns, which fit a phone's width. */
  _forwardTable(p, names) {
    const H = p.h.length;
    const at = (values, k) => values[k * H + this.unit];
    const rows = [
      ["W_ih x_t", "w_input", (name, k) => at(p.w_input, k)],
      ["W_hh h_{t-1}", "w_hidden", (name, k) => at(p.w_hidden, k)],
      ["b_ih", "b_input", (name, k) => at(p.b_input, k)],
      ["b_hh", "b_hidden", (name, k) => at(p.b_hidden, k)],
      ["= pre-activation", "pre", (name) => p.pre[name][this.unit]],
      ["value", "gate", (name) => (GATES[name] ? p.gates[name] : p.h)[this.unit]],
      ["‖value‖", "norm", (name) => norm(GATES[name] ? p.gates[name] : p.h)],
    ];
    const head = names.map((name) => {
      const g = GATES[name];
      const act = g ? g.act : p.cell === "rnn_relu" ? "relu" : "tanh";
      return el("th", { scope: "col", textContent: g ? `${g.symbol} (${name}), ${act}` : `h_t, ${act}`, title: g ? g.role : "" });
    });
    const body = rows.map(([label, term, value]) =>
      el("tr", { className: term === "pre" ? "sum" : "" }, [
        el("th", { scope: "row", textContent: label }),
        ...names.map((name, k) => num(`${term}:${name}`, value(name, k))),
      ]),
    );
    const caption = el("caption", {
      textContent: `Forward, unit ${this.unit}: in each column the four terms add up to the pre-activation, ` +
        "and the column's activation turns it into the value" +
        (p.cell === "gru" ? " (for n, the hidden side is scaled by r first)" : "") + ".",
    });
    return scroller(el("table", { className: "terms forward" }, [
      caption,
      el("thead", {}, [el("tr", {}, [el("th", { scope: "col", textContent: "" }), ...head])]),
      el("tbody", {}, body),
    ]));
  }

  _stateTable(p) {
    const rows = [["x_t", "x", p.x, 0], ["h_{t-1}", "h_prev", p.h_prev], ["h_t", "h", p.h]];
    if (p.c) rows.splice(2, 0, ["c_{t-1}", "c_prev", p.c_prev], ["c_t", "c", p.c]);
    const body = rows.map(([label, term, values]) =>
      el("tr", {}, [
        el("th", { scope: "row", textContent: label }),
        num(term, term === "x" ? values[Math.min(this.unit, values.length - 1)] : values[this.unit]),
        num(`norm:${term}`, norm(values)),
      ]),
    );
    body.push(el("tr", {}, [
      el("th", { scope: "row", textContent: "‖∂s_t/∂s_{t-1}‖₂", title: "the one-step Jacobian's norm: how much this step scales a gradient passing back through it" }),
      num("jacobian_norm", p.jacobian_norm),
      el("td"),
    ]));
    return scroller(el("table", { className: "terms states" }, [
      el("caption", { textContent: "States (the shown unit, and the norm of the whole vector)" }),
      el("thead", {}, [el("tr", {}, ["", "value", "‖·‖"].map((h) => el("th", { scope: "col", textContent: h })))]),
      el("tbody", {}, body),
    ]));
  }

  _backwardTable(p, names) {
    const b = p.backward;
    const H = p.h.length;
    const rows = [
      ["∂L/∂h_t (total)", "dh", b.dh],
      ["  from outside (head or layer above)", "dh_from_outside", b.dh_from_outside],
      ["  from the next step", "dh_from_next", b.dh_from_next],
    ];
    if (b.dc) rows.push(["∂L/∂c_t (total)", "dc", b.dc], ["  from c_{t+1}, through f", "dc_from_next", b.dc_from_next]);
    for (const [k, name] of names.entries()) {
      const label = GATES[name] ? GATES[name].symbol : "h";
      rows.push([`∂L/∂pre(${label})`, `d_pre_hidden:${name}`, b.d_pre_hidden.slice(k * H, (k + 1) * H)]);
    }
    rows.push(["∂L/∂h_{t-1} sent back", "dh_prev", b.dh_prev]);
    if (b.dc_prev) rows.push(["∂L/∂c_{t-1} sent back", "dc_prev", b.dc_prev]);
    const body = rows.map(([label, term, values]) =>
      el("tr", {}, [el("th", { scope: "row", textContent: label }), num(term, values[this.unit]), num(`norm:${term}`, norm(values))]),
    );
    const shareRows = names.map((name, k) => norm(b.dWhh_step[k * H + this.unit]));
    body.push(el("tr", {}, [
      el("th", { scope: "row", textContent: "this step's share of ∂L/∂W_hh", title: "∂L/∂pre ⊗ h_{t-1}: every step adds one such matrix; W_hh's gradient is their sum" }),
      el("td", { className: "num share", textContent: `row ${this.unit}: ${shareRows.map(formatNumber).join(" | ")}` }),
      num("dWhh_step_norm", b.dWhh_step_norm),
    ]));
    return scroller(el("table", { className: "terms backward" }, [
      el("caption", { textContent: "Backward (BPTT): the gradients flowing back through this step" }),
      el("thead", {}, [el("tr", {}, ["", `unit ${this.unit}`, "‖·‖"].map((h) => el("th", { scope: "col", textContent: h })))]),
      el("tbody", {}, body),
    ]));
  }

  /** A schematic of the cell with the shown unit's values on its boxes. */
  _diagram(p, names) {
    const u = this.unit;
    const back = this.showBackward && p.backward;
    const root = document.createElementNS(SVG, "svg");
    root.setAttribute("viewBox", "0 0 600 200");
    root.setAttribute("class", "cell-diagram");
    root.setAttribute("role", "img");
    root.setAttribute("aria-label", `${this._cellName(p.cell)} cell, unit ${u}`);
    const add = (tag, attrs, text, parent = root) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
      if (text != null) node.textContent = text;
      parent.appendChild(node);
      return node;
    };
    const marker = `arrow-${++arrowIds}`;
    const defs = add("defs", {});
    const head = add("marker", { id: marker, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, null, defs);
    add("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }, null, head);
    const box = (x, y, label, value, term, cls = "") => {
      add("rect", { x: x - 46, y: y - 19, width: 92, height: 38, rx: 6, class: `box ${cls}` });
      add("text", { x, y: y - 4, "text-anchor": "middle", class: "box-label" }, label);
      add("text", { x, y: y + 12, "text-anchor": "middle", class: "box-value", "data-term": `diagram:${term}` }, formatNumber(value));
    };
    const arrow = (x1, y1, x2, y2) =>
      add("line", { x1, y1, x2, y2, class: "flow", "marker-end": `url(#${marker})` });
    const grad = (x, y, text, term) =>
      add("text", { x, y, "text-anchor": "middle", class: "grad-label", "data-term": `diagram:${term}` }, text);
    box(60, 40, "h_{t-1}", p.h_prev[u], "h_prev");
    box(60, 170, "x_t", p.x[Math.min(u, p.x.length - 1)], "x");
    if (p.cell === "lstm") {
      box(60, 105, "c_{t-1}", p.c_prev[u], "c_prev");
      names.forEach((name, k) => {
        const g = GATES[name];
        box(175 + k * 100, 170, `${g.symbol} = ${g.act}(…)`, p.gates[name][u], `gate:${name}`, "gate");
      });
      box(400, 105, "c_t = f c + i g", p.c[u], "c");
      box(540, 40, "h_t = o tanh(c)", p.h[u], "h");
      arrow(106, 105, 352, 105);
      for (const x of [175, 275, 375]) arrow(x, 151, 395, 125);
      arrow(475, 151, 530, 60);
      arrow(446, 100, 500, 58);
      arrow(106, 40, 494, 40);
      if (back && p.backward.dc) grad(400, 78, `∂L/∂c ${formatNumber(p.backward.dc[u])}`, "dc");
    } else if (p.cell === "gru") {
      names.forEach((name, k) => {
        const g = GATES[name];
        box(200 + k * 110, 170, `${g.symbol} = ${g.act}(…)`, p.gates[name][u], `gate:${name}`, "gate");
      });
      box(540, 40, "h_t = (1-z) n + z h", p.h[u], "h");
      arrow(106, 40, 494, 40);
      for (const x of [200, 310, 420]) arrow(x, 151, 520, 60);
    } else {
      const act = p.cell === "rnn_relu" ? "relu" : "tanh";
      box(300, 105, `pre → ${act}`, p.pre.h[u], "pre:h", "gate");
      box(540, 40, "h_t", p.h[u], "h");
      arrow(106, 45, 254, 100);
      arrow(106, 165, 254, 110);
      arrow(346, 100, 494, 45);
    }
    if (back) {
      grad(540, 80, `∂L/∂h ${formatNumber(p.backward.dh[u])}`, "dh");
      grad(110, 12, `∂L/∂h_{t-1} ← ${formatNumber(p.backward.dh_prev[u])}`, "dh_prev");
      for (const line of root.querySelectorAll("line.flow")) line.classList.add("back");
    }
    return root;
  }
}

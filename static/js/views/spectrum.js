// The eigenvalues of one recurrent weight block on the complex plane, with the unit circle
// and the spectral radius; a select picks the block (layer, direction and gate).

import { COLORS, DANGER, MUTED, baseLayout, formatNumber, plotConfig } from "./gradients.js";

const CIRCLE_POINTS = 181;

export class SpectrumView {
  /** @param {HTMLElement} container @param {{blockSelect: HTMLSelectElement}} options */
  constructor(container, { blockSelect }) {
    this.container = container;
    this.blockSelect = blockSelect;
    this.model = null;
    this.blocks = [];
    const angles = Array.from({ length: CIRCLE_POINTS }, (_, k) => (2 * Math.PI * k) / (CIRCLE_POINTS - 1));
    this.circle = { x: angles.map(Math.cos), y: angles.map(Math.sin) };
    blockSelect?.addEventListener("change", () => this.draw());
  }

  setModel(model) {
    this.model = model;
    this.blocks = model.trace.spectrum || [];
    this._fillSelect();
    this.draw();
  }

  /** Eigenvalues do not change along the timeline. */
  update() {}

  /** "layer 1 →, forget gate", or "layer 1, recurrent weights" for a plain RNN. */
  blockLabel(block) {
    const where = this.model.label(block.layer, block.direction);
    return block.gate === "hidden" ? `${where}, recurrent weights` : `${where}, ${block.gate} gate`;
  }

  _fillSelect() {
    const select = this.blockSelect;
    if (!select) return;
    const labels = this.blocks.map((b) => this.blockLabel(b));
    const previous = select.selectedOptions[0]?.textContent;
    const same = labels.length === select.options.length && labels.every((l, i) => select.options[i].textContent === l);
    if (!same) {
      select.replaceChildren(
        ...labels.map((label, i) => {
          const option = document.createElement("option");
          option.value = String(i);
          option.textContent = label;
          return option;
        }),
      );
      // keep the same block when the new list still has it
      select.value = String(Math.max(0, labels.indexOf(previous)));
    }
    select.disabled = labels.length < 2;
  }

  _block() {
    const i = Number(this.blockSelect?.value ?? 0);
    return this.blocks[Number.isInteger(i) && i < this.blocks.length ? i : 0];
  }

  draw() {
    if (!this.model) return;
    const block = this._block();
    if (!block) {
      Plotly.react(this.container, [], { title: { text: "No recurrent weights" } }, plotConfig("spectrum"));
      return;
    }
    const re = block.eigenvalues_real;
    const im = block.eigenvalues_imag;
    const moduli = re.map((x, k) => (x == null || im[k] == null ? Infinity : Math.hypot(x, im[k])));
    const outside = moduli.map((r) => r > 1 + 1e-9);
    const extent = Math.max(1.15, ...moduli.filter(Number.isFinite).map((r) => r * 1.1));
    const traces = [
      {
        name: "unit circle",
        x: this.circle.x,
        y: this.circle.y,
        mode: "lines",
        line: { color: MUTED, width: 1, dash: "dot" },
        hoverinfo: "skip",
      },
      {
        name: "eigenvalues",
        x: re,
        y: im,
        mode: "markers",
        marker: {
          size: 8,
          color: outside.map((o) => (o ? DANGER : COLORS[0])),
          line: { color: "#ffffff", width: 1 },
        },
        text: moduli.map((r) => `modulus ${formatNumber(r)}${r > 1 + 1e-9 ? " (outside the circle)" : ""}`),
        hovertemplate: "%{x:.3f} %{y:+.3f}i<br>%{text}<extra></extra>",
      },
    ];
    const count = outside.filter(Boolean).length;
    const layout = {
      ...baseLayout(this._title(block, count)),
      margin: { l: 50, r: 12, t: 44, b: 40 },
      xaxis: { title: { text: "real part" }, range: [-extent, extent], constrain: "domain", zeroline: true, zerolinecolor: "#dfe3ea" },
      yaxis: {
        title: { text: "imaginary part" },
        range: [-extent, extent],
        scaleanchor: "x",
        scaleratio: 1,
        constrain: "domain",
        zeroline: true,
        zerolinecolor: "#dfe3ea",
      },
      showlegend: false,
    };
    Plotly.react(this.container, traces, layout, plotConfig("spectrum"));
  }

  _title(block, outsideCount) {
    const radius = block.spectral_radius;
    let text = `Spectral radius ${formatNumber(radius)}`;
    // within 1e-9 of 1 (orthogonal or identity weights) it is on the circle, not inside it
    if (radius > 1 + 1e-9) text += ` (above 1: ${outsideCount} eigenvalue${outsideCount === 1 ? "" : "s"} outside the circle)`;
    else if (radius >= 1 - 1e-9) text += " (on the unit circle)";
    else text += " (inside the unit circle)";
    return `${text}<br><span style="font-size:11px;color:${MUTED}">${this.blockLabel(block)} · largest singular value ${formatNumber(block.spectral_norm)}</span>`;
  }
}

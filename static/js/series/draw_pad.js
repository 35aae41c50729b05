// Draw a sequence with the mouse, a pen or a finger: pointer events on a canvas, the stroke
// read left to right and resampled to the number of values asked for.

/**
 * `count` values read off a stroke at evenly spaced x across [x0, x1]: linear interpolation
 * between the stroke's points, sorted by x (where the stroke went back over itself, the
 * later point wins); before its first point and after its last, its end values.
 * @param {{x: number, y: number}[]} points the stroke, in drawing order (y up)
 * @param {number} count values wanted (>= 2) @param {number} x0 @param {number} x1
 * @returns {number[]} (count,)
 */
export function resampleStroke(points, count, x0, x1) {
  if (!points.length) return [];
  const byX = new Map(); // one y per x: the last drawn
  for (const p of points) byX.set(p.x, p.y);
  const xs = [...byX.keys()].sort((a, b) => a - b);
  const out = new Array(count);
  let k = 0;
  for (let i = 0; i < count; i++) {
    const x = x0 + ((x1 - x0) * i) / (count - 1);
    while (k + 1 < xs.length && xs[k + 1] <= x) k++;
    if (x <= xs[0]) out[i] = byX.get(xs[0]);
    else if (k + 1 >= xs.length) out[i] = byX.get(xs[xs.length - 1]);
    else {
      const a = xs[k];
      const b = xs[k + 1];
      const f = (x - a) / (b - a);
      out[i] = byX.get(a) + f * (byX.get(b) - byX.get(a));
    }
  }
  return out;
}

export class DrawPad {
  /**
   * @param {HTMLElement} container the canvas is appended to it
   * @param {{count?: number, low?: number, high?: number, onStroke?: (values: number[]) => void,
   *          label?: string}} options count: values read off a stroke (200); the canvas's
   *   bottom is `low` (0) and its top `high` (100); onStroke after each stroke ends.
   */
  constructor(container, { count = 200, low = 0, high = 100, onStroke = () => {}, label = "Drawing area" } = {}) {
    this.count = count;
    this.low = low;
    this.high = high;
    this.onStroke = onStroke;
    this.points = []; // {x, y} in [0, 1] x [0, 1], y up
    this.drawing = false;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "sv-canvas";
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", `${label}: draw a line from left to right`);
    container.append(this.canvas);
    this.canvas.addEventListener("pointerdown", (e) => this._down(e));
    this.canvas.addEventListener("pointermove", (e) => this._move(e));
    this.canvas.addEventListener("pointerup", (e) => this._up(e));
    this.canvas.addEventListener("pointercancel", (e) => this._up(e));
    new ResizeObserver(() => this._paint()).observe(this.canvas);
  }

  /** The values of the current stroke, `count` of them; [] before any drawing. */
  values() {
    if (this.points.length < 2) return [];
    const ys = resampleStroke(this.points, this.count, this._xMin(), this._xMax());
    return ys.map((y) => this.low + y * (this.high - this.low));
  }

  setCount(count) {
    this.count = count;
    this._paint();
  }

  clear() {
    this.points = [];
    this._paint();
  }

  // a stroke covers only the stretch the finger crossed: values are read across it
  _xMin() {
    return Math.min(...this.points.map((p) => p.x));
  }

  _xMax() {
    return Math.max(...this.points.map((p) => p.x));
  }

  _at(event) {
    const box = this.canvas.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const y = Math.min(1, Math.max(0, 1 - (event.clientY - box.top) / box.height));
    return { x, y };
  }

  _down(event) {
    event.preventDefault();
    this.canvas.setPointerCapture?.(event.pointerId);
    this.drawing = true;
    this.points = [this._at(event)];
    this._paint();
  }

  _move(event) {
    if (!this.drawing) return;
    event.preventDefault();
    // a fast finger skips pixels: coalesced events keep the stroke whole
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) this.points.push(this._at(e));
    this._paint();
  }

  _up(event) {
    if (!this.drawing) return;
    this.drawing = false;
    this.canvas.releasePointerCapture?.(event.pointerId);
    this._paint();
    if (this.points.length >= 2) this.onStroke(this.values());
  }

  _paint() {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * ratio));
    const h = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext("2d");
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#dfe3ea";
    g.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      g.beginPath();
      g.moveTo(0, (h * i) / 4);
      g.lineTo(w, (h * i) / 4);
      g.stroke();
    }
    if (!this.points.length) {
      g.fillStyle = "#5b6577";
      g.font = `${14 * ratio}px system-ui, sans-serif`;
      g.textAlign = "center";
      g.fillText("Draw here, left to right", w / 2, h / 2);
      return;
    }
    g.strokeStyle = "#1b2230";
    g.lineWidth = 2 * ratio;
    g.lineJoin = "round";
    g.beginPath();
    this.points.forEach((p, i) => (i ? g.lineTo(p.x * w, (1 - p.y) * h) : g.moveTo(p.x * w, (1 - p.y) * h)));
    g.stroke();
    if (this.drawing || this.points.length < 2) return;
    // the values the series will hold, as dots
    const values = resampleStroke(this.points, Math.min(this.count, 400), this._xMin(), this._xMax());
    const x0 = this._xMin();
    const span = this._xMax() - x0;
    g.fillStyle = "#2f6fde";
    values.forEach((y, i) => {
      const x = (x0 + (span * i) / Math.max(1, values.length - 1)) * w;
      g.beginPath();
      g.arc(x, (1 - y) * h, 1.8 * ratio, 0, 2 * Math.PI);
      g.fill();
    });
  }
}

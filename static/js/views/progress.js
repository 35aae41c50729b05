// The progress line under the playback controls: what the server is computing now, for how
// long, the cost model's warning before a slow run, and the Cancel button.

import { throttledText } from "../dom.js";

export class ProgressView {
  /** @param {HTMLElement} element @param {{onCancel: () => void}} options */
  constructor(element, { onCancel }) {
    this.element = element;
    this.textEl = element.querySelector(".progress-text");
    this.line = throttledText(this.textEl);
    this.timeEl = element.querySelector(".progress-time");
    this.warnEl = element.querySelector(".progress-warning");
    this.cancelButton = element.querySelector("button");
    this.cancelButton.addEventListener("click", () => onCancel());
    this.started = 0;
    this.timer = 0;
  }

  get active() {
    return !this.element.hidden;
  }

  /** Show the line with `text`, the clock from 0 and the Cancel button. */
  start(text) {
    this.started = performance.now();
    this.warnEl.textContent = "";
    this.cancelButton.disabled = false;
    this.element.classList.remove("stopped");
    this.element.hidden = false;
    this.stage(text);
    clearInterval(this.timer);
    this.timer = setInterval(() => this._tick(), 250);
  }

  stage(text) {
    this.line.now(text);
    this._tick();
  }

  /** A stage that comes with every frame of a stream (training's steps): shown at most 8
   * times a second; the clock keeps its own pace. */
  stageSoon(text) {
    this.line.soon(text);
  }

  /** The cost model's words before a slow run. */
  warn(text) {
    this.warnEl.textContent = text;
  }

  done() {
    clearInterval(this.timer);
    this.line.stop();
    this.element.hidden = true;
  }

  /** Say the run was stopped, for a moment. */
  cancelled(text = "Cancelled: the server stopped the computation.") {
    clearInterval(this.timer);
    this.line.now(text);
    this.timeEl.textContent = "";
    this.warnEl.textContent = "";
    this.element.classList.add("stopped");
    this.cancelButton.disabled = true;
    setTimeout(() => {
      if (this.cancelButton.disabled) this.element.hidden = true;
    }, 3000);
  }

  _tick() {
    this.timeEl.textContent = `${((performance.now() - this.started) / 1000).toFixed(1)} s`;
  }
}

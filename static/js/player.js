// Playback over the timeline: play, pause, step, seek, speed; one cursor for every view.

export const DEFAULT_SPEED = 8; // steps per second
const FIT_SECONDS = 40; // at the default speed a long timeline still plays in this long

const TYPING_INPUTS = ["text", "number", "search", "email", "url", "password", "tel", "date", "time"];

/** Whether a key pressed in `el` belongs to it (typing, choosing, ticking), not to playback. */
function typing(el, key) {
  const tag = (el?.tagName || "").toLowerCase();
  if (el?.isContentEditable || tag === "textarea" || tag === "select") return true;
  if (tag === "input") {
    if (TYPING_INPUTS.includes(el.type)) return true;
    if (key === " " && ["checkbox", "radio", "file"].includes(el.type)) return true;
  }
  return key === " " && tag === "summary";
}

export class Player {
  /**
   * @param {{timeline: HTMLInputElement, phase: HTMLOutputElement, playButton: HTMLButtonElement,
   *          onCursor: (cursor: number) => void}} options
   */
  constructor({ timeline, phase, playButton, onCursor, onPause = () => {} }) {
    this.timeline = timeline;
    this.phaseEl = phase;
    this.playButton = playButton;
    this.onCursor = onCursor;
    this.onPause = onPause;
    this.length = 0;
    this.cursor = 0;
    this.speed = DEFAULT_SPEED; // steps per second
    this.playing = false;
    this.keysEnabled = true; // off when a classroom link hides playback
    this._last = 0;
    this._carry = 0;
    this._frame = this._frame.bind(this);
    timeline.addEventListener("input", () => this.seek(Number(timeline.value)));
    // frames drawn, for the smoothness measurement in the browser tests
    this.framesDrawn = 0;
  }

  setLength(length, cursor = 0) {
    this.length = length;
    this.timeline.max = String(Math.max(0, length - 1));
    this.seek(cursor);
  }

  setSpeed(stepsPerSecond) {
    this.speed = stepsPerSecond;
  }

  /** Steps per second: the speed asked for, but the default speed plays any timeline in
   * FIT_SECONDS (a 1000-position sequence would take four minutes at 8 steps a second). */
  get rate() {
    return this.speed === DEFAULT_SPEED ? Math.max(this.speed, this.length / FIT_SECONDS) : this.speed;
  }

  seek(cursor) {
    const c = Math.max(0, Math.min(Math.round(cursor), this.length - 1));
    this.cursor = c;
    this.timeline.value = String(c);
    this.onCursor(c);
    this.framesDrawn += 1;
    if (c >= this.length - 1 && this.playing) this.pause();
  }

  step(delta) {
    this.pause();
    this.seek(this.cursor + delta);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  play() {
    if (this.length === 0) return;
    if (this.cursor >= this.length - 1) this.seek(0);
    this.playing = true;
    this.playButton.textContent = "❚❚ Pause";
    this.playButton.setAttribute("aria-label", "Pause");
    this._last = performance.now();
    this._carry = 0;
    requestAnimationFrame(this._frame);
  }

  pause() {
    const was = this.playing;
    this.playing = false;
    this.playButton.textContent = "▶ Play";
    this.playButton.setAttribute("aria-label", "Play");
    if (was) this.onPause();
  }

  _frame(now) {
    if (!this.playing) return;
    this._carry += ((now - this._last) / 1000) * this.rate;
    this._last = now;
    const advance = Math.floor(this._carry);
    if (advance > 0) {
      this._carry -= advance;
      this.seek(this.cursor + advance);
    }
    if (this.playing) requestAnimationFrame(this._frame);
  }

  /**
   * Space, the arrows, Home and End drive playback wherever the focus is (a playback
   * button just clicked included), except where typing or choosing needs those keys: text
   * fields, number inputs and selects; a focused checkbox or summary keeps its Space.
   * @param {Document} root
   */
  bindKeys(root) {
    const keys = {
      " ": () => this.toggle(),
      ArrowRight: () => this.step(1),
      ArrowLeft: () => this.step(-1),
      Home: () => this.seek(0),
      End: () => this.seek(Number.MAX_SAFE_INTEGER),
    };
    root.addEventListener("keydown", (e) => {
      if (!this.keysEnabled || !keys[e.key] || e.altKey || e.ctrlKey || e.metaKey || typing(e.target, e.key)) return;
      e.preventDefault(); // a focused button is not pressed again, a slider not moved twice
      keys[e.key]();
    });
  }

  /** The phase line under the timeline, in words. */
  describe(model, cursor) {
    const e = model.event(cursor);
    const where = model.D === 2 ? `t=${e.positions[0]} → and t=${e.positions[1]} ←` : `t=${e.position}`;
    const layers = model.L > 1 ? ", every layer" : "";
    let text;
    if (e.kind === "forward") {
      text = `Forward pass: step ${e.step + 1} of ${model.T}, ${where}${layers}`;
    } else if (e.kind === "backward") {
      text = `Backpropagation through time: gradient reaches ${where}${layers}`;
    } else {
      text = model.hasGradients ? "Done: forward pass and BPTT complete" : "Done: forward pass (no targets, no gradients)";
    }
    this.phaseEl.textContent = `${text} · ${cursor + 1}/${model.length}`;
  }
}

// The lesson beside the live network: one chapter's title and text, the view it is about,
// its "try this" experiment with the outcome the text promises, and, once run, what
// happened. Chapter navigation and a way back to the free dashboard.
//
// Wiring: `new LessonPanel(container, {lesson, onChapter, onTry, onLeave})` with `lesson`
// from lesson.js `loadLesson()`. `show(id)` opens a chapter and calls
// `onChapter(chapter)`: the page applies `chapterState(chapter, defaults())` to its
// settings (the URL key `ch` keeps the chapter in a shared link) and highlights the view
// named by `chapter.highlight`. The "Try this" button calls `onTry(chapter)`, which
// resolves to lesson.js `runExperiment(...)`'s answer, shown with `setOutcome`; "Leave the
// lesson" calls `onLeave()`.

import { el } from "../dom.js";

const METRIC_LABELS = {
  eval_loss: "held-out loss",
  naive: "tomorrow = today",
  window_mean: "window mean",
  gap_loss: "loss inside the gap",
  jacobian_product_first: "Jacobian product at the first position",
  grad_step_norms: "each step's share of dL/dW_hh",
  grad_hidden_norms: "gradient reaching each step",
  horizon_direct: "network's error per future day",
  horizon_naive: "naive forecast's error per day",
};

/** Positions as the lesson names them: T1 is position 0. */
const steps = (ts) => ts.map((t) => `T${t + 1}`).join(", ");

/** Values by position in a line: each one for a few, else runs of exact zeros and the ends
 * of each nonzero stretch ("exactly 0 at T1-T14; 3.10e-4 at T15 ... 0.521 at T20"). */
function byPosition(values) {
  if (values.length <= 6) return values.map((v, t) => `T${t + 1} ${v === 0 ? "exactly 0" : shortNumber(v)}`).join(", ");
  const parts = [];
  for (let a = 0; a < values.length; ) {
    const zero = values[a] === 0;
    let b = a;
    while (b + 1 < values.length && (values[b + 1] === 0) === zero) b++;
    const span = a === b ? `T${a + 1}` : `T${a + 1}-T${b + 1}`;
    if (zero) parts.push(`exactly 0 at ${span}`);
    else if (a === b) parts.push(`${shortNumber(values[a])} at ${span}`);
    else parts.push(`${shortNumber(values[a])} at T${a + 1} ... ${shortNumber(values[b])} at T${b + 1}`);
    a = b + 1;
  }
  return parts.join("; ");
}

/** What the chapter's checks read of one run, in words: the numbers behind the verdict. */
function checkedOf(runId, checks, results) {
  const mine = (path) => path.startsWith(`${runId}.`);
  const out = [];
  const say = (path) => {
    const key = path.split(".")[1];
    const v = results[runId][key];
    const label = METRIC_LABELS[key] ?? key;
    if (typeof v === "number") out.push(`${label} ${shortNumber(v)}`);
    else if (Array.isArray(v) && key.startsWith("horizon")) out.push(`${label} ${v.map(shortNumber).join(", ")}`);
    else if (Array.isArray(v)) out.push(`${label}: ${byPosition(v)}`);
  };
  for (const check of checks) {
    if (check.metric && mine(check.metric)) say(check.metric);
    if (check.positions && mine(check.positions)) say(check.positions);
    for (const path of check.ratio ?? []) if (mine(path)) say(path);
    if (check.changed && mine(check.changed[1])) {
      const [before, after] = check.changed.map((p) => results[p.split(".")[0]]?.[p.split(".")[1]]);
      if (!before || !after) continue;
      const moved = before.map((row, t) => Array.from(row).some((v, u) => v !== after[t][u]));
      const ts = moved.map((_, t) => t);
      out.push(`hidden state changed at ${steps(ts.filter((t) => moved[t])) || "no step"}; ` +
        `exactly the same at ${steps(ts.filter((t) => !moved[t])) || "no step"}`);
    } else if (check.changed && mine(check.changed[0])) {
      out.push("the hidden states before the edit");
    }
  }
  return [...new Set(out)];
}

function shortNumber(v) {
  if (v == null || !Number.isFinite(v)) return "overflow";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : v.toPrecision(3);
}

export class LessonPanel {
  /**
   * @param {HTMLElement} container
   * @param {{lesson: object, onChapter?: Function, onTry?: Function, onLeave?: Function}} options
   */
  constructor(container, { lesson, onChapter = () => {}, onTry = null, onLeave = () => {} }) {
    this.container = container;
    this.lesson = lesson;
    this.onChapter = onChapter;
    this.onTry = onTry;
    this.onLeave = onLeave;
    this.chapter = null;
    this._run = 0;
    this.container.classList.add("lesson-panel");
  }

  /** Open the chapter `id` (the first when unknown) and tell the page to set it up. */
  show(id) {
    const chapters = this.lesson.chapters;
    this.chapter = chapters.find((c) => c.id === id) ?? chapters[0];
    this._run++;
    this._render();
    this.onChapter(this.chapter);
  }

  /** Move by `step` chapters (-1 back, 1 on). */
  move(step) {
    const chapters = this.lesson.chapters;
    const i = chapters.indexOf(this.chapter);
    const next = chapters[Math.max(0, Math.min(chapters.length - 1, i + step))];
    if (next !== this.chapter) this.show(next.id);
  }

  /** Run the chapter's experiment through `onTry` and show what happened. */
  async tryIt() {
    if (!this.onTry) return;
    const run = ++this._run;
    this.outcomeEl.replaceChildren(el("p", { className: "hint", textContent: "Running… (at most about 20 s)" }));
    this.tryButton.disabled = true;
    try {
      const outcome = await this.onTry(this.chapter);
      if (run === this._run) this.setOutcome(outcome);
    } catch (err) {
      if (run === this._run) {
        this.outcomeEl.replaceChildren(el("p", { className: "error-text", textContent: `The experiment could not run: ${err.message}` }));
      }
    } finally {
      if (run === this._run) this.tryButton.disabled = false;
    }
  }

  /** Show an experiment's result: {results: {run id: metrics}, ok, failures}. */
  setOutcome(outcome) {
    const runs = this.chapter.experiment.runs;
    const rows = runs
      .filter((r) => outcome.results[r.id])
      .map((r) => {
        const checked = checkedOf(r.id, this.chapter.experiment.expect, outcome.results);
        return el("li", { textContent: `${r.label}: ${checked.join(", ") || "done"}`, dataset: { run: r.id } });
      });
    const verdict = outcome.ok
      ? "As the chapter says."
      : `Not what the chapter says: ${outcome.failures.join("; ")}.`;
    this.outcomeEl.replaceChildren(
      el("ul", { className: "lesson-results" }, rows),
      el("p", { className: outcome.ok ? "lesson-verdict ok" : "lesson-verdict bad", textContent: verdict, dataset: { ok: String(outcome.ok) } }),
    );
    this.outcomeEl.scrollIntoView({ block: "nearest" }); // the answer the student waits for, in sight
  }

  _render() {
    const c = this.chapter;
    const chapters = this.lesson.chapters;
    const i = chapters.indexOf(c);
    const nav = el("nav", { className: "lesson-nav", ariaLabel: "Chapters" }, [
      this._button("← Previous", () => this.move(-1), i === 0),
      el("span", { className: "lesson-count", textContent: `Chapter ${i + 1} of ${chapters.length}` }),
      this._button("Next →", () => this.move(1), i === chapters.length - 1),
    ]);
    this.tryButton = this._button("Try this", () => this.tryIt(), !this.onTry);
    this.tryButton.classList.add("primary");
    this.outcomeEl = el("div", { className: "lesson-outcome", ariaLive: "polite" });
    this.container.replaceChildren(
      nav,
      el("h2", { textContent: c.title }),
      el("p", { className: "lesson-text", textContent: c.text }),
      el("section", { className: "lesson-try" }, [
        el("h3", { textContent: "Try this" }),
        el("p", { textContent: c.experiment.try }),
        this.tryButton, // before the expected outcome: on a 800 px screen it was below the fold
        el("p", { className: "hint", textContent: `What you should see: ${c.experiment.outcome}` }),
        this.outcomeEl,
      ]),
      this._button("Leave the lesson: the free dashboard", () => this.onLeave(), false),
    );
  }

  _button(text, onClick, disabled) {
    const button = el("button", { type: "button", textContent: text, disabled });
    button.addEventListener("click", onClick);
    return button;
  }
}

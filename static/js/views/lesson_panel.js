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
};

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
        const metrics = Object.entries(outcome.results[r.id])
          .filter(([k, v]) => k in METRIC_LABELS && typeof v === "number")
          .map(([k, v]) => `${METRIC_LABELS[k]} ${shortNumber(v)}`);
        return el("li", { textContent: `${r.label}: ${metrics.join(", ") || "done"}`, dataset: { run: r.id } });
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

// Lesson mode: the chapter list and the lesson panel beside the live network, a chapter's
// settings applied to the page, its view highlighted, and its "Try this" experiment run
// with progress. The page's settings and trace stay main.js's: it is told through
// `apply(state)` and asked for nothing else.

import * as api from "./api.js";
import { throttledText } from "./dom.js";
import { chapterState, experimentRuns, findChapter, loadLesson, runExperiment } from "./lesson.js";
import { defaults } from "./state.js";
import { LessonPanel } from "./views/lesson_panel.js";
import { whenPlotly } from "./views/registry.js";

const KEPT = ["speed", "hide", "fixedScale"]; // the visitor's own settings a chapter leaves alone

export class LessonController {
  /**
   * @param {{root: HTMLElement, panelEl: HTMLElement, listEl: HTMLElement, state: object,
   *   apply: (chapter: object) => Promise<void>, onLeave: () => void,
   *   onProbe?: (frame: object) => void, onTrained?: (settings: object, modelId: string) => void,
   *   onShown?: (run: object) => void,
   *   trainingView?: {start: Function, progress: Function, done: Function}}} options `apply`
   *   loads the page for the state already set from the chapter; `onProbe` gets a training
   *   run's probe frames, `onTrained` the last run's settings and weights once it is over,
   *   `onShown` an experiment of traces only's last run ({settings, edit_input?}), for the
   *   page to show it
   */
  constructor({ root, panelEl, listEl, state, apply, onLeave, onProbe = () => {}, onTrained = () => {}, onShown = () => {}, trainingView = null }) {
    Object.assign(this, { root, panelEl, listEl, state, apply, onLeave, onProbe, onTrained, onShown, trainingView });
    this.lesson = null;
    this.panel = null;
    this.progressEl = Object.assign(document.createElement("p"), { className: "hint lesson-progress", role: "status" });
  }

  get active() {
    return !this.root.hidden;
  }

  /** Open the lesson at chapter `id` (the first when empty or unknown). */
  async open(id) {
    this.root.hidden = false;
    document.body.classList.add("lesson-mode");
    if (!this.lesson) {
      this.lesson = await loadLesson();
      this.panel = new LessonPanel(this.panelEl, {
        lesson: this.lesson,
        onChapter: (c) => this.chapter(c),
        onTry: (c) => this.tryIt(c),
        onLeave: () => this.onLeave(),
      });
      this._fillList();
    }
    this.panel.show(findChapter(this.lesson, id) ? id : this.lesson.chapters[0].id);
  }

  close() {
    this.root.hidden = true;
    document.getElementById("lesson-jump").hidden = true;
    document.body.classList.remove("lesson-mode");
    this.state.chapter = "";
    this.highlight(null);
  }

  /** A chapter opened: its settings over the defaults, the page reloaded, its view brought forward. */
  async chapter(c) {
    const kept = Object.fromEntries(KEPT.map((k) => [k, this.state[k]]));
    Object.assign(this.state, chapterState(c, defaults()), kept);
    for (const a of this.listEl.querySelectorAll("a")) {
      a.setAttribute("aria-current", String(a.dataset.chapter === c.id));
    }
    this.panel.tryButton.after(this.progressEl); // the run's progress right under its button
    // the article counts T1, X1 from one; the page's axes count positions from zero
    if (/\b[TX][1-9]\b/.test(`${c.text} ${c.experiment.try}`)) {
      const note = Object.assign(document.createElement("p"), { className: "hint lesson-counting" });
      note.textContent = "The pictures count positions from 0: T1 and X1 are at position 0, X3 at position 2.";
      this.panelEl.querySelector(".lesson-text")?.after(note);
    }
    // on a phone the chapter is below the network: say where
    const jump = document.getElementById("lesson-jump");
    jump.textContent = `Lesson: ${c.title} (below the network) ↓`;
    jump.hidden = false;
    this.progressEl.textContent = "";
    await this.apply(c);
    // on a phone the first screen stays on the network and the chapter's text
    const first = !this.shown;
    this.shown = true;
    this.highlight(c.highlight, !(first && window.innerWidth <= 900));
  }

  /** Mark the view named `name` (a `data-view` section) and scroll it into sight. */
  highlight(name, scroll = true) {
    for (const el of document.querySelectorAll("[data-view].highlighted")) el.classList.remove("highlighted");
    if (!name) return;
    const el = document.querySelector(`[data-view="${name}"]`);
    if (!el || el.hidden) return;
    el.classList.add("highlighted");
    if (scroll) el.scrollIntoView({ block: "start" }); // at once: views still filling in would stop a smooth scroll
  }

  /** The chapter's experiment through the API, its training progress shown as it comes. */
  async tryIt(c) {
    await whenPlotly(); // the training chart draws the runs' loss curves
    // a run's progress at most 8 times a second, any other message at once
    const { now: say, soon: sayProgress } = throttledText(this.progressEl);
    let label = "";
    const runs = c.experiment.runs;
    let n = 0;
    let trained = null; // the last training run's {settings, modelId}: the page shows it after
    let before = null; // the previous training run's label: its loss curve stays on the chart
    const outcome = await runExperiment(this.lesson, c, defaults(), {
      postJSON: (path, body) => {
        if (!label) say(`Run ${n + 1} of ${runs.length}: ${runs[n].label}…`);
        return api.postJSON(path, body);
      },
      trainStream: (body, onFrame) => {
        label = runs[n].label;
        say(`Run ${n + 1} of ${runs.length}: training ${label}…`);
        return api.trainStream(body, (frame) => {
          if (frame.type === "train_config") {
            this.trainingView?.start(frame, { keep: before, name: runs[n].label });
            before = runs[n].label;
            this.onProbe(null); // a new run: its snapshots start a new path
          }
          else if (frame.type === "progress") {
            this.trainingView?.progress(frame);
            sayProgress(`Run ${n + 1} of ${runs.length}: training ${label}, step ${frame.step} of ${body.steps}, loss ${Number(frame.loss).toPrecision(3)}`);
          } else if (frame.type === "probe") this.onProbe(frame);
          else if (frame.type === "done") {
            this.trainingView?.done(frame);
            if (frame.model_id) trained = { settings: experimentRuns(c, defaults())[n].settings, modelId: frame.model_id };
          }
          onFrame(frame);
        });
      },
      onRun: () => {
        n += 1;
        label = "";
        say(n < runs.length ? `Run ${n} of ${runs.length} done.` : "Done: the outcome is below.");
      },
    });
    this.lastOutcome = { chapter: c.id, ...outcome }; // the numbers behind the verdict shown
    if (trained && this.panel.chapter === c) {
      say(`Done: the outcome is below; the network on the page is now the last run's, trained (${runs.at(-1).label}).`);
      this.onTrained(trained.settings, trained.modelId);
    } else if (runs.every((r) => r.action === "trace") && this.panel.chapter === c) {
      // the experiment's moment on the live network: its last run, as the text asks for it
      say(`Done: the outcome is below; the page now shows the last run (${runs.at(-1).label}).`);
      this.onShown(experimentRuns(c, defaults()).at(-1));
    }
    return outcome;
  }

  _fillList() {
    const items = this.lesson.chapters.map((c) => {
      const a = Object.assign(document.createElement("a"), { href: `?ch=${encodeURIComponent(c.id)}`, textContent: c.title });
      a.dataset.chapter = c.id;
      a.addEventListener("click", (e) => {
        e.preventDefault();
        this.panel.show(c.id);
      });
      const li = document.createElement("li");
      li.append(a);
      return li;
    });
    this.listEl.replaceChildren(...items);
  }
}

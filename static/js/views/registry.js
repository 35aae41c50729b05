// Every view of the trace in one place: a view is an object with setModel(model) and
// update(cursor), registered under a name with its element. The registry hands a new
// model to the views one task at a time (the first registered first), to the views on or
// near the screen only: the others get it when they scroll near (drawing all of them at
// load cost ~0.25 s of CPU a page for plots most visits never see). It redraws "side"
// views at most SIDE_INTERVAL_MS apart while the timeline plays. New views plug in with
// one `add` call.

// side plots redraw at most ~10 times a second while playing, 4 for long sequences (each
// redraw re-renders a thousand-point SVG; the unrolled canvas carries the motion)
const SIDE_INTERVAL_MS = 100;
const LONG_SIDE_INTERVAL_MS = 250;
const LONG = 300; // positions

/** Yield to the browser: the next piece of work starts in a new task (no long task). */
export const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

let plotly = null;
/**
 * Plotly.js, run on first use (after the first picture, which is a canvas): evaluating
 * 4.8 MB of script holds the main thread. The page only prefetches its bytes: a preload
 * compiled them on the second core while the modules and the first trace needed it.
 */
export function whenPlotly() {
  if (!plotly) {
    plotly = new Promise((resolve, reject) => {
      if (window.Plotly) return resolve(window.Plotly);
      const script = document.createElement("script");
      // the page names the bundle it prefetched; a page without that link takes the plain URL
      script.src = document.querySelector("link[rel=prefetch][as=script]")?.href ?? "/vendor/plotly.min.js";
      // resolved a task later: the views waiting for it would otherwise draw inside the
      // task that evaluated the bundle, one long task instead of two short ones
      script.addEventListener("load", () => setTimeout(() => resolve(window.Plotly), 0));
      script.addEventListener("error", () => reject(new Error("Plotly did not load: the page cannot draw its plots.")));
      document.head.append(script);
    });
  }
  return plotly;
}

export class ViewRegistry {
  constructor() {
    this.entries = []; // [{name, view, element, side, visible, stale}]
    this.model = null;
    this.cursor = 0;
    this.loading = 0; // increases with each model: a newer one stops an older hand-over
    this.lastSideDraw = 0;
    this.observer = new IntersectionObserver((changes) => this._visibility(changes), { rootMargin: "200px" });
  }

  /**
   * @param {string} name
   * @param {{setModel: Function, update: Function}} view
   * @param {{element?: HTMLElement, side?: boolean, plotly?: boolean}} options side views redraw at
   *   most 10 times a second while playing; a view with an element is drawn only while that element
   *   is near the screen; a Plotly view waits for Plotly.js
   */
  add(name, view, { element = null, side = false, plotly = true } = {}) {
    const entry = { name, view, element, side, plotly, visible: element == null, stale: false, deferred: null };
    this.entries.push(entry);
    if (element) this.observer.observe(element);
    if (this.model) this._apply(entry);
    return view;
  }

  get(name) {
    return this.entries.find((e) => e.name === name)?.view;
  }

  /**
   * Run `draw` for the view `name` in the next task if it is on or near the screen, else
   * when it scrolls near (a later call replaces a draw still waiting): how work outside
   * the model hand-over, such as training snapshots, spares views nobody looks at.
   */
  whenNear(name, draw) {
    const entry = this.entries.find((e) => e.name === name);
    entry.deferred = draw;
    if (entry.visible) nextTask().then(() => this._runDeferred(entry));
  }

  _runDeferred(entry) {
    const draw = entry.deferred;
    entry.deferred = null;
    if (draw && entry.visible) draw();
    else entry.deferred ??= draw; // scrolled away meanwhile: it waits again
  }

  /**
   * Give every view (or those named in `only`) a new model, one per task, if it is on or
   * near the screen; the others are drawn when they scroll near.
   */
  async setModel(model, cursor, { only = null } = {}) {
    const run = ++this.loading;
    this.model = model;
    this.cursor = cursor;
    for (const entry of this.entries) if (!only || only.includes(entry.name)) entry.stale = true;
    // every stale view in sight, also those an earlier, interrupted hand-over had not reached
    const order = this.entries.filter((e) => e.stale && e.visible);
    // only a first picture is drawn inside the caller's task; a redraw (the gradients of a
    // large trace: ~50 ms) gets a task of its own, apart from the frame's decoding
    if (order[0]?.drawn) {
      await nextTask();
      if (run !== this.loading) return;
    }
    for (const entry of order) {
      if (run !== this.loading) return;
      if (entry.plotly) await whenPlotly();
      if (run !== this.loading || !entry.stale || !entry.visible) continue;
      await this._apply(entry);
      await nextTask();
    }
  }

  /** Move every view with a model to `cursor`; side views are throttled while `playing`. */
  update(cursor, playing = false) {
    this.cursor = cursor;
    const now = performance.now();
    const atEnd = this.model && cursor >= this.model.length - 1;
    const interval = this.model && this.model.T > LONG ? LONG_SIDE_INTERVAL_MS : SIDE_INTERVAL_MS;
    const skipSide = playing && !atEnd && now - this.lastSideDraw < interval;
    if (!skipSide) this.lastSideDraw = now;
    for (const entry of this.entries) {
      if (entry.stale || !entry.visible || (skipSide && entry.side)) continue;
      entry.view.update?.(cursor);
    }
  }

  /** Draw a view for the model, then (in the next task: a big plot's draw is task enough)
   * move it to the cursor, unless the first view, whose picture should not wait. */
  async _apply(entry) {
    entry.stale = false;
    entry.drawn = true;
    entry.view.setModel(this.model);
    if (entry !== this.entries[0]) await nextTask();
    if (!entry.stale) entry.view.update?.(this.cursor);
  }

  async _visibility(changes) {
    const due = [];
    for (const change of changes) {
      const entry = this.entries.find((e) => e.element === change.target);
      if (!entry) continue;
      entry.visible = change.isIntersecting;
      // a deferred draw first: training's path sets the axes a newer trace is then drawn on
      if (entry.visible && entry.deferred) this._runDeferred(entry);
      if (entry.visible && entry.stale) due.push(entry);
      else if (entry.visible && this.model) entry.view.update?.(this.cursor); // it missed the cursor's moves
    }
    for (const entry of due) {
      if (entry.plotly) await whenPlotly();
      if (!this.model || !entry.stale || !entry.visible) continue;
      await this._apply(entry);
      await nextTask(); // one view per task
    }
  }
}

// Building page elements in code: one helper for every view that makes its own DOM, and
// one for a line of text that follows a stream.

/**
 * A `tag` element with `props` set as properties (`dataset`: its data-* attributes) and
 * `children` (nodes or strings) appended.
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

/**
 * `show(value)` for a stream of values, at most every `intervalMs`: `soon(value)` shows the
 * newest value when its turn comes, `now(value)` at once (a run's start, end or error),
 * `stop()` drops a value still waiting. Progress frames come ~20 a second, and each change
 * of a status line is a frame of style, layout and paint; each chart extension a redraw.
 */
export function throttled(show, intervalMs) {
  let [timer, last, pending, waiting] = [0, 0, undefined, false];
  const now = (value) => {
    clearTimeout(timer);
    [timer, waiting, last] = [0, false, performance.now()];
    show(value);
  };
  const soon = (value) => {
    [pending, waiting] = [value, true];
    timer ||= setTimeout(() => {
      timer = 0;
      if (waiting) now(pending);
    }, Math.max(0, last + intervalMs - performance.now()));
  };
  const stop = () => {
    clearTimeout(timer);
    [timer, waiting] = [0, false];
  };
  return { now, soon, stop };
}

/** A status line for `element` that follows a stream of progress at most 8 times a second. */
export function throttledText(element, intervalMs = 125) {
  return throttled((text) => (element.textContent = text), intervalMs);
}

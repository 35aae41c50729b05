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
 * A status line for `element` that follows a stream of progress: `soon(text)` shows the
 * newest text at most every `intervalMs`, `now(text)` at once (a run's start, end or
 * error), `stop()` drops a text still waiting. Each change is a frame of style, layout and paint, and progress frames come
 * ~20 a second: training's status line changes at most 8 times a second.
 */
export function throttledText(element, intervalMs = 125) {
  let [timer, last, pending] = [0, 0, null];
  const now = (text) => {
    clearTimeout(timer);
    [timer, pending, last] = [0, null, performance.now()];
    element.textContent = text;
  };
  const soon = (text) => {
    pending = text;
    timer ||= setTimeout(() => {
      timer = 0;
      if (pending != null) now(pending);
    }, Math.max(0, last + intervalMs - performance.now()));
  };
  const stop = () => {
    clearTimeout(timer);
    [timer, pending] = [0, null];
  };
  return { now, soon, stop };
}

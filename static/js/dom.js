// Building page elements in code: one helper for every view that makes its own DOM.

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

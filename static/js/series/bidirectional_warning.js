// The warning a bidirectional layer on a forecasting task deserves: its backward direction
// has already read the values it is asked to predict.

/**
 * The warning's text, or null when there is nothing to warn about.
 * @param {{bidirectional: boolean, forecast: string|null|undefined}} setting forecast: the
 *   task's `forecast` ("level" or "change") from GET /tasks/{name}/sample, null when the task
 *   does not forecast a series.
 */
export function bidirectionalWarning({ bidirectional, forecast }) {
  if (!bidirectional || !forecast) return null;
  return (
    "A bidirectional layer on a forecasting task cheats: its backward direction reads the sequence from the end, " +
    "so at every position it has already seen the very values it is asked to predict. Its loss looks excellent and " +
    "means nothing, and it cannot forecast past the end of the data. Untick Bidirectional to forecast honestly; " +
    "use it where the whole sequence is known, such as filling a gap."
  );
}

export class BidirectionalWarning {
  /** @param {HTMLElement} container the warning is shown in it, or it is hidden */
  constructor(container) {
    this.container = container;
    this.container.classList.add("sv-warning");
    this.container.setAttribute("role", "status");
    this.container.hidden = true;
  }

  /** @param {{bidirectional: boolean, forecast: string|null|undefined}} setting */
  update(setting) {
    const text = bidirectionalWarning(setting);
    this.container.hidden = text == null;
    this.container.textContent = text ?? "";
  }
}

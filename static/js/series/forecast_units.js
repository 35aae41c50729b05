// Forecasts in the units people read: a horizon answer's normalised values turned back into
// prices (or the user's own numbers) on their dates, and the verdict against the naive
// forecast in plain words. Pure functions, no DOM.

/**
 * The example window of a POST /forecast/horizon answer, ready to draw.
 *
 * Stocks (log_returns): a value is a day's log return over `scale`, so a forecast of
 * returns f_1..f_k continues the last price p as p * exp(scale * (f_1 + ... + f_j)).
 * Stocks (window): a value is log(p / p_first) over `scale`. Custom: value * scale + shift.
 * Synthetic tasks have no raw values: they stay in the task's units.
 *
 * @param {object} answer {task, steps, forecast, params, example: {context (T,), truth
 *   (steps,), forecasts: name -> (steps,), dates? (T + steps), values? (T + steps)}}
 * @returns {{x: (string|number)[], T: number, context: number[], truth: number[],
 *   forecasts: Object<string, number[]>, unit: string, dated: boolean}}
 *   x covers the window and the forecast steps; truth and forecasts are drawn at x[T..].
 */
export function rawExample(answer) {
  const { example, params = {}, task } = answer;
  const T = example.context.length;
  const steps = example.truth.length;
  const dated = Array.isArray(example.dates) && example.dates.length === T + steps;
  const x = dated ? example.dates.slice() : Array.from({ length: T + steps }, (_, t) => t);
  const values = example.values;
  if (!Array.isArray(values) || values.length !== T + steps) {
    return { x, T, context: example.context, truth: example.truth, forecasts: example.forecasts, unit: "normalised value", dated };
  }
  let toRaw;
  if (task === "stocks" && params.normalisation === "log_returns") {
    const last = values[T - 1];
    toRaw = (f) => {
      let sum = 0;
      return f.map((r) => (r == null ? null : last * Math.exp(params.scale * (sum += r))));
    };
  } else if (task === "stocks") {
    toRaw = (f) => f.map((v) => (v == null ? null : values[0] * Math.exp(params.scale * v)));
  } else {
    const scale = params.scale ?? 1;
    const shift = params.shift ?? 0;
    toRaw = (f) => f.map((v) => (v == null ? null : v * scale + shift));
  }
  const forecasts = {};
  for (const [name, f] of Object.entries(example.forecasts)) forecasts[name] = toRaw(f);
  return {
    x,
    T,
    context: values.slice(0, T),
    truth: values.slice(T),
    forecasts,
    unit: task === "stocks" ? "price (adjusted close)" : "value",
    dated,
  };
}

// a loss within 2% of the naive forecast's is a draw, not a win
const MARGIN = 0.02;

/** "12%" for 0.12: a share for people. */
const percent = (v) => `${Math.round(v * 100)}%`;

/**
 * Whether the network beat the naive forecast on held-out data, in plain words.
 * @param {{loss: number|null, naive: number, windowMean?: number, taskName: string}} scores
 * @returns {{kind: "beats"|"ties"|"loses"|"none", text: string}}
 */
export function forecastVerdict({ loss, naive, windowMean = null, taskName }) {
  const num = (v) => formatLoss(v);
  if (loss == null || !Number.isFinite(loss)) {
    return { kind: "none", text: "Train a network to see whether it beats 'tomorrow = today'." };
  }
  const onWhat = taskName === "stocks" ? "these prices" : "this series";
  const compared = `its held-out loss is ${num(loss)}, the naive forecast's ${num(naive)}`;
  if (loss < naive * (1 - MARGIN)) {
    const mean = windowMean != null && loss >= windowMean ? ` (the window mean, ${num(windowMean)}, does as well)` : "";
    return {
      kind: "beats",
      text:
        `The network beats 'tomorrow = today' on ${onWhat}: ${compared}, ${percent(1 - loss / naive)} lower${mean}. ` +
        "It has found something in the history that the last value alone does not say.",
    };
  }
  const lesson =
    taskName === "stocks"
      ? "a day's change in a large company's price is close to unpredictable from its past prices, so the best forecast from prices alone is about the last price"
      : "everything the network learned, the last value already said";
  return {
    kind: loss > naive * (1 + MARGIN) ? "loses" : "ties",
    text: `The network does not beat 'tomorrow = today' on ${onWhat}: that is the lesson: ${lesson}. Here ${compared}.`,
  };
}

/** A loss for people: three significant digits. */
export function formatLoss(v) {
  if (v == null || !Number.isFinite(v)) return "not finite";
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

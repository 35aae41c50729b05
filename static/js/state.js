// The page's settings: one typed, versioned table drives defaults, URL serialization and
// parsing, so a shared link reopens exactly the same network, input, seed and weights.

export const STATE_VERSION = 1;

const int = (min, max) => ({ type: "int", min, max });
const num = (min, max) => ({ type: "number", min, max });
const choice = (...options) => ({ type: "choice", options });
const bool = () => ({ type: "bool" });
const text = (maxLength) => ({ type: "text", maxLength });

// key: [URL name, kind, default]. URL names are short and stable: changing one breaks links.
export const FIELDS = {
  cell: ["cell", choice("rnn_tanh", "rnn_relu", "lstm", "gru"), "lstm"],
  hiddenSize: ["h", int(1, 128), 8],
  numLayers: ["layers", int(1, 4), 1],
  bidirectional: ["bi", bool(), false],
  task: ["task", choice("sine", "random_walk", "stocks", "adding", "copy", "parity", "gap", "text", "custom"), "sine"],
  length: ["len", int(2, 1000), 20],
  horizon: ["hz", int(1, 20), 1],
  symbols: ["sym", int(1, 50), 4],
  delay: ["delay", int(0, 500), 5],
  lag: ["lag", int(1, 100), 3],
  customSeries: ["series", text(20000), ""],
  initScheme: ["init", choice("pytorch", "xavier", "orthogonal", "identity"), "pytorch"],
  initScale: ["scale", num(0, 100), 1],
  seed: ["seed", int(0, 4294967295), 0],
  optimizer: ["opt", choice("sgd", "momentum", "adam"), "adam"],
  learningRate: ["lr", num(1e-6, 10), 0.01],
  batchSize: ["batch", int(1, 256), 32],
  steps: ["steps", int(1, 5000), 300],
  clipNorm: ["clip", num(0, 1000), 1],
  clipValue: ["clipv", num(0, 1000), 0],
  truncate: ["trunc", int(0, 1000), 0],
  modelId: ["model", text(64), ""],
  speed: ["speed", num(0.25, 60), 8],
  cursor: ["at", int(0, 1e7), 0],
  compare: ["compare", bool(), false],
  hide: ["hide", text(500), ""],
  // the page's edits in effect (encodeEdits) and what training said of the loaded weights
  edits: ["edits", text(4000), ""],
  trained: ["trained", text(1000), ""],
  // the real-data tasks and the lesson (issues 13, 14; static/lesson/chapters.json state_keys)
  ticker: ["ticker", choice("AAPL", "GOOG", "IBM", "MSFT"), "AAPL"],
  normalisation: ["norm", choice("log_returns", "window"), "log_returns"],
  gap: ["gap", int(1, 500), 8],
  memoryless: ["memless", bool(), false],
  chapter: ["ch", text(64), ""], // the open lesson chapter: a lesson link is a shared link
  fixedScale: ["fixed", bool(), false], // gradient colours on one scale for every run, to compare runs
};

/** Fresh defaults. */
export function defaults() {
  const out = {};
  for (const [key, [, , value]] of Object.entries(FIELDS)) out[key] = value;
  return out;
}

function parseValue(kind, raw) {
  switch (kind.type) {
    case "int": {
      const v = Number(raw);
      return Number.isInteger(v) && v >= kind.min && v <= kind.max ? v : undefined;
    }
    case "number": {
      const v = Number(raw);
      return Number.isFinite(v) && v >= kind.min && v <= kind.max ? v : undefined;
    }
    case "choice":
      return kind.options.includes(raw) ? raw : undefined;
    case "bool":
      return raw === "1" ? true : raw === "0" ? false : undefined;
    case "text":
      return raw.length <= kind.maxLength ? raw : undefined;
    default:
      return undefined;
  }
}

function formatValue(kind, value) {
  if (kind.type === "bool") return value ? "1" : "0";
  return String(value);
}

/** Settings from a query string; unknown or invalid values fall back to defaults. */
export function parse(search) {
  const params = new URLSearchParams(search);
  const state = defaults();
  const version = Number(params.get("v") || STATE_VERSION);
  if (version > STATE_VERSION) {
    console.warn(`link made by a newer Unroll (v${version}); reading what this version knows`);
  }
  for (const [key, [name, kind]] of Object.entries(FIELDS)) {
    if (!params.has(name)) continue;
    const value = parseValue(kind, params.get(name));
    if (value !== undefined) state[key] = value;
  }
  return state;
}

/** A query string holding every setting that differs from its default (plus the version). */
export function serialize(state) {
  const params = new URLSearchParams();
  params.set("v", String(STATE_VERSION));
  const base = defaults();
  for (const [key, [name, kind]] of Object.entries(FIELDS)) {
    if (state[key] !== base[key]) params.set(name, formatValue(kind, state[key]));
  }
  return `?${params.toString()}`;
}

/** Control ids hidden by the classroom option, from `hide` (comma-separated keys). */
export function hiddenControls(state) {
  return new Set(state.hide.split(",").map((s) => s.trim()).filter(Boolean));
}

/** The task parameters the server's task takes, from the settings. */
export function taskParams(state) {
  switch (state.task) {
    case "sine":
    case "random_walk":
      return { length: state.length, horizon: state.horizon };
    case "adding":
    case "text":
      return { length: state.length };
    case "copy":
      return { symbols: state.symbols, delay: state.delay };
    case "parity":
      return { length: state.length, lag: state.lag };
    case "stocks":
      return { ticker: state.ticker, length: state.length, horizon: state.horizon, normalisation: state.normalisation };
    case "gap":
      return { length: state.length, gap: state.gap };
    case "custom":
      // the text as typed: the server reads it and names every value it cannot read
      return { series: state.customSeries, length: state.length, horizon: state.horizon };
    default:
      return {};
  }
}

/**
 * Edits for the URL, compact: `i:position:feature:value` and `w:name:i.j:value`, joined by
 * `;` (no `:` or `;` in a parameter name). @param {object[]} commands edit_input/edit_weight
 */
export function encodeEdits(commands) {
  return commands
    .map((c) => (c.type === "edit_input" ? `i:${c.position}:${c.feature}:${c.value}` : `w:${c.name}:${c.index.join(".")}:${c.value}`))
    .join(";");
}

/** The edit commands of an `edits` setting; malformed entries are skipped. */
export function decodeEdits(textValue) {
  const commands = [];
  for (const item of textValue.split(";").filter(Boolean)) {
    const parts = item.split(":");
    const value = Number(parts[3]);
    if (parts.length !== 4 || !Number.isFinite(value)) continue;
    if (parts[0] === "i") {
      const [position, feature] = [Number(parts[1]), Number(parts[2])];
      if (Number.isInteger(position) && Number.isInteger(feature)) commands.push({ type: "edit_input", position, feature, value });
    } else if (parts[0] === "w") {
      const index = parts[2].split(".").map(Number);
      if (index.every(Number.isInteger)) commands.push({ type: "edit_weight", name: parts[1], index, value });
    }
  }
  return commands;
}

/**
 * What training said of its weights, for the URL: `task:steps:loss:diverged:history`, the
 * history a few `step,loss` points of the loss curve joined by `~` (an empty loss: not finite).
 */
export function encodeTrained({ task, steps, loss, diverged, history = [] }) {
  const points = history.map((p) => `${p.step},${p.loss == null ? "" : Number(p.loss.toPrecision(4))}`).join("~");
  return `${task}:${steps}:${loss ?? ""}:${diverged ? 1 : 0}:${points}`;
}

/** {task, steps, loss, diverged, history} of a `trained` setting, or null. */
export function decodeTrained(textValue) {
  const [task, steps, loss, diverged, points = ""] = textValue.split(":");
  if (!task || !Number.isInteger(Number(steps))) return null;
  const history = points
    .split("~")
    .filter(Boolean)
    .map((p) => p.split(","))
    .map(([step, value]) => ({ step: Number(step), loss: value === "" ? null : Number(value) }))
    .filter((p) => Number.isInteger(p.step) && (p.loss == null || Number.isFinite(p.loss)));
  return { task, steps: Number(steps), loss: loss === "" || loss == null ? null : Number(loss), diverged: diverged === "1", history };
}

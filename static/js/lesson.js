// The guided lesson: static/lesson/chapters.json read and applied. No DOM here: the page
// shows a chapter's text, applies `chapterState` to its settings, highlights
// `chapter.highlight`, and for the "try this" button runs each of `experimentRuns` (a
// trace or a training run with those settings) and reads the outcome with `checkOutcome`.
// tests/test_lesson.py checks the same file's outcomes through the API with the same rules.

export const LESSON_URL = "/static/lesson/chapters.json";

/** The lesson: {version, chapters: [{id, title, text, settings, highlight, experiment}], ...}. */
export async function loadLesson(url = LESSON_URL) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the lesson could not be loaded (${response.status})`);
  return response.json();
}

/** A chapter by id, or null. */
export function findChapter(lesson, id) {
  return lesson.chapters.find((c) => c.id === id) ?? null;
}

/** The page's settings for a chapter: the defaults, then the chapter's own, then its id. */
export function chapterState(chapter, defaults) {
  return { ...defaults, ...chapter.settings, chapter: chapter.id };
}

/** [{id, label, action: "trace"|"train", settings, edit_input?, horizon_steps?}] with full settings. */
export function experimentRuns(chapter, defaults) {
  const base = chapterState(chapter, defaults);
  return chapter.experiment.runs.map((run) => ({ ...run, settings: { ...base, ...run.settings } }));
}

function value(results, path) {
  const [run, metric] = path.split(".");
  if (!(run in results) || !(metric in results[run])) throw new Error(`no result ${path}`);
  return results[run][metric];
}

function holds(x, check) {
  if ("below" in check && !(x < check.below)) return false;
  if ("above" in check && !(x > check.above)) return false;
  if ("between" in check && !(x >= check.between[0] && x <= check.between[1])) return false;
  return true;
}

/**
 * What in one expectation does not hold, in words; [] when it holds. `results` maps a run
 * id to its metrics: eval_loss, naive, window_mean, gap_loss, horizon_direct,
 * horizon_naive (train); hidden, grad_step_norms, grad_hidden_norms,
 * jacobian_product_first (trace): layer 1, forward direction.
 */
export function failures(results, check) {
  if ("metric" in check) {
    const x = value(results, check.metric);
    return holds(x, check) ? [] : [`${check.metric} = ${x.toPrecision(4)}`];
  }
  if ("ratio" in check) {
    const [a, b] = check.ratio.map((p) => value(results, p));
    const ratios = Array.isArray(a) ? a.map((x, i) => x / b[i]) : [a / b];
    const bad = ratios.filter((r) => !holds(r, check)).map((r) => r.toPrecision(4));
    return bad.length ? [`${check.ratio[0]} / ${check.ratio[1]} = ${bad.join(", ")}`] : [];
  }
  if ("positions" in check) {
    const norms = value(results, check.positions);
    const every = norms.map((_, t) => t);
    const zero = check.zero_at === "all" ? every : check.zero_at ?? [];
    const nonzero = check.nonzero_at === "all" ? every : check.nonzero_at ?? [];
    const bad = [
      ...zero.filter((t) => norms[t] !== 0).map((t) => `${t} (want 0)`),
      ...nonzero.filter((t) => !(norms[t] > 0)).map((t) => `${t} (want > 0)`),
    ];
    return bad.length ? [`${check.positions} at ${bad.join(", ")}`] : [];
  }
  const [before, after] = check.changed.map((p) => value(results, p));
  const moved = before.map((row, t) => Array.from(row).some((v, u) => v !== after[t][u]));
  const bad = [...check.at.filter((t) => !moved[t]), ...check.unchanged_at.filter((t) => moved[t])];
  return bad.length ? [`${check.changed.join(" vs ")}: positions ${bad.join(", ")} wrong`] : [];
}

/** Every expectation of a chapter's experiment: {ok, failures: [text]}. */
export function checkOutcome(chapter, results) {
  const wrong = chapter.experiment.expect.flatMap((check) => failures(results, check));
  return { ok: wrong.length === 0, failures: wrong };
}

// The guided lesson: static/lesson/chapters.json read and applied. No DOM here: the page
// shows a chapter's text, applies `chapterState` to its settings, highlights
// `chapter.highlight`, and for the "try this" button calls `runExperiment` (each run a
// trace or a training run with its settings, through the page's api.js functions), which
// reads the outcome with `checkOutcome`. tests/test_lesson.py checks the same file's
// outcomes through the API with the same requests and rules.

import { trainRequest as pageTrainRequest } from "./requests.js";

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

// ------------------------------------------------------------------ running an experiment
// Requests are built from settings the way the page builds them (main.js traceBody and
// train) and the way tests/test_lesson.py does, with the lesson's own `task_params` table.

/** The task parameters a task reads from the settings (the lesson's `task_params`). */
export function lessonTaskParams(lesson, settings) {
  const keys = lesson.task_params[settings.task] ?? [];
  return Object.fromEntries(keys.map((k) => [k, settings[k]]));
}

/** POST /train/stream body for settings: the page's Train button's, with the lesson's task params. */
export function trainRequest(lesson, settings) {
  return pageTrainRequest(settings, lessonTaskParams(lesson, settings));
}

/** POST /trace body for settings and a task sample (POST /tasks/{name}/sample's answer). */
export function traceRequest(settings, sample) {
  return {
    config: {
      cell: settings.cell,
      input_size: sample.input_size,
      hidden_size: settings.hiddenSize,
      num_layers: settings.numLayers,
      bidirectional: settings.bidirectional,
      output_size: sample.output_size,
      head: sample.head,
      output_mode: sample.output_mode,
    },
    inputs: sample.inputs[0].map((row) => [...row]),
    targets: sample.targets[0],
    truncate: settings.truncate > 0 ? settings.truncate : null,
    jacobians: true,
    init: { scheme: settings.initScheme, scale: settings.initScale, seed: settings.seed },
  };
}

const norm2 = (row) => Math.sqrt(Array.from(row).reduce((s, v) => s + v * v, 0));

/** A trace's metrics for `failures` (layer 1, forward direction; nested JSON arrays). */
export function traceMetrics(trace) {
  return {
    hidden: trace.hidden[0][0],
    grad_step_norms: trace.grad_step_norms[0][0],
    grad_hidden_norms: trace.grad_hidden[0][0].map(norm2),
    jacobian_product_first: trace.jacobian_product_norm[0][0][0],
  };
}

/**
 * Run a chapter's experiment through the API and check its outcome.
 * @param {object} lesson the loaded lesson
 * @param {object} chapter one of lesson.chapters
 * @param {object} defaults the page's default settings (state.js defaults())
 * @param {{postJSON: (path: string, body: object) => Promise<object>,
 *   trainStream: (body: object, onFrame: (frame: object) => void) => Promise<void>,
 *   onRun?: (run: object, metrics: object) => void}} api the page's api.js functions
 * @returns {Promise<{results: object, ok: boolean, failures: string[]}>}
 */
export async function runExperiment(lesson, chapter, defaults, api) {
  const paths = chapter.experiment.expect.flatMap((c) =>
    c.metric ? [c.metric] : c.positions ? [c.positions] : c.ratio ?? c.changed ?? [],
  );
  const results = {};
  for (const run of experimentRuns(chapter, defaults)) {
    const s = run.settings;
    const needed = new Set(paths.filter((p) => p.startsWith(`${run.id}.`)).map((p) => p.split(".")[1]));
    let metrics;
    if (run.action === "trace") {
      const sample = await api.postJSON(`/tasks/${encodeURIComponent(s.task)}/sample`, {
        params: lessonTaskParams(lesson, s), seed: s.seed, count: 1,
      });
      const body = traceRequest(s, sample);
      if (run.edit_input) body.inputs[run.edit_input.position][run.edit_input.feature] = run.edit_input.value;
      metrics = traceMetrics(await api.postJSON("/trace", body));
    } else {
      const body = trainRequest(lesson, s);
      let done = null;
      await api.trainStream(body, (frame) => {
        if (frame.type === "done") done = frame;
        if (frame.type === "error") throw new Error(frame.detail);
      });
      if (!done) throw new Error(`${run.id}: training ended without a result`);
      metrics = { eval_loss: done.eval_loss };
      if (run.horizon_steps) {
        const h = await api.postJSON("/forecast/horizon", {
          task: body.task, steps: run.horizon_steps, direct: done.model_id, seed: 0,
        });
        metrics.horizon_direct = h.errors.direct;
        metrics.horizon_naive = h.errors.naive;
      }
      if (["naive", "window_mean", "gap_loss"].some((k) => needed.has(k))) {
        const score = await api.postJSON("/forecast/score", { task: body.task, model_id: done.model_id, seed: s.seed });
        Object.assign(metrics, score.baselines ?? {});
        if (score.gap) metrics.gap_loss = score.gap.gap_loss;
      }
    }
    results[run.id] = metrics;
    if (api.onRun) api.onRun(run, metrics);
  }
  return { results, ...checkOutcome(chapter, results) };
}

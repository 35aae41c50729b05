// The small client the series views are given: JSON posts, the training stream, and the
// CSV upload (whose 422 names each bad line). Views take it as an option, so the page's
// wiring (or a test) decides how requests travel; `apiClient` is the default over api.js.

import { postJSON, trainStream } from "../api.js";

/** A refused request: the server's words, its field, and for a CSV each bad line. */
export class RequestError extends Error {
  /** @param {string} message @param {string|null} field @param {number} status
   *  @param {{line: number, reason: string}[]} lines */
  constructor(message, field = null, status = 0, lines = []) {
    super(message);
    this.field = field;
    this.status = status;
    this.lines = lines;
  }
}

/**
 * POST /api/v1/series with a file. Resolves with {rows, columns: [{name, values}], dates};
 * rejects with a RequestError whose `lines` lists every bad line the server named.
 * @param {File|Blob} file @param {string} [name]
 */
export async function uploadSeries(file, name = file.name || "series.csv") {
  const form = new FormData();
  form.append("file", file, name);
  let response;
  try {
    response = await fetch("/api/v1/series", { method: "POST", body: form });
  } catch (err) {
    throw new RequestError(`The server could not be reached (${err.message}).`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `${response.status} ${response.statusText}`;
    throw new RequestError(detail, body?.field ?? null, response.status, body?.errors ?? []);
  }
  return body;
}

/**
 * Train through a streaming client and resolve with the stored model.
 * `onFrame(frame)` sees every frame (train_config, progress, probe, done).
 * Resolves {modelId, evalLoss, config, lastProbe, stopped}; rejects on an error frame.
 * @param {{trainStream: Function}} client @param {object} body a POST /train/stream body
 * @param {(frame: object) => void} [onFrame] @param {AbortSignal} [signal]
 */
export async function trainModel(client, body, onFrame = () => {}, signal = undefined) {
  const result = { modelId: null, evalLoss: null, config: null, lastProbe: null, stopped: false, note: null };
  let failure = null;
  await client.trainStream(
    body,
    (frame) => {
      if (frame.type === "train_config") result.config = frame.config;
      else if (frame.type === "probe") result.lastProbe = frame;
      else if (frame.type === "done") {
        result.modelId = frame.model_id;
        result.evalLoss = frame.eval_loss;
        result.stopped = frame.stopped;
        result.note = frame.note;
      } else if (frame.type === "error") failure = new RequestError(frame.detail, frame.field, frame.status);
      onFrame(frame);
    },
    signal,
  );
  if (failure) throw failure;
  if (signal?.aborted) result.stopped = true;
  return result;
}

/**
 * The default client, over the page's api.js:
 *   postJSON(path, body)            -> Promise<answer>   path under /api/v1, e.g. "/forecast/score"
 *   trainStream(body, onFrame, sig) -> Promise<void>     POST /api/v1/train/stream, frames as objects
 *   uploadSeries(file)              -> Promise<{rows, columns, dates}>
 */
export const apiClient = { postJSON, trainStream, uploadSeries };

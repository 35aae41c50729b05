// Talking to the server: JSON requests, Server-Sent Event streams over fetch, the
// WebSocket session, and uploads. Errors come back as ApiError with the server's words.

const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(message, field = null, status = 0) {
    super(message);
    this.field = field;
    this.status = status;
  }
}

async function errorFrom(response) {
  let detail = `${response.status} ${response.statusText}`;
  let field = null;
  try {
    const body = await response.json();
    if (body && body.detail) {
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      field = body.field ?? null;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(detail, field, response.status);
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(BASE + path, options);
  } catch (err) {
    throw new ApiError(`The server could not be reached (${err.message}).`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

export async function postJSON(path, body) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}

export const listCells = () => getJSON("/cells");
export const listTasks = () => getJSON("/tasks");
export const getLimits = () => getJSON("/limits");
export const sampleTask = (name, params, seed) =>
  postJSON(`/tasks/${encodeURIComponent(name)}/sample`, { params, seed, count: 1 });
export const runTrace = (body) => postJSON("/trace", body);
export const modelInfo = (id) => getJSON(`/models/${encodeURIComponent(id)}`);
// keep the model of a shared link out of the store's eviction (its own byte cap and quota)
export const pinModel = (id) => postJSON(`/models/${encodeURIComponent(id)}/pin`, {});

/** Download the current trace as .npz (the server builds it from the same body). */
export async function downloadTraceNpz(body) {
  const response = await request("/trace?format=npz", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.blob();
}

/**
 * POST a body to an SSE endpoint and call onFrame(frame) for every event as it arrives.
 * Resolves when the stream ends; `signal` (an AbortSignal) stops it.
 */
export async function streamSSE(path, body, onFrame, signal) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let split;
      while ((split = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split).replace(/^\r?\n\r?\n/, "");
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data) onFrame(JSON.parse(data));
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    throw err;
  }
}

export const trainStream = (body, onFrame, signal) =>
  streamSSE("/train/stream", body, onFrame, signal);

/** Upload weights (.safetensors or .npz, a PyTorch state_dict too). */
export async function uploadModel(file, options = {}) {
  const form = new FormData();
  form.append("file", file);
  for (const [key, value] of Object.entries(options)) {
    if (value != null) form.append(key, value);
  }
  const response = await request("/models", { method: "POST", body: form });
  return response.json();
}

/**
 * The WebSocket session. `send(command)` resolves with the frames answering it (the last
 * is a `session` frame) or rejects with an ApiError for an `error` frame.
 */
export class Session {
  constructor() {
    this.socket = null;
    this.pending = [];
    this.frames = [];
  }

  async open() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new WebSocket(`${scheme}://${location.host}${BASE}/session`);
    this.socket.addEventListener("message", (event) => this._receive(JSON.parse(event.data)));
    this.socket.addEventListener("close", (event) => {
      // e.g. 1013 "sessions: this client has 8 open, the limit of 8; close one ..."
      const why = event.reason ? `: ${event.reason}` : " by the server.";
      for (const p of this.pending) p.reject(new ApiError(`The session was closed${why}`));
      this.pending = [];
      this.frames = [];
    });
    await new Promise((resolve, reject) => {
      this.socket.addEventListener("open", resolve, { once: true });
      this.socket.addEventListener(
        "error",
        () => reject(new ApiError("Could not open the live session with the server.")),
        { once: true },
      );
    });
  }

  _receive(frame) {
    this.frames.push(frame);
    if (frame.type !== "session" && frame.type !== "error") return;
    const answer = this.frames;
    this.frames = [];
    const waiter = this.pending.shift();
    if (!waiter) return;
    if (frame.type === "error") waiter.reject(new ApiError(frame.detail, frame.field, frame.status));
    else waiter.resolve(answer);
  }

  async send(command) {
    await this.open();
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.send(JSON.stringify(command));
    });
  }
}

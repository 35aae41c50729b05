// Talking to the server: JSON requests, Server-Sent Event streams over fetch, the
// WebSocket session (binary trace frames decoded by transport.js), and uploads. Errors
// come back as ApiError with the server's words.

import { decodeFrame } from "./transport.js";

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
    if (err.name === "AbortError") throw err; // the caller stopped it: not a server problem
    throw new ApiError(`The server could not be reached (${err.message}).`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

export async function postJSON(path, body, signal = undefined) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  return response.json();
}

export const listCells = () => getJSON("/cells");
export const listTasks = () => getJSON("/tasks");
export const getLimits = () => getJSON("/limits");
export const sampleTask = (name, params, seed) =>
  postJSON(`/tasks/${encodeURIComponent(name)}/sample`, { params, seed, count: 1 });
export const runTrace = (body, signal) => postJSON("/trace", body, signal);
/** The cost model's estimate of a trace request (kind: trace, stream or session) before it runs. */
export const estimateTrace = (body, kind = "session") => postJSON(`/estimate/trace?kind=${kind}`, body);
export const modelInfo = (id) => getJSON(`/models/${encodeURIComponent(id)}`);
// keep the model of a shared link out of the store's eviction (its own byte cap and quota)
export const pinModel = (id) => postJSON(`/models/${encodeURIComponent(id)}/pin`, {});

/** A stored model's weights as a .safetensors file (PyTorch's names, the config inside). */
export async function downloadWeights(id) {
  return (await request(`/models/${encodeURIComponent(id)}/weights?format=safetensors`)).blob();
}

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
 * The WebSocket session. `send(command, {onFrame})` resolves with the frames answering it
 * (the last is a `session` frame) or rejects with an ApiError for an `error` frame;
 * `onFrame` sees each frame as it arrives (a progressive answer's trace before its end).
 * Binary messages (docs/transport.md) are decoded into typed arrays.
 */
export class Session {
  constructor() {
    this.socket = null;
    this.opening = null; // one socket at a time, however many sends wait for it
    this.pending = []; // the waiters of the current socket only
    this.frames = [];
    this.generation = 0; // sockets opened so far: a new one is a new session on the server
    this.bytesReceived = 0; // for the page benchmark
  }

  get isOpen() {
    return this.socket != null && this.socket.readyState === WebSocket.OPEN;
  }

  async open() {
    if (this.isOpen) return;
    if (!this.opening) this.opening = this._connect().finally(() => (this.opening = null));
    await this.opening;
  }

  async _connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // a socket still closing must not answer, or fail, the new socket's waiters
    this._drop(this.socket, "The session was replaced by a new connection.");
    const socket = new WebSocket(`${scheme}://${location.host}${BASE}/session`);
    this.socket = socket;
    this.generation += 1;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      const binary = event.data instanceof ArrayBuffer;
      this.bytesReceived += binary ? event.data.byteLength : event.data.length;
      this._receive(binary ? decodeFrame(event.data) : JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      // e.g. 1013 "sessions: this client has 8 open, the limit of 8; close one ..."
      const why = event.reason ? `: ${event.reason}` : " by the server.";
      if (socket === this.socket) this._drop(socket, `The session was closed${why}`);
    });
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener(
        "error",
        () => reject(new ApiError("Could not open the live session with the server.")),
        { once: true },
      );
    });
  }

  /** Fail every waiter of `socket` (the current one) and forget its half-read answer. */
  _drop(socket, message) {
    if (!socket || socket !== this.socket) return;
    for (const p of this.pending) p.reject(new ApiError(message));
    this.pending = [];
    this.frames = [];
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close();
  }

  _receive(frame) {
    this.frames.push(frame);
    if (frame.type !== "session" && frame.type !== "error") {
      this.pending[0]?.onFrame?.(frame);
      return;
    }
    const answer = this.frames;
    this.frames = [];
    const waiter = this.pending.shift();
    if (!waiter) return;
    if (frame.type === "error") waiter.reject(new ApiError(frame.detail, frame.field, frame.status));
    else waiter.resolve(answer);
  }

  async send(command, { onFrame } = {}) {
    await this.open();
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, onFrame });
      this.socket.send(JSON.stringify(command));
    });
  }
}

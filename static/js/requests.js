// Request bodies from the settings: the trace (for the session, compare and npz export)
// and training. No DOM; the task's sample comes from the server.

import * as api from "./api.js";
import { taskParams } from "./state.js";

/** Fresh weights as the settings draw them. */
export const initOf = (state) => ({ scheme: state.initScheme, scale: state.initScale, seed: state.seed });

/** The sequence to run: the task's sample (your own series is read and checked by the server). */
export const taskSample = (state) => api.sampleTask(state.task, taskParams(state), state.seed);

/** The POST /trace body (and session configure) for the settings; `given` the task's sample if already fetched. */
export async function traceRequest(state, given = null) {
  const first = given ?? (await taskSample(state));
  const sample = { ...first, inputs: first.inputs[0], targets: first.targets[0] };
  const body = {
    config: {
      cell: state.cell, input_size: sample.input_size, hidden_size: state.hiddenSize, num_layers: state.numLayers,
      bidirectional: state.bidirectional, output_size: sample.output_size, head: sample.head, output_mode: sample.output_mode,
    },
    inputs: sample.inputs,
    targets: sample.targets,
    truncate: state.truncate > 0 ? state.truncate : null,
    jacobians: true,
  };
  if (state.modelId) {
    body.config = (await api.modelInfo(state.modelId)).config;
    body.model_id = state.modelId;
  } else {
    body.init = initOf(state);
  }
  return body;
}

/** The POST /train/stream body for the settings; `params` the task's (the lesson names its own). */
export function trainRequest(state, params = taskParams(state)) {
  const s = state;
  const body = {
    config: { cell: s.cell, hidden_size: s.hiddenSize, num_layers: s.numLayers, bidirectional: s.bidirectional },
    task: { name: s.task, ...params },
    optimizer: { name: s.optimizer, learning_rate: s.learningRate },
    batch_size: s.batchSize,
    steps: s.steps,
    clip_norm: s.clipNorm > 0 ? s.clipNorm : null,
    clip_value: s.clipValue > 0 ? s.clipValue : null,
    truncate: s.truncate > 0 ? s.truncate : null,
    seed: s.seed,
    init: initOf(s),
    probe_every: Math.max(1, Math.round(s.steps / 30)),
  };
  if (s.memoryless) body.memoryless = true; // W_hh held at zero: the "today only" model
  return body;
}

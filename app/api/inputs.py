"""Turning a TraceRequest into the core's arguments: config, weights, sequence, targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.api.errors import ApiError, from_value_error
from app.api.limits import check_config_limits, check_length, check_truncate
from app.api.schemas import InitIn, TraceRequest
from app.rnn import ModelConfig, Trace, check_params, init_params, run_sequence
from app.rnn.trace import check_inputs, check_targets
from app.rnn.types import Params
from app.settings import Settings


@dataclass
class TraceJob:
    """Everything `run_sequence` needs, validated."""

    config: ModelConfig
    params: Params
    inputs: np.ndarray  # (T, I)
    targets: np.ndarray | None
    truncate: int | None
    jacobians: bool

    def run(self) -> Trace:
        """The whole trace: forward, BPTT (with targets) and the Jacobian norms asked for."""
        return run_sequence(
            self.config,
            self.params,
            self.inputs,
            self.targets,
            jacobians=self.jacobians,
            truncate=self.truncate,
        )


def resolve_trace_request(body: TraceRequest, settings: Settings, store: Any) -> TraceJob:
    """Validate against the core and the caps; 4xx ApiError naming the field otherwise."""
    try:
        config = body.config.to_core()
    except ValueError as exc:
        raise from_value_error(exc, "config.") from None
    check_config_limits(config, settings)
    check_length(len(body.inputs), settings)
    check_truncate(body.truncate, settings)
    params = resolve_params(config, body.params, body.model_id, body.init, store)
    try:
        inputs = check_inputs(config, body.inputs)
        targets = None if body.targets is None else check_targets(config, body.targets, len(inputs))
    except ValueError as exc:
        raise from_value_error(exc) from None
    return TraceJob(config, params, inputs, targets, body.truncate, body.jacobians)


def resolve_params(
    config: ModelConfig, params: Any, model_id: str | None, init: InitIn, store: Any
) -> Params:
    """Weights from `params`, else the stored `model_id`, else fresh from `init`."""
    if params is not None and model_id is not None:
        raise ApiError(422, "params: give params or model_id, not both", "params")
    if params is not None:
        try:
            return check_params(config, params)
        except ValueError as exc:
            raise from_value_error(exc) from None
    if model_id is not None:
        stored = store.get(model_id) if store is not None else None
        if stored is None:
            raise ApiError(404, f"model_id: no stored model {model_id}", "model_id")
        stored_config, params = stored
        if stored_config != config:
            raise ApiError(
                422,
                f"config: does not match the stored model's config {stored_config.to_dict()}",
                "config",
            )
        return params
    return init_params(config, seed=init.seed, scheme=init.scheme, scale=init.scale)

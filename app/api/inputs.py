"""Turning a TraceRequest into the core's arguments: config, weights, sequence, targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.api.errors import ApiError, from_value_error
from app.api.limits import check_config_limits, check_length, check_truncate
from app.api.schemas import InitIn, TraceRequest
from app.cost import (
    Budget,
    Estimate,
    TraceShape,
    session_cost,
    stream_cost,
    trace_cost,
)
from app.rnn import (
    ModelConfig,
    Trace,
    backward_trace,
    check_params,
    diagnose_trace,
    forward_trace,
    init_params,
    run_sequence,
)
from app.rnn.cancel import CancelCheck
from app.rnn.trace import check_inputs, check_targets
from app.rnn.types import Params
from app.settings import Settings

TraceKind = Literal["trace", "npz", "stream", "session"]


@dataclass
class TraceJob:
    """Everything `run_sequence` needs, validated."""

    config: ModelConfig
    params: Params
    inputs: np.ndarray  # (T, I)
    targets: np.ndarray | None
    truncate: int | None
    jacobians: bool | tuple[int, ...]  # True: every layer; a tuple: only those layers
    estimate: Estimate = field(default_factory=lambda: Estimate(0.0, 0, 0))

    @property
    def jacobian_layers(self) -> tuple[int, ...] | None:
        """The layers to diagnose: None for every layer (or none, when jacobians is off)."""
        return None if isinstance(self.jacobians, bool) else self.jacobians

    def run(self, cancel: CancelCheck = None) -> Trace:
        """The whole trace: forward, BPTT (with targets) and the Jacobian norms asked for."""
        if isinstance(self.jacobians, bool) or not self.jacobians:
            return run_sequence(
                self.config,
                self.params,
                self.inputs,
                self.targets,
                jacobians=bool(self.jacobians),
                truncate=self.truncate,
                cancel=cancel,
            )
        # chosen layers only: the stages one by one, so diagnostics skip the others
        trace = forward_trace(self.config, self.params, self.inputs, self.targets, cancel=cancel)
        try:
            if self.targets is not None:
                backward_trace(trace, self.truncate, cancel=cancel)
            diagnose_trace(trace, layers=self.jacobians, cancel=cancel)
        finally:
            trace.release()
        return trace


COSTS = {"trace": trace_cost, "npz": trace_cost, "stream": stream_cost, "session": session_cost}


def estimate_trace_request(
    body: TraceRequest,
    settings: Settings,
    kind: TraceKind = "trace",
    store: Any = None,
    stored: ModelConfig | None = None,
) -> tuple[ModelConfig, Estimate]:
    """The config checked against the core and the caps (4xx ApiError naming the field
    otherwise), and the request's estimate. The config is the body's, else the stored
    model's: `stored` when the caller has read it, else read from `store` (404 if absent).
    Arithmetic only, apart from that read."""
    config = request_config(body, store) if stored is None else stored
    check_config_limits(config, settings)
    check_length(len(body.inputs), settings)
    check_truncate(body.truncate, settings)
    layers = check_jacobian_layers(body.jacobians, config)
    shape = TraceShape(
        config,
        len(body.inputs),
        body.targets is not None,
        bool(body.jacobians),
        body.truncate,
        jacobian_layers=None if layers is None else len(layers),
    )
    estimate = trace_cost(shape, npz=True) if kind == "npz" else COSTS[kind](shape)
    return config, estimate


def request_config(body: TraceRequest, store: Any = None) -> ModelConfig:
    """The body's config for the core, or without one the stored `model_id`'s (a database
    read); 422 naming the config field, or 404 for an unknown model."""
    if not body.config_given and body.model_id is not None:
        info = store.info(body.model_id) if store is not None else None
        if info is None:
            raise _unknown_model(body.model_id)
        return ModelConfig.from_dict(info["config"])
    try:
        return body.config.to_core()
    except ValueError as exc:
        raise from_value_error(exc, "config.") from None


def check_trace_request(
    body: TraceRequest,
    settings: Settings,
    kind: TraceKind = "trace",
    store: Any = None,
    stored: ModelConfig | None = None,
) -> tuple[ModelConfig, Estimate] | None:
    """`estimate_trace_request`, and a 422 when the estimate is over the budget. None
    when the body leaves its config to a stored model and neither `store` nor `stored`
    is given: checked once the model is read (`resolve_trace_request`)."""
    if not body.config_given and store is None and stored is None:
        return None
    config, estimate = estimate_trace_request(body, settings, kind, store, stored)
    check_budget(estimate, settings)
    return config, estimate


def check_budget(estimate: Estimate, settings: Settings, training: bool = False) -> None:
    """422 naming the field to change when a request's estimate is over the budget."""
    refusal = Budget.from_settings(settings).refusal(estimate, training)
    if refusal is not None:
        field = estimate.reduce[0].split()[0] if estimate.reduce else None
        raise ApiError(422, f"{field or 'budget'}: {refusal}", field)


def time_limit(settings: Settings, training: bool = False) -> float:
    """CPU seconds after which running work is stopped whatever its estimate said: twice
    the budget, a guard for the cases the cost model underestimates."""
    return 2 * (settings.max_train_seconds if training else settings.max_request_seconds)


def overrun(estimate: Estimate, limit: float) -> ApiError:
    """The refusal of work stopped at its time limit (`time_limit`)."""
    field = estimate.reduce[0].split()[0] if estimate.reduce else None
    return ApiError(
        422,
        f"{field or 'budget'}: stopped after {limit:.0f} s of work, this server's time limit "
        f"(the estimate was {estimate.seconds:.1f} s): reduce "
        f"{' or '.join(estimate.reduce[:3]) or 'the sizes'}",
        field,
    )


def is_heavy(estimate: Estimate, settings: Settings) -> bool:
    """Heavy work is one per client at a time and never takes the last compute slot."""
    return estimate.seconds >= settings.heavy_request_seconds


def resolve_trace_request(
    body: TraceRequest, settings: Settings, store: Any, kind: TraceKind = "trace"
) -> TraceJob:
    """Validate against the core, the caps and the budget (before any weight is made);
    4xx ApiError naming the field otherwise. A body with model_id and no config runs
    the stored model with its own config."""
    stored = None if body.config_given else _stored_model(body, store)
    checked = check_trace_request(
        body, settings, kind, store, None if stored is None else stored[0]
    )
    assert checked is not None  # the stored config was read above
    config, estimate = checked
    if stored is not None:
        params = stored[1]
    else:
        params = resolve_params(config, body.params, body.model_id, body.init, store)
    try:
        inputs = check_inputs(config, body.inputs)
        targets = None if body.targets is None else check_targets(config, body.targets, len(inputs))
    except ValueError as exc:
        raise from_value_error(exc) from None
    layers = check_jacobian_layers(body.jacobians, config)
    jacobians = bool(body.jacobians) if layers is None else layers
    return TraceJob(config, params, inputs, targets, body.truncate, jacobians, estimate)


def _stored_model(body: TraceRequest, store: Any) -> tuple[ModelConfig, Params]:
    """The stored model of a body that gives model_id instead of a config."""
    assert body.model_id is not None  # TraceRequest allows no other body without a config
    if body.params is not None:
        raise ApiError(422, "params: give params or model_id, not both", "params")
    stored = store.get(body.model_id) if store is not None else None
    if stored is None:
        raise _unknown_model(body.model_id)
    return stored


def _unknown_model(model_id: str) -> ApiError:
    return ApiError(404, f"model_id: no stored model {model_id}", "model_id")


def client_of(connection: Any) -> str:
    """The key admission control counts a client by: its address."""
    client = getattr(connection, "client", None)
    return client.host if client is not None else ""


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
            raise _unknown_model(model_id)
        stored_config, params = stored
        if stored_config != config:
            raise ApiError(
                422,
                f"config: does not match the stored model's config {stored_config.to_dict()}",
                "config",
            )
        return params
    return init_params(config, seed=init.seed, scheme=init.scheme, scale=init.scale)


def check_jacobian_layers(
    jacobians: bool | list[int], config: ModelConfig
) -> tuple[int, ...] | None:
    """None for true/false; else the chosen layer indices, sorted and unique, each checked
    against the network's layers (422 naming `jacobians` otherwise)."""
    if isinstance(jacobians, bool):
        return None
    for layer in jacobians:
        if not 0 <= layer < config.num_layers:
            raise ApiError(
                422,
                f"jacobians: layer {layer} is outside 0..{config.num_layers - 1}",
                "jacobians",
            )
    return tuple(sorted(set(jacobians)))

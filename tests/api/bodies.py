"""Request bodies shared by the API tests."""

# stacked and bidirectional, so every (layer, direction, position) order is exercised
BIDI_LSTM = {
    "config": {
        "cell": "lstm",
        "input_size": 2,
        "hidden_size": 3,
        "num_layers": 2,
        "bidirectional": True,
        "output_size": 2,
    },
    "init": {"scheme": "pytorch", "scale": 1.0, "seed": 5},
    "inputs": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6], [0.7, -0.8]],
    "targets": [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.0, 0.0]],
}


def reference_trace(body, params=None, inputs=None):
    """What the Python API computes for a request body: the answer the API must match."""
    from app.rnn import ModelConfig, init_params, run_sequence

    config = ModelConfig(**body["config"])
    if params is None:
        init = body.get("init", {})
        params = init_params(
            config,
            seed=init.get("seed", 0),
            scheme=init.get("scheme", "pytorch"),
            scale=init.get("scale", 1.0),
        )
    return run_sequence(
        config,
        params,
        body["inputs"] if inputs is None else inputs,
        body.get("targets"),
        jacobians=True,
        truncate=body.get("truncate"),
    )

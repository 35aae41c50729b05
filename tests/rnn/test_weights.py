"""Saving and loading weights: round trips, format sniffing, refusals and state_dict inference."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import safetensors.numpy

from app.rnn.config import ModelConfig
from app.rnn.params import init_params, param_shapes
from app.rnn.trace import run_sequence
from app.rnn.weights import load_weights, save_weights, weights_from_bytes, weights_to_bytes

FORMATS = ("safetensors", "npz")
CONFIGS = [
    ModelConfig(cell="rnn_tanh", input_size=2, hidden_size=3, output_size=1),
    ModelConfig(cell="rnn_relu", input_size=1, hidden_size=4, num_layers=2, bidirectional=True),
    ModelConfig(
        cell="lstm",
        input_size=3,
        hidden_size=5,
        num_layers=2,
        bidirectional=True,
        output_size=2,
        head="classification",
        output_mode="last",
    ),
    ModelConfig(
        cell="gru", input_size=2, hidden_size=4, num_layers=2, bidirectional=True, output_size=3
    ),
]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

UNPICKLED: list[str] = []


def _tripwire(tag: str) -> str:
    """Called only if something unpickles a `_Tripwire`."""
    UNPICKLED.append(tag)
    return tag


class _Tripwire:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _tripwire, ("unpickled",)


def _state_dict(
    gates: int,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    output_size: int = 2,
    rnn_prefix: str = "lstm",
    head_prefix: str = "fc",
    dtype: type = np.float64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """PyTorch-named tensors: <rnn_prefix>.weight_ih_l0 (G*H, I) ... <head_prefix>.bias (O,)."""
    rng = np.random.default_rng(seed)
    rnn = f"{rnn_prefix}." if rnn_prefix else ""
    D, GH = 2 if bidirectional else 1, gates * hidden_size
    tensors: dict[str, np.ndarray] = {}
    for layer in range(num_layers):
        for sfx in ("", "_reverse")[:D]:
            cols = input_size if layer == 0 else D * hidden_size
            tensors[f"{rnn}weight_ih_l{layer}{sfx}"] = rng.standard_normal((GH, cols))
            tensors[f"{rnn}weight_hh_l{layer}{sfx}"] = rng.standard_normal((GH, hidden_size))
            tensors[f"{rnn}bias_ih_l{layer}{sfx}"] = rng.standard_normal(GH)
            tensors[f"{rnn}bias_hh_l{layer}{sfx}"] = rng.standard_normal(GH)
    tensors[f"{head_prefix}.weight"] = rng.standard_normal((output_size, D * hidden_size))
    tensors[f"{head_prefix}.bias"] = rng.standard_normal(output_size)
    return {name: value.astype(dtype) for name, value in tensors.items()}


def _raw_npz(entries: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    return buffer.getvalue()


def _raw_ours(config: ModelConfig, tensors: dict[str, np.ndarray], fmt: str) -> bytes:
    """Bytes that carry the config like `weights_to_bytes` but with unchecked tensors."""
    text = json.dumps(config.to_dict())
    if fmt == "safetensors":
        return safetensors.numpy.save(tensors, metadata={"unroll_config": text})
    return _raw_npz({**tensors, "__unroll_config__": np.array(text)})


def _raw_safetensors(entries: dict[str, tuple[str, tuple[int, ...], bytes]]) -> bytes:
    """Hand-built safetensors bytes: name -> (dtype, shape, little-endian data)."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape, data) in entries.items():
        end = offset + len(data)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(e[2] for e in entries.values())


# Round trips


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.cell}-L{c.num_layers}")
def test_round_trip_is_bit_identical(config: ModelConfig, fmt: str) -> None:
    params = init_params(config, seed=3)
    loaded_config, loaded = weights_from_bytes(weights_to_bytes(config, params, fmt))
    assert loaded_config == config
    assert list(loaded) == list(param_shapes(config))
    for name, value in params.items():
        assert loaded[name].dtype == np.float64
        assert loaded[name].tobytes() == np.asarray(value, dtype=np.float64).tobytes(), name


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".NPZ"])
def test_save_and_load_file(tmp_path, suffix: str) -> None:
    config = CONFIGS[2]
    params = init_params(config, seed=1)
    path = tmp_path / f"model{suffix}"
    save_weights(path, config, params)
    loaded_config, loaded = load_weights(str(path))
    assert loaded_config == config
    assert all(np.array_equal(loaded[name], params[name]) for name in params)


def test_save_rejects_unknown_suffix(tmp_path) -> None:
    config = CONFIGS[0]
    with pytest.raises(ValueError, match="suffix"):
        save_weights(tmp_path / "model.pt", config, init_params(config))
    assert not (tmp_path / "model.pt").exists()


def test_to_bytes_validates_params_and_format() -> None:
    config = CONFIGS[0]
    params = init_params(config)
    with pytest.raises(ValueError, match="fmt"):
        weights_to_bytes(config, params, "pickle")
    bad = {**params, "head.bias": np.zeros(5)}
    with pytest.raises(ValueError, match=r"head\.bias: expected shape \(1,\), got \(5,\)"):
        weights_to_bytes(config, bad, "npz")


def test_stored_config_is_readable_by_plain_tools() -> None:
    config = CONFIGS[1]
    params = init_params(config)
    st = weights_to_bytes(config, params, "safetensors")
    header = json.loads(st[8 : 8 + int.from_bytes(st[:8], "little")])
    assert json.loads(header["__metadata__"]["unroll_config"]) == config.to_dict()
    assert header["rnn.weight_ih_l0"]["dtype"] == "F64"
    with np.load(io.BytesIO(weights_to_bytes(config, params, "npz")), allow_pickle=False) as npz:
        assert npz["__unroll_config__"].shape == ()
        assert json.loads(str(npz["__unroll_config__"])) == config.to_dict()
        assert npz["head.weight"].dtype == np.float64


# Sniffing and refusals


@pytest.mark.parametrize("fmt", FORMATS)
def test_explicit_format_must_match(fmt: str) -> None:
    config = CONFIGS[0]
    data = weights_to_bytes(config, init_params(config), fmt)
    assert weights_from_bytes(data, fmt)[0] == config
    other = "npz" if fmt == "safetensors" else "safetensors"
    with pytest.raises(ValueError, match=other):
        weights_from_bytes(data, other)


def test_pickle_is_refused(tmp_path) -> None:
    data = pickle.dumps({"rnn.weight_ih_l0": np.zeros((4, 1)), "trip": _Tripwire()})
    with pytest.raises(ValueError, match="neither safetensors nor npz.*pickle"):
        weights_from_bytes(data)
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="model.pt: .*pickle"):
        load_weights(path)
    assert UNPICKLED == []


@pytest.mark.parametrize("data", [b"", b"\x93NUMPY", b"hello world, not weights"])
def test_unknown_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="neither safetensors nor npz"):
        weights_from_bytes(data)


def test_npz_object_array_is_refused_without_unpickling() -> None:
    config = CONFIGS[0]
    params = {k: np.asarray(v) for k, v in init_params(config).items()}
    trap = np.empty(1, dtype=object)
    trap[0] = _Tripwire()
    data = _raw_ours(config, {**params, "head.bias": trap}, "npz")
    with pytest.raises(ValueError, match=r"head\.bias.*allow_pickle"):
        weights_from_bytes(data)
    assert UNPICKLED == []


def test_torch_save_zip_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_Tripwire()))
        archive.writestr("archive/version", "3\n")
    with pytest.raises(ValueError, match="torch.save"):
        weights_from_bytes(buffer.getvalue())
    assert UNPICKLED == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_and_corrupt_bytes_are_value_errors(fmt: str) -> None:
    config = CONFIGS[3]
    data = weights_to_bytes(config, init_params(config), fmt)
    for cut in (4, 9, 12, 40, len(data) // 2, len(data) - 1):
        with pytest.raises(ValueError):
            weights_from_bytes(data[:cut], fmt)
        with pytest.raises(ValueError):
            weights_from_bytes(data[:cut])
    if fmt == "npz":  # a flipped data byte is caught by the zip CRC
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        with pytest.raises(ValueError):
            weights_from_bytes(bytes(flipped))


def test_corrupt_safetensors_header_is_a_value_error() -> None:
    config = CONFIGS[0]
    data = bytearray(weights_to_bytes(config, init_params(config), "safetensors"))
    data[10:20] = b"\xff" * 10
    with pytest.raises(ValueError, match="safetensors"):
        weights_from_bytes(bytes(data))


def test_corrupt_stored_config_is_a_value_error() -> None:
    tensors = _state_dict(4, 2, 3, rnn_prefix="rnn", head_prefix="head")
    data = safetensors.numpy.save(tensors, metadata={"unroll_config": "{not json"})
    with pytest.raises(ValueError, match="unroll_config"):
        weights_from_bytes(data)
    bad = json.dumps({**CONFIGS[0].to_dict(), "dropout": 0.5})
    data = safetensors.numpy.save(tensors, metadata={"unroll_config": bad})
    with pytest.raises(ValueError, match="unroll_config.*dropout"):
        weights_from_bytes(data)


# Validation against the config


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_shape_names_the_tensor(fmt: str) -> None:
    config = ModelConfig(cell="lstm", hidden_size=8, bidirectional=True, output_size=2)
    tensors = init_params(config)
    tensors["head.weight"] = np.zeros((3, 16))
    with pytest.raises(ValueError, match=r"head\.weight: expected shape \(2, 16\), got \(3, 16\)"):
        weights_from_bytes(_raw_ours(config, tensors, fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_extra_and_nan_tensors_are_named(fmt: str) -> None:
    config = CONFIGS[1]
    params = init_params(config)
    missing = {k: v for k, v in params.items() if k != "rnn.bias_hh_l1_reverse"}
    with pytest.raises(ValueError, match=r"missing tensor\(s\) rnn\.bias_hh_l1_reverse"):
        weights_from_bytes(_raw_ours(config, missing, fmt))
    extra = {**params, "rnn.weight_ih_l2": np.zeros((4, 8))}
    with pytest.raises(ValueError, match=r"unexpected tensor\(s\) rnn\.weight_ih_l2"):
        weights_from_bytes(_raw_ours(config, extra, fmt))
    nan = {**params, "rnn.weight_hh_l0": np.full((4, 4), np.nan)}
    with pytest.raises(ValueError, match=r"rnn\.weight_hh_l0: contains NaN"):
        weights_from_bytes(_raw_ours(config, nan, fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_integer_tensors_are_named(fmt: str) -> None:
    tensors = _state_dict(4, 2, 3)
    tensors["fc.bias"] = np.array([1, 2], dtype=np.int64)
    data = safetensors.numpy.save(tensors) if fmt == "safetensors" else _raw_npz(tensors)
    with pytest.raises(ValueError, match=r"fc\.bias: dtype .*not a float"):
        weights_from_bytes(data)


# Inference from plain PyTorch state_dicts


@pytest.mark.parametrize(
    ("gates", "nonlinearity", "cell", "rnn_prefix"),
    [
        (4, "tanh", "lstm", "lstm"),
        (3, "tanh", "gru", "model.encoder.rnn"),
        (1, "relu", "rnn_relu", ""),
        (1, "tanh", "rnn_tanh", "rnn"),
    ],
)
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True)])
def test_infers_config_from_state_dict(
    gates: int, nonlinearity: str, cell: str, rnn_prefix: str, num_layers: int, bidirectional: bool
) -> None:
    tensors = _state_dict(gates, 3, 5, num_layers, bidirectional, 2, rnn_prefix, "fc")
    config, params = weights_from_bytes(
        safetensors.numpy.save(tensors), nonlinearity=nonlinearity, head="classification"
    )
    assert config == ModelConfig(
        cell=cell,
        input_size=3,
        hidden_size=5,
        num_layers=num_layers,
        bidirectional=bidirectional,
        output_size=2,
        head="classification",
    )
    rnn = f"{rnn_prefix}." if rnn_prefix else ""
    for name in param_shapes(config):
        source = name.replace("rnn.", rnn, 1).replace("head.", "fc.", 1)
        assert np.array_equal(params[name], tensors[source]), name


def test_infers_from_npz_state_dict_with_output_mode() -> None:
    tensors = _state_dict(3, 2, 4, rnn_prefix="gru", head_prefix="out", output_size=1)
    config, params = weights_from_bytes(_raw_npz(tensors), output_mode="last")
    assert (config.cell, config.output_mode, config.head) == ("gru", "last", "regression")
    assert np.array_equal(params["head.weight"], tensors["out.weight"])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_state_dict_is_widened(dtype: type) -> None:
    tensors = _state_dict(4, 3, 5, num_layers=2, bidirectional=True, dtype=dtype)
    config, params = weights_from_bytes(safetensors.numpy.save(tensors))
    assert (config.cell, config.num_layers, config.bidirectional) == ("lstm", 2, True)
    assert all(value.dtype == np.float64 for value in params.values())
    assert np.array_equal(params["rnn.weight_hh_l1_reverse"], tensors["lstm.weight_hh_l1_reverse"])


def test_bfloat16_state_dict_is_widened_exactly() -> None:
    tensors = _state_dict(3, 2, 2, rnn_prefix="gru")
    # Keep only bfloat16's bits (the top half of each float32) so widening is exact.
    top = {k: (v.astype("<f4").view("<u4") >> 16).astype("<u2") for k, v in tensors.items()}
    data = _raw_safetensors({k: ("BF16", v.shape, v.tobytes()) for k, v in top.items()})
    config, params = weights_from_bytes(data)
    assert config.cell == "gru"
    expected = (top["gru.weight_hh_l0"].astype(np.uint32) << 16).view(np.float32)
    assert np.array_equal(params["rnn.weight_hh_l0"], expected.astype(np.float64))
    assert np.allclose(params["rnn.weight_hh_l0"], tensors["gru.weight_hh_l0"], rtol=1e-2)


def test_inferred_shape_errors_name_the_file_tensor() -> None:
    tensors = _state_dict(4, 3, 5, num_layers=2)
    tensors["lstm.weight_ih_l1"] = np.zeros((20, 4))
    with pytest.raises(ValueError, match=r"rnn\.weight_ih_l1 \(lstm\.weight_ih_l1 in the file\)"):
        weights_from_bytes(safetensors.numpy.save(tensors))
    del tensors["lstm.bias_hh_l1"]
    with pytest.raises(ValueError, match=r"missing.*lstm\.bias_hh_l1"):
        weights_from_bytes(safetensors.numpy.save(tensors))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: {k: v for k, v in t.items() if k.startswith("fc.")}, "no recurrent tensors"),
        (
            lambda t: {**t, "out.weight": np.zeros((2, 5)), "out.bias": np.zeros(2)},
            "candidate heads 'fc' and 'out'",
        ),
        (lambda t: {**t, "lstm.weight_hr_l0": np.zeros((2, 5))}, "weight_hr_l0.*proj_size"),
        (lambda t: {k: v for k, v in t.items() if ".bias_" not in k}, "bias=False"),
        (lambda t: {k: v for k, v in t.items() if k != "fc.bias"}, r"fc\.weight.*bias=False"),
        (lambda t: {k: v for k, v in t.items() if not k.startswith("fc.")}, "no head found"),
        (lambda t: {**t, "enc.weight_ih_l1": np.zeros((20, 5))}, "disagree on their prefix"),
        (lambda t: {**t, "bn.running_mean": np.zeros(5)}, r"bn\.running_mean: unexpected"),
        (lambda t: {**t, "lstm.weight_hh_l0": np.zeros((10, 5))}, r"weight_hh_l0: shape \(10, 5\)"),
        (lambda t: {**t, "fc.weight": np.zeros(10)}, r"fc\.weight: head tensor must be 2-D"),
    ],
)
def test_inference_failures_explain_what_was_expected(edit, message: str) -> None:
    tensors = edit(_state_dict(4, 3, 5))
    with pytest.raises(ValueError, match=message):
        weights_from_bytes(safetensors.numpy.save(tensors))


def test_inference_arguments_are_checked() -> None:
    data = safetensors.numpy.save(_state_dict(1, 3, 5))
    with pytest.raises(ValueError, match="nonlinearity"):
        weights_from_bytes(data, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="head"):
        weights_from_bytes(data, head="ranking")
    with pytest.raises(ValueError, match="classes"):
        weights_from_bytes(
            safetensors.numpy.save(_state_dict(1, 3, 5, output_size=1)), head="classification"
        )


# Explicit config


def test_explicit_config_overrides_the_stored_one() -> None:
    config = CONFIGS[3]
    data = weights_to_bytes(config, init_params(config), "safetensors")
    override = dataclasses.replace(config, head="classification", output_mode="last")
    assert weights_from_bytes(data, config=override)[0] == override
    assert weights_from_bytes(data, config=override.to_dict())[0] == override
    with pytest.raises(ValueError, match=r"rnn\.weight_ih_l0: expected shape"):
        weights_from_bytes(data, config=dataclasses.replace(config, input_size=7))


def test_stored_config_beats_inference_arguments() -> None:
    config = CONFIGS[1]
    data = weights_to_bytes(config, init_params(config), "npz")
    assert weights_from_bytes(data, nonlinearity="tanh", head="regression")[0] == config


def test_explicit_config_applies_to_a_state_dict() -> None:
    data = safetensors.numpy.save(_state_dict(1, 3, 5, rnn_prefix="rnn", head_prefix="fc"))
    config = ModelConfig(cell="rnn_relu", input_size=3, hidden_size=5, output_size=2)
    loaded, params = weights_from_bytes(data, config=config)
    assert loaded == config
    with pytest.raises(ValueError, match="config: unknown field"):
        weights_from_bytes(data, config={"cell": "rnn_relu", "units": 5})


# Against PyTorch


def test_pytorch_lstm_state_dict_matches_torch_outputs(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
            self.fc = nn.Linear(10, 2)

    torch.manual_seed(0)
    model = Model().double()
    state = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    path = tmp_path / "torch_lstm.safetensors"
    safetensors.numpy.save_file(state, path)

    config, params = load_weights(path)
    assert config == ModelConfig(
        cell="lstm", input_size=3, hidden_size=5, num_layers=2, bidirectional=True, output_size=2
    )
    x = np.random.default_rng(0).standard_normal((7, 3))
    with torch.no_grad():
        expected = model.fc(model.lstm(torch.from_numpy(x))[0]).numpy()
    np.testing.assert_allclose(
        run_sequence(config, params, x).outputs, expected, rtol=0, atol=1e-10
    )

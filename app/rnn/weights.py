"""Saving and loading weights with their config, as safetensors or npz; never pickle.

Also reads plain PyTorch state_dicts (one nn.RNN/LSTM/GRU plus one nn.Linear) and infers
their config from the tensor shapes.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from app.rnn.config import HEADS, OUTPUT_MODES, ModelConfig
from app.rnn.params import check_params, direction_suffix
from app.rnn.types import Params

FORMATS = ("safetensors", "npz")
SUFFIXES = {".safetensors": "safetensors", ".npz": "npz"}
CONFIG_KEY = "unroll_config"  # safetensors header metadata key
NPZ_CONFIG_KEY = "__unroll_config__"  # npz entry: a 0-d unicode array of JSON

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
# Safetensors dtype -> little-endian numpy dtype; BF16 is widened by hand.
_SAFETENSORS_FLOATS = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}
# Any prefix, then a recurrent leaf such as weight_ih_l0 or bias_hh_l1_reverse.
_RECURRENT = re.compile(
    r"^(?:(?P<prefix>.*)\.)?(?P<leaf>(?:weight|bias)_(?:ih|hh)_l(?P<layer>\d+)(?:_reverse)?)$"
)
_PROJECTION = re.compile(r"(?:^|\.)weight_hr_l\d+(?:_reverse)?$")
_NPY_MAX_HEADER = 10_000  # bytes of one .npy header (numpy's own default limit)


@dataclass(frozen=True)
class Declared:
    """What a weights file says about itself, read from its headers without loading
    any array: so sizes can be checked before a single tensor is allocated."""

    format: str  # "safetensors" or "npz"
    tensors: dict[str, tuple[int, ...]]  # name -> declared shape, float dtypes only
    config: str | None  # the stored config JSON, if any

    def num_elements(self) -> int:
        """Declared floats over every tensor."""
        return sum(math.prod(shape) for shape in self.tensors.values())

    def layer_indices(self) -> dict[str, int]:
        """Recurrent tensor name -> the layer its name says, e.g. weight_ih_l3 -> 3."""
        return {name: int(m["layer"]) for name in self.tensors if (m := _RECURRENT.match(name))}


def weights_to_bytes(config: ModelConfig, params: Params, fmt: str) -> bytes:
    """Serialize params and config; fmt is "safetensors" or "npz".

    params: names and shapes as `param_shapes(config)`, e.g. rnn.weight_ih_l0 (G*H, I),
    head.weight (O, D*H); stored as float64 under those names. The config travels as
    JSON: safetensors metadata "unroll_config", or npz entry "__unroll_config__".
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: must be a ModelConfig, got {type(config).__name__}")
    fmt = _check_format(fmt)
    tensors = {
        name: np.ascontiguousarray(value, dtype=np.float64)
        for name, value in check_params(config, params).items()
    }
    config_json = json.dumps(config.to_dict())
    if fmt == "safetensors":
        return safetensors.numpy.save(tensors, metadata={CONFIG_KEY: config_json})
    buffer = io.BytesIO()
    # A 0-d '<U' array is stored as plain .npy text, so it loads with allow_pickle=False.
    entries: dict[str, Any] = {**tensors, NPZ_CONFIG_KEY: np.array(config_json)}
    np.savez(buffer, allow_pickle=False, **entries)
    return buffer.getvalue()


def save_weights(path: str | os.PathLike[str], config: ModelConfig, params: Params) -> None:
    """Write params (shapes as `param_shapes(config)`) and config to `path`.

    The format follows the suffix: .safetensors or .npz; anything else is a ValueError.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"path: expected a .safetensors or .npz suffix, got {suffix or 'none'!r}")
    data = weights_to_bytes(config, params, SUFFIXES[suffix])
    with open(path, "wb") as file:
        file.write(data)


def weights_from_bytes(
    data: bytes,
    fmt: str | None = None,
    *,
    config: ModelConfig | dict[str, Any] | None = None,
    nonlinearity: str = "tanh",
    head: str = "regression",
    output_mode: str = "sequence",
) -> tuple[ModelConfig, Params]:
    """Read weights written by `weights_to_bytes`, or a plain PyTorch state_dict.

    fmt None sniffs the format; pickles (including torch.save checkpoints) are refused.
    The config is `config` if given, else the one stored in the file, else inferred from
    the tensor shapes of a state_dict holding one recurrent layer (names ending in
    weight_ih_l{k} etc., any shared prefix) and one Linear head (<prefix>.weight (O, D*H),
    <prefix>.bias (O,)). Inference takes the plain-RNN `nonlinearity` ("tanh" | "relu"),
    `head` and `output_mode` from the arguments.
    Returns (config, params) with float64 params in `param_shapes(config)` order.
    Any unreadable, ambiguous or mismatched content is a ValueError naming the tensor.
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: must be one of tanh, relu, got {nonlinearity!r}")
    if head not in HEADS:
        raise ValueError(f"head: must be one of {', '.join(HEADS)}, got {head!r}")
    if output_mode not in OUTPUT_MODES:
        raise ValueError(
            f"output_mode: must be one of {', '.join(OUTPUT_MODES)}, got {output_mode!r}"
        )
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"data: must be bytes, got {type(data).__name__}")
    data = bytes(data)
    fmt = _sniff_format(data) if fmt is None else _check_format(fmt)
    if fmt == "safetensors":
        tensors, stored = _read_safetensors(data)
    else:
        tensors, stored = _read_npz(data)

    if stored is not None:  # written by us, so the names are already canonical
        resolved = _explicit_config(config) if config is not None else _parse_stored(stored)
        return resolved, check_params(resolved, tensors)

    params, rnn_prefix, head_prefix = _rename_state_dict(tensors)
    if config is not None:
        resolved = _explicit_config(config)
    else:
        resolved = _infer_config(params, rnn_prefix, nonlinearity, head, output_mode)
    try:
        return resolved, check_params(resolved, params)
    except ValueError as exc:
        raise ValueError(_with_file_names(str(exc), rnn_prefix, head_prefix)) from None


def load_weights(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    config: ModelConfig | dict[str, Any] | None = None,
    nonlinearity: str = "tanh",
    head: str = "regression",
    output_mode: str = "sequence",
) -> tuple[ModelConfig, Params]:
    """Read a weights file (format sniffed unless `fmt`); see `weights_from_bytes`.

    Returns (config, params); errors about the content are ValueErrors prefixed by the path.
    """
    with open(path, "rb") as file:
        data = file.read()
    try:
        return weights_from_bytes(
            data,
            fmt,
            config=config,
            nonlinearity=nonlinearity,
            head=head,
            output_mode=output_mode,
        )
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from None


def read_declared(
    data: bytes, fmt: str | None = None, *, max_entries: int | None = None
) -> Declared:
    """Names, shapes and the stored config of a weights file, from its headers only.

    safetensors: the JSON header; npz: the zip directory and each entry's .npy header
    (a few hundred bytes per entry, whatever the data behind it). Refuses, before
    reading more, an archive of more than `max_entries` entries. Any malformed header,
    non-.npy entry or non-float dtype is a ValueError naming the entry and the reason.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"data: must be bytes, got {type(data).__name__}")
    data = bytes(data)
    fmt = _sniff_format(data) if fmt is None else _check_format(fmt)
    if fmt == "safetensors":
        return _declared_safetensors(data, max_entries)
    return _declared_npz(data, max_entries)


def _check_format(fmt: object) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"fmt: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return str(fmt)


def _sniff_format(data: bytes) -> str:
    if data.startswith(_ZIP_MAGIC):
        return "npz"
    if len(data) >= 9 and data[8:9] == b"{":
        return "safetensors"
    hint = " (this looks like a pickle)" if data.startswith(b"\x80") else ""
    raise ValueError(
        f"data is neither safetensors nor npz{hint}; pickle files (such as torch.save "
        "checkpoints) are refused because loading them can run arbitrary code"
    )


def _safetensors_header(data: bytes) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked for shape but not for content."""
    if len(data) < 9:
        raise ValueError(f"safetensors: truncated, {len(data)} bytes is shorter than a header")
    if data[8:9] != b"{":
        raise ValueError("safetensors: not a safetensors file (no JSON header after the length)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise ValueError(
            f"safetensors: truncated or corrupt, header claims {header_len} bytes "
            f"but only {len(data) - 8} follow"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"safetensors: corrupt header, not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError("safetensors: corrupt header, not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ValueError("safetensors: corrupt header, __metadata__ is not a mapping")
    stored = metadata.get(CONFIG_KEY)
    if stored is not None and not isinstance(stored, str):
        raise ValueError(f"safetensors: metadata {CONFIG_KEY} is not a string")
    return header


def _declared_safetensors(data: bytes, max_entries: int | None) -> Declared:
    header = _safetensors_header(data)
    names = [name for name in header if name != "__metadata__"]
    _check_count(len(names), max_entries, "safetensors")
    tensors: dict[str, tuple[int, ...]] = {}
    for name in names:
        entry = header[name]
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: corrupt safetensors header entry (not an object)")
        dtype, shape = entry.get("dtype"), entry.get("shape")
        if dtype not in _SAFETENSORS_FLOATS and dtype != "BF16":
            raise ValueError(f"{name}: dtype {dtype} is not a float; expected F16, BF16, F32, F64")
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ValueError(f"{name}: corrupt safetensors header, shape {shape!r}")
        tensors[name] = tuple(shape)
    return Declared("safetensors", tensors, header.get("__metadata__", {}).get(CONFIG_KEY))


def _declared_npz(data: bytes, max_entries: int | None) -> Declared:
    if not data.startswith(_ZIP_MAGIC):
        raise ValueError("npz: not a zip archive")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, EOFError, OSError on damaged archives
        raise ValueError(f"npz: corrupt or truncated file ({exc})") from None
    with archive:
        entries = archive.infolist()
        if any(entry.filename.endswith("data.pkl") for entry in entries):
            raise ValueError(
                "npz: this is a torch.save checkpoint (a zip of pickles), which is refused; "
                "save the state_dict with safetensors instead"
            )
        foreign = [entry.filename for entry in entries if not entry.filename.endswith(".npy")]
        if foreign:
            raise ValueError(f"npz: entry {foreign[0]!r} is not a .npy array")
        _check_count(len(entries), max_entries, "npz")
        tensors: dict[str, tuple[int, ...]] = {}
        stored: str | None = None
        for entry in entries:
            name = entry.filename[: -len(".npy")]
            if name in tensors or (name == NPZ_CONFIG_KEY and stored is not None):
                raise ValueError(f"npz: entry {entry.filename!r} appears twice")
            dtype, shape = _npy_header(archive, entry)
            if name == NPZ_CONFIG_KEY:
                # the config is small text: its size is bounded before it is read
                if shape != () or dtype.kind != "U" or entry.file_size > 1 << 20:
                    raise ValueError(f"{name}: expected a 0-d unicode string array")
                stored = _npy_string(archive, entry)
            elif dtype.hasobject:
                raise ValueError(
                    f"{name}: dtype {dtype} would need unpickling (allow_pickle), which is "
                    "refused; expected float16/32/64"
                )
            elif dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
                raise ValueError(f"{name}: dtype {dtype} is not a float; expected float16/32/64")
            else:
                tensors[name] = shape
    return Declared("npz", tensors, stored)


def _npy_header(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> tuple[np.dtype, tuple]:
    """(dtype, shape) from the first bytes of a .npy entry; nothing more is decompressed."""
    try:
        with archive.open(entry) as file:
            major, _ = np.lib.format.read_magic(file)
            read = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(file, max_header_size=_NPY_MAX_HEADER)
    except Exception as exc:  # ValueError on a bad header, zipfile errors, EOF on empty
        reason = str(exc) or type(exc).__name__
        raise ValueError(f"npz: entry {entry.filename!r} is not .npy data ({reason})") from None
    return dtype, tuple(int(n) for n in shape)


def _npy_string(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> str:
    try:
        with archive.open(entry) as file:
            value = np.lib.format.read_array(file, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{NPZ_CONFIG_KEY}: unreadable npz entry ({exc})") from None
    return str(value[()])


def _check_count(count: int, max_entries: int | None, fmt: str) -> None:
    if max_entries is not None and count > max_entries:
        raise ValueError(f"{fmt}: {count} entries, more than the {max_entries} allowed")


def _read_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], str | None]:
    """Tensors widened to float64, and the stored config JSON if any."""
    declared = _declared_safetensors(data, None)
    try:
        entries = safetensors.deserialize(data)
    except Exception as exc:  # the Rust reader raises SafetensorError and friends
        raise ValueError(f"safetensors: corrupt or truncated file ({exc})") from None
    tensors: dict[str, np.ndarray] = {}
    for name, entry in entries:
        dtype, shape, raw = entry["dtype"], tuple(entry["shape"]), entry["data"]
        if dtype in _SAFETENSORS_FLOATS:
            flat = np.frombuffer(raw, dtype=_SAFETENSORS_FLOATS[dtype])
        else:  # BF16, the only other dtype the header check lets through
            # bfloat16 is the top half of a float32, so widening is exact.
            flat = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        tensors[name] = flat.astype(np.float64).reshape(shape)
    return tensors, declared.config


def _read_npz(data: bytes) -> tuple[dict[str, np.ndarray], str | None]:
    """Tensors widened to float64, and the stored config JSON if any; never unpickles.
    Every entry's header is checked (`read_declared`) before any array is read."""
    declared = _declared_npz(data, None)
    tensors: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in declared.tensors:
            try:
                with archive.open(f"{name}.npy") as file:
                    value = np.lib.format.read_array(
                        file, allow_pickle=False, max_header_size=_NPY_MAX_HEADER
                    )
            except Exception as exc:  # a damaged or truncated entry, after a sound header
                raise ValueError(f"{name}: unreadable npz entry ({exc})") from None
            tensors[name] = value.astype(np.float64)
    return tensors, declared.config


def _explicit_config(config: ModelConfig | dict[str, Any]) -> ModelConfig:
    return config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)


def _parse_stored(text: str) -> ModelConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{CONFIG_KEY}: not valid JSON ({exc})") from None
    try:
        return ModelConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{CONFIG_KEY}: {exc}") from None


def _rename_state_dict(tensors: dict[str, np.ndarray]) -> tuple[Params, str, str]:
    """Map a state_dict onto rnn.* / head.* names; returns (params, rnn prefix, head prefix)."""
    projections = sorted(name for name in tensors if _PROJECTION.search(name))
    if projections:
        raise ValueError(f"{projections[0]}: LSTM with proj_size (weight_hr) is not supported")
    recurrent: dict[str, str] = {}  # file name -> leaf, e.g. weight_ih_l0
    prefixes: set[str] = set()
    rest: dict[str, tuple[str, str]] = {}  # file name -> (prefix, weight | bias)
    for name in tensors:
        match = _RECURRENT.match(name)
        if match:
            recurrent[name] = match["leaf"]
            prefixes.add(match["prefix"] or "")
            continue
        prefix, _, leaf = name.rpartition(".")
        if leaf not in ("weight", "bias"):
            raise ValueError(
                f"{name}: unexpected tensor; a state_dict can hold one recurrent layer "
                "and one Linear head only"
            )
        rest[name] = (prefix, leaf)

    if not recurrent:
        raise ValueError(
            "no recurrent tensors found: expected names ending in weight_ih_l0, weight_hh_l0, "
            "bias_ih_l0, bias_hh_l0 as in an nn.RNN/nn.LSTM/nn.GRU state_dict"
        )
    if len(prefixes) > 1:
        shown = ", ".join(repr(p) for p in sorted(prefixes))
        raise ValueError(f"recurrent tensors disagree on their prefix ({shown}); expected one")
    if not any(leaf.startswith("bias_") for leaf in recurrent.values()):
        raise ValueError("recurrent layer has no bias tensors: bias=False models are not supported")

    heads = sorted({prefix for prefix, _ in rest.values()})
    if not heads:
        raise ValueError(
            "no head found: expected one <prefix>.weight (O, D*H) and <prefix>.bias (O,) "
            "beside the recurrent tensors"
        )
    if len(heads) > 1:
        shown = " and ".join(repr(p) for p in heads)
        raise ValueError(f"{len(heads)} candidate heads {shown}; expected exactly one Linear")
    head_prefix = heads[0]
    weight_name, bias_name = _joined(head_prefix, "weight"), _joined(head_prefix, "bias")
    if weight_name not in tensors:
        raise ValueError(f"{bias_name}: head bias without {weight_name}")
    if bias_name not in tensors:
        raise ValueError(f"{weight_name}: head without {bias_name}; bias=False is not supported")
    for name, ndim in ((weight_name, 2), (bias_name, 1)):
        if tensors[name].ndim != ndim:
            raise ValueError(
                f"{name}: head tensor must be {ndim}-D, got shape {tensors[name].shape}"
            )

    params: Params = {f"rnn.{leaf}": tensors[name] for name, leaf in recurrent.items()}
    params["head.weight"] = tensors[weight_name]
    params["head.bias"] = tensors[bias_name]
    return params, prefixes.pop(), head_prefix


def _infer_config(
    params: Params, rnn_prefix: str, nonlinearity: str, head: str, mode: str
) -> ModelConfig:
    """Config from the shapes of renamed params: weight_hh_l0 (G*H, H), weight_ih_l0 (G*H, I)."""
    for leaf in ("weight_hh_l0", "weight_ih_l0"):
        if f"rnn.{leaf}" not in params:
            raise ValueError(f"{_joined(rnn_prefix, leaf)}: missing; needed to infer the config")
        if params[f"rnn.{leaf}"].ndim != 2:
            shape = params[f"rnn.{leaf}"].shape
            raise ValueError(f"{_joined(rnn_prefix, leaf)}: expected a 2-D matrix, got {shape}")
    rows, hidden_size = params["rnn.weight_hh_l0"].shape
    if hidden_size < 1 or rows % hidden_size or rows // hidden_size not in (1, 3, 4):
        raise ValueError(
            f"{_joined(rnn_prefix, 'weight_hh_l0')}: shape {(rows, hidden_size)} is not "
            "(G*H, H) with G = 1 (RNN), 3 (GRU) or 4 (LSTM)"
        )
    cell = {1: f"rnn_{nonlinearity}", 3: "gru", 4: "lstm"}[rows // hidden_size]
    layers = [int(m["layer"]) for name in params if (m := _RECURRENT.match(name))]
    return ModelConfig(
        cell=cell,
        input_size=int(params["rnn.weight_ih_l0"].shape[1]),
        hidden_size=int(hidden_size),
        num_layers=max(layers) + 1,
        bidirectional=any(name.endswith(direction_suffix(1)) for name in params),
        output_size=int(params["head.weight"].shape[0]),
        head=head,
        output_mode=mode,
    )


def _joined(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def _with_file_names(message: str, rnn_prefix: str, head_prefix: str) -> str:
    """Annotate canonical names in a check_params message with their state_dict names."""

    def annotate(match: re.Match[str]) -> str:
        group, leaf = match[1], match[2]
        original = _joined(rnn_prefix if group == "rnn" else head_prefix, leaf)
        return match[0] if original == match[0] else f"{match[0]} ({original} in the file)"

    return re.sub(r"\b(rnn|head)\.(\w+)", annotate, message)

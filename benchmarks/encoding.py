"""JSON encoding benchmark: one large trace, our orjson path vs the standard ones.

Run from the repo root:

    python benchmarks/encoding.py [--repeats 7] [--T 500] [--H 64]

The trace: `run_sequence` on an LSTM, input_size 8, output_size 1, regression, sequence
mode, 2 layers, bidirectional, hidden size H, T positions, with targets (so every
gradient is there), jacobians=False; plus `recurrent_spectrum`. The body is
`trace_to_dict(trace, spectrum)`, what POST /api/v1/trace answers.

Cases (each timed --repeats times after one warm-up; medians in ms):

- orjson      `app.api.encoding.dumps(trace_to_dict(trace, spectrum))`: what the app does
              (OPT_SERIALIZE_NUMPY; NaN/inf -> null).
- tolist      the standard preparation alone: every array `.tolist()`, numpy scalars
              `.item()`, NaN/inf -> None (a recursive walk).
- json        `json.dumps` of that plain dict, Starlette JSONResponse's settings
              (compact separators, ensure_ascii=False, allow_nan=False).
- tolist+json the two together: a plain `JSONResponse(tolist'ed dict)`.
- tolist+jsonable_encoder+json: FastAPI's route when an endpoint returns a dict and no
              response_model (`fastapi.encoders.jsonable_encoder`, then json.dumps).
- tolist+pydantic TraceOut: FastAPI's route with `response_model=TraceOut` returning a
              dict: validate into TraceOut, then pydantic-core's JSON dump.

The outputs are checked to decode to the same value. This is a measurement: it exits 0.
"bg cores": CPU used by other processes while a case ran (1.0 = a whole core).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import pydantic  # noqa: E402
from fastapi import __version__ as fastapi_version  # noqa: E402
from fastapi.encoders import jsonable_encoder  # noqa: E402
from machine import system_busy_seconds  # noqa: E402 - benchmarks/ is on sys.path

from app.api.encoding import dumps, trace_to_dict  # noqa: E402
from app.api.schemas import TraceOut  # noqa: E402
from app.rnn import ModelConfig, init_params, recurrent_spectrum, run_sequence  # noqa: E402


def to_plain(obj: Any) -> Any:
    """The standard preparation: arrays to nested lists, non-finite numbers to None."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            return _scrub(obj.tolist())
        return obj.tolist()
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj


def _scrub(value: Any) -> Any:
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def std_json(plain: Any) -> bytes:
    # starlette.responses.JSONResponse.render
    return json.dumps(
        plain, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def time_it(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float | None]:
    """(median ms, min ms, cores used by other processes while timing)."""
    fn()  # warm-up
    samples = []
    busy0, own0, wall0 = system_busy_seconds(), time.process_time(), time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    busy1, own1, wall1 = system_busy_seconds(), time.process_time(), time.perf_counter()
    background = None
    if busy0 is not None and busy1 is not None:
        background = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    return statistics.median(samples), min(samples), background


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case")
    parser.add_argument("--T", type=int, default=500, help="sequence length")
    parser.add_argument("--H", type=int, default=64, help="hidden size")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args(argv)
    if min(args.repeats, args.T, args.H, args.layers) < 1:
        parser.error("every count must be positive")

    config = ModelConfig(
        cell="lstm",
        input_size=8,
        hidden_size=args.H,
        num_layers=args.layers,
        bidirectional=True,
        output_size=1,
        head="regression",
        output_mode="sequence",
    )
    params = init_params(config, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.T, 8))
    y = rng.standard_normal((args.T, 1))
    trace = run_sequence(config, params, x, y, jacobians=False)
    spectrum = recurrent_spectrum(config, params)
    body = trace_to_dict(trace, spectrum)
    floats = sum(int(np.size(v)) for v in _arrays(body))

    print("JSON encoding benchmark: one trace as POST /api/v1/trace answers it")
    print(
        f"LSTM T={args.T} H={args.H} layers={args.layers} bidirectional, input 8, output 1, "
        f"with targets, jacobians=False; {floats:,} numbers in arrays; repeats {args.repeats}"
    )
    print(
        f"  python {platform.python_version()}, numpy {np.__version__}, orjson "
        f"{orjson.__version__}, fastapi {fastapi_version}, pydantic {pydantic.VERSION}"
    )
    print()

    fast = dumps(trace_to_dict(trace, spectrum))
    plain = to_plain(body)
    standard = std_json(plain)
    via_encoder = std_json(jsonable_encoder(plain))
    via_model = TraceOut.model_validate(plain).model_dump_json().encode()
    reference = json.loads(fast)
    same = {
        "tolist+json": json.loads(standard) == reference,
        "jsonable_encoder": json.loads(via_encoder) == reference,
        "pydantic TraceOut": json.loads(via_model) == reference,
    }

    cases: list[tuple[str, Callable[[], Any], int]] = [
        (
            "orjson  dumps(trace_to_dict(...))  [the app]",
            lambda: dumps(trace_to_dict(trace, spectrum)),
            len(fast),
        ),
        ("tolist + NaN->None only", lambda: to_plain(body), 0),
        ("json.dumps of the tolist'ed dict only", lambda: std_json(plain), len(standard)),
        ("tolist + json.dumps  [JSONResponse]", lambda: std_json(to_plain(body)), len(standard)),
        (
            "tolist + jsonable_encoder + json.dumps",
            lambda: std_json(jsonable_encoder(to_plain(body))),
            len(via_encoder),
        ),
        (
            "tolist + TraceOut validate + dump_json",
            lambda: TraceOut.model_validate(to_plain(body)).model_dump_json(),
            len(via_model),
        ),
    ]
    results = []
    for label, fn, size in cases:
        med, low, bg = time_it(fn, args.repeats)
        results.append((label, med, low, size, bg))

    base = results[0][1]
    width = max(len(r[0]) for r in results)
    print(
        f"{'case':<{width}}  {'MB out':>7}  {'median ms':>10}  {'min ms':>9}  "
        f"{'x orjson':>8}  {'bg cores':>8}"
    )
    for label, med, low, size, bg in results:
        mb = f"{size / 1e6:.2f}" if size else "-"
        bg_text = "n/a" if bg is None else f"{bg:.2f}"
        print(
            f"{label:<{width}}  {mb:>7}  {med:>10.1f}  {low:>9.1f}  {med / base:>8.1f}  "
            f"{bg_text:>8}"
        )
    if any(r[4] is not None and r[4] > 0.2 for r in results):
        print("WARNING: other processes used CPU while timing (bg cores > 0.2).")
    print()
    for name, ok in same.items():
        print(f"decodes to the same value as orjson: {name:<18} {'yes' if ok else 'NO'}")
    return 0


def _arrays(obj: Any) -> list[np.ndarray]:
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays(v)]
    if isinstance(obj, list | tuple):
        return [a for v in obj for a in _arrays(v)]
    return []


if __name__ == "__main__":
    sys.exit(main())

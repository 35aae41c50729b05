"""The `unroll` command line: serve the app, train on a task, export the frame schema."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from app.settings import Settings

TRAIN_EXAMPLES = """examples:
  unroll train --task adding --cell lstm --steps 1500 --out model.safetensors
  unroll train --task sine --set horizon=3 --cell gru --hidden-size 16 --out sine.npz
  unroll train --task copy --set delay=20 --cell lstm --optimizer adam --lr 0.005
"""


def _parse_value(text: str) -> Any:
    """A task parameter from the command line: a JSON value, else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _task_params(pairs: list[str]) -> dict[str, Any]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set: expected KEY=VALUE, got {pair!r}")
        params[key] = _parse_value(value)
    return params


def _progress_bar(step: int, total: int, loss: float, eval_loss: float | None) -> str:
    width = 30
    done = int(width * step / total)
    tail = "" if eval_loss is None else f"  eval {eval_loss:.4g}"
    return f"\r[{'#' * done}{'.' * (width - done)}] {step}/{total}  loss {loss:.4g}{tail}"


def cmd_train(args: argparse.Namespace) -> int:
    """Train on a built-in task and save the weights; same arguments, same weights."""
    from app.rnn.optim import OptimizerConfig
    from app.rnn.tasks import make_task
    from app.rnn.train import Finished, Probe, Progress, TrainConfig, held_out_loss, train
    from app.rnn.weights import save_weights

    try:
        task = make_task(args.task, **_task_params(args.set))
        config = task.config(
            cell=args.cell,
            hidden_size=args.hidden_size,
            num_layers=args.layers,
            bidirectional=args.bidirectional,
        )
        settings = TrainConfig(
            batch_size=args.batch_size,
            steps=args.steps,
            clip_norm=args.clip_norm,
            clip_value=args.clip_value,
            truncate=args.truncate,
            seed=args.seed,
            init_scheme=args.init,
            init_scale=args.init_scale,
            probe_every=max(1, args.steps // 20),
        )
        optimizer = OptimizerConfig(args.optimizer, args.lr)
    except ValueError as exc:
        print(f"unroll train: {exc}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    eval_loss = None
    final = None
    for record in train(config, task, optimizer, settings):
        if isinstance(record, Probe):
            eval_loss = record.eval_loss
        elif isinstance(record, Progress):
            if not args.quiet:
                print(
                    _progress_bar(record.step, args.steps, record.loss, eval_loss),
                    end="",
                    file=sys.stderr,
                )
        elif isinstance(record, Finished):
            final = record
    assert final is not None
    eval_loss = held_out_loss(config, final.params, task, args.seed, 1000)
    if not args.quiet:
        print(file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(
        f"{task.name} {config.cell} H={config.hidden_size}: eval loss {eval_loss:.6g} "
        f"on 1000 held-out sequences after {final.step} steps in {elapsed:.1f} s"
    )
    if args.out:
        save_weights(args.out, config, final.params)
        print(f"saved {args.out}")
    return 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    """Write the frame JSON Schema (the stream, session and page contract)."""
    from app.api.frames import frame_json_schema

    text = json.dumps(frame_json_schema(), indent=2, sort_keys=True) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


WS_FRAME_MARGIN = 16 * 1024  # bytes over max_ws_message_bytes uvicorn still reads: the
# app answers those with an error frame; anything larger is refused before it is buffered


def uvicorn_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The keyword arguments `unroll serve` gives uvicorn.run (and uvicorn.Config)."""
    return {
        "app": "app.main:app",
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "ws_max_size": settings.max_ws_message_bytes + WS_FRAME_MARGIN,
        # deflating a multi-megabyte trace frame would run on the event loop, for seconds
        "ws_per_message_deflate": False,
        "log_level": "info",
    }


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the page and the API with uvicorn; worker processes share the model store."""
    import os

    import uvicorn

    # workers are separate processes that build the app from the environment
    if args.demo:
        os.environ["UNROLL_DEMO"] = "1"
    if args.data_dir:
        os.environ["UNROLL_DATA_DIR"] = str(args.data_dir)
    # the bound address decides which Host names are served by default (app/origin.py)
    os.environ["UNROLL_HOST"] = args.host
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"unroll serve: {exc}", file=sys.stderr)
        return 2
    mode = " (public demo settings)" if settings.demo else ""
    print(f"Unroll on http://{args.host}:{args.port}{mode}", file=sys.stderr)
    uvicorn.run(**uvicorn_options(args, settings))
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """Forward and BPTT for one sequence from a JSON body, as POST /api/v1/trace takes."""
    import io

    import numpy as np
    from pydantic import ValidationError

    from app.api.encoding import dumps, trace_to_dict, trace_to_npz_arrays
    from app.api.errors import ApiError, validation_detail
    from app.api.inputs import resolve_trace_request
    from app.api.schemas import TraceRequest
    from app.rnn import recurrent_spectrum
    from app.store import open_store

    settings = Settings.from_env()
    try:
        text = sys.stdin.read() if args.config == "-" else Path(args.config).read_text()
        body = TraceRequest.model_validate_json(text)
        job = resolve_trace_request(body, settings, open_store(settings))
    except OSError as exc:
        print(f"unroll trace: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"unroll trace: {validation_detail(exc.errors())[0]}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"unroll trace: {exc.detail}", file=sys.stderr)
        return 2
    trace = job.run()
    spectrum = recurrent_spectrum(job.config, job.params)
    out = Path(args.out)
    if out.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **trace_to_npz_arrays(trace, spectrum))
        out.write_bytes(buffer.getvalue())
    elif out.suffix == ".json":
        out.write_bytes(dumps(trace_to_dict(trace, spectrum)))
    else:
        print("unroll trace: --out must end in .npz or .json", file=sys.stderr)
        return 2
    loss = "no targets" if trace.loss is None else f"loss {trace.loss:.6g}"
    print(f"wrote {out}: T={trace.sequence_length}, {loss}, finite={trace.finite}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="unroll", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = Settings.from_env()

    serve = sub.add_parser(
        "serve",
        help="serve the web app and the JSON API",
        description="Serve the web app and the JSON API.",
        epilog="examples:\n  unroll serve --port 8000\n"
        "  unroll serve --host 0.0.0.0 --workers 2 --demo --data-dir /data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", default=defaults.host, help="address to bind (default %(default)s)"
    )
    serve.add_argument("--port", type=int, default=defaults.port, help="port (default %(default)s)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; they share the model store (default 1)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="public-demo settings: tighter caps, per-client rate limits, small uploads",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where the model store lives (default {defaults.data_dir})",
    )
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For from --forwarded-allow-ips (behind a proxy)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies trusted for X-Forwarded-* (default %(default)s)",
    )
    serve.set_defaults(func=cmd_serve)

    tc = sub.add_parser(
        "trace",
        help="run one sequence from a JSON body; write npz or JSON",
        description="Forward pass and BPTT for one sequence. CONFIG.json holds "
        "the body of POST /api/v1/trace.",
        epilog="example: unroll trace body.json --out trace.npz",
    )
    tc.add_argument("config", metavar="CONFIG.json", help="the request body, or - for stdin")
    tc.add_argument("--out", required=True, help="trace.npz or trace.json")
    tc.set_defaults(func=cmd_trace)

    tr = sub.add_parser(
        "train",
        help="train on a built-in task and save the weights",
        description="Train a network on a built-in task, with a progress bar.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument(
        "--task",
        required=True,
        help="sine, random_walk, adding, copy, parity, text (custom needs the API)",
    )
    tr.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task parameter, e.g. length=50 (repeatable)",
    )
    tr.add_argument("--cell", default="lstm", help="rnn_tanh, rnn_relu, lstm or gru")
    tr.add_argument("--hidden-size", type=int, default=32)
    tr.add_argument("--layers", type=int, default=1)
    tr.add_argument("--bidirectional", action="store_true")
    tr.add_argument("--optimizer", default="adam", help="sgd, momentum or adam")
    tr.add_argument("--lr", type=float, default=0.01, help="learning rate")
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--steps", type=int, default=1500)
    tr.add_argument("--clip-norm", type=float, default=1.0, help="global-norm clipping")
    tr.add_argument("--clip-value", type=float, default=None)
    tr.add_argument("--truncate", type=int, default=None, help="BPTT(k)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--init", default="pytorch", help="pytorch, xavier, orthogonal, identity")
    tr.add_argument("--init-scale", type=float, default=1.0)
    tr.add_argument("--out", help="where to save the weights (.safetensors or .npz)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)

    ex = sub.add_parser(
        "export-schema",
        help="write the frame JSON Schema",
        description="Write the JSON Schema of every stream and session frame.",
        epilog="example: unroll export-schema --out docs/frame-schema.json",
    )
    ex.add_argument("--out", default="-", help="file to write, or - for stdout (default)")
    ex.set_defaults(func=cmd_export_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `unroll` console script."""
    import os

    # our matrices are small: a second BLAS thread only spins against the other core
    # (set before numpy is first imported; an explicit setting wins)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

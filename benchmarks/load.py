"""Load benchmark (issue 6): many concurrent clients against `unroll serve` on loopback.

Run from the repo root:

    python benchmarks/load.py [--clients 100] [--duration 60] [--port 0] [--json out.json]

It starts `python -m app.cli serve --host 127.0.0.1 --port N` (N a free port unless
--port is given) in a subprocess with a temporary UNROLL_DATA_DIR and no other UNROLL_*
variable, so the server runs with the default caps (not the demo ones: no rate limit),
waits for GET /healthz, then:

1. idle: --idle-probes sequential GET /healthz on one keep-alive connection;
2. load: --clients asyncio clients, each with its own httpx.AsyncClient (connection), send
   one request after another for --duration seconds, each drawn at random:
   - 60% POST /api/v1/trace, LSTM, T=50, H=16, with targets (forward and full BPTT);
   - 30% POST /api/v1/trace/stream, the same body, read as JSON Lines to the `done` frame;
   - 10% POST /api/v1/train/stream, GRU H=16 on the adding task (T=50), 20 steps of batch
     8, read as JSON Lines to the `done` frame (it stores the trained weights);
   meanwhile a separate connection probes GET /healthz every --probe-interval seconds.
   No request starts after --duration; those still running get --drain seconds more and
   are then cancelled and counted as unfinished.

A request is completed when it answers 2xx and, for a stream, ends with a `done` frame
and carries no `error` frame; anything else is an error, counted by reason. Latency is
from sending the request to the last byte. Every request has a timeout (--timeout), and
the server is always stopped (SIGTERM, then SIGKILL of its own process group). Only
127.0.0.1 is contacted; proxy settings in the environment are ignored. The whole run is
bounded by about startup + idle probes + --duration + --drain.

With --hangup (issue 10) the mix is different: --heavy clients, each a process of its
own (so reading their answers does not slow this one) from its own loopback address
(127.0.0.2, 127.0.0.3, ...: a client is an address to the server's
admission control), send the heaviest requests the default budget admits (a trace, a
trace stream, a session configure, a training run) and hang up after --hangup-after
seconds, over and over, while --clients small-trace clients (from 127.0.0.1) send the
small trace back to back. Small-trace latencies are compared with the same small trace
sent with no heavy client, in windows alternating with the loaded ones (--cycles x
--window seconds each), so background load on a shared machine weighs on both alike: the
goal is a p95 within 3x of idle. Heavy answers are counted by status (a 429 is the second heavy
request of a client whose first is still being stopped; 422 is over the budget).

This is a measurement, not a test: it exits 0 whether or not anything failed (1 only if
the server cannot be started).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from machine import free_port  # noqa: E402 - benchmarks/ is on sys.path

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
NDJSON = {"Accept": "application/x-ndjson"}
KINDS = ("trace", "stream", "train")
MIX = (0.6, 0.3, 0.1)  # trace, stream, train


# ---------------------------------------------------------------------------- requests


def _bodies() -> dict[str, dict]:
    rng = np.random.default_rng(0)
    trace = {
        "config": {"cell": "lstm", "input_size": 1, "hidden_size": 16},
        "inputs": rng.standard_normal((50, 1)).round(4).tolist(),
        "targets": rng.standard_normal((50, 1)).round(4).tolist(),
    }
    train = {
        "config": {"cell": "gru", "hidden_size": 16},
        "task": {"name": "adding", "length": 50},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "batch_size": 8,
        "steps": 20,
        "probe_every": 20,
        "clip_norm": 1.0,
    }
    return {"trace": trace, "stream": trace, "train": train}


BODIES = _bodies()
PATHS = {
    "trace": "/api/v1/trace",
    "stream": "/api/v1/trace/stream",
    "train": "/api/v1/train/stream",
}


@dataclass
class Outcome:
    kind: str
    latency: float  # seconds, request sent to last byte
    error: str | None  # None when completed


async def one_request(client: httpx.AsyncClient, kind: str, limit: float) -> Outcome:
    """Send one request of `kind` and read it to the end, within `limit` seconds in all."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            error = await _exchange(client, kind)
    except TimeoutError:
        error = "timeout (whole request)"
    except httpx.TimeoutException as exc:
        error = f"timeout ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    except json.JSONDecodeError:
        error = "malformed JSON line"
    return Outcome(kind, time.perf_counter() - started, error)


async def _exchange(client: httpx.AsyncClient, kind: str) -> str | None:
    """The error of one request, or None when it completed."""
    if kind == "trace":
        response = await client.post(PATHS[kind], json=BODIES[kind])
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return None if b'"finite"' in response.content else "incomplete trace body"
    async with client.stream("POST", PATHS[kind], json=BODIES[kind], headers=NDJSON) as r:
        if r.status_code != 200:
            await r.aread()
            return f"HTTP {r.status_code}"
        last_type, error = None, None
        async for line in r.aiter_lines():
            if line:
                last_type = json.loads(line).get("type")
                if last_type == "error":
                    error = "error frame in stream"
    if error is None and last_type != "done":
        error = f"stream ended on {last_type!r}, not done"
    return error


async def client_loop(
    index: int, client: httpx.AsyncClient, deadline: float, timeout: float, outcomes: list
) -> None:
    """One client: a request after another until the deadline, each drawn from MIX."""
    rng = random.Random(index)
    while time.monotonic() < deadline:
        kind = rng.choices(KINDS, weights=MIX)[0]
        outcomes.append(await one_request(client, kind, timeout))


def probe_healthz(
    base_url: str, count: int | None, interval: float, until: float | None
) -> tuple[list[float], Counter[str]]:
    """GET /healthz latencies on one connection: `count` back to back, or one every
    `interval` seconds until `until`. Blocking: it runs in its own thread, so the clients'
    event loop cannot delay a probe (only this process's GIL can, by a few ms at most)."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    with httpx.Client(base_url=base_url, timeout=10.0, trust_env=False) as client:
        n = 0
        while (count is not None and n < count) or (until is not None and time.monotonic() < until):
            tick = time.monotonic()
            started = time.perf_counter()
            try:
                r = client.get("/healthz")
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures[f"HTTP {r.status_code}"] += 1
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
            n += 1
            if until is not None:
                time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    return latencies, failures


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    unfinished: int = 0
    wall: float = 0.0
    healthz: list[float] = field(default_factory=list)
    healthz_failures: Counter[str] = field(default_factory=Counter)


async def run_load(base_url: str, args: argparse.Namespace) -> LoadResult:
    result = LoadResult()
    # built before the clock starts: each AsyncClient costs ~30 ms (it builds an SSL
    # context), which would otherwise stall the event loop for seconds at the start
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=args.timeout, limits=limits, trust_env=False)
        for _ in range(args.clients)
    ]
    try:
        start = time.monotonic()
        deadline = start + args.duration
        probe = asyncio.create_task(
            asyncio.to_thread(probe_healthz, base_url, None, args.probe_interval, deadline)
        )
        tasks = [
            asyncio.create_task(client_loop(i, c, deadline, args.timeout, result.outcomes))
            for i, c in enumerate(clients)
        ]
        await asyncio.sleep(args.duration)
        _, pending = await asyncio.wait(tasks, timeout=args.drain)
        result.unfinished = len(pending)  # each client has at most one request in flight
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        result.wall = time.monotonic() - start
        result.healthz, result.healthz_failures = await probe
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return result


# ---------------------------------------------------------------------------- server


def start_server(port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`unroll serve` on 127.0.0.1:port with default caps; returns once /healthz answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNROLL_")}
    env["UNROLL_DATA_DIR"] = str(workdir / "data")
    env["PYTHONUNBUFFERED"] = "1"
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", HOST, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stopping it reaches only it
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        with httpx.Client(base_url=f"http://{HOST}:{port}", trust_env=False, timeout=2.0) as c:
            while time.monotonic() < deadline and proc.poll() is None:
                with contextlib.suppress(httpx.TransportError):
                    if c.get("/healthz").status_code == 200:
                        return proc, log_path
                time.sleep(0.05)
    except BaseException:  # e.g. Ctrl-C while waiting: the server must not outlive us
        stop_server(proc)
        raise
    stop_server(proc)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the server did not answer /healthz in {STARTUP_TIMEOUT_S:.0f} s:\n{tail}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, up to 10 s to finish, then SIGKILL to its process group."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU seconds used by a process (default: this one), or by the whole machine (-1)."""
    try:
        if pid == -1:
            with open("/proc/stat", encoding="utf-8") as fh:
                v = [int(x) for x in fh.readline().split()[1:]] + [0] * 8
            return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
        if pid is None:
            return time.process_time()
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------- report


def ms(values: list[float], q: float) -> str:
    return f"{1000 * float(np.percentile(values, q)):,.0f}" if values else "-"


def ms_fine(values: list[float], q: float) -> str:
    return f"{1000 * float(np.percentile(values, q)):,.1f}" if values else "-"


def report(args: argparse.Namespace, result: LoadResult, idle: list[float], extra: dict) -> dict:
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in result.outcomes:
        by_kind[outcome.kind].append(outcome)
    rows = []
    summary: dict = {"kinds": {}, **extra}
    for kind in (*KINDS, "all"):
        outcomes = result.outcomes if kind == "all" else by_kind[kind]
        done = [o.latency for o in outcomes if o.error is None]
        errors = Counter(o.error for o in outcomes if o.error is not None)
        rate = len(done) / args.duration
        rows.append(
            f"| {kind} | {len(outcomes)} | {len(done)} | {sum(errors.values())} | "
            f"{rate:.1f} | {ms(done, 50)} | {ms(done, 95)} | {ms(done, 99)} | "
            f"{ms(done, 100)} |"
        )
        summary["kinds"][kind] = {
            "sent": len(outcomes),
            "completed": len(done),
            "errors": dict(errors),
            "per_s": rate,
            "p50_ms": float(np.percentile(done, 50)) * 1000 if done else None,
            "p95_ms": float(np.percentile(done, 95)) * 1000 if done else None,
            "p99_ms": float(np.percentile(done, 99)) * 1000 if done else None,
        }
    errors = Counter(o.error for o in result.outcomes if o.error is not None)
    summary.update(
        unfinished=result.unfinished,
        wall_s=result.wall,
        healthz_idle_ms=[x * 1000 for x in idle],
        healthz_load_ms=[x * 1000 for x in result.healthz],
        healthz_failures=dict(result.healthz_failures),
    )
    print()
    print(f"{args.clients} clients for {args.duration:.0f} s (+ up to {args.drain:.0f} s drain)")
    print(f"wall {result.wall:.1f} s; unfinished at the end (cancelled): {result.unfinished}")
    print()
    print(
        "| kind | finished | completed | errors | completed/s | p50 ms | p95 ms | p99 ms | max ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print()
    print("errors by reason:", dict(errors) or "none")
    print()
    print("| GET /healthz | probes | p50 ms | p95 ms | p99 ms | max ms | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, values, failed in (
        ("idle", idle, 0),
        ("under load", result.healthz, sum(result.healthz_failures.values())),
    ):
        print(
            f"| {name} | {len(values)} | {ms_fine(values, 50)} | {ms_fine(values, 95)} | "
            f"{ms_fine(values, 99)} | {ms_fine(values, 100)} | {failed} |"
        )
    print()
    for key, value in extra.items():
        print(f"{key}: {value}")
    return summary


# ---------------------------------------------------------------------------- main


# ---------------------------------------------------------------------------- hang-ups

HEAVY = {
    "config": {
        "cell": "lstm",
        "input_size": 1,
        "hidden_size": 128,
        "num_layers": 4,
        "bidirectional": True,
    },
    "inputs": [[round(float(np.sin(t / 7)), 4)] for t in range(1000)],
    "targets": [[0.0]] * 1000,
}
HEAVY_TRAIN = {
    "config": {"cell": "lstm", "hidden_size": 128, "num_layers": 2},
    "task": {"name": "adding", "length": 200},
    "batch_size": 32,
    "steps": 100,
    "probe_every": 50,
    "store": False,
}
HEAVY_KINDS = ("trace", "stream", "session", "train")


async def heavy_body(client: httpx.AsyncClient) -> dict:
    """The heaviest trace body the server's budget admits: Jacobians on if they fit."""
    for body in (HEAVY, {**HEAVY, "jacobians": False}):
        r = await client.post("/api/v1/estimate/trace", json=body)
        if r.status_code == 200 and r.json()["within_budget"]:
            return body
    return {
        **HEAVY,
        "jacobians": False,
        "inputs": HEAVY["inputs"][:300],
        "targets": HEAVY["targets"][:300],
    }


async def heavy_once(base_url: str, address: str, kind: str, body: dict, hangup: float) -> str:
    """One heavy request from `address`, abandoned after `hangup` seconds: its outcome."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(
        base_url=base_url, transport=transport, timeout=60.0, trust_env=False
    ) as client:
        try:
            async with asyncio.timeout(hangup):
                if kind == "session":
                    return await _session_configure(base_url, address, body)
                path = {
                    "trace": "/api/v1/trace",
                    "stream": "/api/v1/trace/stream",
                    "train": "/api/v1/train/stream",
                }[kind]
                payload = HEAVY_TRAIN if kind == "train" else body
                async with client.stream("POST", path, json=payload, headers=NDJSON) as r:
                    async for _ in r.aiter_bytes():
                        pass
                    if r.status_code == 200:
                        return f"{kind} HTTP 200 (finished before the hang-up)"
                    return f"{kind} HTTP {r.status_code}"
        except TimeoutError:
            return f"{kind} hung up"
        except (httpx.HTTPError, OSError) as exc:
            return f"{kind} {type(exc).__name__}"


async def _session_configure(base_url: str, address: str, body: dict) -> str:
    import websockets  # the server's own WebSocket dependency

    url = base_url.replace("http://", "ws://") + "/api/v1/session"
    async with websockets.connect(
        url, local_addr=(address, 0), max_size=None, open_timeout=10
    ) as ws:
        await ws.send(json.dumps({"type": "configure", **body}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in ("session", "error"):
                return f"session {frame['type']} {frame.get('status', '')}".strip()


async def heavy_loop(
    base_url: str, index: int, body: dict, deadline: float, hangup: float, outcomes: Counter
) -> None:
    """One heavy client: its own address; a heavy request, a hang-up, again."""
    address = f"127.0.0.{index + 2}"
    rng = random.Random(1000 + index)
    while time.monotonic() < deadline:
        kind = rng.choice(HEAVY_KINDS)
        outcomes[await heavy_once(base_url, address, kind, body, hangup)] += 1


def _heavy_process(
    base_url: str, index: int, body: dict, seconds: float, hangup: float, out: Any
) -> None:
    """A heavy client in a process of its own: reading a stream's 200 MB here would
    otherwise hold this process's GIL and slow the small-trace clients beside it."""
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    asyncio.run(heavy_loop(base_url, index, body, deadline, hangup, outcomes))
    out.put(dict(outcomes))


async def heavy_processes(
    base_url: str, body: dict, args: argparse.Namespace, outcomes: Counter
) -> None:
    """--heavy heavy clients, each its own process, for one --window."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    procs = [
        context.Process(
            target=_heavy_process,
            args=(base_url, i, body, args.window, args.hangup_after, results),
            daemon=True,
        )
        for i in range(args.heavy)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        outcomes.update(await asyncio.to_thread(results.get, True, args.window + 120))
    for proc in procs:
        await asyncio.to_thread(proc.join, 10)


async def small_traces(
    client: httpx.AsyncClient, deadline: float, latencies: list[float], errors: Counter
) -> None:
    while time.monotonic() < deadline:
        outcome = await one_request(client, "trace", 30.0)
        if outcome.error is None:
            latencies.append(outcome.latency)
        else:
            errors[outcome.error] += 1


async def run_hangups(base_url: str, args: argparse.Namespace) -> dict:
    """Alternating windows, so background load on a shared machine weighs on both sides
    alike: --cycles times, --window seconds of small traces alone (idle), then --window
    seconds of small traces beside the heavy clients (loaded)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, trust_env=False) as probe:
        body = await heavy_body(probe)
        estimate = (await probe.post("/api/v1/estimate/trace", json=body)).json()
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=30.0, limits=limits, trust_env=False)
        for _ in range(args.clients)
    ]
    idle: list[float] = []
    loaded: list[float] = []
    errors: Counter[str] = Counter()
    heavy: Counter[str] = Counter()
    try:
        for _ in range(args.cycles):
            deadline = time.monotonic() + args.window
            await asyncio.gather(*(small_traces(c, deadline, idle, errors) for c in clients))
            await asyncio.sleep(1.0)  # the last idle request is answered before heavy ones start
            deadline = time.monotonic() + args.window
            tasks = [small_traces(c, deadline, loaded, errors) for c in clients]
            await asyncio.gather(heavy_processes(base_url, body, args, heavy), *tasks)
            await asyncio.sleep(args.hangup_after)  # hung-up work stops before the next idle
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return {
        "heavy_trace": {"jacobians": body.get("jacobians", True), "estimate": estimate},
        "idle_ms": [x * 1000 for x in idle],
        "loaded_ms": [x * 1000 for x in loaded],
        "small_errors": dict(errors),
        "heavy_outcomes": dict(heavy),
    }


def report_hangups(args: argparse.Namespace, result: dict, extra: dict) -> dict:
    idle, loaded = result["idle_ms"], result["loaded_ms"]

    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    summary = {
        **result,
        "idle_p50_ms": pct(idle, 50),
        "idle_p95_ms": pct(idle, 95),
        "loaded_p50_ms": pct(loaded, 50),
        "loaded_p95_ms": pct(loaded, 95),
        **extra,
    }
    ratio = (
        summary["loaded_p95_ms"] / summary["idle_p95_ms"]
        if summary["loaded_p95_ms"] and summary["idle_p95_ms"]
        else None
    )
    summary["p95_ratio"] = ratio
    estimate = result["heavy_trace"]["estimate"]
    print()
    print(
        f"{args.heavy} heavy clients hanging up after {args.hangup_after:g} s, "
        f"{args.clients} small-trace clients, {args.cycles} x ({args.window:g} s idle + "
        f"{args.window:g} s loaded)"
    )
    print(
        f"heavy trace: LSTM H=128, 4 layers, bidirectional, T=1000, jacobians "
        f"{result['heavy_trace']['jacobians']}; estimated {estimate.get('seconds')} s, "
        f"{estimate.get('memory_bytes', 0) / 1e9:.2f} GB"
    )
    print()
    print("| small trace | count | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in (("idle", idle), ("with heavy hang-ups", loaded)):
        print(
            f"| {name} | {len(values)} | {ms_fine([v / 1000 for v in values], 50)} | "
            f"{ms_fine([v / 1000 for v in values], 95)} | "
            f"{ms_fine([v / 1000 for v in values], 99)} | "
            f"{ms_fine([v / 1000 for v in values], 100)} |"
        )
    print()
    print(f"p95 loaded / idle: {ratio:.2f}x (goal: at most 3x)" if ratio else "p95: -")
    print("small-trace errors:", result["small_errors"] or "none")
    print("heavy outcomes:", result["heavy_outcomes"])
    for key, value in extra.items():
        print(f"{key}: {value}")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (100)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--port", type=int, default=0, help="server port; 0 picks a free one")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (30)")
    parser.add_argument("--drain", type=float, default=15.0, help="seconds for in-flight (15)")
    parser.add_argument("--idle-probes", type=int, default=50, help="idle /healthz probes (50)")
    parser.add_argument("--probe-interval", type=float, default=0.5, help="seconds (0.5)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--hangup", action="store_true", help="heavy clients that hang up")
    parser.add_argument("--heavy", type=int, default=2, help="heavy clients (2), --hangup")
    parser.add_argument("--hangup-after", type=float, default=3.0, help="seconds (3)")
    parser.add_argument("--cycles", type=int, default=4, help="idle/loaded windows (4)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds each (15)")
    args = parser.parse_args()

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    print(
        f"python {platform.python_version()}, {usable} usable cores, "
        f"loadavg {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    )
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="unroll-load-") as tmp:
        try:
            proc, log_path = start_server(port, Path(tmp))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        try:
            base_url = f"http://{HOST}:{port}"
            print(f"server: python -m app.cli serve --host {HOST} --port {port} (pid {proc.pid})")
            if args.hangup:
                cpu0 = (cpu_seconds(proc.pid), cpu_seconds(), cpu_seconds(-1))
                started = time.monotonic()
                hangups = asyncio.run(run_hangups(base_url, args))
                wall = time.monotonic() - started
                cpu1 = (cpu_seconds(proc.pid), cpu_seconds(), cpu_seconds(-1))
            else:
                idle, idle_failures = probe_healthz(base_url, args.idle_probes, 0, None)
                cpu0 = (cpu_seconds(proc.pid), cpu_seconds(), cpu_seconds(-1))
                result = asyncio.run(run_load(base_url, args))
                cpu1 = (cpu_seconds(proc.pid), cpu_seconds(), cpu_seconds(-1))
        finally:
            stop_server(proc)
        log = log_path.read_text(errors="replace").splitlines()
    if args.hangup:
        statuses = Counter(
            line.rsplit('" ', 1)[-1].split()[0]
            for line in log
            if '" ' in line and "HTTP/1.1" in line
        )
        extra_h: dict = {"server access log statuses": dict(statuses)}
        if None not in cpu0 and None not in cpu1:
            extra_h["server cores used"] = f"{(cpu1[0] - cpu0[0]) / wall:.2f}"  # type: ignore[operator]
        extra_h["server log lines with Traceback or ERROR"] = sum(
            1 for line in log if "Traceback" in line or "ERROR" in line
        )
        first = next((i for i, line in enumerate(log) if "Traceback" in line), None)
        if first is not None:
            print("\n".join(log[first : first + 40]))
        summary = report_hangups(args, hangups, extra_h)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1))
        return 0
    extra: dict = {"idle healthz failures": dict(idle_failures)}
    if None not in cpu0 and None not in cpu1:
        server, client, total = (b - a for a, b in zip(cpu0, cpu1, strict=True))  # type: ignore[operator]
        extra["cores used (server / this client / everything else)"] = (
            f"{server / result.wall:.2f} / {client / result.wall:.2f} / "
            f"{max(0.0, total - server - client) / result.wall:.2f}"
        )
    statuses = Counter(
        line.rsplit('" ', 1)[-1].split()[0] for line in log if '" ' in line and "HTTP/1.1" in line
    )
    extra["server access log statuses"] = dict(statuses)
    extra["server log lines with Traceback or ERROR"] = sum(
        1 for line in log if "Traceback" in line or "ERROR" in line
    )
    summary = report(args, result, idle, extra)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stream benchmark (issue 3): POST /api/v1/trace/stream against a real uvicorn server.

Run from the repo root:

    python benchmarks/stream.py [--repeats 30] [--T 200] [--H 32] [--clients 50] [--T-conc 100]
                                [--no-jacobians]

It starts `python -m uvicorn app.main:app --host 127.0.0.1 --port N` (N a free port,
UNROLL_DATA_DIR a temporary directory, UNROLL_RATE_LIMIT_PER_MINUTE=0 so the per-client
rate limit cannot answer 429, every other UNROLL_* variable inherited) in a
subprocess, waits for GET /healthz, measures, and always stops the server (terminate,
then kill). Only 127.0.0.1 is contacted, with proxies from the environment ignored.

Request body of every stream: the default config with `cell: lstm`, `hidden_size: H`
(input_size 1, output_size 1, regression, output_mode "sequence", 1 layer), default init
(pytorch, seed 0), T standard-normal inputs and targets (seed 0), `jacobians` left at its
default (true; --no-jacobians sends false). Such a stream has 2T + 3 events: config,
T forward, T backward, summary, done.

(a) time to first event: request sent -> first complete event (SSE: up to the blank line;
    NDJSON: up to the newline) of a T-step stream, against a whole GET /healthz round trip
    on the same keep-alive connection; interleaved, medians over --repeats. Goal: ratio
    under 2x. Time to the response headers is shown too (they leave before any compute).
(b) events per second of one T-step stream, SSE and NDJSON: events / time from request
    sent to the last byte, median over --repeats-rate runs each.
(c) --clients concurrent streams (asyncio + httpx.AsyncClient, T = --T-conc, SSE): all
    must answer 200, end with `done` carrying the right event count, and carry no `error`
    event; p50/p95/max time to first event and to the end, and the wall time of the batch.
    Meanwhile GET /healthz is probed every 50 ms to see whether the event loop stays
    responsive.

"bg cores" is CPU used by processes other than this script and the server while a part
ran (from /proc/stat; 1.0 = another process held a whole core); "server cores" and
"client cores" are what the server and this script used. Client and server share the
machine, so other work (and the client itself) inflates every figure here.

This is a measurement, not a test: it exits 0 whether or not the goals are met (1 only if
the server cannot be started).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from machine import code_version, free_port  # noqa: E402 - benchmarks/ is on sys.path

HOST = "127.0.0.1"
STREAM_PATH = "/api/v1/trace/stream"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
STARTUP_TIMEOUT = 30.0  # seconds for the server to answer /healthz
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
CONCURRENT_DEADLINE = 60.0  # seconds for the whole of part (c)


# ---------------------------------------------------------------------------- machine


def _proc_stat_busy() -> float | None:
    """CPU seconds used by everything on the machine (and stolen by the hypervisor)."""
    try:
        with open("/proc/stat", encoding="utf-8") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _pid_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            after_name = fh.read().rsplit(")", 1)[1].split()
        return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class LoadMeter:
    """Cores used by other processes (not this one, not the server) between start and stop."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def __enter__(self) -> LoadMeter:
        self.t0 = time.perf_counter()
        self.busy0 = _proc_stat_busy()
        self.own0 = time.process_time()
        self.srv0 = _pid_cpu(self.server_pid)
        self.background: float | None = None
        self.server_cores: float | None = None
        self.client_cores: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        busy1, own1, srv1 = _proc_stat_busy(), time.process_time(), _pid_cpu(self.server_pid)
        if None in (self.busy0, busy1, self.srv0, srv1) or wall <= 0:
            return
        server = srv1 - self.srv0  # type: ignore[operator]
        total = busy1 - self.busy0  # type: ignore[operator]
        self.server_cores = server / wall
        self.client_cores = (own1 - self.own0) / wall
        self.background = max(0.0, (total - server - (own1 - self.own0)) / wall)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = ["?"]
    pkgs = [
        "fastapi",
        "starlette",
        "uvicorn",
        "h11",
        "httptools",
        "uvloop",
        "httpx",
        "orjson",
        "numpy",
        "anyio",
    ]
    versions = ", ".join(f"{p} {_version(p)}" for p in pkgs)
    max_conc = os.environ.get("UNROLL_MAX_CONCURRENT", "2 (default)")
    return [
        f"code     {code_version()}",
        f"python   {platform.python_version()} ({platform.machine()}, {platform.system()})",
        f"cpus     nproc (usable) {usable}, os.cpu_count {os.cpu_count()}; "
        f"loadavg at start {' '.join(load)}",
        f"packages {versions}",
        f"server   uvicorn app.main:app on {HOST}, 1 process; UNROLL_MAX_CONCURRENT={max_conc}",
    ]


# ---------------------------------------------------------------------------- server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Lines of the server log that look like errors or tracebacks."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        keys = ("Traceback", "ERROR", "Exception", "Error:")
        return [line for line in text.splitlines() if any(k in line for k in keys)]


def start_server(workdir: Path) -> Server:
    """uvicorn in a subprocess on a free loopback port; returns once /healthz answers."""
    env = dict(os.environ)
    env["UNROLL_DATA_DIR"] = str(workdir / "data")
    env["UNROLL_RATE_LIMIT_PER_MINUTE"] = "0"  # one client sends ~100 requests: no 429s
    env["PYTHONUNBUFFERED"] = "1"
    last_error = "no attempt"
    for attempt in range(3):  # the free port can be taken between probe and bind
        port = free_port()
        log_path = workdir / f"server-{attempt}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        server = Server(proc, port, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    last_error = f"server exited with {proc.returncode}:\n{server.log_tail()}"
                    break
                try:
                    if client.get("/healthz").status_code == 200:
                        return server
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            else:
                last_error = f"no /healthz answer in {STARTUP_TIMEOUT:.0f} s:\n{server.log_tail()}"
        stop_server(server)
    raise RuntimeError(last_error)


def stop_server(server: Server) -> None:
    """SIGTERM, wait up to 10 s, then SIGKILL; only this process (its own session)."""
    proc = server.proc
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout=5)


# ---------------------------------------------------------------------------- requests


def trace_body(T: int, H: int, jacobians: bool = True) -> dict:
    rng = np.random.default_rng(0)
    body = {
        "config": {"cell": "lstm", "hidden_size": H},
        "inputs": rng.standard_normal((T, 1)).tolist(),
        "targets": rng.standard_normal((T, 1)).tolist(),
    }
    if not jacobians:  # otherwise left out: the API's default (true) applies
        body["jacobians"] = False
    return body


@dataclass
class StreamResult:
    status: int = 0
    headers_s: float = float("nan")  # request sent -> response headers
    first_s: float = float("nan")  # request sent -> first complete event
    total_s: float = float("nan")  # request sent -> last byte
    events: int = 0
    nbytes: int = 0
    types: dict[str, int] = field(default_factory=dict)
    type_first_s: dict[str, float] = field(default_factory=dict)  # first event of each type
    done_events: int | None = None  # the `events` field of the done frame
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.status == 200
            and self.types.get("error", 0) == 0
            and self.done_events == self.events
        )


class FrameCounter:
    """Splits a byte stream into events without decoding all of them (cheap on the client)."""

    def __init__(self, fmt: str):
        self.sep = b"\n\n" if fmt == SSE else b"\n"
        self.sse = fmt == SSE
        self.buf = b""
        self.last = b""

    def feed(self, chunk: bytes, result: StreamResult, now: float) -> None:
        buf = self.buf + chunk if self.buf else chunk
        start = 0
        while True:
            end = buf.find(self.sep, start)
            if end < 0:
                break
            frame = buf[start:end]
            start = end + len(self.sep)
            if not frame.strip():
                continue
            if result.events == 0:
                result.first_s = now
            result.events += 1
            kind = self._kind(frame)
            result.types[kind] = result.types.get(kind, 0) + 1
            result.type_first_s.setdefault(kind, now)
            self.last = frame
        self.buf = buf[start:]

    def _kind(self, frame: bytes) -> str:
        if self.sse:
            if frame.startswith(b"event: "):
                return frame[7 : frame.index(b"\n")].decode() if b"\n" in frame else "?"
            return "?"
        i = frame.find(b'"type":"')
        return frame[i + 8 : frame.index(b'"', i + 8)].decode() if i >= 0 else "?"

    def finish(self, result: StreamResult) -> None:
        if not self.last:
            return
        payload = self.last
        if self.sse:
            data = [ln[6:] for ln in payload.split(b"\n") if ln.startswith(b"data: ")]
            payload = b"\n".join(data)
        try:
            frame = json.loads(payload)
        except ValueError:
            result.error = "last event is not JSON"
            return
        if frame.get("type") == "done":
            result.done_events = frame.get("events")
        else:
            result.error = f"stream ended with {frame.get('type')!r}, not 'done'"


def stream_once(client: httpx.Client, body: dict, fmt: str) -> StreamResult:
    result = StreamResult()
    counter = FrameCounter(fmt)
    t0 = time.perf_counter()
    try:
        with client.stream("POST", STREAM_PATH, json=body, headers={"Accept": fmt}) as resp:
            result.headers_s = time.perf_counter() - t0
            result.status = resp.status_code
            for chunk in resp.iter_raw():
                result.nbytes += len(chunk)
                counter.feed(chunk, result, time.perf_counter() - t0)
        result.total_s = time.perf_counter() - t0
        counter.finish(result)
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def stream_once_async(client: httpx.AsyncClient, body: dict, fmt: str) -> StreamResult:
    result = StreamResult()
    counter = FrameCounter(fmt)
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", STREAM_PATH, json=body, headers={"Accept": fmt}) as resp:
            result.headers_s = time.perf_counter() - t0
            result.status = resp.status_code
            async for chunk in resp.aiter_raw():
                result.nbytes += len(chunk)
                counter.feed(chunk, result, time.perf_counter() - t0)
        result.total_s = time.perf_counter() - t0
        counter.finish(result)
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def healthz_once(client: httpx.Client) -> float:
    t0 = time.perf_counter()
    resp = client.get("/healthz")
    resp.read()
    elapsed = time.perf_counter() - t0
    resp.raise_for_status()
    return elapsed


# ---------------------------------------------------------------------------- parts


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(np.ceil(q / 100 * len(ordered))) - 1))
    return ordered[k]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def part_a(client: httpx.Client, body: dict, repeats: int, server: Server) -> dict:
    for _ in range(3):  # warm-up: imports, first-call caches, keep-alive connection
        healthz_once(client)
        stream_once(client, body, SSE)
    health, first, headers, bad = [], [], [], []
    with LoadMeter(server.proc.pid) as load:
        for _ in range(repeats):
            health.append(healthz_once(client))
            r = stream_once(client, body, SSE)
            if not r.ok:
                bad.append(r)
                continue
            first.append(r.first_s)
            headers.append(r.headers_s)
    return {"health": health, "first": first, "headers": headers, "bad": bad, "load": load}


def part_b(client: httpx.Client, body: dict, repeats: int, server: Server) -> dict:
    out: dict = {}
    for fmt in (SSE, NDJSON):
        runs, bad = [], []
        stream_once(client, body, fmt)  # warm-up
        with LoadMeter(server.proc.pid) as load:
            for _ in range(repeats):
                r = stream_once(client, body, fmt)
                (runs if r.ok else bad).append(r)
        out[fmt] = {"runs": runs, "bad": bad, "load": load}
    return out


async def part_c(base_url: str, body: dict, clients: int, server: Server) -> dict:
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    probes: list[float] = []
    probe_errors: list[str] = []
    stop = asyncio.Event()

    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT, limits=limits
    ) as client:

        async def probe() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    resp = await client.get("/healthz", timeout=10.0)
                    resp.raise_for_status()
                    probes.append(time.perf_counter() - t0)
                except httpx.HTTPError as exc:
                    probe_errors.append(f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.05)

        await stream_once_async(client, body, SSE)  # warm-up
        prober = asyncio.create_task(probe())
        with LoadMeter(server.proc.pid) as load:
            t0 = time.perf_counter()
            tasks = [
                asyncio.create_task(stream_once_async(client, body, SSE)) for _ in range(clients)
            ]
            done, pending = await asyncio.wait(tasks, timeout=CONCURRENT_DEADLINE)
            wall = time.perf_counter() - t0
        for task in pending:
            task.cancel()
        stop.set()
        await prober
        results = [t.result() for t in done]
    return {
        "results": results,
        "timed_out": len(pending),
        "wall": wall,
        "probes": probes,
        "probe_errors": probe_errors,
        "load": load,
    }


def _bg(load: LoadMeter) -> str:
    if load.background is None:
        return "bg cores n/a"
    return (
        f"bg cores {load.background:.2f}, server cores {load.server_cores:.2f}, "
        f"client cores {load.client_cores:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="(a) interleaved pairs")
    parser.add_argument("--repeats-rate", type=int, default=5, help="(b) streams per format")
    parser.add_argument("--T", type=int, default=200, help="(a), (b) sequence length")
    parser.add_argument("--H", type=int, default=32, help="hidden size")
    parser.add_argument("--clients", type=int, default=50, help="(c) concurrent streams")
    parser.add_argument(
        "--T-conc", dest="T_conc", type=int, default=100, help="(c) sequence length"
    )
    parser.add_argument(
        "--no-jacobians",
        dest="jacobians",
        action="store_false",
        help='send "jacobians": false (default: leave it out, i.e. true)',
    )
    args = parser.parse_args(argv)
    if min(args.repeats, args.repeats_rate, args.T, args.H, args.clients, args.T_conc) < 1:
        parser.error("every count must be positive")

    print("Stream benchmark: POST /api/v1/trace/stream on a real uvicorn server")
    jac = "true (default)" if args.jacobians else "false (--no-jacobians)"
    print(f"LSTM H={args.H}, input/output size 1, jacobians={jac}, with targets")
    for line in machine_facts():
        print("  " + line)
    print()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="unroll-bench-") as tmp:
        try:
            server = start_server(Path(tmp))
        except RuntimeError as exc:
            print(f"could not start the server: {exc}", file=sys.stderr)
            return 1
        try:
            body = trace_body(args.T, args.H, args.jacobians)
            with httpx.Client(
                base_url=server.base_url, trust_env=False, timeout=REQUEST_TIMEOUT
            ) as client:
                a = part_a(client, body, args.repeats, server)
                b = part_b(client, body, args.repeats_rate, server)
            c = asyncio.run(
                part_c(
                    server.base_url,
                    trace_body(args.T_conc, args.H, args.jacobians),
                    args.clients,
                    server,
                )
            )
        finally:
            stop_server(server)
        problems = server.problems()
        tail = server.log_tail(40) if problems else ""

    report(args, a, b, c)
    if problems:
        print(f"\nserver log: {len(problems)} error-looking line(s); last lines:\n{tail}")
    else:
        print("\nserver log: no errors or tracebacks")
    print(f"\nwhole run {time.perf_counter() - started:.1f} s")
    return 0


def report(args: argparse.Namespace, a: dict, b: dict, c: dict) -> None:
    rows: list[tuple[str, str]] = []
    verdicts: list[str] = []

    # (a)
    health_med = statistics.median(a["health"])
    rows.append(
        (f"(a) GET /healthz round trip, median of {len(a['health'])}", ms(health_med) + " ms")
    )
    ratio = float("nan")
    if a["first"]:
        first_med = statistics.median(a["first"])
        ratio = first_med / health_med
        rows.append(
            (
                f"(a) stream T={args.T} SSE: response headers, median",
                ms(statistics.median(a["headers"])) + " ms",
            )
        )
        rows.append(
            (
                f"(a) stream T={args.T} SSE: first event, median of {len(a['first'])}",
                ms(first_med) + " ms",
            )
        )
        rows.append(
            ("(a) first event, min / p95", f"{ms(min(a['first']))} / {ms(pct(a['first'], 95))} ms")
        )
        rows.append(
            ("(a) healthz min / p95", f"{ms(min(a['health']))} / {ms(pct(a['health'], 95))} ms")
        )
        rows.append(("(a) ratio first event / healthz (goal < 2x)", f"{ratio:.2f}x"))
        rows.append(
            (
                "(a) ratio of the minimums (less load-sensitive)",
                f"{min(a['first']) / min(a['health']):.2f}x",
            )
        )
    rows.append(("(a) load while timing", _bg(a["load"])))
    if a["bad"]:
        rows.append(
            ("(a) failed streams", f"{len(a['bad'])}: {a['bad'][0].error or a['bad'][0].status}")
        )
    verdicts.append(
        f"(a) first event < 2x healthz: {'PASS' if ratio < 2.0 else 'FAIL'} ({ratio:.2f}x)"
    )

    # (b)
    for fmt, name in ((SSE, "SSE"), (NDJSON, "NDJSON")):
        part = b[fmt]
        runs: list[StreamResult] = part["runs"]
        if runs:
            rates = [r.events / r.total_s for r in runs]
            med = statistics.median(rates)
            r0 = runs[0]
            rows.append(
                (
                    f"(b) {name} T={args.T}: events/s, median of {len(runs)}",
                    f"{med:,.0f} ({r0.events} events in "
                    f"{ms(statistics.median([r.total_s for r in runs]))} ms, "
                    f"{r0.nbytes / 1e6:.2f} MB)",
                )
            )
            arrival = " / ".join(
                f"{kind} {ms(statistics.median([r.type_first_s[kind] for r in runs]))}"
                for kind in ("config", "forward", "backward", "done")
                if all(kind in r.type_first_s for r in runs)
            )
            rows.append((f"(b) {name}: first event of each type, median ms", arrival))
        rows.append((f"(b) {name} load", _bg(part["load"])))
        if part["bad"]:
            rows.append(
                (
                    f"(b) {name} failed streams",
                    f"{len(part['bad'])}: {part['bad'][0].error or part['bad'][0].status}",
                )
            )

    # (c)
    results: list[StreamResult] = c["results"]
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    n = args.clients
    rows.append(
        (
            f"(c) {n} concurrent SSE streams T={args.T_conc}: completed ok",
            f"{len(ok)}/{n} (failed {len(failed)}, timed out {c['timed_out']})",
        )
    )
    if ok:
        firsts = [r.first_s for r in ok]
        heads = [r.headers_s for r in ok]
        rows.append(
            (
                "(c) response headers p50 / p95 / max",
                f"{ms(pct(heads, 50))} / {ms(pct(heads, 95))} / {ms(max(heads))} ms",
            )
        )
        totals = [r.total_s for r in ok]
        rows.append(
            (
                "(c) first event p50 / p95 / max",
                f"{ms(pct(firsts, 50))} / {ms(pct(firsts, 95))} / {ms(max(firsts))} ms",
            )
        )
        rows.append(
            (
                "(c) stream end p50 / p95 / max",
                f"{ms(pct(totals, 50))} / {ms(pct(totals, 95))} / {ms(max(totals))} ms",
            )
        )
        events = sum(r.events for r in ok)
        rows.append(
            (
                "(c) wall time of the batch; aggregate events/s",
                f"{c['wall']:.2f} s; {events / c['wall']:,.0f}",
            )
        )
    if c["probes"]:
        rows.append(
            (
                f"(c) /healthz during the batch, {len(c['probes'])} probes: p50 / max",
                f"{ms(pct(c['probes'], 50))} / {ms(max(c['probes']))} ms",
            )
        )
    if c["probe_errors"]:
        rows.append(
            ("(c) /healthz probe errors", f"{len(c['probe_errors'])}: {c['probe_errors'][0]}")
        )
    rows.append(("(c) load", _bg(c["load"])))
    for r in failed[:3]:
        rows.append(("(c) a failure", f"status {r.status}, {r.error}, types {r.types}"))
    all_ok = len(ok) == n and c["timed_out"] == 0
    verdicts.append(
        f"(c) all {n} concurrent streams complete without error: {'PASS' if all_ok else 'FAIL'}"
    )

    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    busy = [
        ld
        for ld in (a["load"], b[SSE]["load"], b[NDJSON]["load"], c["load"])
        if ld.background is not None and ld.background > 0.2
    ]
    if busy:
        print(
            "WARNING: other processes used CPU while timing (bg cores > 0.2); "
            "figures are inflated, rerun on a quiet machine."
        )
    print()
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    sys.exit(main())

"""Worst cases within the default caps, through the web layer (issue 10); the engine's own
figures are in benchmarks/worst_case.py.

Run from the repo root:

    OPENBLAS_NUM_THREADS=1 python benchmarks/worst_case_web.py [--quick] [--json out.json]
    OPENBLAS_NUM_THREADS=1 python benchmarks/worst_case_web.py --calibrate

Default: starts `python -m app.cli serve` on a free loopback port with the default caps and
budget, then for each of the heaviest requests the caps allow (LSTM, 4 layers,
bidirectional, hidden 128, length 1000: POST /trace with and without Jacobians, as npz,
/trace/stream, a session configure, and the heaviest training run) it asks
POST /estimate first, sends the request, and reports the status (422 when the budget
refuses it), the wall time to the last byte, the bytes received, the server's resident
memory above its idle level (sampled every 20 ms) and the slowest GET /healthz answered
meanwhile (probed every 100 ms from a child process: the event loop stays free). Then
the hang-ups: the heaviest admitted trace, abandoned after 1, 2, 4, 7 and 10 s (forward,
BPTT, Jacobian norms); the server's CPU time is sampled every 10 ms, and the end of the
last 100 ms after the hang-up in which it used over 20% of a core is reported (the goal:
within 0.5 s).

--calibrate: no server; the cost model's estimates against measured runs in this process
(CPU seconds of the thread, best of 2; tracemalloc peak; answer bytes) over a grid of
traces and training runs, as ratios, to refit the constants of app/cost.py.

This is a measurement, not a test: it exits 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from load import start_server, stop_server  # noqa: E402
from machine import code_version, cpu_model, free_port  # noqa: E402

HOST = "127.0.0.1"
NDJSON = {"Accept": "application/x-ndjson"}
HANG_UPS = (1.0, 2.0, 4.0, 7.0, 10.0)  # seconds into the heaviest trace a client leaves
BIG = {"cell": "lstm", "input_size": 1, "hidden_size": 128, "num_layers": 4, "bidirectional": True}


def _heaviest_trace(length: int, jacobians: bool = True) -> dict:
    rng = np.random.default_rng(0)
    return {
        "config": BIG,
        "inputs": rng.standard_normal((length, 1)).round(4).tolist(),
        "targets": rng.standard_normal((length, 1)).round(4).tolist(),
        "jacobians": jacobians,
    }


def _heaviest_train(length: int) -> dict:
    return {
        "config": {"cell": "lstm", "hidden_size": 128, "num_layers": 4, "bidirectional": True},
        "task": {"name": "adding", "length": length},
        "batch_size": 256,
        "steps": 5000,
        "probe_every": 50,
        "store": False,
    }


# ---------------------------------------------------------------------------- sampling


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PROBE = """
import sys, time, httpx
with httpx.Client(base_url=sys.argv[1], timeout=30, trust_env=False) as client:
    while True:
        started = time.perf_counter()
        client.get("/healthz")
        print(time.perf_counter() - started, flush=True)
        time.sleep(0.1)
"""


class Sampler:
    """Samples the server's RSS (a thread) and GET /healthz latency (a child process of its
    own, so this process's work on a 200 MB answer cannot delay a probe) until stopped."""

    def __init__(self, pid: int, base_url: str):
        self.pid, self.base_url = pid, base_url
        self.peak_rss = self.base_rss = rss_bytes(pid)
        self.healthz: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._rss, daemon=True)
        self.probe: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sampler:
        self.thread.start()
        self.probe = subprocess.Popen(
            [sys.executable, "-c", PROBE, self.base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(0.5)  # the probe is running before the request is sent
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        assert self.probe is not None
        self.probe.terminate()
        out, _ = self.probe.communicate(timeout=10)
        self.healthz = [float(line) for line in out.split()]

    def _rss(self) -> None:
        while not self.stop.wait(0.02):
            with contextlib.suppress(OSError):
                self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))


# ---------------------------------------------------------------------------- requests


def send(client: httpx.Client, kind: str, body: dict) -> tuple[int, int, str]:
    """(status, bytes received, detail) of one request read to its end."""
    if kind == "session":
        return asyncio.run(_session(client.base_url, body))
    path = {
        "trace": "/api/v1/trace",
        "npz": "/api/v1/trace?format=npz",
        "stream": "/api/v1/trace/stream",
        "train": "/api/v1/train/stream",
    }[kind]
    with client.stream("POST", path, json=body, headers=NDJSON) as r:
        if r.status_code == 200:
            return 200, sum(len(chunk) for chunk in r.iter_bytes()), ""
        body = r.read()
        detail = ""
        with contextlib.suppress(ValueError):
            detail = json.loads(body).get("detail", "")
        return r.status_code, len(body), detail


async def _session(base_url: httpx.URL, body: dict) -> tuple[int, int, str]:
    import websockets

    url = str(base_url).replace("http://", "ws://").rstrip("/") + "/api/v1/session"
    size = 0
    async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "configure", **body}))
        while True:
            message = await ws.recv()
            size += len(message)
            # parsing a 40 MB trace frame here would hold this process's GIL, and delay the
            # /healthz probe thread beside it: only small frames are read
            if len(message) > 100_000:
                continue
            frame = json.loads(message)
            if frame["type"] == "session":
                return 200, size, ""
            if frame["type"] == "error":
                return frame["status"], size, frame["detail"]


def estimate(client: httpx.Client, kind: str, body: dict) -> dict:
    if kind == "train":
        return client.post("/api/v1/estimate/train", json=body).json()
    flavour = {"trace": "trace", "npz": "npz", "stream": "stream", "session": "session"}[kind]
    return client.post(f"/api/v1/estimate/trace?kind={flavour}", json=body).json()


def hang_up(base_url: str, pid: int, body: dict, after: float) -> dict:
    """Send `body` to POST /trace, hang up after `after` s; when did the server stop?"""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            samples.append((time.monotonic(), cpu_seconds(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with (
        httpx.Client(base_url=base_url, timeout=after, trust_env=False) as client,
        contextlib.suppress(httpx.TimeoutException),
    ):
        client.post("/api/v1/trace", json=body)
    left = time.monotonic()
    time.sleep(3.0)
    stop.set()
    sampler.join(5)
    # CPU per 100 ms after the hang-up, to see how it winds down
    profile = [
        sum(
            c1 - c0
            for (_, c0), (t1, c1) in zip(samples, samples[1:], strict=False)
            if left + k / 10 < t1 <= left + (k + 1) / 10
        )
        for k in range(30)
    ]
    # stopped: the end of the last 100 ms in which the server still used over 20% of a core
    # (a lone tick later is housekeeping, not the abandoned computation)
    busy = [k for k, cpu in enumerate(profile) if cpu > 0.02]
    return {
        "stopped_after_s": (max(busy) + 1) / 10 if busy else 0.0,
        "samples": len(samples),
        "cpu_per_100ms_after": [round(c, 3) for c in profile],
    }


# ---------------------------------------------------------------------------- calibration


def calibrate() -> None:
    from app.api.encoding import dumps, trace_to_dict
    from app.api.inputs import resolve_trace_request
    from app.api.schemas import TraceRequest
    from app.api.trace import _answer
    from app.cost import TrainShape, train_cost
    from app.rnn.optim import OptimizerConfig
    from app.rnn.tasks import make_task
    from app.rnn.train import TrainConfig, held_out_loss, train
    from app.settings import Settings

    settings = Settings(max_request_seconds=1e9, max_request_bytes=2**62, max_response_bytes=2**62)

    def measure(fn) -> tuple[float, int]:
        best = float("inf")
        for _ in range(2):
            t0 = time.thread_time()
            fn()
            best = min(best, time.thread_time() - t0)
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return best, peak

    print("| trace | jacobians | est s | meas s | ratio | est MB | meas MB | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for cell in ("rnn_tanh", "gru", "lstm"):
        for H, L, bi, T in (
            (8, 1, False, 200),
            (32, 2, True, 200),
            (64, 2, False, 400),
            (128, 1, False, 400),
            (128, 2, True, 300),
        ):
            for jac in (False, True):
                body = TraceRequest(
                    config={
                        "cell": cell,
                        "input_size": 1,
                        "hidden_size": H,
                        "num_layers": L,
                        "bidirectional": bi,
                    },
                    inputs=rng.standard_normal((T, 1)).tolist(),
                    targets=rng.standard_normal((T, 1)).tolist(),
                    jacobians=jac,
                )
                job = resolve_trace_request(body, settings, None)
                seconds, peak = measure(lambda job=job: _answer(job, False, lambda: False))
                e = job.estimate
                print(
                    f"| {cell} H={H} L={L} bi={bi} T={T} | {jac} | {e.seconds:.3f} | "
                    f"{seconds:.3f} | {e.seconds / seconds:.2f} | {e.memory_bytes / 1e6:.1f} | "
                    f"{peak / 1e6:.1f} | {e.memory_bytes / peak:.2f} |"
                )
    print()
    print("| training | est s | meas s | ratio | est MB | meas MB | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cell, H, T, B, steps, every in (
        ("gru", 16, 30, 16, 30, 10),
        ("lstm", 64, 100, 64, 20, 10),
        ("rnn_tanh", 32, 200, 32, 20, 5),
    ):
        task = make_task("sine", length=T)
        config = task.config(cell=cell, hidden_size=H)
        tc = TrainConfig(batch_size=B, steps=steps, probe_every=every)
        e = train_cost(TrainShape(config, T, B, steps, every))

        def run(config=config, task=task, tc=tc) -> None:
            for record in train(config, task, OptimizerConfig(), tc):
                if hasattr(record, "trace"):
                    dumps(trace_to_dict(record.trace, record.spectrum))
                elif hasattr(record, "params"):
                    held_out_loss(config, record.params, task, 0, 1000)

        seconds, peak = measure(run)
        print(
            f"| {cell} H={H} T={T} B={B} steps={steps}/{every} | {e.seconds:.2f} | "
            f"{seconds:.2f} | {e.seconds / seconds:.2f} | {e.memory_bytes / 1e6:.1f} | "
            f"{peak / 1e6:.1f} | {e.memory_bytes / peak:.2f} |"
        )


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true", help="estimates against runs")
    parser.add_argument("--quick", action="store_true", help="length 300 instead of 1000")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"cpu: {cpu_model()}; code: {code_version()}")
    if args.calibrate:
        calibrate()
        return 0
    length = 300 if args.quick else 1000
    cases = [
        ("trace", _heaviest_trace(length)),
        ("trace", _heaviest_trace(length, jacobians=False)),
        ("npz", _heaviest_trace(length)),
        ("stream", _heaviest_trace(length)),
        ("session", _heaviest_trace(length)),
        ("train", _heaviest_train(length)),
        ("train", {**_heaviest_train(length), "batch_size": 32, "steps": 100, "probe_every": 50}),
    ]
    rows = []
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="unroll-worst-") as tmp:
        proc, _ = start_server(port, Path(tmp))
        base_url = f"http://{HOST}:{port}"
        try:
            with httpx.Client(base_url=base_url, timeout=900, trust_env=False) as client:
                for kind, body in cases:
                    est = estimate(client, kind, body)
                    started = time.perf_counter()
                    with Sampler(proc.pid, base_url) as sampler:
                        status, size, detail = send(client, kind, body)
                    wall = time.perf_counter() - started
                    row = {
                        "kind": kind,
                        "jacobians": body.get("jacobians", True),
                        "estimate_s": est.get("seconds"),
                        "estimate_bytes": est.get("memory_bytes"),
                        "status": status,
                        "wall_s": wall,
                        "bytes": size,
                        "rss_above_idle": sampler.peak_rss - sampler.base_rss,
                        "healthz_max_ms": 1000 * max(sampler.healthz, default=float("nan")),
                        "detail": detail[:160],
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                admitted = next(
                    (
                        b
                        for k, b in cases
                        if k == "trace" and estimate(client, k, b)["within_budget"]
                    ),
                    _heaviest_trace(length, jacobians=False),
                )
            hangs = {after: hang_up(base_url, proc.pid, admitted, after) for after in HANG_UPS}
        finally:
            stop_server(proc)
    print()
    print(
        "| request | Jacobians | estimate | status | wall s | received | "
        "server RSS above idle | slowest /healthz ms |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        est = f"{r['estimate_s']:.1f} s, {r['estimate_bytes'] / 1e9:.2f} GB"
        print(
            f"| {r['kind']} | {r['jacobians']} | {est} | {r['status']} | {r['wall_s']:.2f} | "
            f"{r['bytes'] / 1e6:.1f} MB | {r['rss_above_idle'] / 1e9:.2f} GB | "
            f"{r['healthz_max_ms']:.0f} |"
        )
    print()
    print(f"hang-ups of the heaviest admitted trace (jacobians {admitted.get('jacobians', True)}):")
    for after, hang in hangs.items():
        print(
            f"  after {after:g} s: the server's CPU use fell below 20% of a core "
            f"{hang['stopped_after_s']:.1f} s after the client left"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "hang_ups": hangs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

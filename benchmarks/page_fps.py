"""The page at every size (issue 11): load, playback and training in headless Chromium.

Run from the repo root (needs Debian's chromium and the playwright package):

    python benchmarks/page_fps.py [--configs default,t100,t1000,largest] [--seconds 6]
                                  [--root DIR] [--no-train] [--json out.json]
    python benchmarks/page_fps.py --bytes   # one configure answer: JSON against binary
    python benchmarks/page_fps.py --unattached [--configs ...]  # load with no DevTools client
    python benchmarks/page_fps.py --first-picture 16 [--configs ...] [--root DIR]
    python benchmarks/page_fps.py --compare-playback [--configs t1000] [--seconds 3]

For each configuration it starts nothing but a fresh browser context against one
`unroll serve` (started from --root, default this checkout, so an older checkout can be
measured the same way), opens the page at 1280x800 and measures:

- first picture (after one warm-up visit, so static files are compressed already): ms
  from navigation to the unrolled view's first drawing (the page's
  `first-picture` mark; an older page without it: the model and its plot are there);
- load: ms until everything is computed and drawn (diagnostics included), bytes received
  (HTTP, encoded, plus every WebSocket message), JS heap after a garbage collection, and
  the longest main-thread task (PerformanceObserver 'longtask', installed before any page
  script);
- playback from the start at the default speed for --seconds: animation frames per
  second, timeline steps per second, the time the whole timeline takes at that rate, and
  the longest task;
- a 300-step training run (Train, until done or --train-seconds): the longest task,
  how many times a second the status line changes, and Stop: ms from the click until the
  page shows it stopped (a second run, stopped after 1.5 s).

--unattached: playwright's DevTools client makes V8 collect source positions while
Plotly.js is evaluated (~0.5 s more on a cold load than a user's browser spends), so this
mode starts Chromium itself on the page, a fresh profile each time, and attaches only
after --wait seconds to read what the page recorded (its longest tasks, whether it drew).

--first-picture N: only the first picture, N loads per configuration, each in a fresh
context (empty HTTP cache, no compiled code) of one warmed browser: a first visit from a
browser already running. Prints min, median and max.

--compare-playback: playback with Compare open and in view (its three networks loaded):
frames per second, timeline steps, tasks over 50 ms and the longest.

A measurement, not a test: it prints a table and exits 0. The machine is shared: the load
average is printed with the results.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import free_port  # noqa: E402 - benchmarks/ is on sys.path

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CONFIGS = {
    "default": "/?seed=0",
    "t100": "/?task=sine&len=100&cell=lstm&h=64&seed=0",
    "t1000": "/?task=sine&len=1000&cell=lstm&h=16&layers=2&bi=1&seed=0",
    "largest": "/?task=sine&len=1000&cell=lstm&h=128&layers=4&bi=1&seed=0",
}
LONGTASKS = """
window.__benchTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__benchTasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
"""
FIRST_PICTURE = """() => performance.getEntriesByName('first-picture').length > 0 ||
  (window.unroll && window.unroll.model && document.querySelector('#unrolled .main-svg') != null)"""
SETTLED = """() => window.unroll && window.unroll.model &&
  !document.querySelector('#progress:not([hidden])') &&
  (!window.unroll.model.hasGradients || window.unroll.model.trace.jacobian_product_norm != null)"""


def longest(page, since: float, until: float | None = None) -> float:
    tasks = page.evaluate("() => window.__benchTasks")
    durations = [d for s, d in tasks if s >= since and (until is None or s < until)]
    return max(durations, default=0.0)


class Bytes:
    """Bytes the page receives: HTTP bodies as sent (encoded) and WebSocket payloads."""

    def __init__(self, cdp):
        self.total = 0
        cdp.send("Network.enable", {"maxTotalBufferSize": 0})
        cdp.on("Network.loadingFinished", lambda e: self._add(e["encodedDataLength"]))
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _add(self, n: float) -> None:
        self.total += int(n)

    def _frame(self, event) -> None:
        response = event["response"]
        data = response["payloadData"]
        self.total += len(base64.b64decode(data)) if response["opcode"] == 2 else len(data.encode())


COMPARE_PLAY = """async (seconds) => {
  const tasks = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) tasks.push(e.duration); })
    .observe({ type: "longtask" });
  window.unroll.player.seek(0);
  let frames = 0, on = true;
  const count = () => { frames++; if (on) requestAnimationFrame(count); };
  requestAnimationFrame(count);
  const start = window.unroll.state.cursor;
  document.getElementById("play").click();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  on = false;
  document.getElementById("play").click();
  return { fps: frames / seconds, steps: window.unroll.state.cursor - start,
           long_tasks: tasks.length, longest_ms: Math.max(0, ...tasks) };
}"""


def compare_playback(browser, url: str, query: str, seconds: float) -> dict:
    """Playback with the Compare section open and on the screen."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url + query + "&dash=1&compare=1")
    page.wait_for_function(
        "() => document.getElementById('compare').data?.length > 3", timeout=600_000
    )
    time.sleep(1.5)  # the rest of the load (other views, Plotly's first drawings)
    page.locator("#compare-section").scroll_into_view_if_needed()
    time.sleep(0.5)
    out = page.evaluate(COMPARE_PLAY, seconds)
    context.close()
    return out


def first_pictures(browser, url: str, query: str, loads: int) -> list[float]:
    """ms from navigation to the first-picture mark, a fresh context per load."""
    out = []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(url + query)
        page.wait_for_function(FIRST_PICTURE, timeout=600_000, polling=20)
        out.append(
            page.evaluate("() => performance.getEntriesByName('first-picture')[0].startTime")
        )
        context.close()
    return out


def measure(browser, url: str, query: str, seconds: float, train: bool, train_seconds: float):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(LONGTASKS)
    cdp = context.new_cdp_session(page)
    received = Bytes(cdp)
    out: dict = {}
    page.goto(url + query)
    page.wait_for_function(FIRST_PICTURE, timeout=600_000, polling=20)
    out["first_picture_ms"] = page.evaluate(
        """() => { const m = performance.getEntriesByName('first-picture')[0];
                   return m ? m.startTime : performance.now(); }"""
    )
    page.wait_for_function(SETTLED, timeout=900_000, polling=100)
    out["load_ms"] = page.evaluate("() => performance.now()")
    time.sleep(1.0)  # what the page does right after (deferred views) counts as load
    loaded = page.evaluate("() => performance.now()")
    out["load_longest_task_ms"] = longest(page, 0, loaded)
    out["bytes"] = received.total
    cdp.send("HeapProfiler.collectGarbage")
    out["heap_mb"] = cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6
    out["timeline"] = page.evaluate("() => window.unroll.model.length")

    play = page.evaluate(
        """async (seconds) => {
            const player = window.unroll.player;
            player.seek(0);
            let rafs = 0;
            let running = true;
            const tick = () => { rafs += 1; if (running) requestAnimationFrame(tick); };
            requestAnimationFrame(tick);
            const drawn0 = player.framesDrawn;
            const c0 = player.cursor;
            const t0 = performance.now();
            player.play();
            while (player.playing && performance.now() - t0 < seconds * 1000) {
              await new Promise((r) => setTimeout(r, 50));
            }
            player.pause();
            running = false;
            const elapsed = (performance.now() - t0) / 1000;
            return {rafs, drawn: player.framesDrawn - drawn0, steps: player.cursor - c0,
                    elapsed, t0, t1: performance.now(),
                    rate: player.rate ?? player.speed, length: player.length};
        }""",
        seconds,
    )
    out["fps"] = play["rafs"] / play["elapsed"]
    out["steps_per_s"] = play["steps"] / play["elapsed"]
    out["whole_timeline_s"] = play["length"] / play["rate"]
    out["play_longest_task_ms"] = longest(page, play["t0"], play["t1"])

    if train:
        out.update(training(page, train_seconds))
    out["errors"] = errors
    context.close()
    return out


def training(page, train_seconds: float) -> dict:
    """One training run to its end (or train_seconds), then a second one stopped after 1.5 s."""
    out: dict = {}
    page.evaluate(
        """() => {
            window.__statusChanges = [];
            new MutationObserver(() => window.__statusChanges.push(performance.now()))
              .observe(document.getElementById('train-status'),
                       {childList: true, characterData: true, subtree: true});
        }"""
    )
    t0 = page.evaluate("() => performance.now()")
    page.click("#train")
    try:
        page.wait_for_function(
            """() => /^(Done|Stopped)/.test(document.getElementById('train-status').textContent)
                  || !document.getElementById('error').hidden""",
            timeout=train_seconds * 1000,
            polling=200,
        )
    except Exception:  # noqa: BLE001 - a run longer than we wait is stopped
        page.click("#stop")
    t1 = page.evaluate("() => performance.now()")
    status = page.inner_text("#train-status")
    error = page.inner_text("#error-text") if page.is_visible("#error") else ""
    changes = page.evaluate("() => window.__statusChanges")
    span = max(1e-3, (t1 - t0) / 1000)
    out["train_status"] = (error or status)[:90]
    out["train_s"] = span
    out["train_longest_task_ms"] = longest(page, t0, t1)
    # status updates per second while the run was busy (its first to its last change)
    busy = (changes[-1] - changes[0]) / 1000 if len(changes) > 1 else span
    out["train_updates_per_s"] = (len(changes) - 1) / busy if len(changes) > 1 else 0.0
    page.wait_for_function("() => !document.getElementById('train').disabled", timeout=120_000)
    if error:  # refused (over the budget): nothing to stop
        out["stop_ms"] = None
        return out
    # Stop: a second run, stopped after 1.5 s
    page.click("#train")
    time.sleep(1.5)
    stopped = page.evaluate(
        """async () => {
            const t0 = performance.now();
            document.getElementById('stop').click();
            while (document.getElementById('train').disabled ||
                   !/^(Stopped|Done)/.test(document.getElementById('train-status').textContent)) {
              await new Promise((r) => setTimeout(r, 10));
              if (performance.now() - t0 > 60000) break;
            }
            return performance.now() - t0;
        }"""
    )
    out["stop_ms"] = stopped
    return out


def warm(browser, url: str) -> None:
    """One visit first, in its own context: the server compresses each static file on its
    first request, a cost the first visitor after a start pays and nobody after."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + CONFIGS["default"])
    page.wait_for_function("() => window.unroll && window.unroll.model", timeout=60_000)
    page.wait_for_timeout(3000)  # Plotly.js too (run after the first picture)
    context.close()


def session_bytes(names: list[str]) -> None:
    """Bytes of one configure answer over the session, JSON (the API's default, as the page
    had it) against the page's binary answer, per configuration; in-process, no browser.
    Without the Jacobian norms (two (L, D, T) arrays either way), which take minutes at the
    largest size."""
    import numpy as np
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    sizes = {"default": (8, 1, False, 20), "t100": (64, 1, False, 100)}
    sizes |= {"t1000": (16, 2, True, 1000), "largest": (128, 4, True, 1000)}
    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(data_dir=Path(data), rate_limit_per_minute=0))
        with TestClient(app) as client:
            print(f"\n{'config':8} {'JSON MB':>8} {'binary MB':>9} {'ratio':>6}")
            for name in names:
                hidden, layers, bi, T = sizes[name]
                x = np.sin(np.arange(T + 1) / 5.0)
                body = {
                    "config": {
                        "cell": "lstm",
                        "hidden_size": hidden,
                        "num_layers": layers,
                        "bidirectional": bi,
                    },
                    "inputs": x[:-1, None].tolist(),
                    "targets": x[1:, None].tolist(),
                    "jacobians": False,
                }
                page = {"encoding": "binary", "progressive": True, "omit": ["grads", "grad_cell"]}
                sent = []
                for options in ({}, page):
                    total = 0
                    with client.websocket_connect("/api/v1/session") as ws:
                        ws.send_text(json.dumps({"type": "configure", **body, **options}))
                        while True:
                            message = ws.receive()
                            text, raw = message.get("text"), message.get("bytes")
                            total += len(raw) if raw is not None else len(text.encode())
                            ends = ("session", "error")
                            if text is not None and json.loads(text)["type"] in ends:
                                break
                    sent.append(total)
                ratio = sent[0] / sent[1]
                print(f"{name:8} {sent[0] / 1e6:8.2f} {sent[1] / 1e6:9.2f} {ratio:6.1f}")


def unattached(url: str, query: str, wait: float, runs: int) -> list[dict]:
    """Load the page `runs` times in a Chromium no DevTools client watches until `wait` s
    have passed; then attach and read the page's own long-task record."""
    from playwright.sync_api import sync_playwright

    out = []
    for _ in range(runs):
        port = free_port()
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
            chromium = subprocess.Popen(
                [
                    "/usr/bin/chromium",
                    "--headless",
                    *ARGS,
                    f"--remote-debugging-port={port}",
                    f"--user-data-dir={profile}",
                    "--window-size=1280,800",
                    url + query,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(wait)
                with sync_playwright() as p:
                    browser = p.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
                    page = browser.contexts[0].pages[0]
                    out.append(
                        page.evaluate("""() => ({
                        tasks: window.unrollLongTasks.map((t) => Math.round(t.duration)),
                        drawn: Boolean(window.Plotly && window.unroll && window.unroll.model),
                    })""")
                    )
                    browser.close()
            finally:
                chromium.terminate()
                chromium.wait()
    return out


def serve(root: Path, data: str):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "UNROLL_DATA_DIR": data, "UNROLL_RATE_LIMIT_PER_MINUTE": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("server did not start")
        time.sleep(0.2)


@contextlib.contextmanager
def browser_and_server(root: Path, warm_up: bool = True):
    """(Chromium, url) of one `unroll serve` from `root` on a fresh data folder (after one
    warm-up visit, so static files are compressed already); both stopped after."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data:
        server, url = serve(root, data)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                if warm_up:
                    warm(browser, url)
                yield browser, url
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--seconds", type=float, default=6.0, help="playback measured")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--train-seconds", type=float, default=90.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--bytes", action="store_true", help="only the session's bytes, JSON against binary"
    )
    parser.add_argument("--unattached", action="store_true", help="load with no DevTools client")
    parser.add_argument("--wait", type=float, default=8.0, help="--unattached: s before reading")
    parser.add_argument("--runs", type=int, default=3, help="--unattached: loads per config")
    parser.add_argument("--first-picture", type=int, default=0, help="only N first pictures")
    parser.add_argument("--compare-playback", action="store_true", help="playback, Compare open")
    args = parser.parse_args()
    if args.compare_playback:
        with browser_and_server(args.root, warm_up=False) as (browser, url):
            for name in args.configs.split(","):
                r = compare_playback(browser, url, CONFIGS[name], args.seconds)
                print(
                    f"{name:8} compare open: {r['fps']:.1f} fps, {r['steps']} steps, "
                    f"{r['long_tasks']} tasks over 50 ms, longest {r['longest_ms']:.0f} ms"
                )
        print(f"load average {os.getloadavg()[0]:.1f}")
        return 0
    if args.first_picture:
        with browser_and_server(args.root) as (browser, url):
            for name in args.configs.split(","):
                ms = sorted(first_pictures(browser, url, CONFIGS[name], args.first_picture))
                median = (ms[(len(ms) - 1) // 2] + ms[len(ms) // 2]) / 2
                print(
                    f"{name:8} first picture min {ms[0]:.0f} median {median:.0f} "
                    f"max {ms[-1]:.0f} ms over {len(ms)} loads",
                    flush=True,
                )
        print(f"load average {os.getloadavg()[0]:.1f}")
        return 0
    if args.unattached:
        with tempfile.TemporaryDirectory() as data:
            server, url = serve(args.root, data)
            try:
                for name in args.configs.split(","):
                    for r in unattached(url, CONFIGS[name], args.wait, args.runs):
                        top = sorted(r["tasks"], reverse=True)[:4]
                        print(f"{name:8} longest tasks {top} ms, drawn: {r['drawn']}", flush=True)
            finally:
                server.terminate()
                server.wait(timeout=10)
        print(f"load average {os.getloadavg()[0]:.1f}")
        return 0
    if args.bytes:
        session_bytes(args.configs.split(","))
        return 0

    results = {}
    with browser_and_server(args.root) as (browser, url):
        for name in args.configs.split(","):
            results[name] = measure(
                browser, url, CONFIGS[name], args.seconds, not args.no_train, args.train_seconds
            )
            print(name, json.dumps(results[name]), flush=True)

    print(f"\npage at every size, {args.root}, 1280x800, load average {os.getloadavg()[0]:.1f}")
    head = (
        f"{'config':8} {'first ms':>8} {'load ms':>8} {'MB':>7} {'heap MB':>7} {'task ms':>7} "
        f"{'fps':>5} {'steps/s':>7} {'whole s':>7} {'play task':>9} "
        f"{'train task':>10} {'upd/s':>5} {'stop ms':>7}"
    )
    print(head)
    for name, r in results.items():
        print(
            f"{name:8} {r['first_picture_ms']:8.0f} {r['load_ms']:8.0f} {r['bytes'] / 1e6:7.2f} "
            f"{r['heap_mb']:7.1f} {r['load_longest_task_ms']:7.0f} {r['fps']:5.1f} "
            f"{r['steps_per_s']:7.1f} {r['whole_timeline_s']:7.1f} "
            f"{r['play_longest_task_ms']:9.0f} "
            f"{r.get('train_longest_task_ms', 0):10.0f} {r.get('train_updates_per_s', 0):5.1f} "
            f"{r.get('stop_ms') or 0:7.0f}"
        )
        if r.get("train_status"):
            print(f"{'':8} training: {r['train_status']} ({r['train_s']:.1f} s)")
        if r["errors"]:
            print(f"{'':8} page errors: {r['errors'][:3]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

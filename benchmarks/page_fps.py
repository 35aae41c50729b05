"""Page smoothness (issue 5): frames per second while the page plays a T=100, H=64 trace.

Run from the repo root (needs Debian's chromium and the playwright package):

    python benchmarks/page_fps.py [--T 100] [--H 64] [--cell lstm] [--seconds 8]

It starts `unroll serve` on a free loopback port, opens the page in headless Chromium at
1280x800, plays the timeline at 60 steps per second and counts, in the page:
- animation frames the browser managed to run (requestAnimationFrame callbacks), and
- timeline positions actually drawn by every view (the player's frame counter),
each divided by the wall time. Goal: at least 30 frames per second. A measurement, not a
test: it exits 0 either way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
from machine import free_port  # noqa: E402 - benchmarks/ is on sys.path

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--H", type=int, default=64)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "UNROLL_DATA_DIR": data, "UNROLL_RATE_LIMIT_PER_MINUTE": "0"}
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                query = f"/?task=sine&len={args.T}&cell={args.cell}&h={args.H}&speed=60&seed=0"
                page.goto(url + query)
                page.wait_for_function("() => window.unroll && window.unroll.model", timeout=60_000)
                length = page.evaluate("() => window.unroll.model.length")
                result = page.evaluate(
                    """async (seconds) => {
                        const player = window.unroll.player;
                        player.seek(0);
                        let rafs = 0;
                        let running = true;
                        const tick = () => { rafs += 1; if (running) requestAnimationFrame(tick); };
                        requestAnimationFrame(tick);
                        const drawn0 = player.framesDrawn;
                        const t0 = performance.now();
                        player.play();
                        await new Promise((r) => setTimeout(r, seconds * 1000));
                        player.pause();
                        running = false;
                        const elapsed = (performance.now() - t0) / 1000;
                        const drawn = player.framesDrawn - drawn0;
                        return {rafs, drawn, elapsed, cursor: player.cursor};
                    }""",
                    min(args.seconds, (length - 1) / 60),
                )
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()

    fps = result["rafs"] / result["elapsed"]
    drawn = result["drawn"] / result["elapsed"]
    print(
        f"page playback, {args.cell} T={args.T} H={args.H}, timeline {length} positions, 1280x800"
    )
    print(f"  wall time           {result['elapsed']:.2f} s (reached position {result['cursor']})")
    print(f"  animation frames    {fps:.1f} per second")
    print(f"  positions drawn     {drawn:.1f} per second (asked: 60)")
    print(f"  goal >= 30 fps:     {'PASS' if fps >= 30 else 'FAIL'}")
    if errors:
        print("  page errors:", *errors, sep="\n    ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A real server and headless Chromium for the page tests.

Chromium is Debian's, driven by Python's playwright: its headless shell
(chromium-headless-shell) where installed, else the browser (chromium). Where neither, or
playwright, is there the tests skip, unless UNROLL_REQUIRE_BROWSER=1 (as CI sets): then
they fail.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ["UNROLL_SHOTS"]) if os.environ.get("UNROLL_SHOTS") else None
# The headless shell is the same Blink and V8 without the windowed browser around them:
# the page tests take ~20% less CPU in it (docs/benchmarks.md, session 22).
CHROMIUMS = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")


def chromium_executable() -> str | None:
    """UNROLL_CHROMIUM if set, else the first of CHROMIUMS installed, else None."""
    if os.environ.get("UNROLL_CHROMIUM"):
        chosen = os.environ["UNROLL_CHROMIUM"]
        return chosen if Path(chosen).exists() or shutil.which(chosen) else None
    return next((path for path in CHROMIUMS if Path(path).exists()), None)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # one renderer process for all of a worker's pages, kept between tests: a fresh one per
    # page cost ~0.2 s of CPU per load (each page still has its own long-task observer)
    "--renderer-process-limit=1",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("UNROLL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here, but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`unroll serve` started in a subprocess on a free loopback port, with its own data dir.

    Yields (process, url, log path) at once: the server starts while Chromium does.
    """
    port = _free_port()
    data = tmp_path_factory.mktemp("data")
    # a lower hidden-size cap than the page allows, so a server refusal can be shown
    env = {**os.environ, "UNROLL_DATA_DIR": str(data), "UNROLL_MAX_HIDDEN_SIZE": "64"}
    log_path = data / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}", log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def server_url(server):
    """The started server's URL, once it answers /healthz."""
    proc, url, log_path = server
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if chromium_executable() is None:
        wanted = os.environ.get("UNROLL_CHROMIUM") or " or ".join(CHROMIUMS)
        _unavailable(f"Chromium is not installed at {wanted}")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def profile(playwright, tmp_path_factory):
    """One on-disk profile per worker, so V8 keeps Plotly.js compiled between tests.

    A fresh context parses and compiles the 4.8 MB bundle on every load (~0.7 s of CPU);
    a profile with a disk cache does it twice and then reuses the code (~0.1 s).
    """
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("profile")),
        executable_path=chromium_executable(),
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800},
    )
    yield context
    context.close()


STORED = "cookies,local_storage,indexeddb,service_workers,cache_storage,file_systems"
# page.wait_for_function's default: a timer, not every animation frame ("raf" makes an idle
# page draw 60 frames a second while a test waits: ~5% of a core)
WAIT_POLL_MS = 20


def _polling(wait, expression, *, polling=WAIT_POLL_MS, **kwargs):
    return wait(expression, polling=polling, **kwargs)


def _forget(context, origin: str) -> None:
    """Clear what the page stores for `origin` (localStorage, cookies...), not the code cache."""
    keeper = context.pages[0] if context.pages else context.new_page()
    cdp = context.new_cdp_session(keeper)
    cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": STORED})
    cdp.detach()
    context.clear_cookies()


class PageErrors:
    """Console errors and uncaught exceptions seen by a page."""

    def __init__(self, page):
        self.messages: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.messages.append(m.text))
        page.on("pageerror", lambda e: self.messages.append(str(e)))


def as_stranger(url: str) -> str:
    """A URL of the server under its other loopback name, localhost: an origin sharing
    nothing stored with 127.0.0.1's, as a page of `new_page(stranger=True)` opens links."""
    return url.replace("127.0.0.1", "localhost")


@pytest.fixture
def new_page(server, profile, server_url):
    """Open pages at a viewport in the worker's profile, starting from nothing stored.

    `new_page(stranger=True)` opens a page as someone else who was sent a link would: under
    the server's other name (localhost), an origin with its own storage, empty, and its own
    partition of the HTTP cache; a test turns a link into it with `page.base_url`.
    """
    origins = (server_url, as_stranger(server_url))
    for origin in origins:
        _forget(profile, origin)
    keeper = profile.pages[0]

    def open_(width: int = 1280, height: int = 800, *, stranger: bool = False):
        base = origins[1] if stranger else origins[0]
        page = profile.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function = functools.partial(_polling, page.wait_for_function)
        # the page must work offline: any request off this machine fails the test. Requests
        # are watched, not intercepted: routing each one through playwright slowed every load.
        outside: list[str] = []
        local = (base, base.replace("http://", "ws://"), "data:", "blob:")

        def watch(request):
            if not request.url.startswith(local):
                outside.append(request.url)

        page.on("request", watch)
        page.on(
            "websocket", lambda ws: None if ws.url.startswith(local) else outside.append(ws.url)
        )
        page.errors = PageErrors(page)
        page.outside = outside
        page.base_url = base
        return page

    yield open_
    for page in profile.pages:  # what they stored is cleared when the next test starts
        if page is not keeper:
            page.close()


@pytest.fixture
def page(new_page):
    return new_page()


def shot(page, name: str) -> Path | None:
    """Save a full-page screenshot to look at, when UNROLL_SHOTS names a folder.

    Off by default: the suite's 17 full-page screenshots cost ~7 s and assert nothing.
    """
    if SHOTS is None:
        return None
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

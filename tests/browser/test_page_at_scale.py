"""The page at every size (issue 11), in headless Chromium: the binary decoder, the
published timeline, progress and Cancel, and the long-task observer. Behaviour only:
timings are in benchmarks/page_fps.py."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import ROOT, shot

pytestmark = pytest.mark.browser

# ReLU with identity weights times 100 over 200 positions: states pass float32's range
# (sent as float64) and then float64's (infinities, then NaN)
EXPLODING = {
    "config": {"cell": "rnn_relu", "input_size": 1, "hidden_size": 3},
    "init": {"scheme": "identity", "scale": 100, "seed": 1},
    "inputs": [[1.0]] * 200,
    "targets": [[0.0]] * 200,
}
# slow enough (the Jacobian norms of 1,000 positions) to be cancelled while it runs
HEAVY = "/?task=sine&len=1000&cell=lstm&h=64&layers=2&bi=1&seed=0"


def open_page(page, query="/?task=sine&len=12&cell=lstm&h=6&seed=3"):
    page.goto(page.base_url + query)
    page.wait_for_function("() => window.unroll && window.unroll.model", timeout=30_000)


SMALL_LSTM = {
    "config": {"cell": "lstm", "input_size": 1, "hidden_size": 4},
    "init": {"scheme": "pytorch", "scale": 1, "seed": 2},
    "inputs": [[0.5], [-1.0], [2.0]],
    "targets": [[0.0], [1.0], [0.5]],
}
# JS: `body` configured over two sessions of its own, answered in JSON and in binary
BOTH_WAYS = """
  const { Session } = await import("/static/js/api.js");
  const { TraceModel } = await import("/static/js/trace_model.js");
  const run = async (options) => {
    const session = new Session();
    const answer = await session.send({ type: "configure", ...body, ...options });
    session.socket.close();
    return answer.find((f) => f.type === "trace").trace;
  };
  const json = await run({});
  const binary = await run({ encoding: "binary" });
"""


def test_binary_frames_decode_to_the_json_values_non_finite_included(page):
    open_page(page)
    result = page.evaluate(
        "async (body) => {"
        + BOTH_WAYS
        + """
          const hidden = binary.hidden;
          const rows = new TraceModel(binary).trace.hidden[0][0];
          return {
            json: json.hidden[0][0].map((row) => row[0]),
            binary: Array.from(rows, (row) => row[0]),
            kind: hidden.data.constructor.name,
            nonfinite: hidden.nonfinite,
            shape: hidden.shape,
            gates: binary.gates ? Object.keys(binary.gates).length : 0,
            normOfOverflow: TraceModel.norm(rows[199]),
          };
        }""",
        EXPLODING,
    )
    assert result["shape"] == [1, 1, 200, 3]
    assert result["kind"] == "Float64Array"  # values past float32's range travel as float64
    assert result["nonfinite"] > 0
    for t, (a, b) in enumerate(zip(result["json"], result["binary"], strict=True)):
        if a is None:  # JSON's null: NaN or an infinity in the typed array
            assert b is None or not math.isfinite(b), (t, b)
        else:
            assert b == pytest.approx(a, rel=1e-12), t
    assert any(v is None for v in result["json"])
    assert result["normOfOverflow"] is None  # flagged as overflow in the page's model


def test_float16_colours_decode_exactly_with_or_without_float16_arrays(page):
    open_page(page)
    result = page.evaluate(
        "async (body) => {"
        + BOTH_WAYS
        + """
          const { widenHalf } = await import("/static/js/transport.js");
          const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
          const forget = new TraceModel(binary).trace.gates.forget[0][0];
          return {
            table: Array.from(widenHalf(bits)),
            native: typeof Float16Array === "undefined"
              ? null : Array.from(new Float16Array(bits.buffer)),
            kind: binary.gates.forget.data.constructor.name,
            json: json.gates.forget[0][0],
            binary: Array.from(forget, (row) => Array.from(row)),
          };
        }""",
        SMALL_LSTM,
    )
    want = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float64)
    for got in (result["table"], result["native"]):
        got = np.array([np.nan if v is None else v for v in got], dtype=np.float64)
        assert np.array_equal(got, want, equal_nan=True)  # every pattern, inf and NaN too
    assert result["kind"] == "Float16Array"  # this Chromium has them: the view, no copy
    # the forget gate's values, to float16's precision (what only colours a picture)
    assert np.allclose(result["binary"], result["json"], rtol=1e-3, atol=1e-4)


def test_row_norms_and_means_are_exact_on_every_path(page):
    """TraceModel.norm and .mean: the fast pass over typed rows, and the careful one it
    falls back to (huge, tiny, overflowed, JSON rows with null), against numpy."""
    page.goto(page.base_url + "/healthz")  # a light page of the origin: the module imports
    rows = {
        "float32": ("f32", [0.5, -1.25, 3.0, 1e-3]),
        "zeros": ("f32", [0.0, 0.0, 0.0]),
        "tiny": ("f64", [1e-200, -3e-200]),  # squares vanish in a double
        "huge": ("f64", [1e200, 2e200, -2e200]),  # squares overflow one
        "nan": ("f32", [1.0, float("nan")]),
        "inf": ("f32", [1.0, float("inf")]),
        "json": ("list", [0.5, -1.25, 3.0]),
        "json null": ("list", [0.5, None]),
    }
    got = page.evaluate(
        """async (rows) => {
            const { TraceModel } = await import("/static/js/trace_model.js");
            const out = {};
            for (const [name, [kind, values]] of Object.entries(rows)) {
                const v = values.map((x) => (x === null && kind !== "list" ? NaN : x));
                const typed = { f32: Float32Array, f64: Float64Array }[kind];
                const row = typed ? typed.from(v) : v;
                out[name] = [TraceModel.norm(row), TraceModel.mean(row)];
            }
            return out;
        }""",
        {
            k: [kind, [("NaN" if isinstance(x, float) and math.isnan(x) else x) for x in v]]
            for k, (kind, v) in rows.items()
        },
    )
    for name, (kind, values) in rows.items():
        norm, mean = got[name]
        if any(x is None or not math.isfinite(x) for x in values):
            assert norm is None and mean is None, name
            continue
        dtype = np.float32 if kind == "f32" else np.float64
        x = np.array(values, dtype=dtype).astype(np.float64)
        scale = np.max(np.abs(x))
        want = 0.0 if scale == 0 else float(scale * np.linalg.norm(x / scale))
        assert norm == pytest.approx(want, rel=1e-12, abs=0), name
        assert mean == pytest.approx(float(np.mean(x)), rel=1e-12, abs=1e-300), name


def test_the_page_steps_through_the_published_timeline(page):
    open_page(page, "/?task=sine&len=7&cell=gru&h=3&layers=2&bi=1&seed=1")
    timeline = page.evaluate(
        """() => {
          const m = window.unroll.model;
          const steps = [];
          for (let c = 0; c < m.length; c++) steps.push(m.event(c));
          return { length: m.length, published: m.timeline, steps,
                   phases: steps.map((_, c) => m.phase(c)) };
        }"""
    )
    T = 7
    assert timeline["length"] == 2 * T + 1 == timeline["published"]["length"]
    assert [p["phase"] for p in timeline["published"]["phases"]] == [
        "forward",
        "backward",
        "summary",
    ]
    steps = timeline["steps"]
    for k in range(T):  # forward: k and T-1-k; backward: T-1-k and k; layers together
        assert steps[k]["kind"] == "forward" and steps[k]["positions"] == [k, T - 1 - k]
        assert steps[T + k]["kind"] == "backward" and steps[T + k]["positions"] == [T - 1 - k, k]
    assert steps[-1]["kind"] == "summary" and timeline["phases"][-1] == "done"
    page.keyboard.press("End")
    assert page.locator("#phase").inner_text().startswith("Done")
    assert page.errors.messages == []


def test_progress_shows_what_is_computed_and_cancel_stops_the_server(page):
    page.goto(page.base_url + "/?task=sine&len=12&cell=lstm&h=6&seed=3")
    page.wait_for_function("() => window.unroll && window.unroll.model", timeout=30_000)
    # record the session's frames to see how the server answered
    page.evaluate(
        """() => {
          const session = window.unroll.session.session;
          window.__frames = [];
          const receive = session._receive.bind(session);
          session._receive = (frame) => { window.__frames.push(frame); receive(frame); };
        }"""
    )
    # the next configure is the heavy one (HEAVY's settings), on the same session
    page.evaluate(
        """() => {
          const big = {length: 1000, hiddenSize: 64, numLayers: 2, bidirectional: true};
          Object.assign(window.unroll.state, big);
          window.unroll.loadTrace();
        }"""
    )
    progress = page.locator("#progress")
    progress.wait_for(state="visible", timeout=10_000)
    page.wait_for_function(
        "() => /Computing the/.test(document.querySelector('#progress .progress-text').innerText)",
        timeout=30_000,
    )
    shot(page, "progress")
    page.get_by_role("button", name="Cancel the computation").click()
    page.wait_for_function(
        "() => /Cancelled/.test(document.querySelector('#progress .progress-text').textContent)"
    )
    # the server stopped: the configure was refused as cancelled, or its diagnostics cut short
    page.wait_for_function(
        """() => window.__frames.some((f) =>
              (f.type === 'error' && /cancelled by cancel/.test(f.detail)) ||
              (f.type === 'session' && f.command === 'configure' && f.jacobians === false))""",
        timeout=30_000,
    )
    # and the session answers the next command at once: nothing is left running
    page.evaluate("() => window.unroll.session.session.send({type: 'cancel'}).catch(() => {})")
    page.wait_for_function(
        "() => window.__frames.filter((f) => ['session', 'error'].includes(f.type)).length >= 2",
        timeout=30_000,
    )
    assert page.errors.messages == []


def test_a_slow_run_is_announced_with_the_cost_models_estimate(page):
    body = {
        "config": {"cell": "lstm", "hidden_size": 64, "num_layers": 4, "bidirectional": True},
        "inputs": [[0.0]] * 1000,
        "targets": [[0.0]] * 1000,
    }
    estimate = httpx.post(
        f"{page.base_url}/api/v1/estimate/trace?kind=session", json=body, timeout=10
    ).json()
    if estimate["seconds"] < 3:
        pytest.skip(f"the cost model puts this run at {estimate['seconds']:.1f} s, under 3 s")
    page.goto(page.base_url + HEAVY.replace("layers=2", "layers=4"))
    page.wait_for_function(
        """() => /estimated at about/.test(
              document.querySelector('#progress .progress-warning').textContent)""",
        timeout=30_000,
    )
    page.get_by_role("button", name="Cancel the computation").click()


def test_the_long_task_observer_reports_the_pages_own_tasks_only(new_page):
    page = new_page()
    open_page(page)
    assert page.evaluate("() => Array.isArray(window.unrollLongTasks)")
    # the page tests' pages share one renderer process (conftest): another page's long task
    # must not count against this one, nor this page's against the other
    other = new_page()
    other.goto(other.base_url + "/healthz")
    other.evaluate((ROOT / "static" / "js" / "longtasks.js").read_text())
    # an ordinary task of the page's own (one run by the devtools protocol may not be counted)
    page.evaluate(
        """() => setTimeout(() => { const t = performance.now();
            while (performance.now() - t < 150) {} }, 0)"""
    )
    page.wait_for_function(
        "() => window.unrollLongTasks.some((t) => t.duration >= 100)", timeout=10_000
    )
    other.wait_for_timeout(300)  # entries reach every observer at the same turn; and a margin
    assert other.evaluate("() => window.unrollLongTasks.filter((t) => t.duration >= 100)") == []


def test_a_long_stacked_network_fits_a_wide_screen_and_a_narrowed_one(page):
    # loaded wide, then narrowed to a phone's width: the layout follows without a reload (a
    # phone loading at its own width is test_page_traps.py::test_a_phone_sees_the_same_page)
    page.goto(page.base_url + "/?task=sine&len=60&cell=lstm&h=8&layers=2&bi=1&seed=0")
    page.wait_for_function(
        "() => window.unroll && window.unroll.model && window.unroll.model.trace.jacobian_norm",
        timeout=30_000,
    )
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    for name, (width, height) in (("wide", (1280, 800)), ("phone", (390, 844))):
        page.set_viewport_size({"width": width, "height": height})
        page.keyboard.press("ArrowRight")
        try:  # the charts follow a resize after a short debounce: give the layout time to settle
            page.wait_for_function(f"() => ({overflow})() <= 1", timeout=5_000)
        except PlaywrightTimeout:
            pytest.fail(f"{name}: {page.evaluate(overflow)}px wider than the screen after 5 s")
        shot(page, f"scale-{name}")

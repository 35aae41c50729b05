"""The page in headless Chromium: load, play, step, train, share, upload, errors."""

from __future__ import annotations

import json
import math
import re

import httpx
import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import as_stranger, shot

pytestmark = pytest.mark.browser

SMALL = "/?task=sine&len=12&cell=lstm&h=6&seed=3"


def open_page(page, query=SMALL):
    page.goto(page.base_url + query)
    page.wait_for_function("() => window.unroll && window.unroll.model", timeout=20_000)
    return page


def phase(page) -> str:
    return page.locator("#phase").inner_text()


def assert_clean(page):
    assert page.errors.messages == [], page.errors.messages
    assert page.outside == [], f"requests left this machine: {page.outside}"
    assert page.locator("#error").is_hidden(), page.locator("#error-text").inner_text()


def test_load_play_and_step(page):
    open_page(page)
    total = page.evaluate("() => window.unroll.model.length")
    assert total == 2 * 12 + 1  # forward steps, BPTT steps, summary
    assert phase(page).startswith("Forward pass")
    for name in ("Play", "Step forward", "Step back", "Reset", "Train", "Share"):
        assert page.get_by_role("button", name=name).count() >= 1, name
    assert page.get_by_label("Cell").count() == 1
    page.get_by_role("button", name="Step forward").click()
    page.get_by_role("button", name="Step forward").click()
    assert phase(page).endswith(f" 3/{total}")
    page.get_by_role("button", name="Step back").click()
    assert phase(page).endswith(f" 2/{total}")
    page.locator("#speed").fill("60")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => document.getElementById('phase').textContent.startsWith('Done')", timeout=20_000
    )
    assert page.get_by_role("button", name="Play").count() == 1  # back to Play at the end
    shot(page, "played")
    assert_clean(page)


def test_a_step_opened_after_a_run_shows_its_gradients_at_once(page):
    open_page(page)
    page.get_by_role("button", name="Run to the end").click()
    page.wait_for_function("() => document.getElementById('phase').textContent.startsWith('Done')")
    x, y = page.evaluate(
        "() => { const v = window.unroll.views.get('unrolled'); return [v._x(7), v._y(1)]; }"
    )
    page.locator("#unrolled canvas.unrolled-main").click(position={"x": x, "y": y})
    inspector = page.locator("#cell-inspector")
    expect(inspector).to_contain_text("position t = 7", timeout=10_000)
    # BPTT is done: the backward half is there without touching the timeline again
    expect(inspector.locator("table.backward")).to_be_visible()
    assert "Play the backward pass" not in inspector.inner_text()


def test_keyboard(page):
    open_page(page)
    page.locator("body").click(position={"x": 5, "y": 5})
    total = page.evaluate("() => window.unroll.model.length")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert phase(page).endswith(f" 3/{total}")  # "13/25" must not pass for "3/25"
    page.keyboard.press("ArrowLeft")
    assert phase(page).endswith(f" 2/{total}")
    page.keyboard.press("End")
    assert phase(page).startswith("Done")
    page.keyboard.press("Home")
    assert phase(page).endswith(f" 1/{total}")
    assert_clean(page)


def test_settings_change_the_network_and_the_url(page):
    open_page(page)
    page.get_by_label("Cell").select_option("gru")
    page.wait_for_function("() => window.unroll.model.config.cell === 'gru'", timeout=20_000)
    assert "cell=gru" in page.url
    page.get_by_label("Bidirectional").check()
    page.wait_for_function("() => window.unroll.model.D === 2", timeout=20_000)
    assert "bi=1" in page.url
    shot(page, "gru-bidirectional")
    assert_clean(page)


def test_train_then_share_into_a_fresh_page(page, new_page):
    open_page(page, "/?task=sine&len=10&cell=gru&h=6&steps=30&batch=8&seed=2")
    page.get_by_role("button", name="Train").click()
    page.wait_for_function(
        "() => document.getElementById('train-status').textContent.startsWith('Done')",
        timeout=60_000,
    )
    # the loss curve has every step, though progress frames are thinned to ~20 a second;
    # a chart off the screen keeps them until it is scrolled to
    page.locator("#loss-curve").scroll_into_view_if_needed()
    page.wait_for_function("() => document.getElementById('loss-curve').data?.[0].x.length >= 30")
    steps = page.evaluate("() => Array.from(document.getElementById('loss-curve').data[0].x)")
    assert steps == list(range(1, 31))
    # the gradient profile over training, coloured by its own range until the scale is fixed
    heat = "document.getElementById('profile-heatmap').data[0]"
    # its last row is the run's last step: a finished run's rows are drawn at once
    page.wait_for_function(f"() => {heat}?.y.at(-1) === 30", timeout=2_000)
    assert page.evaluate(f"() => {heat}.zauto") is True
    page.get_by_label("Fixed colour scale").check()
    page.wait_for_function(f"() => {heat}.zauto === false")
    assert page.evaluate(f"() => [{heat}.zmin, {heat}.zmax]") == [-12, 2]
    page.get_by_label("Fixed colour scale").uncheck()
    page.wait_for_function(f"() => {heat}.zauto === true")  # its own range again
    page.wait_for_function("() => new URL(location.href).searchParams.get('model')", timeout=20_000)
    assert re.search(r"model=[0-9a-f]{64}", page.url)
    page.wait_for_function("() => window.unroll.request && window.unroll.request.model_id")
    loss = page.evaluate("() => window.unroll.model.trace.loss")
    shot(page, "trained")
    assert_clean(page)

    fresh = new_page(stranger=True)
    fresh.goto(as_stranger(page.url))
    # the request is the page's once the whole answer is in, a frame or two after the model
    fresh.wait_for_function("() => window.unroll?.model && window.unroll.request", timeout=20_000)
    assert fresh.evaluate("() => localStorage.length") == 0  # nothing of the first page's
    assert fresh.evaluate("() => window.unroll.model.trace.loss") == loss
    assert fresh.evaluate("() => window.unroll.request.model_id") == page.evaluate(
        "() => window.unroll.request.model_id"
    )
    # the hidden state's path too: the same axes (fitted on the trained trace) on both pages
    paths = []
    for p in (page, fresh):
        p.locator("#trajectory").scroll_into_view_if_needed()
        # (training's own path, of a probe's input, may be drawn first: wait for the trace's)
        p.wait_for_function(
            "() => document.querySelector('#trajectory .trajectory-caption')"
            "?.textContent.includes('this run')"
        )
        paths.append(p.evaluate(TRAJECTORY))
    assert paths[0] == paths[1] and len(paths[0]) == 10
    assert_clean(fresh)


TRAJECTORY = """() => [...document.querySelectorAll('#trajectory circle.state')].map(
    (c) => [Number(c.dataset.pc1), Number(c.dataset.pc2)])"""


def test_upload_weights(page, tmp_path):
    from app.rnn import ModelConfig, init_params, save_weights

    config = ModelConfig(cell="gru", input_size=1, hidden_size=5, output_size=1)
    path = tmp_path / "mine.safetensors"
    save_weights(path, config, init_params(config, seed=11))
    open_page(page)
    page.locator("#upload").set_input_files(str(path))
    page.wait_for_function(
        "() => document.getElementById('model-status').textContent.includes('uploaded')",
        timeout=20_000,
    )
    page.wait_for_function("() => window.unroll.model.config.hidden_size === 5", timeout=20_000)
    assert "model=" in page.url
    assert_clean(page)


def test_server_error_is_shown_in_plain_words(page):
    page.goto(page.base_url + "/?task=sine&len=12&h=100")  # the server's cap here is 64
    banner = page.locator("#error-text")
    banner.wait_for(state="visible", timeout=20_000)
    assert "hidden_size" in banner.inner_text() and "64" in banner.inner_text()
    shot(page, "server-error")


def test_compare_mode(page):
    open_page(page, "/?task=adding&len=8&cell=rnn_tanh&h=4&steps=20&batch=8&seed=1")
    page.get_by_role("button", name="Compare RNN, LSTM, GRU").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#compare .scatterlayer .trace').length >= 3",
        timeout=30_000,
    )
    # opening it brings it into view (it sits below Training)
    page.wait_for_function(
        """() => { const r = document.getElementById('compare-section').getBoundingClientRect();
            return r.top >= -1 && r.top < window.innerHeight / 2; }""",
        timeout=5_000,
    )
    assert "compare=1" in page.url
    # opened at the timeline's start, the chains show just that: position 0 computed
    page.wait_for_function("() => window.unroll.compareView._chainState")
    assert (
        page.evaluate("() => document.getElementById('compare-networks').data[0].z")
        == [[1, 0, 0, 0, 0, 0, 0, 0]] * 3
    )

    # one click trains all three with the training settings, from the same seed
    page.get_by_role("button", name="Train all three").click()
    page.wait_for_function("() => window.unroll.compare.results", timeout=60_000)
    results = page.evaluate(
        """() => Object.fromEntries(Object.entries(window.unroll.compare.results).map(
            ([cell, r]) => [cell, {losses: r.losses, evalLoss: r.evalLoss, modelId: r.modelId}]))"""
    )
    assert sorted(results) == ["gru", "lstm", "rnn_tanh"]
    for r in results.values():
        assert [step for step, _ in r["losses"]] == list(range(1, 21))  # every step, none thinned
    assert len({r["modelId"] for r in results.values()}) == 3
    loss_plot = page.evaluate(
        "() => document.getElementById('compare-loss').data.map((d) => [d.name, d.y.length])"
    )
    assert [n for _, n in loss_plot] == [20, 20, 20], loss_plot
    names = page.evaluate("() => document.getElementById('compare').data.map((d) => d.name)")
    assert {"tanh RNN, before training", "LSTM, before training", "GRU, before training"} <= set(
        names
    )
    # the three networks' hidden states side by side, on one colour scale fixed at [-1, 1],
    # each the trained network's (units x positions), negative values included
    states = page.evaluate(
        """() => { const d = document.getElementById('compare-states');
            const r = window.unroll.compare.results, cells = ['rnn_tanh', 'lstm', 'gru'];
            return {names: d.data.map((t) => t.name), axes: d.data.map((t) => t.coloraxis),
                    scale: [d.layout.coloraxis.cmin, d.layout.coloraxis.cmax],
                    title: d.layout.title.text,
                    same: d.data.map((t, i) => { const h = r[cells[i]].after.trace.hidden[0][0];
                        return t.z.every((row, u) => row.every((v, p) => v === h[p][u])); }),
                    negative: d.data.some((t) => t.z.flat().some((v) => v < 0))}; }"""
    )
    assert states["names"] == ["tanh RNN", "LSTM", "GRU"]
    assert states["axes"] == ["coloraxis"] * 3 and states["scale"] == [-1, 1]
    assert "after 20 training steps" in states["title"]
    assert states["same"] == [True, True, True] and states["negative"]  # none dropped

    # the three networks unrolled on the shared timeline: the forward pass fills their steps
    # in, BPTT colours each step it has reached by log10 ||dL/dh_t||, one scale for all three
    def chains(phase: str, t: int) -> dict:
        cursor = page.evaluate(f"() => window.unroll.model.stepOf('{phase}', 0, {t})")
        page.evaluate(f"() => window.unroll.player.seek({cursor})")
        page.wait_for_function(
            f"() => window.unroll.compareView._chainState && window.unroll.compareView._shown"
            f" === {cursor} / (window.unroll.model.length - 1)"
        )
        return page.evaluate(
            """() => { const d = document.getElementById('compare-networks');
                const r = window.unroll.compare.results, cells = ['rnn_tanh', 'lstm', 'gru'];
                const axis = d.layout.coloraxis;
                return {names: d.data[0].y, steps: d.data[0].z, grads: d.data[1].z,
                        width: d._fullLayout._size.w,
                        axis: d.data[1].coloraxis, range: [axis.cmin, axis.cmax],
                        dh: cells.map((c) => r[c].after.trace.grad_hidden[0][0]
                            .map((row) => Array.from(row)))}; }"""
        )

    early = chains("forward", 2)
    assert early["names"] == ["tanh RNN", "LSTM", "GRU"]
    assert early["steps"] == [[1, 1, 1, 0, 0, 0, 0, 0]] * 3  # positions 0..2 computed
    assert all(v is None for row in early["grads"] for v in row)  # no gradient yet
    late = chains("backward", 5)  # BPTT has come back from position 7 to 5
    logs = [[math.log10(float(np.linalg.norm(g))) for g in dh] for dh in late["dh"]]
    assert late["axis"] == "coloraxis"
    lo, hi = late["range"]
    assert lo <= min(map(min, logs)) and max(map(max, logs)) <= hi  # nothing clipped
    assert late["steps"] == [[1] * 8] * 3
    assert late["width"] == early["width"]  # the colour bar stays: the steps do not move
    for drawn, want in zip(late["grads"], logs, strict=True):
        assert drawn[:5] == [None] * 5
        assert drawn[5:] == pytest.approx(want[5:], rel=1e-9)

    # the fixed colour scale puts every gradient colour on one range: the chains, the
    # states view's gradient heatmap, the unrolled view (checked in the lesson's walk)
    page.locator("#states").scroll_into_view_if_needed()  # a view gets its model near the screen
    page.locator("#state-kind").select_option("grad")
    page.wait_for_function("() => document.getElementById('states').data?.[0]?.zmin != null")
    own = page.evaluate("() => document.getElementById('states').data[0].zmin")
    page.get_by_label("Fixed colour scale").check()
    page.wait_for_function(
        "() => document.getElementById('compare-networks').layout.coloraxis.cmin === -12"
    )
    scales = page.evaluate(
        """() => [document.getElementById('compare-networks').layout.coloraxis,
                  document.getElementById('states').data[0]].map((s) => [s.cmin ?? s.zmin,
                                                                        s.cmax ?? s.zmax])"""
    )
    assert scales == [[-12, 2], [-12, 2]] and own != -12
    page.get_by_label("Fixed colour scale").uncheck()
    page.wait_for_function(
        f"() => document.getElementById('compare-networks').layout.coloraxis.cmin === {lo}"
    )
    assert page.evaluate("() => document.getElementById('states').data[0].zmin") == own

    # the numbers drawn are the server's: the LSTM trained again through the API
    body = page.evaluate(
        """async () => (await import('/static/js/requests.js')).trainRequest(window.unroll.state)"""
    )
    body = {**body, "config": {**body["config"], "cell": "lstm"}, "probe_every": body["steps"]}
    answer = httpx.post(
        page.base_url + "/api/v1/train/stream",
        json=body,
        headers={"accept": "application/x-ndjson"},
        timeout=60,
    )
    frames = [json.loads(line) for line in answer.text.splitlines()]
    losses = [x for f in frames if f["type"] == "progress" for x in f["losses"]]
    done = frames[-1]
    assert [loss for _, loss in results["lstm"]["losses"]] == losses
    assert results["lstm"]["evalLoss"] == done["eval_loss"]
    assert results["lstm"]["modelId"] == done["model_id"]
    shot(page, "compare")
    assert_clean(page)


def test_edit_an_input_and_a_weight(page):
    open_page(page)
    page.get_by_role("button", name="Run to the end").click()
    before = page.evaluate("() => window.unroll.model.trace.hidden[0][0].map((h) => h[0])")
    page.get_by_label("Position t").fill("5")
    page.get_by_label("Position t").press("Tab")  # commits the position, shows x5's value
    page.get_by_label("Value", exact=True).first.fill("3.5")
    page.get_by_role("button", name="Apply input edit").click()
    page.wait_for_function("() => window.unroll.model.trace.inputs[5][0] === 3.5", timeout=20_000)
    after = page.evaluate("() => window.unroll.model.trace.hidden[0][0].map((h) => h[0])")
    assert after[:5] == before[:5]  # the past is untouched
    assert after[5] != before[5]  # the change spreads forward from the edit
    loss = page.evaluate("() => window.unroll.model.trace.loss")
    page.get_by_label("Parameter to edit").select_option("rnn.weight_hh_l0")
    page.locator("#weight-editor input[name=value]").fill("2.0")
    page.get_by_role("button", name="Apply weight edit").click()
    page.wait_for_function(f"() => window.unroll.model.trace.loss !== {loss}", timeout=20_000)
    # the hint follows the new trace a frame later: wait for it rather than race it
    expect(page.locator("#weight-editor .input-editor-hint")).to_contain_text("was", timeout=10_000)
    shot(page, "edited")
    assert_clean(page)


def test_export_json(page):
    open_page(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    import json
    from pathlib import Path

    data = json.loads(Path(download.value.path()).read_text())
    assert data["config"]["cell"] == "lstm" and len(data["inputs"]) == 12


def test_share_pins_the_uploaded_weights_it_links_to(page, tmp_path):
    import httpx

    from app.rnn import ModelConfig, init_params, save_weights

    config = ModelConfig(cell="gru", input_size=1, hidden_size=4, output_size=1)
    path = tmp_path / "shared.safetensors"
    save_weights(path, config, init_params(config, seed=12))
    open_page(page)
    page.locator("#upload").set_input_files(str(path))
    page.wait_for_function("() => new URL(location.href).searchParams.get('model')", timeout=20_000)
    model_id = page.evaluate("() => new URL(location.href).searchParams.get('model')")
    assert httpx.get(f"{page.base_url}/api/v1/models/{model_id}").json()["pinned"] is False
    page.get_by_role("button", name="Share").click()
    page.wait_for_function(
        f"() => fetch('/api/v1/models/{model_id}').then(r => r.json()).then(m => m.pinned)",
        timeout=20_000,
    )
    assert_clean(page)


def test_a_session_over_the_per_client_cap_says_why_it_closed(page):
    open_page(page)
    result = page.evaluate(
        """async () => {
          const { Session } = await import("/static/js/api.js");
          const url = `ws://${location.host}/api/v1/session`;
          const extra = [];
          let refused = null;
          while (!refused && extra.length < 20) {  // the page holds one already
            const ws = new WebSocket(url);
            extra.push(ws);
            refused = await new Promise((settle) => {
              ws.addEventListener("close", (e) => settle({ code: e.code, reason: e.reason }));
              // a socket the server kept answers a command (here with an error frame: nothing
              // is configured); one it refused is closed without an answer
              ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "reset" })));
              ws.addEventListener("message", () => settle(null));
            });
          }
          let message = "";
          try {
            await new Session().send({ type: "reset" });
          } catch (error) {
            message = error.message;
          }
          extra.forEach((ws) => ws.close());
          return { opened: extra.length, refused, message };
        }"""
    )
    assert result["refused"] is not None, result
    assert result["refused"]["code"] == 1013, result
    assert "this client has 8 open" in result["refused"]["reason"], result
    # 7 beside the page's own, then one too many (fewer if an earlier page's lingers)
    assert 1 <= result["opened"] <= 8, result
    assert result["message"].startswith("The session was closed: sessions: this client"), result

"""The page's traps (issue 12): loaded weights kept, exports and links that follow the edits,
Undo, trained and diverged links, classroom hiding, keys, reconnects, stale text, and the
trace's own gradient verdict."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SHOTS, as_stranger

pytestmark = pytest.mark.browser

SMALL = "/?task=sine&len=12&cell=rnn_tanh&h=6&seed=3"
LOADED = "() => window.unroll && window.unroll.model && window.unroll.request"
# the diagnostics frame has arrived: the verdict on the page is the final one
DIAGNOSED = "() => window.unroll.model && window.unroll.model.trace.jacobian_product_norm"


def open_page(page, query=SMALL):
    page.goto(page.base_url + query)
    page.wait_for_function(LOADED, timeout=20_000)
    page.wait_for_function(DIAGNOSED, timeout=20_000)
    return page


def cursor(page) -> int:
    return page.evaluate("() => window.unroll.player.cursor")


def loss(page) -> float:
    return page.evaluate("() => window.unroll.model.trace.loss")


def verdict_text(page) -> str:
    """The verdict line once its view is on screen (views off screen catch up when seen)."""
    page.locator("#gradient-verdict").scroll_into_view_if_needed()
    page.wait_for_function("() => document.getElementById('gradient-verdict').textContent")
    return page.locator("#gradient-verdict").inner_text()


def edit(page, command) -> None:
    """An edit as the editors send it, then wait for its diagnostics."""
    page.evaluate("(c) => window.unroll.edit(c)", command)
    page.wait_for_function(DIAGNOSED, timeout=20_000)


def stored_model(page, folder: Path) -> str:
    """A model SMALL's network can load, uploaded to the page's server."""
    from app.rnn import ModelConfig, init_params, save_weights

    config = ModelConfig(cell="rnn_tanh", input_size=1, hidden_size=6, output_size=1)
    path = folder / "small.safetensors"
    save_weights(path, config, init_params(config, seed=4))
    with path.open("rb") as f:
        answer = httpx.post(f"{page.base_url}/api/v1/models", files={"file": f}, timeout=20)
    return answer.raise_for_status().json()["model_id"]


def test_the_gradient_verdict_is_the_traces_final_one_and_keys_work(page):
    open_page(page, SMALL + "&trunc=4")
    check_keys(page)
    # after the run the states' title says nothing of "filling in"
    page.keyboard.press("End")
    page.locator("#states").scroll_into_view_if_needed()  # views off screen are drawn when seen
    page.wait_for_function("() => document.getElementById('states').layout", timeout=20_000)
    assert "filling in" not in page.evaluate(
        "() => document.getElementById('states').layout.title.text"
    )
    page.keyboard.press("End")
    verdict = page.evaluate("() => window.unroll.model.trace.verdict")
    assert verdict["source"] == "jacobian_product"  # measured with the Jacobian norms
    text = verdict_text(page)
    label = {"vanishing": "Vanishing", "stable": "Stable", "exploding": "Exploding"}[
        verdict["verdict"]
    ]
    assert text.startswith(label)
    rate = format(float(format(verdict["rate"], ".3g")), "g")
    assert f"×{rate} per step" in text  # the measured rate
    assert "reaches step 0 (truncated BPTT)" in text
    assert "(the dashed Jacobian product:" in text  # a loss at every position: which line
    assert "per step, and cut by truncated BPTT:" in text  # the label says both at once
    assert not re.search(r"\. [a-z]", text)  # every sentence of it starts with a capital
    assert "BPTT(4)" in text  # the reason, in words, from app/rnn/verdict.py
    assert page.locator("#gradient-verdict").get_attribute("class").split()[-1] == (
        "overflow" if verdict["verdict"] == "overflowed" else verdict["verdict"]
    )


def test_a_gradient_cut_by_truncation_is_drawn_as_none_not_as_little(page):
    # the adding problem's one loss at t=11, BPTT(4): positions 0..6 get exactly nothing
    open_page(page, "/?task=adding&len=12&cell=rnn_tanh&h=4&seed=1&trunc=4")
    page.keyboard.press("End")
    # the view gets the model with gradients in a task of its own, after the page's model
    page.wait_for_function(
        "() => document.querySelector('.unrolled-legend').textContent.includes('exactly 0')"
    )
    got = page.evaluate(
        """() => { const v = window.unroll.views.get('unrolled');
            return {states: Array.from(v.stats.bwd[1]),
                    norms: window.unroll.model.gradHiddenNorms()[0][0],
                    legend: document.querySelector('.unrolled-legend').textContent}; }"""
    )
    assert [n == 0 for n in got["norms"]] == [True] * 7 + [False] * 5
    assert got["states"][:7] == [-2] * 7  # the "exactly 0" colour, not the scale's darkest
    assert all(s >= 0 for s in got["states"][7:])
    assert "exactly 0 (cut by truncated BPTT)" in got["legend"]


def test_a_number_typed_just_before_a_click_is_the_one_used_and_a_refused_one_says_so(page):
    open_page(page, SMALL + "&steps=30&batch=8")
    page.locator("#steps").fill("7")  # no Tab, no pause: Train is clicked inside the debounce
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(
        "() => document.getElementById('train-status').textContent.startsWith('Done')",
        timeout=30_000,
    )
    assert page.evaluate("() => window.unroll.state.steps") == 7
    page.locator("#loss-curve").scroll_into_view_if_needed()
    page.wait_for_function("() => document.getElementById('loss-curve').data?.[0].x.length > 0")
    assert page.evaluate("() => Array.from(document.getElementById('loss-curve').data[0].x)") == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]
    # a value over the cap stays in the field, so the field says it is not the one used
    page.locator("#hiddenSize").fill("100000")
    page.locator("#hiddenSize").press("Enter")
    note = page.locator("#hiddenSize").locator("xpath=ancestor::label").locator(".field-error")
    expect(note).to_contain_text("from 1 to")
    expect(note).to_contain_text("still using 6")
    page.locator("#hiddenSize").fill("5")
    page.locator("#hiddenSize").press("Enter")
    expect(note).to_have_count(0)


def test_the_bidirectional_last_mode_note_is_shown(page):
    open_page(page, "/?task=adding&len=8&cell=gru&h=4&bi=1&layers=2&seed=1")
    # each direction's chain named with its own matrix, not one "shared" for both
    legend = " ".join(page.locator("#unrolled").inner_text().split())
    # W<sub>hh</sub> reads as one word: a bare <sub> in the legend's flex box stood apart
    assert "Whh forward (→ rows)" in legend and "Whh reverse (← rows)" in legend
    assert "shared" not in legend
    page.keyboard.press("End")
    notes = page.evaluate("() => window.unroll.model.trace.verdict.notes")
    assert notes and "last mode" in notes[0]
    assert "Note: last mode reads position T-1" in verdict_text(page)
    save_shots(page, "traps-1280x800")


def check_keys(page):
    """Keys after a playback button, and not in fields."""
    page.keyboard.press("Home")
    page.get_by_role("button", name="Step forward").click()
    assert cursor(page) == 1
    page.keyboard.press("ArrowRight")  # focus is still on the button
    page.keyboard.press("ArrowRight")
    assert cursor(page) == 3
    page.keyboard.press("Home")
    assert cursor(page) == 0
    page.keyboard.press("End")
    assert cursor(page) == page.evaluate("() => window.unroll.model.length") - 1
    page.keyboard.press("ArrowLeft")
    at = cursor(page)
    page.locator("#hiddenSize").focus()
    page.keyboard.press("ArrowLeft")  # the number field's own key
    assert cursor(page) == at
    page.locator("#task").focus()
    page.keyboard.press("Home")
    assert cursor(page) == at
    page.evaluate("() => document.activeElement.blur()")


def test_edits_travel_in_the_link_exports_and_undo(page, new_page):
    open_page(page)
    # no stale or raw text before any edit
    hint = page.locator("form.input-editor .input-editor-hint").first.inner_text()
    assert "is now" not in hint
    page.wait_for_function("() => document.getElementById('task-description').textContent")
    description = page.locator("#task-description").inner_text()
    assert "`" not in description
    assert "forecasts the next 1 values" in description  # the setting's value, not its name
    original = loss(page)
    edit(page, {"type": "edit_input", "position": 3, "feature": 0, "value": 2.5})
    after_input = loss(page)
    edit(page, {"type": "edit_weight", "name": "rnn.weight_hh_l0", "index": [1, 2], "value": 3.0})
    edited = loss(page)
    assert len({original, after_input, edited}) == 3
    assert page.locator("#undo").is_enabled() and "edits=" in page.url

    # the npz export's request reproduces the page: edited inputs, edited weights stored
    body = page.evaluate("() => window.unroll.session.currentRequest()")
    assert body["inputs"][3][0] == 2.5 and "init" not in body and body["model_id"]
    exported = page.evaluate(
        """async (b) => (await (await fetch('/api/v1/trace', {method: 'POST', headers:
            {'Content-Type': 'application/json'}, body: JSON.stringify(b)})).json()).loss""",
        body,
    )
    assert math.isclose(exported, edited, rel_tol=1e-5)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    exported_json = json.loads(Path(download.value.path()).read_text())
    assert exported_json["inputs"][3][0] == 2.5 and len(exported_json["edits"]) == 2
    with page.expect_download() as download:
        page.get_by_role("button", name="Download weights").click()
    assert download.value.suggested_filename.endswith(".safetensors")

    # the link opens the same edited network
    fresh = new_page(stranger=True)
    fresh.goto(as_stranger(page.url))
    fresh.wait_for_function(
        "() => window.unroll && window.unroll.session.edits.length === 2", timeout=20_000
    )
    fresh.wait_for_function(DIAGNOSED, timeout=20_000)
    assert math.isclose(loss(fresh), edited, rel_tol=1e-6)
    fresh.close()

    # another truncation keeps the edits (same network and input)
    page.locator("#truncate").fill("5")
    page.locator("#truncate").press("Enter")
    # configure answers first, then the edits are replayed one by one: wait for the last
    # (truncation leaves the forward pass, so the loss is the edited one again)
    page.wait_for_function(
        """(want) => { const t = window.unroll.model.trace;
            return t.truncate === 5 && Math.abs(t.loss - want) <= 1e-9 * Math.abs(want); }""",
        arg=edited,
        timeout=20_000,
    )
    page.wait_for_function(DIAGNOSED, timeout=20_000)
    page.wait_for_function("() => window.unroll.session.edits.length === 2", timeout=20_000)
    assert page.evaluate("() => window.unroll.model.trace.inputs[3][0]") == 2.5
    edited = loss(page)

    page.get_by_role("button", name="Undo edit").click()
    page.wait_for_function(f"() => window.unroll.model.trace.loss !== {edited}", timeout=20_000)
    assert math.isclose(loss(page), after_input, rel_tol=1e-6)
    page.get_by_role("button", name="Reset edits").click()
    page.wait_for_function("() => window.unroll.session.edits.length === 0", timeout=20_000)
    page.wait_for_function(f"() => window.unroll.model.trace.loss === {original}", timeout=20_000)
    assert "edits=" not in page.url and page.locator("#undo").is_disabled()
    assert page.errors.messages == []


def test_loaded_weights_stay_until_removed_and_trained_links_say_what_they_are(page, tmp_path):
    model_id = stored_model(page, tmp_path)
    open_page(page, SMALL + f"&model={model_id}")
    assert page.get_by_role("button", name="Remove the loaded weights").is_visible()

    # a network the weights do not fit: refused in words, weights and trace kept
    page.locator("#hiddenSize").fill("7")
    page.locator("#hiddenSize").press("Enter")
    page.locator("#error-text").wait_for(state="visible")
    assert "they are kept" in page.locator("#error-text").inner_text()
    assert page.evaluate("() => window.unroll.state.hiddenSize") == 6
    assert page.locator("#hiddenSize").input_value() == "6"

    # an input the weights do not fit (two values per step): the task goes back
    page.locator("#task").select_option("adding")
    page.wait_for_function(
        "() => document.getElementById('error-text').textContent.includes('input value')",
        timeout=20_000,
    )
    assert page.evaluate("() => [window.unroll.state.task, window.unroll.state.modelId]") == [
        "sine",
        model_id,
    ]
    assert page.locator("#task").input_value() == "sine"

    page.get_by_role("button", name="Remove the loaded weights").click()
    page.wait_for_function("() => !window.unroll.request.model_id", timeout=20_000)
    assert "model=" not in page.url

    # a trained link says so, and a diverged one says it diverged
    open_page(page, SMALL + f"&model={model_id}&trained=sine:30:0.0123:0:0,0.5~10,0.2~30,0.0123")
    status = page.locator("#model-status").inner_text()
    assert "Trained weights loaded (sine, 30 steps, final training loss 0.0123" in status
    assert "Trained weights loaded" in page.locator("#train-status").inner_text()
    # the loss curve's points the link keeps (drawn once the chart is near the screen)
    page.locator("#loss-curve").scroll_into_view_if_needed()
    page.wait_for_function(
        "() => document.getElementById('loss-curve').data?.[0].x.length === 3", timeout=20_000
    )
    assert page.evaluate("() => document.getElementById('loss-curve').data[0].y") == [
        0.5,
        0.2,
        0.0123,
    ]
    open_page(page, SMALL + f"&model={model_id}&trained=sine:30::1")
    status = page.locator("#model-status").inner_text()
    assert status.startswith("Training diverged") and "Share the link" not in status


def test_a_classroom_link_hides_each_group_and_its_own_box(page):
    open_page(page, SMALL + "&hide=playback,compare,editors,model")
    for selector in (
        "section.transport",
        "#compare-toggle",
        "#undo",
        "fieldset[data-control=model]",
    ):
        assert page.locator(selector).is_hidden(), selector
    assert page.locator("form.input-editor").first.is_hidden()
    assert page.locator("#weight-editor form").is_hidden()
    assert page.locator("fieldset[data-control=classroom]").is_hidden()
    assert page.locator("fieldset[data-control=data]").is_visible()
    page.keyboard.press("End")  # hidden playback has no keys either
    assert cursor(page) == 0

    # your own sequence with nothing typed yet: no red error
    page.goto(page.base_url + "/?task=custom&len=12")
    page.locator("#series-input-section").wait_for(state="visible")
    page.wait_for_timeout(500)  # the sample request would have failed by now
    assert page.locator("#error").is_hidden(), page.locator("#error-text").inner_text()
    # but it says what to do, and that the picture is not of this task yet
    expect(page.locator("#notice")).to_contain_text("give it numbers")


def test_a_reconnected_session_is_configured_again(page):
    open_page(page)
    page.evaluate("() => window.unroll.session.session.socket.close()")
    page.wait_for_function("() => !window.unroll.session.session.isOpen")
    before = loss(page)
    edit(page, {"type": "edit_input", "position": 2, "feature": 0, "value": -1.5})
    assert loss(page) != before
    assert page.locator("#error").is_hidden(), page.locator("#error-text").inner_text()
    # an edit superseded on screen by the next one is still in effect: both are kept
    page.evaluate(
        """() => Promise.all([
            window.unroll.edit({type: 'edit_input', position: 4, feature: 0, value: 0.5}),
            window.unroll.edit({type: 'edit_input', position: 5, feature: 0, value: 0.25})])"""
    )
    assert page.evaluate("() => window.unroll.session.edits.length") == 3
    assert "i%3A4%3A0%3A0.5" in page.url
    # two opens at once share one socket
    generations = page.evaluate(
        """async () => { const s = window.unroll.session.session; s.socket.close();
           await new Promise((r) => setTimeout(r, 50)); const g = s.generation;
           await Promise.all([s.open(), s.open()]); return [g, s.generation]; }"""
    )
    assert generations[1] == generations[0] + 1
    # the caps come from the server (its hidden-size cap is 64 here)
    page.wait_for_function("() => document.getElementById('hiddenSize').max === '64'")


def save_shots(page, name):
    """The whole page, and the controls and the gradient verdict up close, to look at (only
    when UNROLL_SHOTS names a folder: screenshots cost seconds)."""
    if SHOTS is None:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.locator("#settings").screenshot(path=str(SHOTS / f"{name}-settings.png"))
    page.locator("#gradient-verdict").screenshot(path=str(SHOTS / f"{name}-verdict.png"))
    page.locator("section.transport").screenshot(path=str(SHOTS / f"{name}-transport.png"))


def test_a_phone_sees_the_same_page(new_page):
    page = new_page(390, 844)
    page.goto(page.base_url + "/?task=sine&len=12&cell=lstm&h=6&seed=3&bi=1&layers=2")
    page.wait_for_function(LOADED, timeout=20_000)
    page.wait_for_function(DIAGNOSED, timeout=20_000)
    page.keyboard.press("End")
    assert verdict_text(page)
    assert overflow(page) <= 1, f"page is {overflow(page)}px wider than the screen"
    # the exports wait behind "Export…": the first screen is for the lesson and the network
    export = page.get_by_role("button", name="Export JSON")
    expect(export).to_be_hidden()
    more = page.get_by_role("button", name="Export…")
    more.click()
    expect(export).to_be_visible()
    assert more.get_attribute("aria-expanded") == "true"
    height = "(b) => b.getBoundingClientRect().height"
    assert min(more.evaluate(height), export.evaluate(height)) >= 40
    # training's own section leads to the Train button, in the settings folded below
    page.get_by_role("link", name="Settings and the Train button").click()
    expect(page.locator("#train")).to_be_in_viewport()
    assert page.evaluate("() => document.getElementById('settings-drawer').open") is True
    page.locator("#settings-drawer").evaluate("(d) => (d.open = false)")
    # a finger's targets: each node's cell, and the overview strip, at least 40 px a side
    geo = page.evaluate(
        "() => { const v = window.unroll.views.get('unrolled');"
        " return {column: v.geo.column, row: v.geo.m.row, size: v.geo.size, start: v.start,"
        " x: v._x(v.start + 1), y: v._y(2), overview: v.overview.getBoundingClientRect().height}; }"
    )
    assert geo["column"] >= 40 and geo["row"] >= 40 and geo["overview"] >= 40, geo
    assert 3 <= geo["size"] < 12  # fewer positions at a time, the overview shows all 12
    # a tap off the node's centre, still in its cell, opens that step (layer 1 reverse here)
    at = {"x": geo["x"] + 0.4 * geo["column"], "y": geo["y"] - 0.4 * geo["row"]}
    page.locator("#unrolled canvas.unrolled-main").click(position=at)
    expect(page.locator("#cell-inspector")).to_contain_text(
        f"position t = {geo['start'] + 1}", timeout=10_000
    )
    # its tables fit the screen (a column per gate), with BPTT's one too, and the diagram
    # keeps a legible size (its 11-unit labels at >= 9 px), scrolling sideways. Waited for:
    # the inspector may draw once more as the cursor settles, replacing its elements
    page.wait_for_function(
        """() => { const box = document.getElementById('cell-inspector');
            const tables = [...box.querySelectorAll('.table-scroll:not(.diagram-scroll)')];
            const svg = box.querySelector('svg.cell-diagram');
            return tables.length === 3 && box.querySelector('table.backward')
              && tables.every((t) => t.scrollWidth - t.clientWidth <= 1 && t.clientWidth > 0)
              && svg && 11 * svg.getBoundingClientRect().width / 600 >= 9; }""",
        timeout=10_000,
    )
    # legends under their plots, not beside them (which left a third of the width)
    page.locator("#gradients").scroll_into_view_if_needed()
    page.wait_for_function("() => document.getElementById('gradients').layout?.legend")
    legend = page.evaluate(
        "() => { const el = document.getElementById('gradients');"
        " return [el.layout.legend.orientation, el.classList.contains('legend-below')]; }"
    )
    assert legend == ["h", True], legend
    page.locator("#settings-drawer").evaluate("(d) => (d.open = true)")
    assert overflow(page) <= 1, f"with settings open, {overflow(page)}px wider than the screen"
    save_shots(page, "traps-390x844")


def overflow(page) -> int:
    """How far the page reaches past the right edge of the screen, in CSS pixels."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")

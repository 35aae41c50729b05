"""The lesson through the page: each chapter by its link and its experiment, inside one step."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT
from tests.test_lesson import THROUGH_THE_API, failures

pytestmark = pytest.mark.browser

LESSON = json.loads((ROOT / "static/lesson/chapters.json").read_text())
CHAPTERS = {c["id"]: c for c in LESSON["chapters"]}
# Experiments that train take 1.5-4 s each through the page (server and drawing), those
# that only trace about a second. The training ones are checked here only: judged by the
# page (lesson.js) and by tests/test_lesson.py's `failures` on the page's numbers, which
# come from the API's answers to the page; test_lesson.py runs the trace-only ones
# through the API itself as well.
TRAINS = {
    c["id"]
    for c in LESSON["chapters"]
    if any(run["action"] != "trace" for run in c["experiment"]["runs"])
}


def open_chapter(page, query):
    page.goto(page.base_url + query)
    page.wait_for_function(
        "() => window.unroll?.model && document.querySelector('[data-view].highlighted')",
        timeout=20_000,
    )


def assert_clean(page):
    assert page.errors.messages == [], page.errors.messages
    assert page.outside == [], f"requests left this machine: {page.outside}"
    assert page.locator("#error").is_hidden(), page.locator("#error-text").inner_text()


def check_chapter(page, chapter):
    """The chapter's text, its highlighted view and its network on the page."""
    expect(page.locator("#lesson-panel h2")).to_have_text(chapter["title"])
    highlighted = page.locator("[data-view].highlighted")
    expect(highlighted).to_have_count(1)
    assert highlighted.get_attribute("data-view") == chapter["highlight"], chapter["id"]
    s = chapter["settings"]
    got = page.evaluate(
        """() => { const u = window.unroll, c = u.request.config;
            return {task: u.state.task, cell: c.cell, h: c.hidden_size, bi: c.bidirectional,
                    T: u.model.T, scale: u.request.init.scale}; }"""
    )
    want = {"task": s["task"], "cell": s["cell"], "h": s["hiddenSize"], "bi": s["bidirectional"]}
    want["scale"] = s["initScale"]
    if "length" in s:
        want["T"] = s["length"]
    assert {k: got[k] for k in want} == want, chapter["id"]


def try_this(page, chapter):
    """Run the chapter's experiment from its button: the outcome is reported as met."""
    # every change of training's status line, timed: progress shows 4 to ~10 times a second
    # and so does the experiment's own progress line in the lesson panel
    page.evaluate(
        """() => { const watched = [['__status', document.getElementById('train-status')],
                                    ['__said', document.querySelector('.lesson-progress')]];
            for (const [key, el] of watched) {
              window[key] = [];
              new MutationObserver(() => window[key].push([performance.now(), el.textContent]))
                .observe(el, {childList: true, characterData: true, subtree: true}); } }"""
    )
    page.locator("#lesson-panel").get_by_role("button", name="Try this").click()
    verdict = page.locator(".lesson-verdict")
    # training on a busy 2-core machine: ~4 s alone for the slowest, more beside the suite
    timeout = 90_000 if chapter["id"] in TRAINS else 20_000
    # waited for by a cheap poll: expect's own retries cost the page ~7% of a core meanwhile
    page.wait_for_function(
        "() => document.querySelector('.lesson-verdict')?.hasAttribute('data-ok')",
        timeout=timeout,
    )
    expect(verdict).to_have_attribute("data-ok", re.compile("."))  # a verdict
    assert verdict.get_attribute("data-ok") == "true", verdict.inner_text()
    expect(verdict).to_have_text("As the chapter says.")
    expect(page.locator(".lesson-results li")).to_have_count(len(chapter["experiment"]["runs"]))
    # the same numbers, judged by the Python test's reading of the chapter's outcome
    outcome = page.evaluate("() => window.unroll.lesson.lastOutcome")
    assert outcome["chapter"] == chapter["id"] and outcome["ok"] is True
    wrong = [
        f for check in chapter["experiment"]["expect"] for f in failures(outcome["results"], check)
    ]
    assert not wrong, f"{chapter['id']}: {wrong}"
    trained = [r for r in chapter["experiment"]["runs"] if r["action"] == "train"]
    if not trained:  # the page then shows the last run: its settings, its edit, BPTT done
        last = chapter["experiment"]["runs"][-1]
        settings = {**chapter["settings"], **last["settings"]}
        edit = last.get("edit_input") or {}
        page.wait_for_function(
            """([cell, truncate, edit]) => { const m = window.unroll.model;
                return m && m.config.cell === cell && (m.trace.truncate ?? 0) === truncate
                  && (!edit.position || m.trace.inputs[edit.position][edit.feature] === edit.value)
                  && document.getElementById('phase').textContent
                       .startsWith(edit.position ? 'Forward pass' : 'Done'); }""",
            arg=[settings["cell"], settings["truncate"], edit],
            timeout=20_000,
        )
        if edit:  # the nodes the edit changed are ringed, from its position on
            page.wait_for_function(
                """(at) => { const changed = window.unroll.views.get('unrolled').changed;
                    return changed.has(`0:${at}`) && changed.size > 1; }""",
                arg=edit["position"],
            )
    steps = [t for t, text in page.evaluate("() => window.__status") if text.startswith("Step ")]
    if trained and len(steps) > 1 and steps[-1] - steps[0] > 1000:  # runs long enough to tell
        rate = (len(steps) - 1) / (steps[-1] - steps[0]) * 1000
        # 8 a second, the charts' 2 and each run's start and end: 8.5-10.4 seen; 35 unthrottled
        assert 4 <= rate <= 15, f"{rate:.1f} status changes a second"
    said = [t for t, text in page.evaluate("() => window.__said") if ", step " in text]
    if trained and len(said) > 1 and said[-1] - said[0] > 1000:
        rate = (len(said) - 1) / (said[-1] - said[0]) * 1000
        assert 2 <= rate <= 9, f"{rate:.1f} lesson progress changes a second"  # 34 unthrottled
    if len(trained) > 1:  # the runs' loss curves side by side on the training chart
        page.locator("#loss-curve").scroll_into_view_if_needed()
        names = [f"{r['label']}: training loss" for r in trained]
        page.wait_for_function(
            "(names) => names.every((n) => document.getElementById('loss-curve').data"
            "?.some((t) => t.name === n && t.x.length > 0))",
            arg=names,
        )


def click_node(page):
    """Click the hidden-state node at T3: the step's equations with numbers, and its horizon."""
    x, y = page.evaluate(
        "() => { const v = window.unroll.views.get('unrolled'); return [v._x(2), v._y(1)]; }"
    )
    page.locator("#unrolled canvas.unrolled-main").click(position={"x": x, "y": y})
    inspector = page.locator("#cell-inspector")
    expect(inspector).to_contain_text("position t = 2", timeout=10_000)
    expect(inspector.locator("table.terms").first).to_contain_text("W_ih x_t")
    cells = inspector.locator("table.terms td.num").all_inner_texts()
    assert any(c.strip().lstrip("-").replace(".", "", 1).isdigit() for c in cells), cells
    expect(page.locator("#horizon-summary")).to_contain_text("At t = 2", timeout=10_000)
    page.wait_for_function("() => document.getElementById('horizon-plot').data?.length > 0")


WALKED = sorted(CHAPTERS)


@pytest.mark.parametrize("chapter_id", WALKED)
def test_the_chapter_by_its_link_and_its_experiment(page, chapter_id):
    chapter = CHAPTERS[chapter_id]
    open_chapter(page, f"/?ch={chapter_id}")  # a lesson link is a shared link
    check_chapter(page, chapter)
    if chapter_id == "unrolled":
        click_node(page)
    if chapter_id == "vanishing":  # one colour scale for every run, in the link
        legend = page.locator(".unrolled-legend .colorbar")
        page.get_by_label("Fixed colour scale").check()
        expect(legend).to_contain_text("-12")
        assert "fixed=1" in page.url
    try_this(page, chapter)
    assert_clean(page)


def test_a_first_visit_opens_chapter_one_and_the_way_out(page):
    # a first visit (no settings in the link) opens chapter 1
    open_chapter(page, "/")
    first = LESSON["chapters"][0]
    check_chapter(page, first)
    assert f"ch={first['id']}" in page.url
    assert 0 < len(TRAINS) < len(CHAPTERS)
    # the dashboard is one click away, and stays when reloaded
    page.get_by_role("button", name="Free exploration").click()
    expect(page.locator("#lesson")).to_be_hidden()
    assert "ch=" not in page.url
    expect(page.locator("#settings-drawer")).to_have_attribute("open", "")
    page.reload()
    page.wait_for_function("() => window.unroll && window.unroll.model", timeout=20_000)
    expect(page.locator("#lesson")).to_be_hidden()
    # and this browser, having left the lesson, gets the dashboard at / too
    page.goto(page.base_url + "/")
    page.wait_for_function("() => window.unroll && window.unroll.model", timeout=20_000)
    expect(page.locator("#lesson")).to_be_hidden()
    # a visit again takes every module and style sheet from the cache, asking the server nothing
    fetched = page.evaluate(
        """() => performance.getEntriesByType('resource')
            .filter((e) => /\\/static\\/(js|css)\\//.test(e.name))
            .map((e) => [e.name, e.transferSize])"""
    )
    assert len(fetched) > 40 and [f for f in fetched if f[1] != 0] == [], fetched
    assert_clean(page)


def test_own_series_values_are_checked_not_dropped(page):
    series = ",".join(["1", "abc"] + [str(i) for i in range(3, 31)])
    page.goto(page.base_url + f"/?task=custom&len=5&series={series}")
    expect(page.locator("#error-text")).to_contain_text("position 2", timeout=20_000)
    expect(page.locator("#error-text")).to_contain_text("'abc'")
    expect(page.locator("#series-input-section")).to_be_visible()


def test_every_chapter_is_walked_here_and_the_api_test_leaves_out_only_training_ones():
    (mark,) = [
        m
        for m in test_the_chapter_by_its_link_and_its_experiment.pytestmark
        if m.name == "parametrize"
    ]
    walked = set(mark.args[1])
    assert walked == {c["id"] for c in LESSON["chapters"]}
    assert walked - {c["id"] for c in THROUGH_THE_API} == TRAINS

"""The series views (static/js/series/) in headless Chromium, each mounted alone over the
page: CSV upload, drawing, pasted numbers, the forecast baselines, the gap comparison and
the text view, against the real server."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

# a bare page of this server (the app's own page would run its session and every view
# first): the stylesheets, Plotly.js, and one container the view fills
MOUNT = """async ([module, name, plotly]) => {
  const css = (name) => `<link rel="stylesheet" href="/static/css/${name}.css">`;
  document.documentElement.innerHTML = `<head>${css('app')}${css('series')}</head>`
    + '<body><section id="sv-host" class="view"></section></body>';
  if (plotly) await new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/vendor/plotly.min.js';
    script.onload = resolve;
    script.onerror = reject;
    document.head.append(script);
  });
  const m = await import(module);
  const client = (await import('/static/js/series/client.js')).apiClient;
  window.sv = { m, client, got: [] };
  return Object.keys(m).includes(name);
}"""


def mount(page, module: str, name: str, plotly: bool = True) -> None:
    """`module`'s export `name`, loaded into a bare page; Plotly.js only when the view plots
    (parsing it is most of a second)."""
    page.goto(page.base_url + "/healthz")
    assert page.evaluate(MOUNT, [f"/static/js/series/{module}", name, plotly])


def assert_clean(page):
    # a refused request is logged by Chromium itself; the views show it, nothing else may fail
    unexpected = [m for m in page.errors.messages if "status of 422" not in m]
    assert unexpected == [], unexpected
    assert page.outside == [], f"requests left this machine: {page.outside}"


def train(base_url: str, body: dict) -> dict:
    """Train through the API; the done frame (with model_id) and the train_config frame."""
    r = httpx.post(
        f"{base_url}/api/v1/train/stream",
        json=body,
        headers={"accept": "application/x-ndjson"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    frames = [json.loads(line) for line in r.text.splitlines()]
    done = frames[-1]
    assert done["type"] == "done" and done["model_id"], done
    return {"model_id": done["model_id"], "config": frames[0]["config"]}


def series_input(page, length=20):
    mount(page, "series_input.js", "SeriesInput", plotly=False)
    page.evaluate(
        """(length) => {
          window.sv.input = new window.sv.m.SeriesInput(document.getElementById('sv-host'), {
            client: window.sv.client, length, onSeries: (r) => window.sv.got.push(r) });
        }""",
        length,
    )


def test_csv_upload_names_each_bad_line_and_reads_a_good_file(page):
    series_input(page)
    bad = "date,close,volume\n2020-01-01,1,5\n2020-01-02,abc,6\n2020-01-03,3,7\n"
    page.locator("#sv-host input[type=file]").set_input_files(
        {"name": "prices.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    problem = page.locator("#sv-host .sv-error li")
    problem.first.wait_for()
    assert problem.all_inner_texts() == ["line 3: close: 'abc' is not a number"]
    assert page.evaluate("() => window.sv.got.length") == 0  # nothing used, nothing dropped

    rows = [
        f"2020-{1 + i // 28:02d}-{1 + i % 28:02d},{100 + math.sin(i / 5):.4f},{i}"
        for i in range(150)
    ]
    good = "\n".join(["date,close,volume", *rows]).encode()
    page.locator("#sv-host input[type=file]").set_input_files(
        {"name": "good.csv", "mimeType": "text/csv", "buffer": good}
    )
    page.wait_for_function("() => window.sv.got.length === 1")
    got = page.evaluate("() => window.sv.got[0]")
    assert got["fits"] and got["source"] == "csv" and len(got["series"]) == 150
    assert got["dates"][0] == "2020-01-01"
    assert got["series"][1] == pytest.approx(100 + math.sin(0.2), abs=1e-4)
    assert page.locator("#sv-host .sv-error").is_hidden()
    assert page.locator("#sv-host select").evaluate("s => [...s.options].map(o => o.value)") == [
        "close",
        "volume",
    ]
    assert_clean(page)


def test_a_drawn_stroke_becomes_a_series_of_the_requested_length(page):
    series_input(page)
    page.locator("#sv-host").get_by_role("tab", name="Draw").click()
    points = page.locator("#sv-host .sv-pane:not([hidden]) input[type=number]")
    points.fill("120")
    points.dispatch_event("change")
    box = page.locator("#sv-host canvas").bounding_box()
    assert box["height"] >= 40  # a finger can hit it
    page.mouse.move(box["x"] + 4, box["y"] + box["height"] * 0.9)
    page.mouse.down()
    for i in range(1, 41):
        x = box["x"] + 4 + (box["width"] - 8) * i / 40
        page.mouse.move(x, box["y"] + box["height"] * (0.5 - 0.4 * math.sin(i / 4)))
    page.mouse.up()
    page.wait_for_function("() => window.sv.got.length === 1")
    got = page.evaluate("() => window.sv.got[0]")
    assert got["source"] == "drawn" and len(got["series"]) == 120 and got["fits"]
    assert max(got["series"]) - min(got["series"]) > 30  # the wave, not a flat line
    assert "Sequence length 20" in page.locator("#sv-host .sv-status").inner_text()
    shot(page, "series-drawn")

    # a window that cannot fit: the length is not quietly shortened, the reason is shown
    page.evaluate("() => window.sv.input.setWindow({ length: 200 })")
    page.wait_for_function("() => window.sv.got.length === 2")
    got = page.evaluate("() => window.sv.got[1]")
    assert got["fits"] is False and "longest length that fits" in got["reason"]
    status = page.locator("#sv-host .sv-status").inner_text()
    assert "Sequence length 200 does not fit" in status
    assert_clean(page)


def test_pasted_numbers_are_checked_by_position(page):
    series_input(page)
    page.locator("#sv-host").get_by_role("tab", name="Paste numbers").click()
    page.locator("#sv-host").get_by_label("Your numbers").fill("1, abc, 3; 4 x")
    page.locator("#sv-host").get_by_role("button", name="Check and use").click()
    items = page.locator("#sv-host .sv-error li")
    items.first.wait_for()
    assert items.all_inner_texts() == [
        "position 2: 'abc' is not a finite number",
        "position 5: 'x' is not a finite number",
    ]
    assert page.evaluate("() => window.sv.got.length") == 0
    assert_clean(page)


def test_forecast_view_shows_the_apis_losses_and_verdict(page):
    task = {"name": "stocks", "ticker": "IBM", "length": 12}
    body = {
        "config": {"cell": "gru", "hidden_size": 4},
        "task": task,
        "batch_size": 8,
        "steps": 4,
        "seed": 3,
        "probe_every": 100,
    }
    model = train(page.base_url, body)
    api = httpx.post(
        f"{page.base_url}/api/v1/forecast/score",
        json={"task": task, "seed": 3, "model_id": model["model_id"]},
        timeout=30,
    ).json()
    mount(page, "forecast_view.js", "ForecastView")
    page.evaluate(
        """async ([task, body, modelId]) => {
          const host = document.getElementById('sv-host');
          const onModel = (kind, id) => window.sv.got.push([kind, id]);
          const view = new window.sv.m.ForecastView(host, { client: window.sv.client, onModel });
          window.sv.view = view;
          await view.setTask(task, { seed: 3, trainBody: body });
          await view.setModel(modelId);
        }""",
        [task, body, model["model_id"]],
    )
    shown = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#sv-host td.sv-loss')]
             .map((td) => [td.dataset.key, [Number(td.dataset.value), td.textContent]]))"""
    )
    assert shown["network"][0] == api["loss"]
    assert shown["naive"][0] == api["baselines"]["naive"]
    assert shown["window_mean"][0] == api["baselines"]["window_mean"]
    assert shown["naive"][1] == f"{api['baselines']['naive']:.3g}"
    verdict = page.locator("#sv-host .sv-verdict").inner_text()
    beats = api["loss"] < 0.98 * api["baselines"]["naive"]
    assert ("does not beat 'tomorrow = today'" in verdict) != beats
    # dates on the time axis, and the error by step for the recursive forecast and baselines
    x0 = page.evaluate("() => document.querySelector('#sv-host .sv-plot').data[0].x[0]")
    assert len(x0) == 10 and x0[4] == "-" and x0 >= "2011-01-01"
    names = page.evaluate(
        "() => document.querySelectorAll('#sv-host .sv-plot')[1].data.map((t) => t.name)"
    )
    assert names == ["network, recursive", "tomorrow = today", "window mean"]
    titles = page.locator("#sv-host .sv-chart-title").all_inner_texts()
    assert any("on 200 held-out windows" in t for t in titles), titles  # the API's default

    # one click away: the regular model that sees only today's value, trained and scored
    page.locator("#sv-host").get_by_role("button", name="sees only today's value").click()
    page.locator("#sv-host td.sv-loss[data-key=memoryless]").wait_for(timeout=30_000)
    [[kind, memoryless]] = page.evaluate("() => window.sv.got")
    assert kind == "memoryless"
    expected = httpx.post(
        f"{page.base_url}/api/v1/forecast/score",
        json={"task": task, "seed": 3, "model_id": memoryless},
        timeout=30,
    ).json()["loss"]
    cell = page.locator("#sv-host td.sv-loss[data-key=memoryless]")
    assert float(cell.get_attribute("data-value")) == expected
    shot(page, "series-forecast")
    assert_clean(page)


def test_gap_view_trains_both_directions_and_warns_on_forecasts(page):
    mount(page, "gap_view.js", "GapView")
    body = {"config": {"cell": "gru", "hidden_size": 4}, "steps": 3, "batch_size": 8, "seed": 1}
    result = page.evaluate(
        """async (body) => {
          const host = document.getElementById('sv-host');
          const view = new window.sv.m.GapView(host, { client: window.sv.client });
          view.setRun({ task: { length: 12, gap: 4 }, trainBody: body });
          await view.start();
          const w = await import('/static/js/series/bidirectional_warning.js');
          return {
            rows: [...host.querySelectorAll('td.sv-loss')].map((td) => td.dataset.key),
            curves: host.querySelector('.sv-plot').data.map((t) => t.x[t.x.length - 1]),
            error: view.errorEl.textContent,
            forecast: w.bidirectionalWarning({ bidirectional: true, forecast: 'level' }),
            gap: w.bidirectionalWarning({ bidirectional: true, forecast: null }),
            oneWay: w.bidirectionalWarning({ bidirectional: false, forecast: 'change' }),
          };
        }""",
        body,
    )
    assert result["error"] == ""
    assert result["rows"] == ["one", "both", "carry_forward", "interpolate"]
    assert result["curves"] == [3, 3]  # both runs drawn to their last step
    assert "already seen the very values it is asked to predict" in result["forecast"]
    assert result["gap"] is None and result["oneWay"] is None
    assert_clean(page)


def test_text_view_colours_characters_and_shows_guesses(page):
    model = train(
        page.base_url,
        {
            "config": {"cell": "lstm", "hidden_size": 6},
            "task": {"name": "text", "length": 10},
            "batch_size": 4,
            "steps": 2,
            "probe_every": 100,
        },
    )
    text = "Shall I compare thee"
    api = httpx.post(
        f"{page.base_url}/api/v1/text/guesses",
        json={"model_id": model["model_id"], "text": text, "top": 5},
        timeout=30,
    ).json()
    mount(page, "text_view.js", "TextView", plotly=False)
    page.evaluate(
        """async ([model, text]) => {
          const host = document.getElementById('sv-host');
          const view = new window.sv.m.TextView(host, { client: window.sv.client, text });
          window.sv.view = view;
          await view.setModel({ modelId: model.model_id, config: model.config, context: 10 });
        }""",
        [model, text],
    )
    chars = page.locator("#sv-host .sv-char")
    assert chars.count() == len(text)
    assert page.locator("#sv-host .sv-text").evaluate("s => s.textContent") == text
    backgrounds = {chars.nth(i).evaluate("s => s.style.background") for i in range(len(text))}
    assert len(backgrounds) > 3  # coloured by activation, not one flat colour
    guesses = page.locator("#sv-host .sv-guesses li")
    assert guesses.count() == 5
    first = guesses.first.locator(".sv-guess-char").inner_text()
    top = api["chars"][-1][0]
    assert first == {" ": "␣", "\n": "↵"}.get(top, top)
    assert f"{api['probs'][-1][0] * 100:.1f}%" in guesses.first.inner_text()
    chars.nth(2).click()  # the guesses follow the cursor
    assert "“…Sha”" in page.locator("#sv-host .sv-guess-head").inner_text()
    sampled = page.evaluate("() => window.sv.view.sample({ temperature: 0, length: 12 })")
    assert len(sampled) == 12
    assert sampled in page.locator("#sv-host .sv-sample").inner_text()
    shot(page, "series-text")
    assert_clean(page)


def test_forecasts_turn_back_into_prices_exactly(page):
    """rawExample undoes each normalisation: the true future values, read back through it,
    are the raw values the API gives beside them."""
    mount(page, "forecast_units.js", "rawExample", plotly=False)
    errors = page.evaluate(
        """async () => {
          const series = Array.from({ length: 300 }, (_, i) => 50 + 10 * Math.sin(i / 7) + i / 10);
          const tasks = [
            { name: 'stocks', ticker: 'MSFT', length: 15 },
            { name: 'stocks', ticker: 'GOOG', length: 15, normalisation: 'window' },
            { name: 'custom', series, length: 15 },
          ];
          const out = [];
          for (const task of tasks) {
            const body = { task, steps: 4, size: 3 };
            const a = await window.sv.client.postJSON('/forecast/horizon', body);
            a.example.forecasts = { truth: a.example.truth };
            const ex = window.sv.m.rawExample(a);
            const rel = ex.forecasts.truth.map((v, i) => Math.abs(v / ex.truth[i] - 1));
            out.push([Math.max(...rel), ex.dated, ex.truth.length]);
          }
          return out;
        }"""
    )
    assert [e[1:] for e in errors] == [[True, 4], [True, 4], [False, 4]]
    assert max(e[0] for e in errors) < 1e-12
    assert_clean(page)

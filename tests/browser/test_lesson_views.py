"""The lesson's views on their own (issue 14): each module imported into the served page,
given an API answer, and held to the numbers that answer carries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.browser.conftest import ROOT, shot
from tests.test_lesson import failures as python_failures

pytestmark = pytest.mark.browser

BODIES = {
    cell: {
        "config": {"cell": cell, "input_size": 1, "hidden_size": 3},
        "init": {"scheme": "pytorch", "scale": 1.0, "seed": 2},
        "inputs": [[0.0], [0.5], [1.0], [-0.5], [0.25], [0.8]],
        "targets": [[0.5], [1.0], [0.5], [0.0], [0.3], [0.1]],
    }
    for cell in ("rnn_tanh", "lstm", "gru")
}


def open_blank(page, plotly=False):
    """A light page of the server's origin (its modules import from there), with the
    page's and the lesson's CSS, Plotly when asked, and a container of our own."""
    page.goto(page.base_url + "/healthz")
    page.evaluate(
        """async (plotly) => {
            for (const href of ['/static/css/app.css', '/static/css/lesson.css']) {
                const css = document.createElement('link');
                css.rel = 'stylesheet';
                css.href = href;
                document.head.append(css);
            }
            const box = document.createElement('div');
            box.id = 'under-test';
            box.style.cssText = 'width:900px;background:#fff';
            document.body.replaceChildren(box);
            if (!plotly) return;
            const script = document.createElement('script');
            script.src = '/vendor/plotly.min.js';
            await new Promise((ok, fail) => {
                script.onload = ok;
                script.onerror = fail;
                document.head.append(script);
            });
        }""",
        plotly,
    )


def test_cell_inspector_shows_the_apis_numbers(page):
    open_blank(page)
    answers = page.evaluate(
        """async (bodies) => {
            const m = await import('/static/js/views/cell_inspector.js');
            const out = {};
            for (const [cell, body] of Object.entries(bodies)) {
                const box = document.createElement('div');
                document.getElementById('under-test').append(box);
                const post = (where) => fetch('/api/v1/inspect', {method: 'POST',
                    headers: {'Content-Type': 'application/json'},
                    body: JSON.stringify(m.inspectBody({...body, truncate: null}, where.layer,
                                                       where.direction, where.position))}
                ).then((r) => r.json());
                let reached = false;
                const view = new m.CellInspector(box, {load: post});
                view.setModel({L: 1, D: 1, T: 6, backwardDone: () => reached});
                await view.inspect(0, 0, 2);
                const forwardOnly = box.querySelectorAll('[data-term="dh"]').length;
                reached = true;
                view.update(99);
                view.setUnit(1);
                const terms = {};
                for (const node of box.querySelectorAll('td[data-term]')) {
                    terms[node.dataset.term] = [node.dataset.value, node.textContent];
                }
                out[cell] = {pieces: view.pieces, terms, forwardOnly,
                             diagram: box.querySelectorAll('svg.cell-diagram text').length};
            }
            return out;
        }""",
        BODIES,
    )
    for cell, got in answers.items():
        pieces, terms = got["pieces"], got["terms"]
        assert got["forwardOnly"] == 0, cell  # no gradient before BPTT reaches the step
        assert got["diagram"] > 4, cell
        u = 1

        def shown(term, cell=cell, terms=terms):
            assert term in terms, (cell, term, sorted(terms))
            return float(terms[term][0])

        assert shown("h") == pieces["h"][u]
        assert shown("jacobian_norm") == pieces["jacobian_norm"]
        assert shown("dh") == pieces["backward"]["dh"][u]
        assert shown("dh_from_next") == pieces["backward"]["dh_from_next"][u]
        assert shown("dWhh_step_norm") == pieces["backward"]["dWhh_step_norm"]
        assert np.isclose(shown("norm:dh"), np.linalg.norm(pieces["backward"]["dh"]))
        H = len(pieces["h"])
        for k, name in enumerate(pieces["gate_names"] or ["h"]):
            assert shown(f"w_input:{name}") == pieces["w_input"][k * H + u]
            assert shown(f"pre:{name}") == pieces["pre"][name][u]
            if pieces["gate_names"]:
                assert shown(f"gate:{name}") == pieces["gates"][name][u]
        if cell == "lstm":
            assert shown("c") == pieces["c"][u] and shown("dc") == pieces["backward"]["dc"][u]
        # the text is the number, rounded
        value, text = terms["h"]
        assert abs(float(text) - float(value)) <= 1e-3 * max(1.0, abs(float(value)))
    shot(page, "cell-inspector")


def test_horizon_view_draws_the_split(page):
    open_blank(page, plotly=True)
    body = {**BODIES["gru"], "config": {**BODIES["gru"]["config"], "num_layers": 2}}
    got = page.evaluate(
        """async (body) => {
            const m = await import('/static/js/views/horizon.js');
            const plot = document.createElement('div');
            const summary = document.createElement('p');
            document.getElementById('under-test').append(plot, summary);
            const load = (where) => fetch('/api/v1/horizon', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify(
                    m.horizonBody(body, where.layer, where.direction, where.position))}
            ).then((r) => r.json());
            const view = new m.HorizonView(plot, {load, summaryEl: summary});
            await view.select(0, 0, 1);
            view.setSource(4);
            return {answer: view.answer, line: plot.data[1].y, heat: plot.data[0].z,
                    series: view.series, shares: JSON.parse(summary.dataset.shares),
                    summary: summary.textContent};
        }""",
        body,
    )
    answer = got["answer"]
    norms = np.array(answer["norms"])
    assert got["series"]["source"] == 4
    assert got["line"] == [v if v > 0 else None for v in norms[:, 4]]
    expected_heat = [[np.log10(v) if v > 0 else None for v in row] for row in norms]
    assert np.allclose(
        [np.nan if v is None else v for row in got["heat"] for v in row],
        [np.nan if v is None else v for row in expected_heat for v in row],
        equal_nan=True,
    )
    assert np.isclose(sum(got["shares"]), 1.0)
    assert got["summary"].startswith("At t = 1 the gradient is the sum of 6 part(s)")
    shot(page, "horizon")


def numpy_pca(rows):
    x = np.array(rows)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T, s**2 / np.sum(s**2)


def test_the_spectrum_title_says_where_the_radius_lies(page):
    open_blank(page)
    titles = page.evaluate(
        """async () => {
            const { SpectrumView } = await import('/static/js/views/spectrum.js');
            const view = new SpectrumView(document.createElement('div'), {});
            view.model = { label: () => 'layer 1' };
            const block = (r) => ({ layer: 0, direction: 0, gate: 'hidden', spectral_radius: r,
                                    spectral_norm: r });
            // orthogonal weights: 1 up to rounding, on the circle, not inside it
            const radii = [0.5, 1 - 1e-15, 1 + 1e-15, 1.5];
            return radii.map((r) => view._title(block(r), r > 1 ? 2 : 0));
        }"""
    )
    assert [t.split("<br>")[0] for t in titles] == [
        "Spectral radius 0.5 (inside the unit circle)",
        "Spectral radius 1 (on the unit circle)",
        "Spectral radius 1 (on the unit circle)",
        "Spectral radius 1.5 (above 1: 2 eigenvalues outside the circle)",
    ]


def test_symmetric_eigen_matches_numpy_also_with_repeated_and_zero_eigenvalues(page):
    rng = np.random.default_rng(5)
    q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    x = rng.standard_normal((300, 64))
    matrices = [
        np.cov(x * np.linspace(0.01, 3, 64), rowvar=False),  # a run's covariance, H = 64
        q @ np.diag([3.0, 3.0, 1.0, 0.0, 0.0, -2.0]) @ q.T,  # repeated, zero and negative
        np.diag([1.0, 5.0, 2.0]),  # already diagonal
        np.zeros((4, 4)),
        np.array([[7.0]]),
        np.array([[1.0, 1e-200], [1e-200, 1.0]]),
    ]
    open_blank(page)
    got = page.evaluate(
        """async (ms) => {
            const { symmetricEigen } = await import('/static/js/pca.js');
            return ms.map((m) => symmetricEigen(m));
        }""",
        [m.tolist() for m in matrices],
    )
    for m, g in zip(matrices, got, strict=True):
        values, vectors = np.array(g["values"]), np.array(g["vectors"])  # vectors[k]: k-th
        scale = max(1.0, np.abs(m).max())
        assert np.all(np.diff(values) <= 0)  # descending
        assert np.allclose(values, np.linalg.eigvalsh(m)[::-1], atol=1e-12 * scale, rtol=0)
        assert np.allclose(vectors @ vectors.T, np.eye(len(m)), atol=1e-12)
        assert np.allclose(vectors.T @ np.diag(values) @ vectors, m, atol=1e-12 * scale)


def test_trajectory_projects_on_the_runs_principal_components(page):
    open_blank(page)
    body = {
        **BODIES["lstm"],
        "config": {**BODIES["lstm"]["config"], "hidden_size": 12},
        "inputs": [[np.sin(0.4 * t)] for t in range(30)],
        "targets": [[np.sin(0.4 * t + 0.4)] for t in range(30)],
    }
    got = page.evaluate(
        """async (body) => {
            const m = await import('/static/js/views/trajectory.js');
            const trace = await fetch('/api/v1/trace', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)}
            ).then((r) => r.json());
            const box = document.createElement('div');
            document.getElementById('under-test').append(box);
            const T = trace.inputs.length;
            const model = {trace, T, L: 1, D: 1, length: 2 * T + 1,
                           forwardDone: (l, d, t, c) => t <= c, label: () => 'layer 1'};
            const view = new m.TrajectoryView(box);
            view.setModel(model);
            const all = [...box.querySelectorAll('circle.state')].map(
                (c) => [Number(c.dataset.pc1), Number(c.dataset.pc2)]);
            view.update(3);
            const early = box.querySelectorAll('circle.state').length;
            view.update(1e9);
            const caption = box.querySelector('.trajectory-caption').textContent;
            const explained = view.pca.explained;
            // over training: two probes share one fit; the later one is drawn over the earlier
            const later = {...model, trace: {...trace, hidden: [[trace.hidden[0][0].map(
                (row) => row.map((v) => 0.5 * v))]]}};
            view.setProbes([model, later]);
            view.showProbe(1);
            const faded = box.querySelectorAll('polyline.earlier-probe').length;
            const probePoints = [...box.querySelectorAll('circle.state')].map(
                (c) => [Number(c.dataset.pc1), Number(c.dataset.pc2)]);
            const probeCaption = box.querySelector('.trajectory-caption').textContent;
            // after training the page traces another input: fitted on its own states, as a
            // shared link's fresh page fits them, the probes' paths redrawn in its axes; all
            // in the frame however far its states lie from the probes'
            const after = trace.hidden[0][0].map(
                (row) => row.map((v, i) => 3 * v + 0.1 * i * v * v));
            view.setModel({...model, trace: {...trace, hidden: [[after]]}});
            const afterPoints = [...box.querySelectorAll('circle.state')].map(
                (c) => [Number(c.dataset.pc1), Number(c.dataset.pc2)]);
            const afterCaption = box.querySelector('.trajectory-caption').textContent;
            const fadedAfter = box.querySelectorAll('polyline.earlier-probe').length;
            const circles = [...box.querySelectorAll('circle.state')];
            const inFrame = circles.every((c) => {
                const [x, y] = [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))];
                const within = (v, lo, hi) => v >= lo - 1e-9 && v <= hi + 1e-9;
                return within(x, 36, 420 - 36) && within(y, 36, 320 - 36); });
            const overflowed = new m.TrajectoryView(document.createElement('div'));
            overflowed.setModel({...model, trace: {...trace, hidden: [[trace.hidden[0][0].map(
                (row) => row.map(() => null))]]}});
            return {hidden: trace.hidden[0][0], all, early, explained,
                    caption, faded, probePoints, overflow: overflowed.caption.textContent,
                    inFrame, drawn: circles.length, after, afterPoints, probeCaption,
                    afterCaption, fadedAfter};
        }""",
        body,
    )
    projected, explained = numpy_pca(got["hidden"])
    shown = np.array(got["all"])
    assert shown.shape == (30, 2)
    for k in range(2):  # a principal component is defined up to its sign
        sign = np.sign(np.dot(shown[:, k], projected[:, k]))
        assert np.allclose(shown[:, k], sign * projected[:, k], atol=1e-9)
    assert np.allclose(got["explained"], explained[:2], atol=1e-12)
    assert got["early"] == 4  # positions 0..3 at cursor 3
    assert "of the variance" in got["caption"]
    # probes: PCA on both runs' states pooled, each probe projected in those axes
    pooled = np.concatenate([np.array(got["hidden"]), 0.5 * np.array(got["hidden"])])
    centred = pooled - pooled.mean(axis=0)
    vt = np.linalg.svd(centred, full_matrices=False)[2]
    expected = (0.5 * np.array(got["hidden"]) - pooled.mean(axis=0)) @ vt[:2].T
    probe = np.array(got["probePoints"])
    for k in range(2):
        sign = np.sign(np.dot(probe[:, k], expected[:, k]))
        assert np.allclose(probe[:, k], sign * expected[:, k], atol=1e-9)
    assert got["faded"] == 1
    assert "every training probe" in got["probeCaption"]
    # the trace after training: its own principal components, the probes still drawn faded
    own, _ = numpy_pca(got["after"])
    after = np.array(got["afterPoints"])
    for k in range(2):
        sign = np.sign(np.dot(after[:, k], own[:, k]))
        assert np.allclose(after[:, k], sign * own[:, k], atol=1e-9)
    assert "this run" in got["afterCaption"] and got["fadedAfter"] == 1
    assert got["inFrame"] and got["drawn"] == 30
    assert got["overflow"].startswith("Every hidden state overflowed")
    shot(page, "trajectory")


def test_lesson_module_reads_outcomes_as_the_python_test_does(page):
    open_blank(page)
    results = {
        "a": {"eval_loss": 0.2, "norms": [0.0, 1.0], "h": [[1, 2], [3, 4]]},
        "b": {"eval_loss": 0.1, "h": [[1, 2], [3, 5]]},
    }
    checks = [
        {"metric": "a.eval_loss", "below": 0.1},
        {"metric": "a.eval_loss", "above": 0.1},
        {"ratio": ["a.eval_loss", "b.eval_loss"], "below": 1.5},
        {"ratio": ["b.eval_loss", "a.eval_loss"], "between": [0.4, 0.6]},
        {"positions": "a.norms", "nonzero_at": "all"},
        {"positions": "a.norms", "zero_at": [0], "nonzero_at": [1]},
        {"changed": ["a.h", "b.h"], "at": [1], "unchanged_at": [0]},
        {"changed": ["a.h", "b.h"], "at": [0], "unchanged_at": [1]},
    ]
    got = page.evaluate(
        """async ([results, checks]) => {
            const m = await import('/static/js/lesson.js');
            const lesson = await m.loadLesson();
            const chapter = m.findChapter(lesson, 'gates');
            const runs = m.experimentRuns(chapter, {speed: 8, cell: 'gru'});
            return {failed: checks.map((c) => m.failures(results, c).length > 0),
                    ids: lesson.chapters.map((c) => c.id), runs};
        }""",
        [results, checks],
    )
    assert got["failed"] == [bool(python_failures(results, c)) for c in checks]
    assert got["failed"] == [True, False, True, False, True, False, False, True]
    chapters = json.loads((ROOT / "static/lesson/chapters.json").read_text())
    assert got["ids"] == [c["id"] for c in chapters["chapters"]]
    rnn, lstm = got["runs"]
    assert rnn["settings"]["cell"] == "rnn_tanh" and lstm["settings"]["cell"] == "lstm"
    assert rnn["settings"]["speed"] == 8 and rnn["settings"]["chapter"] == "gates"


def test_lesson_module_runs_chapters_through_the_api(page):
    open_blank(page)
    got = page.evaluate(
        """async (ids) => {
            const m = await import('/static/js/lesson.js');
            const lesson = await m.loadLesson();
            const postJSON = (path, body) => fetch('/api/v1' + path, {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)}
            ).then((r) => r.json());
            const trainStream = async (body, onFrame) => {
                const r = await fetch('/api/v1/train/stream', {method: 'POST',
                    headers: {'Content-Type': 'application/json',
                              'Accept': 'application/x-ndjson'},
                    body: JSON.stringify(body)});
                const lines = (await r.text()).split('\\n').filter(Boolean);
                for (const line of lines) onFrame(JSON.parse(line));
            };
            const out = {};
            for (const id of ids) {
                const outcome = await m.runExperiment(lesson, m.findChapter(lesson, id),
                                                      {}, {postJSON, trainStream});
                out[id] = {ok: outcome.ok, failures: outcome.failures,
                           runs: Object.keys(outcome.results)};
            }
            return out;
        }""",
        ["unrolled", "shared_weights", "bptt", "vanishing", "memory"],
    )
    for chapter, outcome in got.items():
        assert outcome["ok"], (chapter, outcome["failures"])
        assert outcome["runs"], chapter


def test_lesson_panel_walks_chapters_and_shows_an_outcome(page):
    open_blank(page)
    got = page.evaluate(
        """async () => {
            const {loadLesson} = await import('/static/js/lesson.js');
            const {LessonPanel} = await import('/static/js/views/lesson_panel.js');
            const lesson = await loadLesson();
            const box = document.createElement('div');
            document.getElementById('under-test').append(box);
            const opened = [];
            const outcome = {ok: false, failures: ['lstm.eval_loss = 0.16'],
                             results: {rnn: {eval_loss: 0.17}, lstm: {eval_loss: 0.16}}};
            const panel = new LessonPanel(box, {lesson, onChapter: (c) => opened.push(c.id),
                                                onTry: async () => outcome});
            panel.show('vanishing');
            box.querySelector('nav button:last-child').click();
            const title = box.querySelector('h2').textContent;
            const tryButton = [...box.querySelectorAll('button')].find(
                (b) => b.textContent === 'Try this');
            await panel.tryIt();
            const heights = [...box.querySelectorAll('button')].map(
                (b) => b.getBoundingClientRect().height);
            const items = () => [...box.querySelectorAll('.lesson-results li')].map(
                (li) => li.textContent);
            const got = {opened: [...opened], title, items: items(),
                         verdict: box.querySelector('.lesson-verdict').dataset.ok,
                         tryLabel: tryButton.textContent, heights};
            // each run lists the numbers its chapter's checks read, not a fixed set
            panel.show('bptt');
            const grads = Array.from({length: 20}, (_, t) => 0.01 * (t + 1));
            panel.setOutcome({ok: true, failures: [], results: {
                full: {grad_hidden_norms: grads, jacobian_product_first: 1e-3},
                truncated: {grad_hidden_norms: grads.map((g, t) => (t < 14 ? 0 : g))}}});
            got.bptt = items();
            panel.show('unrolled');
            panel.setOutcome({ok: true, failures: [], results: {
                before: {hidden: [[0.1], [0.2], [0.3], [0.4]]},
                after: {hidden: [[0.1], [0.2], [0.35], [0.45]]}}});
            got.unrolled = items();
            return got;
        }"""
    )
    assert got["opened"] == ["vanishing", "gates"]
    assert got["title"].startswith("7. How the LSTM and GRU")
    assert got["items"] == ["tanh RNN: held-out loss 0.170", "LSTM: held-out loss 0.160"]
    assert got["bptt"] == [
        "full BPTT: gradient reaching each step: 0.0100 at T1 ... 0.200 at T20",
        "BPTT(5): gradient reaching each step: exactly 0 at T1-T14; 0.150 at T15 ... 0.200 at T20",
    ]
    assert got["unrolled"] == [
        "as sampled: the hidden states before the edit",
        "X3 set to 1.5: hidden state changed at T3, T4; exactly the same at T1, T2",
    ]
    assert got["verdict"] == "false"
    assert min(got["heights"]) >= 40  # tap targets
    shot(page, "lesson-panel")


def test_a_status_line_follows_a_stream_at_most_8_times_a_second(page):
    """dom.js's throttledText, as the lesson panel, the series views and Compare use it:
    progress frames at 50 a second change the line ~8 times a second, the newest shown;
    a message given `now` is shown at once and drops a progress text still waiting."""
    open_blank(page)
    out = page.evaluate(
        """async () => {
            const { throttledText } = await import('/static/js/dom.js');
            const el = document.getElementById('under-test');
            const changes = [];
            new MutationObserver(() => changes.push([performance.now(), el.textContent]))
              .observe(el, { childList: true, characterData: true, subtree: true });
            const pause = (ms) => new Promise((ok) => setTimeout(ok, ms));
            const line = throttledText(el);
            line.now('start');
            for (let i = 1; i <= 60; i++) { line.soon(`step ${i}`); await pause(20); }
            await pause(200);
            const newest = el.textContent;
            line.soon('late');
            line.now('done');
            await pause(200);
            const final = el.textContent;
            line.soon('dropped');
            line.stop();
            await pause(200);
            return { changes, newest, final, stopped: el.textContent };
        }"""
    )
    steps = [t for t, text in out["changes"] if text.startswith("step")]
    assert out["newest"] == "step 60" and out["final"] == out["stopped"] == "done"
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert min(gaps) >= 110, gaps  # 125 ms apart, give or take a timer's jitter
    assert 4 <= len(steps) <= 12, len(steps)  # 60 frames over ~1.2 s: 50 unthrottled

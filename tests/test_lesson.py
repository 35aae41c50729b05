"""The lesson (static/lesson/chapters.json): every chapter is well formed, and every
chapter's experiment, run through the HTTP API with the chapter's own settings, has the
outcome its text states."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

CHAPTERS_PATH = Path(__file__).resolve().parents[1] / "static" / "lesson" / "chapters.json"
LESSON = json.loads(CHAPTERS_PATH.read_text())
CHAPTERS = LESSON["chapters"]
TASK_PARAMS = {k: v for k, v in LESSON["task_params"].items() if k != "about"}

# every setting an experiment depends on is written in its chapter: the page's defaults
# may change without changing what a chapter promises
TRACE_KEYS = {"task", "length", "cell", "hiddenSize", "numLayers", "bidirectional"}
TRACE_KEYS |= {"initScheme", "initScale", "seed", "truncate"}
TRAIN_KEYS = TRACE_KEYS | {"optimizer", "learningRate", "batchSize", "steps", "clipNorm"}
TRAIN_KEYS |= {"clipValue"}
EXPECT_KINDS = {"metric", "ratio", "positions", "changed"}


def test_chapters_are_well_formed():
    ids = [c["id"] for c in CHAPTERS]
    assert len(ids) == len(set(ids)) == 9
    for chapter in CHAPTERS:
        assert set(chapter) >= {"id", "title", "text", "settings", "highlight", "experiment"}
        assert chapter["highlight"] in LESSON["views"], chapter["id"]
        experiment = chapter["experiment"]
        assert experiment["try"] and experiment["outcome"] and experiment["expect"]
        actions = {run["action"] for run in experiment["runs"]}
        assert actions <= {"trace", "train"}
        needed = TRAIN_KEYS if "train" in actions else TRACE_KEYS
        missing = needed - set(chapter["settings"])
        assert not missing, f"{chapter['id']}: settings leave {missing} to the page's defaults"
        task = chapter["settings"]["task"]
        assert set(TASK_PARAMS[task]) <= set(chapter["settings"]), chapter["id"]
        run_ids = {run["id"] for run in experiment["runs"]}
        for check in experiment["expect"]:
            assert len(EXPECT_KINDS & set(check)) == 1, check
            for path in _paths(check):
                assert path.split(".")[0] in run_ids, (chapter["id"], path)


def _paths(check: dict[str, Any]) -> list[str]:
    for key in ("metric", "positions"):
        if key in check:
            return [check[key]]
    return list(check.get("ratio") or check.get("changed") or [])


# ----------------------------------------------------------------------------- requests
# built from settings as the page builds them (static/js/main.js: traceBody and train)


def task_params(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: settings[key] for key in TASK_PARAMS[settings["task"]]}


def trace_body(client, settings: dict[str, Any]) -> dict[str, Any]:
    sample = client.post(
        f"/api/v1/tasks/{settings['task']}/sample",
        json={"params": task_params(settings), "seed": settings["seed"], "count": 1},
    )
    assert sample.status_code == 200, sample.text
    s = sample.json()
    return {
        "config": {
            "cell": settings["cell"],
            "input_size": s["input_size"],
            "hidden_size": settings["hiddenSize"],
            "num_layers": settings["numLayers"],
            "bidirectional": settings["bidirectional"],
            "output_size": s["output_size"],
            "head": s["head"],
            "output_mode": s["output_mode"],
        },
        "inputs": s["inputs"][0],
        "targets": s["targets"][0],
        "truncate": settings["truncate"] or None,
        "jacobians": True,
        "init": {
            "scheme": settings["initScheme"],
            "scale": settings["initScale"],
            "seed": settings["seed"],
        },
    }


def train_body(settings: dict[str, Any]) -> dict[str, Any]:
    body = {
        "config": {
            "cell": settings["cell"],
            "hidden_size": settings["hiddenSize"],
            "num_layers": settings["numLayers"],
            "bidirectional": settings["bidirectional"],
        },
        "task": {"name": settings["task"], **task_params(settings)},
        "optimizer": {"name": settings["optimizer"], "learning_rate": settings["learningRate"]},
        "batch_size": settings["batchSize"],
        "steps": settings["steps"],
        "clip_norm": settings["clipNorm"] or None,
        "clip_value": settings["clipValue"] or None,
        "truncate": settings["truncate"] or None,
        "seed": settings["seed"],
        "init": {
            "scheme": settings["initScheme"],
            "scale": settings["initScale"],
            "seed": settings["seed"],
        },
        "probe_every": max(1, round(settings["steps"] / 30)),
    }
    if settings.get("memoryless"):
        body["memoryless"] = True
    return body


# ----------------------------------------------------------------------------- runs


def run_trace(
    client, settings: dict[str, Any], run: dict[str, Any], needed: set[str]
) -> dict[str, Any]:
    body = trace_body(client, settings)
    edit = run.get("edit_input")
    if edit is not None:
        body["inputs"][edit["position"]][edit["feature"]] = edit["value"]
    r = client.post("/api/v1/trace", json=body)
    assert r.status_code == 200, r.text
    trace = r.json()
    first = 0  # layer 1's forward direction computes position 0 first
    return {
        "hidden": trace["hidden"][0][0],
        "grad_step_norms": trace["grad_step_norms"][0][0],
        "grad_hidden_norms": [math.hypot(*v) for v in trace["grad_hidden"][0][0]],
        "jacobian_product_first": trace["jacobian_product_norm"][0][0][first],
    }


def run_training(
    client, settings: dict[str, Any], run: dict[str, Any], needed: set[str]
) -> dict[str, Any]:
    body = train_body(settings)
    # probes draw from their own random stream: fewer of them change no weight, only time
    body["probe_every"] = body["steps"]
    r = client.post("/api/v1/train/stream", json=body, headers={"accept": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    frames = [json.loads(line) for line in r.text.splitlines()]
    done = frames[-1]
    assert done["type"] == "done", frames[-1]
    out: dict[str, Any] = {"eval_loss": done["eval_loss"]}
    task = body["task"]
    steps = run.get("horizon_steps")
    if steps:
        horizon = client.post(
            "/api/v1/forecast/horizon",
            json={"task": task, "steps": steps, "direct": done["model_id"], "seed": 0},
        )
        assert horizon.status_code == 200, horizon.text
        errors = horizon.json()["errors"]
        out["horizon_direct"], out["horizon_naive"] = errors["direct"], errors["naive"]
    if needed & {"naive", "window_mean", "gap_loss"}:
        score = client.post(
            "/api/v1/forecast/score",
            json={"task": task, "model_id": done["model_id"], "seed": settings["seed"]},
        )
        assert score.status_code == 200, score.text
        scored = score.json()
        # the score route's loss is training's final eval_loss, on the same windows
        assert math.isclose(scored["loss"], done["eval_loss"], rel_tol=1e-9)
        out.update(scored.get("baselines", {}))
        if "gap" in scored:
            out["gap_loss"] = scored["gap"]["gap_loss"]
    return out


def run_experiment(client, chapter: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = [p for check in chapter["experiment"]["expect"] for p in _paths(check)]
    results = {}
    for run in chapter["experiment"]["runs"]:
        settings = {**chapter["settings"], **run["settings"]}
        needed = {p.split(".")[1] for p in paths if p.split(".")[0] == run["id"]}
        go = run_trace if run["action"] == "trace" else run_training
        results[run["id"]] = go(client, settings, run, needed)
    return results


# ----------------------------------------------------------------------------- outcomes


def value(results: dict[str, dict[str, Any]], path: str) -> Any:
    run, metric = path.split(".")
    return results[run][metric]


def holds(x: float, check: dict[str, Any]) -> bool:
    if "below" in check and not x < check["below"]:
        return False
    if "above" in check and not x > check["above"]:
        return False
    low, high = check.get("between", (-math.inf, math.inf))
    return low <= x <= high


def failures(results: dict[str, dict[str, Any]], check: dict[str, Any]) -> list[str]:
    """What in `check` does not hold, in words; empty when it all holds."""
    if "metric" in check:
        x = value(results, check["metric"])
        return [] if holds(x, check) else [f"{check['metric']} = {x:.4g}"]
    if "ratio" in check:
        a, b = (value(results, p) for p in check["ratio"])
        pairs = zip(a, b, strict=True) if isinstance(a, list) else [(a, b)]
        ratios = [x / y for x, y in pairs]
        bad = [f"{r:.4g}" for r in ratios if not holds(r, check)]
        return [f"{check['ratio'][0]} / {check['ratio'][1]} = {', '.join(bad)}"] if bad else []
    if "positions" in check:
        norms = value(results, check["positions"])
        every = list(range(len(norms)))
        zero = every if check.get("zero_at") == "all" else check.get("zero_at", [])
        nonzero = every if check.get("nonzero_at") == "all" else check.get("nonzero_at", [])
        bad = [f"{t}: {norms[t]:.3g} (want 0)" for t in zero if norms[t] != 0.0]
        bad += [f"{t}: 0 (want > 0)" for t in nonzero if not norms[t] > 0.0]
        return [f"{check['positions']} at {', '.join(bad)}"] if bad else []
    before, after = (value(results, p) for p in check["changed"])
    moved = [before[t] != after[t] for t in range(len(before))]
    bad = [t for t in check["at"] if not moved[t]]
    bad += [t for t in check["unchanged_at"] if moved[t]]
    return [f"{check['changed']}: positions {bad} wrong"] if bad else []


def _trains(chapter: dict[str, Any]) -> bool:
    return any(run["action"] != "trace" for run in chapter["experiment"]["runs"])


# The chapters that train are run through the page (tests/browser/test_lesson_page.py),
# whose numbers come from this API (the page's requests, the chapter's own settings) and
# are judged by `failures` below as well as by the page: running them here too would
# train each a second time (~9 s of the suite, 3.8 s for the adding problem alone).
THROUGH_THE_API = [c for c in CHAPTERS if not _trains(c)]


@pytest.mark.parametrize("chapter", THROUGH_THE_API, ids=[c["id"] for c in THROUGH_THE_API])
def test_experiment_has_the_stated_outcome(client, chapter):
    results = run_experiment(client, chapter)
    wrong = [f for check in chapter["experiment"]["expect"] for f in failures(results, check)]
    assert not wrong, (
        f"{chapter['id']}: {wrong}; the chapter says: {chapter['experiment']['outcome']}"
    )


def test_a_failed_outcome_is_reported():
    results = {"a": {"eval_loss": 0.2, "norms": [0.0, 1.0]}, "b": {"eval_loss": 0.1}}
    assert failures(results, {"metric": "a.eval_loss", "below": 0.1})
    assert failures(results, {"ratio": ["a.eval_loss", "b.eval_loss"], "below": 1.5})
    assert failures(results, {"positions": "a.norms", "nonzero_at": "all"})
    assert not failures(results, {"positions": "a.norms", "zero_at": [0], "nonzero_at": [1]})

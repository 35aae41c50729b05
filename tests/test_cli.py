"""The command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.cli import main


def test_help_lists_serve(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "serve" in capsys.readouterr().out


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--port" in out.stdout


def test_train_is_reproducible_and_saves_loadable_weights(tmp_path, capsys):
    from app.rnn.weights import load_weights

    args = [
        "train",
        "--task",
        "parity",
        "--set",
        "length=8",
        "--set",
        "lag=2",
        "--cell",
        "gru",
        "--hidden-size",
        "6",
        "--steps",
        "12",
        "--batch-size",
        "8",
        "--quiet",
    ]
    a, b = tmp_path / "a.safetensors", tmp_path / "b.npz"
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b)]) == 0
    out = capsys.readouterr().out
    assert "eval loss" in out and "saved" in out
    config_a, params_a = load_weights(a)
    config_b, params_b = load_weights(b)
    assert config_a == config_b and config_a.cell == "gru" and config_a.head == "classification"
    for name in params_a:
        assert (params_a[name] == params_b[name]).all()


def test_train_rejects_bad_arguments(capsys):
    assert main(["train", "--task", "adding", "--set", "length=1", "--steps", "2"]) == 2
    assert "task.length" in capsys.readouterr().err


def test_export_schema_matches_the_committed_snapshot(tmp_path):
    """docs/frame-schema.json is the contract: regenerate it with `unroll export-schema`."""
    from pathlib import Path

    out = tmp_path / "schema.json"
    assert main(["export-schema", "--out", str(out)]) == 0
    committed = Path(__file__).resolve().parent.parent / "docs" / "frame-schema.json"
    assert out.read_text() == committed.read_text(), (
        "the frame schema changed: run `unroll export-schema --out docs/frame-schema.json` "
        "and bump SCHEMA_VERSION if the change is not backwards compatible"
    )


def test_serve_gives_uvicorn_the_websocket_size_cap_and_the_bound_host(monkeypatch, tmp_path):
    import uvicorn

    from app.cli import WS_FRAME_MARGIN

    # cmd_serve writes these for uvicorn's workers; monkeypatch restores them afterwards
    monkeypatch.setenv("UNROLL_HOST", "127.0.0.1")
    monkeypatch.setenv("UNROLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("UNROLL_MAX_WS_MESSAGE_BYTES", "5000")
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda **options: calls.append(options))
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 0
    (options,) = calls
    assert options["ws_max_size"] == 5000 + WS_FRAME_MARGIN
    config = uvicorn.Config(**options)  # uvicorn takes every option as given
    assert config.ws_max_size == 5000 + WS_FRAME_MARGIN
    assert (config.host, config.port) == ("0.0.0.0", 8123)
    # workers build the app from the environment: they must know the bound address
    assert os.environ["UNROLL_HOST"] == "0.0.0.0"

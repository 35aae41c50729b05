"""The command line."""

from __future__ import annotations

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

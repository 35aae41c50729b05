"""The README's quick start stays true: CI runs exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [block.strip().split("  #")[0].strip() for block in blocks]


def test_quick_start_is_two_commands():
    serve, test = quick_start_commands()
    assert "unroll serve" in serve and "pip install" in serve
    assert "pytest" in test and ".[test]" in test


def test_ci_runs_the_readme_test_command():
    _, test = quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == test


def test_both_commands_make_and_use_a_virtual_environment():
    # Debian's system python refuses `pip install`: a newcomer needs the venv in the command
    for command in quick_start_commands():
        assert "python3 -m venv .venv" in command
        venv_at = command.index(". .venv/bin/activate")
        assert venv_at < command.index("pip install"), command


def test_the_test_command_installs_chromium_and_runs_every_test_in_parallel():
    _, test = quick_start_commands()
    assert "apt-get install -y chromium-headless-shell" in test
    assert test.endswith("python -m pytest -q -n auto")  # no -k, no -m, no path: everything

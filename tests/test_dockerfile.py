"""The Dockerfile, checked and its steps run without Docker (no engine runs here).

The test copies exactly what the Dockerfile COPYs into a fresh folder, installs it into a
fresh virtual environment (reusing this interpreter's packages, so no network), starts
the Dockerfile's CMD there with the Dockerfile's environment, and runs its HEALTHCHECK.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_shape():
    steps = instructions()
    kinds = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    user = [v for k, v in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert "HEALTHCHECK" in kinds and "/healthz" in dict(steps)["HEALTHCHECK"]
    assert "/data" in dict(steps)["VOLUME"]
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd[:2] == ["unroll", "serve"] and "0.0.0.0" in cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dockerfile_steps_run_without_docker(tmp_path):
    steps = instructions()
    workdir = tmp_path / "srv"
    workdir.mkdir()
    for kind, value in steps:
        if kind == "COPY":
            *sources, _dest = value.split()
            for src in sources:
                path = ROOT / src
                if path.is_dir():
                    shutil.copytree(
                        path, workdir / src, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(path, workdir / src)
    venv = tmp_path / "venv"
    # no pip of its own (ensurepip is 3 s): this interpreter's pip installs into it below
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    _see_packages_of_this_interpreter(python)
    # the image's RUN pip install -e . (its dependencies are already here), built by the
    # build-system's setuptools installed with the test extras: no network (an isolated
    # build would fetch it), and ~1.7 s less
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + ["--no-build-isolation", "--check-build-dependencies", "-e", "."],
        cwd=workdir,
        check=True,
    )

    env_line = dict(steps)["ENV"]
    env = {**os.environ, **dict(re.findall(r"(\w+)=(\S+)", env_line))}
    data = tmp_path / "data"
    data.mkdir()
    env["UNROLL_DATA_DIR"] = str(data)  # the image's /data volume
    port = _free_port()
    cmd = json.loads(dict(steps)["CMD"])
    cmd = [str(venv / "bin" / cmd[0]), *cmd[1:]]
    cmd[cmd.index("0.0.0.0")] = "127.0.0.1"  # this test only ever listens on loopback
    cmd[cmd.index("--port") + 1] = str(port)
    health = json.loads(dict(steps)["HEALTHCHECK"].split("CMD", 1)[1])
    health = [str(python) if health[0] == "python" else health[0], *health[1:]]
    health = [h.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for h in health]

    log_path = tmp_path / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(health, env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, f"the server exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"HEALTHCHECK never passed:\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.3)
        page = subprocess.run(
            [
                str(python),
                "-c",
                f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').read()[:2000])",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "Unroll" in page.stdout  # templates and static files came along
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _see_packages_of_this_interpreter(python: Path) -> None:
    """Let a fresh venv import what the interpreter running the tests has installed.

    `--system-site-packages` would not do: inside a venv it exposes the base interpreter's
    packages, not the outer venv's. A .pth file listing this interpreter's site directories
    does, from a venv, from the system python and in CI alike. Lines of a .pth file only
    extend sys.path (the .pth files found there are not run), so the editable install of
    the checkout under test does not leak in: the copy in `srv` is what gets imported.
    """
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    target = Path(found.stdout.strip())
    (target / "zz_outer_site_packages.pth").write_text(
        "".join(f"{d}\n" for d in dirs if Path(d).is_dir())
    )

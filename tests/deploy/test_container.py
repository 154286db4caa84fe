"""The Dockerfile, checked without Docker (which cannot run on these machines).

hadolint lints it. Then its own steps are replayed in a fresh virtualenv: the files it
COPYs, its ENV, its `pip install` line, its CMD and its HEALTHCHECK command, all read from
the Dockerfile itself, so the test follows the file rather than a copy of it. The
installed gateway must start on the embedded defaults from another directory (package
data present, no repo on the path), pass the health check, carry a simulated call, hold
no dev tools, and exit cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def only(name: str) -> str:
    [value] = [rest for word, rest in instructions() if word == name]
    return value


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user_with_an_exec_form_command():
    assert only("USER") not in {"root", "0"}
    assert only("FROM").startswith("python:3.11-slim")
    assert json.loads(only("CMD"))[0] == "gateway"  # exec form: the gateway is PID 1 and gets SIGTERM
    assert only("STOPSIGNAL") == "SIGTERM"
    assert "CMD" in only("HEALTHCHECK")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Dockerfile's WORKDIR, COPY and RUN pip install steps, in a fresh virtualenv."""
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    app.mkdir()
    for word, rest in instructions():
        if word == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                path = REPO / source
                if path.is_dir():
                    shutil.copytree(path, app / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, app / source)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip_step = only("RUN").split("&&")[0].split()
    assert pip_step[:2] == ["pip", "install"]
    subprocess.run([str(venv / "bin" / "pip"), *pip_step[1:]], cwd=app, check=True, capture_output=True)
    return {"app": app, "venv": venv}


def image_env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "TWILIO_", "OPENAI_"))}
    for assignment in shlex.split(only("ENV")):
        name, _, value = assignment.partition("=")
        env[name] = value
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    return {**env, **extra}


def test_only_runtime_dependencies_are_installed(image):
    python = str(image["venv"] / "bin" / "python")
    for module in ("pytest", "mypy", "ruff", "hypothesis"):
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
        assert found.returncode != 0, f"{module} is installed in the image"


def test_the_installed_gateway_starts_on_its_defaults_passes_the_health_check_and_carries_a_call(
    image, tmp_path
):
    venv, app = image["venv"], image["app"]
    port = _free_port()
    env = image_env(venv, GATEWAY_PORT=str(port))
    command = [arg.replace("/app", str(app)) for arg in json.loads(only("CMD"))]
    gateway = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    started = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert gateway.stdout is not None
        for line in gateway.stdout:
            lines.append(line)
            if '"gateway.started"' in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert started.wait(30), "".join(lines)
        health = json.loads(only("HEALTHCHECK").split("CMD", 1)[1])
        assert subprocess.run(health, cwd=tmp_path, env=env, timeout=10, check=False).returncode == 0
        call = subprocess.run(
            ["gateway", "simulate-call", "--url", f"http://127.0.0.1:{port}", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert call.returncode == 0, call.stdout + call.stderr
        assert json.loads(call.stdout)["violations"] == []
    finally:
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(timeout=20)
    assert code == 0
    assert any('"call.summary"' in line for line in lines)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

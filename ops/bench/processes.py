"""The benchmarks' child processes: pinned to a core, output collected, CPU and RSS read.

Also what the side-by-side run needs around them: a free port, waiting until a server
listens, the yardstick relay's own virtualenv, and a self-signed certificate for the
benchmark AI's `wss://` variant.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GATEWAY = [sys.executable, "-m", "gateway"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_CORES = sorted(os.sched_getaffinity(0))
GATEWAY_CORE, LOAD_CORE = _CORES[0], _CORES[-1]  # the same core on a one-core machine
RELAY = REPO.parent / "shared" / "bench" / "asyncio_relay.py"
RELAY_VENV = REPO / ".venv-relay"


class Process:
    """A child process pinned to one core, its output collected line by line."""

    def __init__(self, command: list[str], core: int, env: dict[str, str], log: Path) -> None:
        self.log = log.open("w")
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        os.sched_setaffinity(self.popen.pid, {core})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)
            self.log.write(line)

    def wait_for(self, text: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.popen.args!r} did not print {text!r}: {''.join(self.lines[-20:])}")

    def wait_listening(self, port: int, seconds: float) -> None:
        """Until something accepts TCP connections on 127.0.0.1:port."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.popen.poll() is None:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.popen.args!r} did not listen on port {port}: {''.join(self.lines[-20:])}")

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, kernel) CPU seconds so far."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    def rss_kb(self) -> int:
        return int(Path(f"/proc/{self.popen.pid}/statm").read_text().split()[1]) * PAGE_KB

    def stop(self, seconds: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        self._reader.join(timeout=5)
        self.log.close()
        return code


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "TWILIO_", "OPENAI_"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def relay_python(relay: Path) -> Path:
    """The yardstick relay's interpreter, in its own virtualenv (never the product's)."""
    python = RELAY_VENV / "bin" / "python"
    requirements = relay.parent / "requirements-relay.txt"
    stamp = RELAY_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != requirements.read_text():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(RELAY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
        stamp.write_text(requirements.read_text())
    return python


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    cert, key = folder / "bench-ai.crt", folder / "bench-ai.key"
    if not cert.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
    return cert, key

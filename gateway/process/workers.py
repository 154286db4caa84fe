"""Workers per host: `gateway run --workers N` runs N gateway processes on one port.

The parent reserves the port (a bound, never-listening SO_REUSEPORT socket, which also
resolves port 0), then starts each worker as `gateway run --worker I` with that port and
an instance id of its own (`<instance>-w<I>`, `.<generation>` after a restart) and one
stream token key for all (the configured one, or one the parent draws); each
worker binds its own listener with SO_REUSEPORT, so the kernel spreads connections, and
is a fleet instance of its own (the fleet needs Redis: more than one worker without
GATEWAY_REDIS_URL is a configuration error).

The parent restarts a worker that exits while it is serving, after a back-off that
grows while the worker keeps dying young. On SIGTERM or SIGINT it stops restarting and
forwards the signal to every worker, which drains as a single gateway does (a second
signal, forwarded too, ends their calls at once); it exits when all have exited.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from dataclasses import dataclass

import structlog
import trio

from gateway.process.listener import bound
from gateway.settings import Settings

log = structlog.get_logger("gateway.workers")

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 30.0  # a worker that ran this long starts again at once when it dies


def worker_count(value: str) -> int:
    """`auto` (one per core this process may run on) or a positive number."""
    if value == "auto":
        return len(os.sched_getaffinity(0))
    count = int(value)
    if count < 1:
        raise ValueError("--workers must be at least 1")
    return count


@dataclass
class Worker:
    index: int
    generation: int = 0
    process: trio.Process | None = None

    def instance(self, base: str) -> str:
        suffix = f".{self.generation}" if self.generation else ""
        return f"{base}-w{self.index}{suffix}"


class WorkerParent:
    def __init__(self, settings: Settings, count: int, argv: list[str]) -> None:
        self._settings = settings
        self._workers = [Worker(index) for index in range(count)]
        self._argv = argv  # the worker's `gateway run` arguments (its --config)
        self._stopping = False
        self._port = 0
        # Any worker must admit a stream whose webhook another answered: one key for all.
        self._token_key = settings.stream_token_key.reveal() or secrets.token_hex(32)

    async def run(self) -> None:
        reserved = bound(self._settings.host, self._settings.port, reuse_port=True)
        self._port = reserved.getsockname()[1]
        log.info("workers.starting", workers=len(self._workers), listen=f"{self._settings.host}:{self._port}")
        with reserved:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forward_signals)
                async with trio.open_nursery() as workers:
                    for worker in self._workers:
                        workers.start_soon(self._keep_running, worker)
                nursery.cancel_scope.cancel()  # every worker is gone: stop following signals
        log.info("workers.stopped")

    async def _keep_running(self, worker: Worker) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            started = trio.current_time()
            returncode = await self._run_once(worker)
            if self._stopping:
                return
            backoff = FIRST_BACKOFF_S if trio.current_time() - started >= HEALTHY_AFTER_S else backoff
            log.warning("workers.exited", worker=worker.index, returncode=returncode, restart_in_s=backoff)
            await trio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(MAX_BACKOFF_S, backoff * 2)
            worker.generation += 1

    async def _run_once(self, worker: Worker) -> int:
        env = {
            **os.environ,
            "GATEWAY_PORT": str(self._port),
            "GATEWAY_INSTANCE_ID": worker.instance(self._settings.instance_id),
            "GATEWAY_STREAM_TOKEN_KEY": self._token_key,
        }
        command = [sys.executable, "-m", "gateway", "run", "--worker", str(worker.index), *self._argv]
        worker.process = await trio.lowlevel.open_process(command, env=env)
        log.info("workers.started", worker=worker.index, pid=worker.process.pid)
        if self._stopping:  # a signal came while it was starting
            worker.process.send_signal(signal.SIGTERM)
        returncode = -1
        try:
            with trio.CancelScope(shield=True):  # a worker drains on its own; it is never cut
                returncode = await worker.process.wait()
        finally:
            worker.process = None
        return returncode

    async def _forward_signals(self) -> None:
        # Every signal is forwarded: a worker tells a repeat (the same signal sent to the
        # process group and forwarded here) from an operator's second one by itself.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self._stopping = True
                live = [worker.process for worker in self._workers if worker.process is not None]
                log.info("workers.signal", signal=signal.Signals(signum).name, workers=len(live))
                for process in live:
                    process.send_signal(signum)

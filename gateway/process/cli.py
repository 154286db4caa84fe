"""`gateway run`: serve Twilio calls with the settings from a file and the environment; with
`--workers N`, N such processes on the port under one parent (`gateway.process.workers`)."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio

from gateway.observability.logs import configure_logging
from gateway.process.heap import settle_heap
from gateway.process.serving import serve
from gateway.process.workers import WorkerParent, worker_count
from gateway.settings import ConfigError, Settings, load_settings


def add_commands(commands: Any) -> None:
    run = commands.add_parser("run", help="serve Twilio calls (settings: --config file, then environment)")
    run.add_argument(
        "--config", type=Path, default=os.environ.get("GATEWAY_CONFIG"), help="TOML settings file"
    )
    run.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        help="gateway processes on the port: a number, or auto (one per core); more than one needs "
        "GATEWAY_REDIS_URL",
    )
    run.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # started by the parent
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        if args.workers > 1 and not settings.redis_url:
            raise ConfigError(
                f"--workers {args.workers} needs GATEWAY_REDIS_URL: workers share their calls in Redis"
            )
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    if args.workers > 1:
        config = ["--config", str(args.config)] if args.config else []
        trio.run(WorkerParent(settings, args.workers, config).run)
    else:
        trio.run(_serve_settled, settings, args.worker is not None)
    return 0


def _configure_logging(settings: Settings) -> None:
    configure_logging(
        settings.log_level,
        settings.log_format,
        instance=settings.instance_id,
        mask_numbers=settings.log_phone_numbers == "masked",
        buffer_bytes=settings.log_buffer_bytes,
    )


async def _serve_settled(settings: Settings, reuse_port: bool) -> None:
    """The gateway, with the collector tuned once it has started (`heap`)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, settings, reuse_port=reuse_port))
        settle_heap()

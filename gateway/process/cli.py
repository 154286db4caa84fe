"""`gateway run`: serve Twilio calls with the settings from a file and the environment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import trio

from gateway.observability.logs import configure_logging
from gateway.process.heap import settle_heap
from gateway.process.serving import serve
from gateway.settings import ConfigError, Settings, load_settings


def add_commands(commands: Any) -> None:
    run = commands.add_parser("run", help="serve Twilio calls (settings: --config file, then environment)")
    run.add_argument(
        "--config", type=Path, default=os.environ.get("GATEWAY_CONFIG"), help="TOML settings file"
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        settings.log_format,
        instance=settings.instance_id,
        mask_numbers=settings.log_phone_numbers == "masked",
        buffer_bytes=settings.log_buffer_bytes,
    )
    trio.run(_serve_settled, settings)
    return 0


async def _serve_settled(settings: Settings) -> None:
    """The gateway, with the collector tuned once it has started (`heap`)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, settings)
        settle_heap()

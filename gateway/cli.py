"""The `gateway` command: `run` serves; the simulator plays Twilio; the admin commands steer."""

from __future__ import annotations

import argparse
import os

from gateway.admin import cli as admin_cli
from gateway.process import cli as process_cli
from gateway.simulator import cli as simulator_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Actor-model telephony gateway on Trio.")
    commands = parser.add_subparsers(dest="command", required=True)
    process_cli.add_commands(commands)
    simulator_cli.add_commands(commands, _default_gateway_url())
    admin_cli.add_commands(commands, _default_gateway_url())
    args = parser.parse_args(argv)
    return int(args.handler(args))


def _default_gateway_url() -> str:
    return (
        os.environ.get("GATEWAY_PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT') or 8080}"
    )

"""The admin side of the CLI: `gateway call`, `gateway calls`, `gateway watch`, `gateway drain`."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

import trio

from gateway.admin import client as admin_client
from gateway.settings import DEV_ADMIN_TOKEN


def add_commands(commands: Any, default_url: str) -> None:
    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        command.add_argument("--url", default=default_url, help="the gateway's base URL")
        command.add_argument(
            "--token",
            default=os.environ.get("GATEWAY_ADMIN_TOKEN") or DEV_ADMIN_TOKEN,
            help="admin token (default: $GATEWAY_ADMIN_TOKEN or the development token)",
        )
        return command

    call = add("call", "place an outbound call through a running gateway")
    call.add_argument("to", help="E.164 number to call")
    call.add_argument("--from", dest="from_", help="caller ID (default: the gateway's GATEWAY_CALLER_ID)")
    call.set_defaults(handler=_call)
    calls = add("calls", "list a running gateway's calls")
    calls.add_argument("--all", action="store_true", help="include calls that ended recently")
    calls.set_defaults(handler=_calls)
    watch = add("watch", "print a running gateway's call events as they happen")
    watch.add_argument("--topic", action="append", help="topic pattern (repeatable; default: all)")
    watch.add_argument("--call", help="only this CallSid")
    watch.add_argument("--for", dest="seconds", type=float, help="stop after this many seconds")
    watch.set_defaults(handler=_watch)
    drain = add("drain", "stop a running gateway taking new calls (its live calls go on)")
    drain.add_argument("--wait", action="store_true", help="then wait until no call is in flight")
    drain.add_argument(
        "--max-seconds",
        type=float,
        default=float(os.environ.get("GATEWAY_DRAIN_SECONDS") or math.inf),
        help="stop waiting after this long; the calls go on (default: $GATEWAY_DRAIN_SECONDS)",
    )
    drain.set_defaults(handler=_drain)


def _call(args: argparse.Namespace) -> int:
    body = {"to": args.to, **({"from": args.from_} if args.from_ else {})}
    return _admin(
        lambda: admin_client.request(args.url, args.token, "POST", "/admin/calls", body),
        lambda call: f"placed {call['call_sid']} to {call['to_number']}: {call['state']}",
    )


def _calls(args: argparse.Namespace) -> int:
    path = "/admin/calls" if args.all else "/admin/calls?state=live"
    return _admin(
        lambda: admin_client.request(args.url, args.token, "GET", path),
        lambda data: admin_client.call_table(data["calls"]),
    )


def _watch(args: argparse.Namespace) -> int:
    topics = args.topic or ["*"]
    return _admin(lambda: admin_client.watch(args.url, args.token, topics, args.call, args.seconds), None)


def _drain(args: argparse.Namespace) -> int:
    return _admin(lambda: admin_client.drain(args.url, args.token, args.wait, args.max_seconds), None)


def _admin(operation: Any, show: Any) -> int:
    try:
        result = trio.run(operation)
    except admin_client.AdminError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    if show is not None:
        print(show(result))
    return 0

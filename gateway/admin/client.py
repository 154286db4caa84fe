"""A client of a running gateway's admin API, for the CLI's admin commands.

It talks to the gateway as any operator tool would: REST with a bearer token, and the
control WebSocket for `watch`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import httpx2
import orjson
import trio
import trio_websocket

from gateway.settings import websocket_url


class AdminError(Exception):
    """The gateway refused or could not be reached; the message says why."""


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def request(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    try:
        async with httpx2.AsyncClient(timeout=15) as client:
            response = await client.request(
                method, url.rstrip("/") + path, json=body, headers=_headers(token)
            )
    except httpx2.HTTPError as exc:
        raise AdminError(f"cannot reach {url}: {exc!r}") from None
    data = response.json() if response.content else {}
    if not response.is_success:
        error = data.get("error", {}) if isinstance(data, dict) else {}
        raise AdminError(
            f"HTTP {response.status_code} {error.get('code', '')}: {error.get('message', response.text)}"
        )
    return data


async def drain(url: str, token: str, wait: bool, max_seconds: float) -> None:
    """Start a drain; with `wait`, report until no call is in flight (or `max_seconds` pass).

    Meant for a Kubernetes preStop hook: the pod stops taking calls at once, the hook
    returns when its calls are over, and the SIGTERM that follows finds nothing to wait for.
    """
    answer = await request(url, token, "POST", "/admin/drain")
    print(f"draining: {answer['live_calls']} live calls", flush=True)
    if not wait:
        return
    shown = None
    with trio.move_on_after(max_seconds):
        while (in_flight := await _in_flight(url)) > 0:
            if in_flight != shown:
                print(f"draining: {in_flight} calls in flight", flush=True)
                shown = in_flight
            await trio.sleep(1)
        print("drained: no call in flight", flush=True)


async def _in_flight(url: str) -> int:
    try:
        async with httpx2.AsyncClient(timeout=5) as client:
            response = await client.get(url.rstrip("/") + "/readyz")
    except httpx2.HTTPError as exc:
        raise AdminError(f"cannot reach {url}: {exc!r}") from None
    return int(response.json()["in_flight"])


def call_table(calls: list[dict[str, Any]]) -> str:
    rows = [("CALL SID", "DIRECTION", "STATE", "FROM", "TO", "SINCE", "END")]
    for call in calls:
        since = time.strftime("%H:%M:%S", time.localtime(call["created_at"]))
        fields = ("call_sid", "direction", "state", "from_number", "to_number")
        rows.append((*(str(call[name]) for name in fields), since, call["end_reason"]))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


async def watch(url: str, token: str, topics: list[str], call_sid: str | None, seconds: float | None) -> None:
    """Print call events as they happen, one readable line each."""
    ws_url = websocket_url(url.rstrip("/")) + "/admin/ws"
    headers = [(b"Authorization", f"Bearer {token}".encode())]
    try:
        async with trio_websocket.open_websocket_url(ws_url, extra_headers=headers) as ws:
            request = {"id": "watch", "type": "subscribe", "topics": topics, "call_sid": call_sid}
            await ws.send_message(orjson.dumps(request).decode())
            with trio.move_on_after(math.inf if seconds is None else seconds):
                while True:
                    await _show(ws, orjson.loads(await ws.get_message()))
    except trio_websocket.ConnectionRejected as exc:
        raise AdminError(f"{ws_url} refused the connection with HTTP {exc.status_code}") from None
    except (trio_websocket.HandshakeError, OSError) as exc:
        raise AdminError(f"cannot reach {ws_url}: {exc!r}") from None
    except trio_websocket.ConnectionClosed as exc:
        raise AdminError(f"the gateway closed the watch: {exc.reason}") from None


async def _show(ws: trio_websocket.WebSocketConnection, message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "heartbeat":
        await ws.send_message('{"type":"pong"}')
    elif kind == "error":
        raise AdminError(f"{message['error']['code']}: {message['error']['message']}")
    elif kind == "lagged":
        print(f"... {message['dropped']} events dropped (this terminal was too slow)", flush=True)
    elif kind == "event":
        print(describe(message), flush=True)


def describe(event: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(event["ts"]))
    data = event["data"]
    details = {
        "call.state": lambda: (
            f"{data['state']} {data['direction']} {data['from_number']} -> {data['to_number']}"
        ),
        "call.ended": lambda: f"{data['end_reason']} after {data['duration_s']} s",
        "transcript": lambda: f"{data['role']}: {data['text']}",
        "barge_in": lambda: f"caller interrupted (clear in {data['clear_latency_ms']} ms)",
        "dtmf": lambda: f"{data['digits']} keys pressed",
        "ai.session": lambda: f"AI session {data['session']} open after {data['connect_s']} s",
        "ai.reconnecting": lambda: f"AI reconnecting (attempt {data['attempt']}): {data['reason']}",
        "metrics": lambda: f"{data['live_calls']} live calls, {data['admin_clients']} watching",
    }.get(event["topic"], lambda: "")()
    return f"{when}  {event['call_sid'] or '-':<34}  {event['topic']:<12}  {details}".rstrip()

"""Shutdown is a drain: no new calls, live calls go on until they end or a deadline passes.

On SIGTERM or SIGINT (or `stop`), the process stops taking calls at once (`/readyz` 503,
webhooks decline politely) and keeps serving its live calls until they end or
`GATEWAY_DRAIN_SECONDS` pass; a second signal cuts the wait short. Then each remaining
call is ended in order: AI stopped, Twilio socket closed with 1001, summary written.
No call is ever cut by a bare cancel.
"""

from __future__ import annotations

from collections.abc import Awaitable

import structlog
import trio

from actors.errors import CloseCode
from actors.messages import CallEnd, EndReason
from gateway.process.composition import Gateway

log = structlog.get_logger("gateway")

CALL_END_GRACE_SECONDS = 5.0


async def drain_calls(gateway: Gateway, deadline_s: float, hurry: trio.Event) -> None:
    """Take no new calls; let live ones finish until the deadline (or `hurry`); end the rest."""
    gateway.drain.start("signal", len(gateway.calls), deadline_s)
    with trio.move_on_after(gateway.drain.remaining(deadline_s)):
        async with trio.open_nursery() as race:
            race.start_soon(_then_cancel, race.cancel_scope, _calls_over(gateway))
            race.start_soon(_then_cancel, race.cancel_scope, hurry.wait())
    if gateway.calls:
        cause = "second_signal" if hurry.is_set() else "deadline"
        log.warning("gateway.drain_deadline", live_calls=len(gateway.calls), cause=cause)
    log.info("gateway.stopping", live_calls=len(gateway.calls))
    end = CallEnd(EndReason.SHUTDOWN, "gateway stopping", CloseCode.GOING_AWAY)
    await gateway.calls.end_all(end, CALL_END_GRACE_SECONDS)


async def _calls_over(gateway: Gateway) -> None:
    """Until no call is live and none is on its way (answered, stream not up yet)."""
    while gateway.admission.in_flight:
        await gateway.calls.wait_idle()
        if gateway.admission.in_flight:
            await trio.sleep(0.1)  # an answered call's stream may still arrive


async def _then_cancel(scope: trio.CancelScope, waiting: Awaitable[object]) -> None:
    await waiting
    scope.cancel()

"""Barriers: where the failure of one call or one connection stops.

Every connection handler and every call supervisor runs its work through `contain`:
an error raised inside, alone or in an exception group mixed with `trio.Cancelled` (a
nursery whose scope is being cancelled at the same moment, the race seen when callers
hang up under load), is handed to the caller to log and act on, never raised into the
nursery that other calls live in. `Cancelled` itself goes on up, as trio intends: the scope
that was cancelled catches it. Only `KeyboardInterrupt` and `SystemExit` pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio


def leaf(error: BaseException) -> BaseException:
    """The first exception inside `error` that is not a group (for a reason or a close code)."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def describe(error: BaseException) -> str:
    """`Type: message` of the first error inside `error`."""
    cause = leaf(error)
    return f"{type(cause).__name__}: {cause}"


async def contain(
    work: Callable[[], Awaitable[Any]], on_failure: Callable[[Exception], None]
) -> Exception | None:
    """Run `work`; what it raised is handed to `on_failure` (to log it, end the call) and
    returned, or None when it returned. When the error came mixed with the cancellation of
    an outer scope, `on_failure` still runs, then the cancellation goes on up."""
    failure: Exception | None = None
    try:
        await work()
    except* trio.Cancelled:
        raise
    except* Exception as group:
        failure = group
        on_failure(group)
    return failure

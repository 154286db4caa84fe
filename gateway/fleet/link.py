"""The process's one Redis client, and the errors the fleet code sees.

coredis (>= 6, on anyio) wants its client entered and left by one long-lived task: the
fleet's `run` holds `open()` around everything that uses the client, so they stop first.
Every command goes through `RedisLink.do`, which bounds it in time and maps coredis's
errors to `FleetUnavailable`, so callers handle one error whatever broke (the server
down, a timeout, a refused command). Whether Redis answers is logged once per
change (`fleet.redis_down`, `fleet.redis_up`), not once per failed command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import coredis
import coredis.exceptions
import structlog
import trio

from gateway.calls.registry import RegistryUnavailable

log = structlog.get_logger("gateway.fleet")

T = TypeVar("T")
Client = coredis.Redis[str]

COMMAND_SECONDS = 1.0  # a command that takes longer counts as Redis being unreachable
CONNECT_SECONDS = 1.0


class FleetUnavailable(RegistryUnavailable):
    """Redis could not be reached (or refused a command); the message says what failed."""


class RedisLink:
    def __init__(self, url: str) -> None:
        self.client: Client = coredis.Redis.from_url(
            url, decode_responses=True, connect_timeout=CONNECT_SECONDS, stream_timeout=None
        )
        self.up = True  # until a command says otherwise

    def open(self) -> AbstractAsyncContextManager[Client]:
        """The client, open for the block (enter it in a long-lived task)."""
        return self.client

    async def do(self, command: Callable[[Client], Awaitable[T]], what: str) -> T:
        """Run one command (or pipeline); `what` names it in the error."""
        try:
            with trio.fail_after(COMMAND_SECONDS):
                result = await command(self.client)
        except trio.TooSlowError:
            raise self._failed(what, f"no answer within {COMMAND_SECONDS:g} s") from None
        except (coredis.exceptions.RedisError, OSError) as exc:
            raise self._failed(what, _describe(exc)) from None
        if not self.up:
            self.up = True
            log.info("fleet.redis_up")
        return result

    def _failed(self, what: str, why: str) -> FleetUnavailable:
        if self.up:
            self.up = False
            log.warning("fleet.redis_down", detail=f"{what}: {why}")
        return FleetUnavailable(f"Redis is unreachable ({what}: {why})")


def _describe(exc: BaseException) -> str:
    # coredis's messages name the address, never the password of the URL.
    return f"{type(exc).__name__}: {exc}"[:200]


def decode_fields(raw: Any) -> dict[str, str]:
    """HGETALL's answer (a dict on RESP3) as a plain dict of strings."""
    return {str(key): str(value) for key, value in dict(raw or {}).items()}

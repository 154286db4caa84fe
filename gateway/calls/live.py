"""The calls this process is carrying, by CallSid."""

from __future__ import annotations

from collections.abc import Iterator

import trio

from actors.messages import CallEnd
from actors.supervisor import CallSupervisor


class LiveCalls:
    def __init__(self) -> None:
        self._calls: dict[str, CallSupervisor] = {}
        self._idle = trio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[CallSupervisor]:
        return iter(list(self._calls.values()))

    def __contains__(self, call_sid: object) -> bool:
        return call_sid in self._calls

    def get(self, call_sid: str) -> CallSupervisor | None:
        return self._calls.get(call_sid)

    def add(self, supervisor: CallSupervisor) -> None:
        self._calls[supervisor.start.call_sid] = supervisor
        if self._idle.is_set():
            self._idle = trio.Event()

    def remove(self, supervisor: CallSupervisor) -> None:
        if self._calls.get(supervisor.start.call_sid) is supervisor:
            del self._calls[supervisor.start.call_sid]
        if not self._calls:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until no call is live."""
        await self._idle.wait()

    async def end_all(self, end: CallEnd, grace_seconds: float) -> None:
        """End every call and wait (bounded) until each has closed and written its summary."""
        for supervisor in list(self._calls.values()):
            supervisor.end(end)
        with trio.move_on_after(grace_seconds):
            await self._idle.wait()

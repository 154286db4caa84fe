"""The front door over real sockets: routing, budgets, barriers, running out of descriptors."""

from __future__ import annotations

import errno
import socket

import pytest
import structlog
import trio

from gateway.net.front_door import DoorLimits, FrontDoor
from gateway.net.hypercorn_handoff import HandoffListener, ReplayStream


class Door:
    """A front door on a loopback port whose media handler records what reached it."""

    def __init__(self, nursery: trio.Nursery, limits: DoorLimits | None = None, crash: bool = False) -> None:
        raw = socket.socket()
        raw.bind(("127.0.0.1", 0))
        raw.listen(64)
        self.port = raw.getsockname()[1]
        self.media: list[bytes] = []
        self.crash = crash
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(raw))
        self.door = FrontDoor(listener, "/twilio/media", self._media, limits or DoorLimits())
        nursery.start_soon(self.door.serve, nursery)

    async def _media(self, transport, client, head) -> None:
        self.media.append(head)
        if self.crash:
            raise KeyError("a bug in a handler")
        await transport.aclose()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port))


async def closed_by_the_door(client: socket.socket) -> bool:
    """Whether the door closed `client` (read in a thread: the door runs on this loop)."""
    client.settimeout(5)
    return await trio.to_thread.run_sync(client.recv, 10) == b""


async def settle(seconds: float = 0.2) -> None:
    await trio.sleep(seconds)


class StepCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("_connection"):
            self.steps += 1


async def test_a_request_line_that_never_ends_is_waited_for_without_polling(nursery):
    """The door sleeps on readability: half a request line costs a step or two, not a
    wake-up every few milliseconds for ten seconds."""
    door = Door(nursery)
    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        with door.connect() as slow:
            slow.sendall(b"GE")
            await settle(0.5)
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert counter.steps < 10


async def test_a_media_request_reaches_the_media_handler_with_the_bytes_read(nursery):
    door = Door(nursery)
    with door.connect() as client:
        client.sendall(b"GET /twilio/media HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
    assert door.media == [b"GET /twilio/media HTTP/1.1\r\nHost: x\r\n\r\n"]


async def test_other_requests_reach_hypercorn_with_their_first_bytes_replayed(nursery):
    door = Door(nursery)
    with door.connect() as client:
        client.sendall(b"POST /twilio/voice HTTP/1.1\r\n")
        with trio.fail_after(5):
            stream = await door.door.handoff.accept()
        client.sendall(b"Host: x\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(1024)
        assert received == b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\n\r\n"
        assert door.door.open == 1
        await stream.aclose()
    assert door.door.open == 0


async def test_past_max_connections_a_new_connection_is_closed_at_once(nursery):
    door = Door(nursery, DoorLimits(max_connections=2, max_pending_per_peer=0))
    first, second = door.connect(), door.connect()
    await settle()
    with first, second, door.connect() as third:
        assert await closed_by_the_door(third)  # closed by the door
        assert door.door.refused["too_many_connections"] == 1


async def test_one_address_may_hold_only_so_many_connections_that_never_finish_their_request(nursery):
    door = Door(nursery, DoorLimits(max_connections=100, max_pending_per_peer=2))
    first, second = door.connect(), door.connect()
    await settle()
    with first, second, door.connect() as third:
        assert await closed_by_the_door(third)
        assert door.door.refused["too_many_pending_from_peer"] == 1
        first.sendall(b"GET /twilio/media HTTP/1.1\r\n\r\n")  # a finished request frees its place
        await settle()
        with door.connect() as fourth:
            fourth.sendall(b"GET /twilio/media HTTP/1.1\r\n\r\n")
            await settle()
    assert len(door.media) == 2


async def test_a_handler_that_crashes_closes_its_connection_and_the_door_stays_open(nursery):
    door = Door(nursery, crash=True)
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            with door.connect() as client:
                client.sendall(b"GET /twilio/media HTTP/1.1\r\n\r\n")
                assert await closed_by_the_door(client)
    assert len(door.media) == 2
    assert [entry["event"] for entry in logs].count("connection.crashed") == 2
    assert door.door.open == 0


async def test_a_connection_handed_over_after_hypercorn_stopped_is_closed_not_raised(nursery):
    door = Door(nursery)
    await door.door.handoff.aclose()  # what a drain does to hypercorn's listener
    with door.connect() as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert await closed_by_the_door(client)
    assert door.door.open == 0


class ExhaustedListener:
    """accept() fails twice with EMFILE (out of file descriptors), then waits."""

    def __init__(self) -> None:
        self.calls = 0

    async def accept(self):
        self.calls += 1
        if self.calls <= 2:
            raise OSError(errno.EMFILE, "Too many open files")
        await trio.sleep_forever()


async def test_accept_survives_running_out_of_file_descriptors(nursery):
    listener = ExhaustedListener()
    door = FrontDoor(listener, "/twilio/media", None, DoorLimits())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        nursery.start_soon(door.serve, nursery)
        await settle(0.5)
    assert listener.calls == 3
    assert [entry["event"] for entry in logs] == ["front_door.accept_failed"] * 2


async def test_the_replay_stream_hands_out_its_head_then_reads_on_and_reports_its_close():
    closed = []
    ours, theirs = trio.socket.socketpair()
    with theirs:
        stream = ReplayStream(trio.SocketStream(ours), b"GET / HTTP/1.1\r\n", lambda: closed.append(True))
        await theirs.send(b"Host: x\r\n\r\n")
        assert await stream.receive_some() == b"GET / HTTP/1.1\r\n"
        assert await stream.receive_some() == b"Host: x\r\n\r\n"
        await stream.aclose()
        await stream.aclose()
    assert closed == [True]
    assert HandoffListener().hand_off(stream)


@pytest.mark.parametrize("errno_", [errno.ECONNABORTED])
async def test_other_accept_errors_are_not_swallowed(nursery, errno_):
    class Broken:
        async def accept(self):
            raise OSError(errno_, "broken")

    door = FrontDoor(Broken(), "/twilio/media", None, DoorLimits())  # type: ignore[arg-type]
    with pytest.raises(OSError):
        await door.serve(nursery)

"""LeanWebSocket frames and parses like the reference implementation, byte for byte.

The peer in every test is `websockets`' own sans-I/O protocol (the reference), fed
through a byte-stream transport that can split the stream anywhere, as TCP may.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import SocketClosed
from gateway.net.framing import MaskPool
from gateway.net.websocket import MAX_PENDING_BYTES, LeanWebSocket

MESSAGES = ["{}", "x" * 125, "é" * 100, "y" * 126, "z" * 65535, "w" * 65536, "v" * 200_000]


def messages_for(chunk: int) -> list[str]:
    """All of MESSAGES, but only the short ones byte by byte (that takes a step per byte)."""
    return MESSAGES if chunk >= 100 else [*MESSAGES[:4], "u" * 1000]


class ScriptedTransport:
    """Bytes from a script, handed out in chunks of a chosen size; sent bytes collected, and
    each write apart in `writes`."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data, self._chunk, self.sent = data, chunk, bytearray()
        self.writes: list[bytes] = []

    async def receive(self) -> bytes:
        await trio.lowlevel.checkpoint()
        piece, self._data = self._data[: self._chunk], self._data[self._chunk :]
        return piece

    async def send(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data
        self.writes.append(data)

    def send_nowait(self, data: bytes) -> bool:
        self.sent += data
        self.writes.append(data)
        return True

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def open_pair() -> tuple[ClientProtocol, ServerProtocol]:
    """A reference client and server past their handshake."""
    client, server = ClientProtocol(parse_uri("ws://gateway/twilio/media")), ServerProtocol()
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    request = server.events_received()[0]
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()))
    assert isinstance(client.events_received()[0], Response)
    return client, server


def lean(
    side: str, wire: bytes, chunk: int, max_size: int = 1 << 20
) -> tuple[LeanWebSocket, ScriptedTransport]:
    """A LeanWebSocket on `side` ("server" or "client"), past the handshake, reading `wire`."""
    reference_client, reference_server = open_pair()
    transport = ScriptedTransport(wire, chunk)
    protocol = reference_server if side == "server" else reference_client
    protocol.max_message_size = max_size
    return LeanWebSocket(transport, protocol), transport


def frames_from(peer: ClientProtocol | ServerProtocol, messages: list[str]) -> bytes:
    for message in messages:
        peer.send_text(message.encode())
    return b"".join(peer.data_to_send())


async def receive_all(socket: LeanWebSocket, count: int) -> list[str]:
    return [await socket.receive() for _ in range(count)]


@pytest.mark.parametrize("chunk", [1, 7, 381, 1 << 20])
async def test_the_server_side_reads_every_frame_a_client_sends_however_tcp_splits_them(chunk):
    client, _ = open_pair()
    messages = messages_for(chunk)
    socket, _ = lean("server", frames_from(client, messages), chunk)
    assert await receive_all(socket, len(messages)) == messages


@pytest.mark.parametrize("chunk", [1, 5, 4000, 1 << 20])
async def test_the_client_side_reads_every_frame_a_server_sends(chunk):
    _, server = open_pair()
    messages = messages_for(chunk)
    socket, _ = lean("client", frames_from(server, messages), chunk)
    assert await receive_all(socket, len(messages)) == messages


@pytest.mark.parametrize("side", ["server", "client"])
async def test_frames_sent_parse_in_the_reference_peer(side):
    client, server = open_pair()
    socket, transport = lean(side, b"", 1)
    for message in MESSAGES:
        await socket.send(message)
    peer = client if side == "server" else server
    peer.receive_data(bytes(transport.sent))
    frames = [event for event in peer.events_received() if isinstance(event, Frame)]
    assert [frame.data.decode() for frame in frames] == MESSAGES
    assert all(frame.opcode is Opcode.TEXT and frame.fin for frame in frames)


async def test_client_frames_carry_masking_keys_that_differ():
    socket, transport = lean("client", b"", 1)
    await socket.send("{}")
    await socket.send("{}")
    first, second = bytes(transport.sent[:8]), bytes(transport.sent[8:])
    assert first[1] & 0x80  # masked
    assert second[1] & 0x80
    assert first[2:6] != second[2:6]


def test_the_mask_pool_refills_from_the_os_when_spent():
    pool = MaskPool(keys=2)
    keys = [pool.key() for _ in range(5)]
    assert all(len(key) == 4 for key in keys)
    assert len(set(keys)) == 5


async def test_fragments_and_pings_between_text_frames_go_through_the_protocol():
    client, _ = open_pair()
    client.send_text(b"one")
    client.send_text(b"tw", fin=False)
    client.send_ping(b"are you there")
    client.send_continuation(b"o", fin=True)
    client.send_text(b"three")
    socket, transport = lean("server", b"".join(client.data_to_send()), 3)
    assert await receive_all(socket, 3) == ["one", "two", "three"]
    client.receive_data(bytes(transport.sent))
    pongs = [event for event in client.events_received() if isinstance(event, Frame)]
    assert [(pong.opcode, pong.data) for pong in pongs] == [(Opcode.PONG, b"are you there")]


async def test_a_close_frame_ends_receiving_with_the_peers_code_and_is_answered():
    client, _ = open_pair()
    client.send_text(b"last")
    client.send_close(1000, "bye")
    socket, transport = lean("server", b"".join(client.data_to_send()), 1 << 20)
    assert await socket.receive() == "last"
    with pytest.raises(SocketClosed) as closed:
        await socket.receive()
    assert (closed.value.code, closed.value.reason) == (1000, "bye")
    client.receive_data(bytes(transport.sent))
    assert client.state is State.CLOSED or client.close_rcvd is not None


async def test_the_close_handshake_hands_the_transport_no_empty_write():
    """After the close handshake the protocol marks the end of the stream with b"": that is
    for closing the socket, not bytes to send (a raw socket waiting to send nothing spins
    the event loop until the close times out)."""
    client, _ = open_pair()
    client.send_close(1000, "")
    socket, transport = lean("server", b"".join(client.data_to_send()), 1 << 20)
    await socket.close()  # ours goes first; the client's close frame answers it
    assert transport.writes
    assert all(transport.writes)


async def test_a_batch_of_messages_goes_out_in_one_write_and_parses_in_order():
    """A media message and the mark after it leave in one write (one system call)."""
    socket, transport = lean("server", b"", 1 << 20)
    await socket.send_batch(['{"event":"media"}', '{"event":"mark"}'])
    assert len(transport.writes) == 1
    client, _ = open_pair()
    client.receive_data(transport.writes[0])
    frames = [bytes(frame.data) for frame in client.events_received()]
    assert frames == [b'{"event":"media"}', b'{"event":"mark"}']


async def test_an_oversized_frame_is_refused_with_1009_before_its_payload_arrives():
    client, _ = open_pair()
    wire = frames_from(client, ["x" * 5000])
    socket, _ = lean("server", wire[:100], 1 << 20, max_size=4096)
    with pytest.raises(RemoteProtocolError) as refused:
        await socket.receive()
    assert refused.value.close_code == CloseCode.MESSAGE_TOO_BIG


async def test_an_unmasked_frame_from_a_client_is_a_protocol_error_answered_with_1002():
    _, server = open_pair()  # a server's frames are not masked: wrong for a client to send
    socket, transport = lean("server", frames_from(server, ["{}"]), 1 << 20)
    with pytest.raises(RemoteProtocolError) as refused:
        await socket.receive()
    assert refused.value.close_code == CloseCode.PROTOCOL_ERROR
    await socket.close(refused.value.close_code, refused.value.reason)
    assert transport.sent[:1] == b"\x88"  # a close frame
    assert int.from_bytes(transport.sent[2:4]) == 1002


async def test_a_text_frame_that_is_not_utf8_is_refused_with_1007():
    client, _ = open_pair()
    client.send_frame(Frame(Opcode.TEXT, b"\xff\xfe"))
    socket, _ = lean("server", b"".join(client.data_to_send()), 1 << 20)
    with pytest.raises(RemoteProtocolError) as refused:
        await socket.receive()
    assert refused.value.close_code == CloseCode.INVALID_PAYLOAD


async def test_a_frame_the_protocol_object_refuses_ends_the_socket_with_its_close_code():
    """A frame only websockets' state machine can judge (here: a reserved bit set) is a
    RemoteProtocolError with 1002, not a closed socket or a crash."""
    reserved_bit_set = bytes([0xC1, 0x82, 0, 0, 0, 0]) + b"{}"  # FIN, RSV1, text; masked with 0000
    socket, _ = lean("server", reserved_bit_set, 1 << 20)
    with pytest.raises(RemoteProtocolError) as refused:
        await socket.receive()
    assert refused.value.close_code == CloseCode.PROTOCOL_ERROR


async def test_a_text_frame_inside_a_fragmented_message_is_a_protocol_error():
    client, _ = open_pair()
    client.send_text(b"tw", fin=False)
    another_client, _ = open_pair()
    wire = b"".join(client.data_to_send()) + frames_from(another_client, ["{}"])
    socket, _ = lean("server", wire, 1 << 20)
    with pytest.raises(RemoteProtocolError) as refused:
        await socket.receive()
    assert refused.value.close_code == CloseCode.PROTOCOL_ERROR


class StalledTransport(ScriptedTransport):
    """A peer that stopped reading: the first send never completes."""

    def __init__(self) -> None:
        super().__init__(b"", 1)
        self.sends = 0

    async def send(self, data: bytes) -> None:
        self.sends += 1
        await trio.sleep_forever()


async def test_senders_wait_once_the_queue_behind_a_stalled_write_is_full():
    """While one send is stuck on a peer that stopped reading, other senders queue at most
    MAX_PENDING_BYTES (and one frame each), then wait: memory stays bounded."""
    _, reference_server = open_pair()
    transport = StalledTransport()
    socket = LeanWebSocket(transport, reference_server)
    returned = 0

    async def sender() -> None:
        nonlocal returned
        await socket.send("m" * 16_000)
        returned += 1

    async with trio.open_nursery() as nursery:
        for _ in range(60):
            nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert transport.sends == 1
        assert returned * 16_000 <= MAX_PENDING_BYTES + 16_000
        assert returned < 59
        nursery.cancel_scope.cancel()


class StallsOnce(ScriptedTransport):
    """A transport whose first write hangs (until cancelled); later writes go through."""

    def __init__(self) -> None:
        super().__init__(b"", 1)
        self.calls = 0

    async def send(self, data: bytes) -> None:
        self.calls += 1
        if self.calls == 1:
            await trio.sleep_forever()
        self.sent += data


async def stuck_writer(nursery: trio.Nursery, socket: LeanWebSocket) -> trio.CancelScope:
    """A sender whose write (on a `StallsOnce` transport) hangs until its scope is cancelled."""
    scope = trio.CancelScope()

    async def first() -> None:
        with scope:
            await socket.send("first")

    nursery.start_soon(first)
    await trio.testing.wait_all_tasks_blocked()
    return scope


async def test_when_the_writing_sender_is_cancelled_a_waiting_sender_takes_over_the_queue():
    """The sender that was writing is cancelled (its call ending) while others wait behind a
    full queue: one of them becomes the writer, and everything queued goes out, once each
    (in the order the senders queued it, which trio's scheduling decides)."""
    _, reference_server = open_pair()
    transport = StallsOnce()
    socket = LeanWebSocket(transport, reference_server)
    async with trio.open_nursery() as nursery:
        writer = await stuck_writer(nursery, socket)
        for index in range(20):
            nursery.start_soon(socket.send, f"{index:02d}" + "m" * 16_000)
        await trio.testing.wait_all_tasks_blocked()
        writer.cancel()
    client, _ = open_pair()
    client.receive_data(bytes(transport.sent))
    texts = [frame.data.decode()[:2] for frame in client.events_received() if isinstance(frame, Frame)]
    assert sorted(texts) == [f"{index:02d}" for index in range(20)]


async def test_a_message_sent_at_once_goes_when_the_socket_is_free_and_never_past_a_stuck_write():
    """send_nowait writes when the socket is free; while another sender's write is stuck it
    sends nothing and says so (the caller queues the message), so messages never overtake
    each other; a closed socket takes nothing either."""
    _, reference_server = open_pair()
    transport = StallsOnce()
    socket = LeanWebSocket(transport, reference_server)
    async with trio.open_nursery() as nursery:
        writing = await stuck_writer(nursery, socket)
        assert socket.send_nowait("second") is False
        assert transport.sent == b""
        writing.cancel()
    assert socket.send_nowait("third") is True
    client, _ = open_pair()
    client.receive_data(bytes(transport.sent))
    assert [frame.data for frame in client.events_received() if isinstance(frame, Frame)] == [b"third"]
    await socket.abort()
    assert socket.send_nowait("fourth") is False


class BrokenPipe(ScriptedTransport):
    def send_nowait(self, data: bytes) -> bool:
        raise BrokenPipeError("the peer is gone")


async def test_a_connection_that_breaks_on_a_send_at_once_is_closed_for_every_sender():
    """The error stays inside the socket (the reader that handed the frame over never sees
    it); the next sender learns the socket is closed."""
    _, reference_server = open_pair()
    socket = LeanWebSocket(BrokenPipe(b"", 1), reference_server)
    assert socket.send_nowait("frame") is False
    with pytest.raises(SocketClosed):
        await socket.send("next")

"""A realtime AI server for benchmarks: cheap, GA-shaped, and a stopwatch at the far end.

It speaks enough of OpenAI's GA realtime protocol for the gateway (session events, server
VAD, audio responses) at as little CPU per message as possible, because it shares a core
with the load generator: appends are recognised by their prefix and never parsed as
JSON, replies are pre-encoded, sockets are `websockets`' sans-I/O protocol on trio.

Each caller turn (speech, then 300 ms of silence) is answered with `reply_seconds` of
audio streamed `speed` times faster than real time; `response.create` (the greeting) is
answered the same way, and with `greet` the first `session.update` is too (the AI
speaks first on its own, for a relay that never asks it to). As OpenAI's server VAD
does, speech that starts while a response streams cancels it (`response.done`,
status `cancelled`): the caller interrupted.

It records, per session, when each append arrived, when each audio delta and each
`speech_started` left, and each `conversation.item.truncate` with its `audio_end_ms`
(on the shared CLOCK_MONOTONIC), and which call the session carries (from the identity
frames, see `load_audio`), so the benchmark can compute the gateway's added latency in
each direction, how fast a barge-in clears the caller's audio and how exactly the
truncation matches what the caller heard. `dump(path)` writes those records.

With a certificate (`tls`), it serves `wss://` as real providers do: TLS changes the
cost of every send and receive on the gateway's side.
"""

from __future__ import annotations

import binascii
import itertools
import secrets
import ssl
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import trio

from actors import g711
from actors.message_socket import SocketClosed
from actors.realtime import AudioFormat
from gateway.net.tls import TlsTransport
from gateway.net.transport import RawSocketTransport, Transport
from gateway.net.websocket import LeanWebSocket
from gateway.net.ws_server import read_upgrade
from gateway.simulator.load_audio import IDENTITY_FRAMES, is_speech, read_identity, reply_audio

APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'
QUIET_FRAMES_TO_ANSWER = 15  # 300 ms of silence ends a caller turn
CHUNK_MS = 100


@dataclass
class SessionRecord:
    call: int = -1
    appends: array[float] = field(default_factory=lambda: array("d"))  # arrival time of append k
    deltas: array[float] = field(default_factory=lambda: array("d"))  # departure time of delta j
    delta_frames: array[int] = field(default_factory=lambda: array("l"))  # first 20 ms frame in delta j
    response_starts: list[int] = field(default_factory=list)  # index of each response's first delta
    speech_started: array[float] = field(default_factory=lambda: array("d"))  # departure of each
    truncates: array[float] = field(default_factory=lambda: array("d"))  # arrival of each truncate
    truncate_ms: array[float] = field(default_factory=lambda: array("d"))  # its audio_end_ms


class BenchAI:
    def __init__(
        self,
        audio_format: AudioFormat,
        api_key: str,
        reply_seconds: float = 2.0,
        speed: float = 4.0,
        *,
        greet: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.audio_format = audio_format
        self.api_key = api_key
        self.speed = speed
        self.greet = greet
        self.tls = tls
        self.sessions: list[SessionRecord] = []
        reply = reply_audio(reply_seconds, audio_format)
        chunk = CHUNK_MS * audio_format.bytes_per_ms
        self._chunks = [
            binascii.b2a_base64(reply[offset : offset + chunk], newline=False).decode()
            for offset in range(0, len(reply), chunk)
        ]
        self._frames_per_chunk = CHUNK_MS // 20

    async def serve(self, port: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            await self._session(stream)
        except* SocketClosed:
            pass  # the gateway hung up: the usual end of a session
        except* Exception as group:  # one broken session never stops the server
            print(f"bench-ai: session failed: {group.exceptions!r}", file=sys.stderr, flush=True)

    async def _session(self, stream: trio.SocketStream) -> None:
        transport: Transport = (
            RawSocketTransport.of(stream)
            if self.tls is None
            else await TlsTransport.start(stream, self.tls, server_side=True)
        )
        upgrade = await read_upgrade(transport, max_size=16 << 20)
        if upgrade is None:
            return
        if upgrade.header("Authorization") != [f"Bearer {self.api_key}"]:
            await upgrade.refuse(401, "Incorrect API key provided.")
            return
        socket = await upgrade.accept()
        if socket is None:
            return
        record = SessionRecord()
        self.sessions.append(record)
        try:
            await _Session(self, socket, record).run()
        finally:
            await socket.close()

    def dump(self, path: Path) -> None:
        """Write every session's record as arrays in one .npz file."""
        arrays: dict[str, Any] = {"format": np.array(self.audio_format.value)}
        for index, record in enumerate(self.sessions):
            arrays[f"s{index}_call"] = np.array(record.call)
            arrays[f"s{index}_appends"] = np.frombuffer(record.appends, dtype=np.float64)
            arrays[f"s{index}_deltas"] = np.frombuffer(record.deltas, dtype=np.float64)
            arrays[f"s{index}_delta_frames"] = np.array(record.delta_frames, dtype=np.int64)
            arrays[f"s{index}_response_starts"] = np.array(record.response_starts, dtype=np.int64)
            arrays[f"s{index}_speech_started"] = np.frombuffer(record.speech_started, dtype=np.float64)
            arrays[f"s{index}_truncates"] = np.frombuffer(record.truncates, dtype=np.float64)
            arrays[f"s{index}_truncate_ms"] = np.frombuffer(record.truncate_ms, dtype=np.float64)
        arrays["sessions"] = np.array(len(self.sessions))
        np.savez(path, **arrays)


class _Session:
    def __init__(self, ai: BenchAI, socket: LeanWebSocket, record: SessionRecord) -> None:
        self._ai = ai
        self._socket = socket
        self._record = record
        self._ids = itertools.count(1)
        self._identity: list[np.ndarray] = []
        self._speaking = False
        self._quiet = 0
        self._response: trio.CancelScope | None = None
        self._frames_sent = 0
        self._greeted = not ai.greet
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        await self._send("session.created", session={"id": "sess_bench", "object": "realtime.session"})
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                message = await self._socket.receive()
                if message.startswith(APPEND_PREFIX):  # our gateway's compact JSON: no parsing
                    await self._on_append(message[len(APPEND_PREFIX) : -2])
                else:
                    await self._on_event(orjson.loads(message))

    async def _on_append(self, base64_audio: str) -> None:
        record = self._record
        record.appends.append(time.monotonic())
        index = len(record.appends) - 1
        audio = binascii.a2b_base64(base64_audio)
        audio_format = self._ai.audio_format
        if index < IDENTITY_FRAMES:
            pcm = g711.decode(audio) if audio_format is AudioFormat.PCMU else np.frombuffer(audio, "<i2")
            self._identity.append(pcm)
            if index == IDENTITY_FRAMES - 1:
                record.call = read_identity(self._identity)
            return
        if is_speech(audio, audio_format):
            self._quiet = 0
            if not self._speaking:
                self._speaking = True
                record.speech_started.append(time.monotonic())
                await self._send(
                    "input_audio_buffer.speech_started", audio_start_ms=index * 20, item_id="item_in"
                )
                if self._response is not None:
                    self._response.cancel()  # server VAD interrupts the response
        elif self._speaking:
            self._quiet += 1
            if self._quiet >= QUIET_FRAMES_TO_ANSWER:
                self._speaking = False
                await self._send(
                    "input_audio_buffer.speech_stopped", audio_end_ms=index * 20, item_id="item_in"
                )
                await self._send("input_audio_buffer.committed", item_id="item_in", previous_item_id=None)
                self._respond()

    async def _on_event(self, event: dict[str, object]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.append":  # formatted otherwise (json.dumps puts spaces)
            audio = event.get("audio")
            await self._on_append(audio if isinstance(audio, str) else "")
        elif kind == "session.update":
            await self._send("session.updated", session=event.get("session", {}))
            if not self._greeted:
                self._greeted = True
                self._respond()
        elif kind == "response.create":
            self._respond()
        elif kind == "conversation.item.truncate":
            self._record.truncates.append(time.monotonic())
            end = event.get("audio_end_ms")
            self._record.truncate_ms.append(float(end) if isinstance(end, int | float) else -1.0)
        elif kind == "conversation.item.create":
            await self._send("conversation.item.added", item=event.get("item", {}), previous_item_id=None)

    def _respond(self) -> None:
        if self._response is None:
            self._response = trio.CancelScope()
            assert self._nursery is not None
            self._nursery.start_soon(self._stream_response, self._response)

    async def _stream_response(self, scope: trio.CancelScope) -> None:
        rid, iid = f"resp_{next(self._ids)}", f"item_{next(self._ids)}"
        item = {"id": iid, "object": "realtime.item", "type": "message", "role": "assistant", "content": []}
        await self._send(
            "response.created", response={"id": rid, "object": "realtime.response", "output": []}
        )
        await self._send("response.output_item.added", response_id=rid, output_index=0, item=item)
        prefix = (
            '{"type":"response.output_audio.delta","response_id":"' + rid + '","item_id":"' + iid
            + '","output_index":0,"content_index":0,"delta":"'
        )  # fmt: skip
        record = self._record
        record.response_starts.append(len(record.deltas))
        pause = CHUNK_MS / 1000 / self._ai.speed
        with scope:
            for chunk in self._ai._chunks:
                record.deltas.append(time.monotonic())
                record.delta_frames.append(self._frames_sent)
                await self._socket.send(prefix + chunk + '"}')
                self._frames_sent += self._ai._frames_per_chunk
                await trio.sleep(pause)
        self._response = None
        if scope.cancelled_caught:
            done = {"id": rid, "object": "realtime.response", "status": "cancelled", "output": [item]}
            await self._send("response.done", response=done)
            return
        await self._send(
            "response.output_audio.done", response_id=rid, item_id=iid, output_index=0, content_index=0
        )
        await self._send("response.output_item.done", response_id=rid, output_index=0, item=item)
        done = {"id": rid, "object": "realtime.response", "status": "completed", "output": [item]}
        await self._send("response.done", response=done)

    async def _send(self, kind: str, **fields: object) -> None:
        event = {"type": kind, "event_id": f"evt_{next(self._ids)}", **fields}
        await self._socket.send(orjson.dumps(event).decode())


def new_api_key() -> str:
    return secrets.token_urlsafe(18)

"""One local-agent session: the server side of the OpenAI Realtime GA protocol, in miniature.

What it does, in the GA event shapes: `session.created` on connect; `session.update`
checked (`session.type` required, beta fields refused) and answered with the full
configuration; appended audio run through an energy VAD that emits `speech_started` /
`speech_stopped` / `committed` (and a placeholder transcription, when transcription is
configured) and, with `create_response`, answers; `response.create` answers too (see
`replies` for what it says); audio streams as `response.output_audio.delta` faster than
real time with transcript deltas; a scripted reply ends with a `function_call` item;
a caller who starts speaking cancels the response (`turn_detected`); `response.cancel`,
`conversation.item.truncate` and function-call outputs behave as the real server does,
including the "already shorter than" error for a truncate past the audio sent.

Faults for tests and benchmarks (`AgentOptions`): drop the socket mid-response (close
1011), expire a session after N seconds (`session_expired`, then close 1001), read
client events slowly. It is a loopback agent to exercise the call path, not an AI.
"""

from __future__ import annotations

import binascii
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
import trio

from actors.formats import convert, to_pcm16
from actors.message_socket import MessageSocket, SocketClosed
from actors.realtime import AudioFormat
from actors.vad import EnergyVAD, SpeechStarted, SpeechStopped, threshold_dbfs
from gateway.ai.local_agent import replies
from gateway.ai.local_agent.options import AgentOptions
from gateway.ai.local_agent.protocol import (
    ClientError,
    audio_format,
    default_session,
    function_call_item,
    message_item,
    part,
    text_of,
    updated_session,
)
from gateway.ai.local_agent.replies import Reply

log = structlog.get_logger("gateway.ai.local_agent")


@dataclass
class _Response:
    response_id: str
    item_id: str
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    cancel_reason: str = ""


class AgentSession:
    def __init__(self, socket: MessageSocket, model: str, options: AgentOptions) -> None:
        self._socket = socket
        self._options = options
        self._drop_after = options.drop_after_deltas if options.take_drop() else 0
        self._deltas_sent = 0
        self._session = default_session(model)
        self._ids = itertools.count(1)
        self._input_ms = 0  # ms of caller audio appended so far
        self._recent = bytearray()  # caller audio from _recent_start_ms up to now
        self._recent_start_ms = 0
        self._speech_start_ms: int | None = None
        self._speech_item = ""
        self._items: list[dict[str, Any]] = []  # the conversation, as the client shaped it
        self._unanswered: bytes | None = None
        self._response: _Response | None = None
        self._generated_ms: dict[str, int] = {}  # assistant item -> ms of audio sent
        self._open_calls: set[str] = set()  # call_ids awaiting their function_call_output
        self._nursery: trio.Nursery | None = None
        self._configure_vad()

    # ---- wiring ----------------------------------------------------------------------

    async def run(self) -> None:
        self._session["expires_at"] = int(time.time()) + 3600
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._options.expire_after_s:
                nursery.start_soon(self._expire)
            try:
                await self._send("session.created", session=self._session)
                while True:
                    message = await self._socket.receive()
                    if self._options.read_delay_ms:
                        await trio.sleep(self._options.read_delay_ms / 1000)
                    await self._on_message(message)
            except SocketClosed:
                nursery.cancel_scope.cancel()

    async def _expire(self) -> None:
        await trio.sleep(self._options.expire_after_s)
        message = f"Your session hit the maximum duration of {self._options.expire_after_s:g} seconds."
        await self._send(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": message,
                "param": None,
                "event_id": None,
            },
        )
        await self._socket.close(1001, message)
        await self._end_session()

    async def _on_message(self, message: str) -> None:
        event_id = None
        try:
            event = orjson.loads(message)
            if not isinstance(event, dict):
                raise ClientError("invalid_json", "Client events must be JSON objects.")
            event_id = event.get("event_id")
            handler = self._HANDLERS.get(str(event.get("type")))
            if handler is None:
                raise ClientError("invalid_value", f"Invalid value: '{event.get('type')}'.", "type")
            await handler(self, event)
        except orjson.JSONDecodeError:
            await self._error(ClientError("invalid_json", "The client event is not valid JSON."), None)
        except ClientError as exc:
            await self._error(exc, event_id)

    async def _send(self, event_type: str, **fields: Any) -> None:
        event = {"type": event_type, "event_id": self._id("event"), **fields}
        try:
            await self._socket.send(orjson.dumps(event).decode())
        except SocketClosed:
            await self._end_session()

    async def _end_session(self) -> None:
        """The socket is gone (or closed on purpose): end every task of this session quietly."""
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        await trio.lowlevel.checkpoint()  # raises Cancelled here

    async def _error(self, exc: ClientError, event_id: Any) -> None:
        log.info("local_agent.client_error", code=exc.code, message=exc.message)
        await self._send(
            "error",
            error={
                "type": "invalid_request_error",
                "code": exc.code,
                "message": exc.message,
                "param": exc.param,
                "event_id": event_id,
            },
        )

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # ---- session ---------------------------------------------------------------------

    @property
    def _input_format(self) -> AudioFormat:
        return audio_format(self._session["audio"]["input"]["format"])

    @property
    def _output_format(self) -> AudioFormat:
        return audio_format(self._session["audio"]["output"]["format"])

    @property
    def _turn(self) -> dict[str, Any]:
        turn: dict[str, Any] | None = self._session["audio"]["input"]["turn_detection"]
        return turn or {}

    async def _on_session_update(self, event: dict[str, Any]) -> None:
        self._session = updated_session(self._session, event.get("session"))
        self._configure_vad()
        await self._send("session.updated", session=self._session)

    def _configure_vad(self) -> None:
        self._vad = EnergyVAD(
            sample_rate=8000 if self._input_format is AudioFormat.PCMU else 24000,
            threshold_db=threshold_dbfs(float(self._turn.get("threshold", 0.5))),
            silence_ms=int(self._turn.get("silence_duration_ms", 500)),
        )

    # ---- caller audio ----------------------------------------------------------------

    async def _on_append(self, event: dict[str, Any]) -> None:
        try:
            audio = binascii.a2b_base64(str(event.get("audio", "")), strict_mode=True)
        except ValueError:
            raise ClientError(
                "invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio"
            ) from None
        input_format = self._input_format
        self._recent += audio
        self._input_ms += len(audio) // input_format.bytes_per_ms
        if not self._turn:
            return
        for vad_event in self._vad.feed(to_pcm16(audio, input_format)):
            if isinstance(vad_event, SpeechStarted):
                await self._on_speech_started(vad_event.at_ms)
            else:
                await self._on_speech_stopped(vad_event)
        if self._speech_start_ms is None:
            self._forget_old_audio()

    async def _on_speech_started(self, at_ms: int) -> None:
        prefix = int(self._turn.get("prefix_padding_ms", 300))
        self._speech_start_ms = max(self._recent_start_ms, at_ms - prefix)
        self._speech_item = self._id("item")
        await self._send(
            "input_audio_buffer.speech_started",
            audio_start_ms=self._speech_start_ms,
            item_id=self._speech_item,
        )
        if self._response is not None and self._turn.get("interrupt_response", True):
            self._cancel("turn_detected")

    async def _on_speech_stopped(self, stopped: SpeechStopped) -> None:
        start = self._speech_start_ms if self._speech_start_ms is not None else stopped.at_ms
        bpm = self._input_format.bytes_per_ms
        first, last = (start - self._recent_start_ms) * bpm, (stopped.at_ms - self._recent_start_ms) * bpm
        utterance = bytes(self._recent[first:last])
        self._speech_start_ms = None
        item = self._speech_item
        await self._send("input_audio_buffer.speech_stopped", audio_end_ms=stopped.at_ms, item_id=item)
        await self._send("input_audio_buffer.committed", item_id=item, previous_item_id=None)
        user_item = message_item(item, "user", "completed", [{"type": "input_audio", "transcript": None}])
        self._items.append(user_item)
        await self._send("conversation.item.added", item=user_item, previous_item_id=None)
        await self._send("conversation.item.done", item=user_item, previous_item_id=None)
        if self._session["audio"]["input"].get("transcription"):
            seconds = len(utterance) / bpm / 1000
            await self._send(
                "conversation.item.input_audio_transcription.completed",
                item_id=item,
                content_index=0,
                transcript=f"(caller speech, {seconds:.1f} seconds)",
            )
        self._unanswered = convert(utterance, self._input_format, AudioFormat.PCMU)
        if self._turn.get("create_response", True) and self._response is None:
            self._start_response()

    def _forget_old_audio(self) -> None:
        keep_ms = int(self._turn.get("prefix_padding_ms", 300)) + 200
        excess_ms = self._input_ms - self._recent_start_ms - keep_ms
        if excess_ms > 0:
            del self._recent[: excess_ms * self._input_format.bytes_per_ms]
            self._recent_start_ms += excess_ms

    # ---- responses -------------------------------------------------------------------

    async def _on_response_create(self, _event: dict[str, Any]) -> None:
        if self._response is not None:
            raise ClientError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.response_id}. "
                "Wait until the response is finished before creating a new one.",
            )
        self._start_response()

    async def _on_response_cancel(self, _event: dict[str, Any]) -> None:
        if self._response is None:
            raise ClientError("response_cancel_not_active", "Cancellation failed: no active response found.")
        self._cancel("client_cancelled")

    def _cancel(self, reason: str) -> None:
        assert self._response is not None
        self._response.cancel_reason = reason
        self._response.scope.cancel()

    def _next_reply(self) -> Reply:
        if self._unanswered is not None:
            reply, self._unanswered = replies.echo(self._unanswered), None
            return reply
        last = self._items[-1] if self._items else None
        if last is None:
            return replies.greeting()
        return replies.to_text(text_of(last))

    def _start_response(self) -> None:
        self._response = _Response(self._id("resp"), self._id("item"))
        assert self._nursery is not None
        self._nursery.start_soon(self._stream_response, self._response, self._next_reply())

    async def _stream_response(self, response: _Response, reply: Reply) -> None:
        rid, iid = response.response_id, response.item_id
        item = message_item(iid, "assistant", "in_progress", [])
        await self._send(
            "response.created",
            response={"id": rid, "object": "realtime.response", "status": "in_progress", "output": []},
        )
        await self._send("response.output_item.added", response_id=rid, output_index=0, item=item)
        await self._send("conversation.item.added", item=item, previous_item_id=None)
        await self._send(
            "response.content_part.added", **part(rid, iid), part={"type": "audio", "transcript": ""}
        )
        self._generated_ms[iid] = 0
        with response.scope:
            await self._stream_audio(
                rid, iid, convert(reply.audio_ulaw, AudioFormat.PCMU, self._output_format), reply.transcript
            )
        await self._finish_response(response, reply, item)

    async def _stream_audio(self, rid: str, iid: str, audio: bytes, transcript: str) -> None:
        bpm = self._output_format.bytes_per_ms
        chunk = self._options.chunk_ms * bpm
        words = transcript.split(" ")
        chunks = max(1, -(-len(audio) // chunk))
        for index, offset in enumerate(range(0, len(audio), chunk)):
            piece = audio[offset : offset + chunk]
            delta = binascii.b2a_base64(piece, newline=False).decode()
            await self._send("response.output_audio.delta", **part(rid, iid), delta=delta)
            share = words[len(words) * index // chunks : len(words) * (index + 1) // chunks]
            if share:
                text = " ".join(share) + " "
                await self._send("response.output_audio_transcript.delta", **part(rid, iid), delta=text)
            self._generated_ms[iid] += len(piece) // bpm
            await self._count_delta()
            await trio.sleep(len(piece) / bpm / 1000 / self._options.speed)

    async def _count_delta(self) -> None:
        self._deltas_sent += 1
        if self._drop_after and self._deltas_sent == self._drop_after:
            log.info("local_agent.fault", fault="drop", after_deltas=self._deltas_sent)
            await self._socket.close(1011, "injected fault: dropped mid-response")
            await self._end_session()

    async def _finish_response(self, response: _Response, reply: Reply, item: dict[str, Any]) -> None:
        rid, iid = response.response_id, response.item_id
        cancelled = response.scope.cancelled_caught
        if not cancelled:
            await self._send("response.output_audio.done", **part(rid, iid))
            transcript = reply.transcript
            await self._send("response.output_audio_transcript.done", **part(rid, iid), transcript=transcript)
        item = {
            **item,
            "status": "incomplete" if cancelled else "completed",
            "content": [{"type": "output_audio", "transcript": reply.transcript}],
        }
        self._items.append(item)
        await self._send("response.output_item.done", response_id=rid, output_index=0, item=item)
        await self._send("conversation.item.done", item=item, previous_item_id=None)
        output = [item]
        if reply.tool and not cancelled:
            output.append(await self._call_tool(rid, reply))
        spoken_ms = self._generated_ms[iid]
        done: dict[str, Any] = {
            "id": rid, "object": "realtime.response", "status": "cancelled" if cancelled else "completed",
            "status_details": {"type": "cancelled", "reason": response.cancel_reason} if cancelled else None,
            "output": output,
            "usage": {"total_tokens": spoken_ms // 20, "input_tokens": 0, "output_tokens": spoken_ms // 20},
        }  # fmt: skip
        self._response = None
        await self._send("response.done", response=done)
        if self._unanswered is not None and self._turn.get("create_response", True):
            self._start_response()

    async def _call_tool(self, rid: str, reply: Reply) -> dict[str, Any]:
        call_id, item_id = self._id("call"), self._id("item")
        call = function_call_item(item_id, call_id, reply.tool, "", "in_progress")
        await self._send("response.output_item.added", response_id=rid, output_index=1, item=call)
        await self._send(
            "response.function_call_arguments.delta",
            response_id=rid,
            item_id=item_id,
            output_index=1,
            call_id=call_id,
            delta=reply.arguments,
        )
        await self._send(
            "response.function_call_arguments.done",
            response_id=rid,
            item_id=item_id,
            output_index=1,
            call_id=call_id,
            name=reply.tool,
            arguments=reply.arguments,
        )
        call = function_call_item(item_id, call_id, reply.tool, reply.arguments, "completed")
        await self._send("response.output_item.done", response_id=rid, output_index=1, item=call)
        self._items.append(call)
        self._open_calls.add(call_id)
        log.info("local_agent.tool_call", tool=reply.tool, call_id=call_id)
        return call

    # ---- conversation items ----------------------------------------------------------

    async def _on_truncate(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        end_ms = event.get("audio_end_ms")
        if not isinstance(item_id, str) or item_id not in self._generated_ms:
            raise ClientError("invalid_value", "Only model output audio messages can be truncated", "item_id")
        if not isinstance(end_ms, int) or end_ms < 0:
            raise ClientError("invalid_value", "Invalid 'audio_end_ms'.", "audio_end_ms")
        generated = self._generated_ms[item_id]
        if end_ms > generated:
            raise ClientError(
                "invalid_value",
                f"Audio content of {generated}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
            )
        log.info("local_agent.truncated", item_id=item_id, audio_end_ms=end_ms, generated_ms=generated)
        await self._send(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=event.get("content_index", 0),
            audio_end_ms=end_ms,
        )

    async def _on_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ClientError("missing_required_parameter", "Missing required parameter: 'item'.", "item")
        if item.get("type") == "function_call_output":
            if item.get("call_id") not in self._open_calls:
                raise ClientError(
                    "invalid_value", f"No function call with call_id {item.get('call_id')!r}.", "item.call_id"
                )
            self._open_calls.discard(item["call_id"])
        item = {
            "id": item.get("id") or self._id("item"),
            "object": "realtime.item",
            "status": "completed",
            **item,
        }
        self._items.append(item)
        log.info(
            "local_agent.item_created", role=item.get("role"), kind=item.get("type"), items=len(self._items)
        )
        await self._send("conversation.item.added", item=item, previous_item_id=event.get("previous_item_id"))
        await self._send("conversation.item.done", item=item, previous_item_id=event.get("previous_item_id"))

    async def _on_buffer_clear(self, _event: dict[str, Any]) -> None:
        self._speech_start_ms = None
        await self._send("input_audio_buffer.cleared")

    _HANDLERS: dict[str, Callable[[AgentSession, dict[str, Any]], Awaitable[None]]] = {
        "session.update": _on_session_update,
        "input_audio_buffer.append": _on_append,
        "input_audio_buffer.clear": _on_buffer_clear,
        "response.create": _on_response_create,
        "response.cancel": _on_response_cancel,
        "conversation.item.truncate": _on_truncate,
        "conversation.item.create": _on_item_create,
    }

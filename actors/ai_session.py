"""AISession: the actor that owns the realtime AI side of one call.

Sessions come and go; the conversation stays. A session is one socket to the provider:
configured, fed caller audio, read for the model's audio, transcripts, VAD events and
tool calls. When it drops, breaks the protocol or expires, a new one is opened with
bounded backoff and given the conversation so far as text items; a session is also
recycled at a turn boundary before the provider's cap. If no session can be had, the
caller hears a short apology and the call ends as `ai_unavailable`.

Barge-in: on `speech_started` (or the gateway's own VAD) the generation is bumped and the
writer clears Twilio at once; each partly heard item is truncated where the caller
stopped hearing it. Tools follow the GA flow: outputs after `response.done`, then one
`response.create`, or, to end or transfer the call, the action once the last words
were heard. State: one session's bookkeeping is `Session` (`actors.ai_state`); the
inputs other than audio arrive through `AIInputs`; what is left here is the call's.
"""

from __future__ import annotations

import dataclasses

import structlog
import trio

from actors import realtime
from actors.ai_inputs import AIInputs, InputHandlers
from actors.ai_senders import send_caller_audio, send_control
from actors.ai_state import REPLY_EXPECTED_S, AISessionStats, AISettings, PlayoutView, Reconnect, Session
from actors.call_control import CallControl
from actors.channels import DropOldestChannel
from actors.conversation import Conversation
from actors.dtmf import describe_keys
from actors.errors import CloseCode, RemoteProtocolError
from actors.events import CallEvents, NoEvents
from actors.latency import LatencyHistogram
from actors.message_socket import ConnectFailed, Liveness, SocketClosed, SocketConnector
from actors.messages import (
    AssistantAudio,
    BargeIn,
    CallEnd,
    CallerFrame,
    EndReason,
    Heard,
    PlayoutReport,
)
from actors.tools import Action, carry_out, interrupted
from actors.watchdog import wait_for_dead_peer

log = structlog.get_logger("actors.ai_session")

APOLOGY_ITEM = "gateway_apology"
# Giving up is final for these handshake answers: retrying a bad key changes nothing.
_FINAL_STATUSES = frozenset({400, 401, 403, 404})


class AISession:
    def __init__(
        self,
        connector: SocketConnector,
        settings: AISettings,
        *,
        caller_audio: DropOldestChannel[CallerFrame],
        assistant_audio: DropOldestChannel[AssistantAudio],
        barge_ins: trio.MemorySendChannel[BargeIn],
        playout: trio.MemoryReceiveChannel[PlayoutReport],
        keypad: trio.MemoryReceiveChannel[str],
        caller_speech: trio.MemoryReceiveChannel[float] | None = None,
        operator: trio.MemoryReceiveChannel[str] | None = None,
        control: CallControl | None = None,
        events: CallEvents | None = None,
    ) -> None:
        self._connector = connector
        self._settings = settings
        self._caller_audio = caller_audio
        self._assistant_audio = assistant_audio
        self._barge_ins = barge_ins
        self._control = control
        self._events = events or NoEvents()
        self.stats = AISessionStats()
        self.uplink_latency = LatencyHistogram()
        self.generation = 0
        self.conversation = Conversation()
        self._session: Session | None = None
        self._end: CallEnd | None = None
        self._tasks: trio.Nursery | None = None
        self._playout_view = PlayoutView()
        self._inputs = AIInputs(
            self._playout_view, playout=playout, keypad=keypad, operator=operator, caller_speech=caller_speech
        )
        self._barged_this_turn = False
        self._want_response = False  # a response.create owed to the next session
        self._acting = False
        tools = tuple(settings.tools.definitions())
        self._session_config = dataclasses.replace(settings.config, tools=tools) if tools else settings.config
        self._replies_by_itself = settings.config.turn_detection.create_response

    # ---- the call -----------------------------------------------------------------

    async def run(self) -> CallEnd:
        try:
            async with trio.open_nursery() as nursery:
                self._tasks = nursery
                self._inputs.start(
                    nursery,
                    InputHandlers(self._truncate, self._keys_entered, self._operator_says,
                                  self._caller_started_speaking),
                )  # fmt: skip
                nursery.start_soon(self._converse)
        finally:
            self._assistant_audio.close()
        assert self._end is not None
        return self._end

    def _finish(self, end: CallEnd) -> None:
        if self._end is None:
            self._end = end
        assert self._tasks is not None
        self._tasks.cancel_scope.cancel()

    def _signal(self) -> None:
        self._playout_view.signal()

    async def _converse(self) -> None:
        failures = 0
        first = True
        while True:
            outcome = await self._run_session(first)
            if isinstance(outcome, CallEnd):
                self._finish(outcome)
                return
            first = first and not outcome.configured
            if outcome.final:
                self._finish(await self._give_up(outcome.reason, EndReason.AI_ERROR))
                return
            failures = 0 if outcome.healthy else failures + 1
            if failures > self._settings.reconnect_attempts:
                self._finish(await self._give_up(outcome.reason, EndReason.AI_UNAVAILABLE))
                return
            delay = 0.0 if outcome.immediate else self._settings.backoff_s(failures)
            self.stats.reconnects += 1
            log.warning("ai.reconnecting", reason=outcome.reason, attempt=failures, delay_s=delay)
            self._events.publish("ai.reconnecting", {"reason": outcome.reason, "attempt": failures})
            await trio.sleep(delay)

    async def _give_up(self, reason: str, end_reason: EndReason) -> CallEnd:
        log.error("ai.unavailable", reason=reason)
        apology = self._settings.apology
        if apology:
            self._assistant_audio.send_nowait(AssistantAudio(self.generation, APOLOGY_ITEM, apology, True))
            with trio.move_on_after(len(apology) / self._bytes_per_ms / 1000 + 3):
                await self._playout_view.wait_heard({APOLOGY_ITEM})
        unavailable = end_reason is EndReason.AI_UNAVAILABLE
        return CallEnd(
            end_reason, reason, CloseCode.TRY_AGAIN_LATER if unavailable else CloseCode.INTERNAL_ERROR
        )

    @property
    def _bytes_per_ms(self) -> int:
        return self._settings.config.audio_format.bytes_per_ms

    # ---- one session --------------------------------------------------------------

    async def _run_session(self, first: bool) -> Reconnect | CallEnd:
        asked = trio.current_time()
        try:
            async with self._connector.connect() as socket:
                session = Session(socket, trio.current_time())
                self.stats.sessions += 1
                connect_s = round(session.started - asked, 6)
                self._events.publish("ai.session", {"session": self.stats.sessions, "connect_s": connect_s})
                self._session = session
                try:
                    return await self._session_body(session, first)
                finally:
                    self._session = None
                    self._close_open_items(session)
                    await socket.close(session.close_code)
        except ConnectFailed as exc:
            return Reconnect(exc.reason, final=exc.status in _FINAL_STATUSES)

    async def _session_body(self, session: Session, first: bool) -> Reconnect | CallEnd:
        try:
            await self._configure(session, first)
        except SocketClosed as exc:
            return Reconnect(f"closed during set-up: code {exc.code}")
        async with trio.open_nursery() as nursery:
            session.scope = nursery.cancel_scope
            nursery.start_soon(send_control, session, session.control)
            audio = (session, self._caller_audio, self.stats, self.uplink_latency)
            nursery.start_soon(send_caller_audio, *audio)
            nursery.start_soon(self._watch_recycle, session)
            nursery.start_soon(self._watch_provider, session)
            nursery.start_soon(self._follow_server, session)
        outcome = session.outcome
        assert outcome is not None
        if isinstance(outcome, Reconnect) and session.configured:
            outcome = dataclasses.replace(outcome, configured=True)
        return outcome

    async def _configure(self, session: Session, first: bool) -> None:
        settings = self._settings
        await session.socket.send(realtime.session_update(self._session_config, settings.dialect))
        replay = self.conversation.replay()
        for turn in replay:
            await session.socket.send(realtime.text_item(turn.role, turn.text, settings.dialect))
        if replay:
            log.info("ai.conversation_replayed", turns=len(replay))
        owed = self._want_response or bool(replay and replay[-1].role == "user")
        if (first and settings.greet_first) or owed:
            self._want_response = False
            await session.socket.send(realtime.response_create())

    async def _watch_provider(self, session: Session) -> None:
        """A provider silent, pings unanswered, for the limit (half-open) is replaced."""
        if isinstance(session.socket, Liveness):
            settings = self._settings
            quiet = await wait_for_dead_peer(
                session.socket, settings.ping_interval_s, settings.silence_timeout_s
            )
            log.warning("ai.silent", quiet_s=round(quiet, 1))
            session.end(Reconnect(f"provider silent for {quiet:.0f} s, pings unanswered"))

    async def _watch_recycle(self, session: Session) -> None:
        await trio.sleep_until(session.started + self._settings.recycle_after_s)
        while not self._at_turn_boundary(session):
            await self._playout_view.changed_or_after(REPLY_EXPECTED_S)
        log.info("ai.recycling", age_s=round(trio.current_time() - session.started, 1))
        session.end(Reconnect("recycled before the provider's session cap", healthy=True, immediate=True))

    def at_turn_boundary(self) -> bool:
        """Nobody speaks, nothing plays or is owed, no tool action runs (a move waits for it)."""
        return self._session is not None and self._at_turn_boundary(self._session)

    async def wait_changed(self, seconds: float) -> None:
        await self._playout_view.changed_or_after(seconds)

    def _at_turn_boundary(self, session: Session) -> bool:
        return not (session.busy() or self._playout_view.playing or self._acting)

    async def _follow_server(self, session: Session) -> None:
        try:
            while True:
                event = realtime.parse_server_event(await session.socket.receive())
                await self._on_event(session, event)
        except SocketClosed as exc:
            why = f"socket closed: code {exc.code}" + (f" ({exc.reason})" if exc.reason else "")
            session.end(Reconnect(why, healthy=self._healthy(session)))
        except RemoteProtocolError as exc:
            log.warning("ai.protocol_error", reason=exc.reason)
            session.close_code = exc.close_code
            session.end(Reconnect(f"protocol error: {exc.reason}", healthy=self._healthy(session)))

    def _healthy(self, session: Session) -> bool:
        return trio.current_time() - session.started >= self._settings.healthy_after_s

    def _close_open_items(self, session: Session) -> None:
        """A session that ended mid-item: let the writer play what arrived and close the item."""
        for item_id in session.open_items:
            self._assistant_audio.send_nowait(AssistantAudio(self.generation, item_id, b"", item_done=True))
        session.open_items.clear()

    # ---- server events ------------------------------------------------------------

    async def _on_event(self, session: Session, event: realtime.ServerEvent) -> None:  # noqa: PLR0912
        match event:  # audio deltas first: they are most of the traffic
            case realtime.AudioDelta():
                self._on_audio(session, event)
            case realtime.AudioDone():
                self._on_audio_done(session, event)
            case realtime.AssistantTranscriptDelta() if event.response_id not in session.interrupted:
                self.conversation.assistant_delta(event.item_id, event.delta)
            case realtime.AssistantTranscriptDone() if event.response_id not in session.interrupted:
                self.conversation.assistant_done(event.item_id, event.transcript)
                self._events.publish("transcript", {"role": "assistant", "text": event.transcript})
            case realtime.CallerTranscriptCompleted():
                self.conversation.caller_text(event.item_id, event.transcript)
                self._events.publish("transcript", {"role": "caller", "text": event.transcript})
            case realtime.SpeechStarted():
                await self._on_speech_started(session, event)
            case realtime.SpeechStopped():
                session.caller_stopped(reply_coming=self._replies_by_itself)
                self._barged_this_turn = False
                self._signal()
            case realtime.ResponseCreated():
                session.response_started(event.response_id)
            case realtime.FunctionCall():
                session.calls.setdefault(event.response_id, []).append(event)
            case realtime.ResponseDone():
                await self._on_response_done(session, event)
            case realtime.RealtimeError():
                self._on_error(session, event)
            case realtime.SessionCreated():
                log.info("ai.session_created", session_id=event.session_id, expires_at=event.expires_at)
            case realtime.SessionUpdated():
                session.configured = True
            case _:
                pass

    def _on_audio(self, session: Session, event: realtime.AudioDelta) -> None:
        self.stats.deltas_received += 1
        if not session.audio_arrived(event, len(event.audio) / self._bytes_per_ms):
            self.stats.late_deltas_discarded += 1
            return
        self._assistant_audio.send_nowait(
            AssistantAudio(self.generation, event.item_id, event.audio, received_at=trio.current_time())
        )

    def _on_audio_done(self, session: Session, event: realtime.AudioDone) -> None:
        if session.audio_done(event):
            self._assistant_audio.send_nowait(AssistantAudio(self.generation, event.item_id, b"", True))

    async def _on_speech_started(self, session: Session, event: realtime.SpeechStarted) -> None:
        # The gateway's own VAD may have been faster; and a caller who speaks while the
        # assistant is silent takes a turn, not the floor: no clear, no barge-in.
        if not self._barged_this_turn and self._assistant_audible():
            await self._barge_in("provider", trio.current_time())
        self._barged_this_turn = False
        session.caller_speaking = True
        self.conversation.caller_turn(event.item_id)
        self._signal()

    async def _barge_in(self, source: str, detected_at: float) -> None:
        """The caller speaks: new generation, clear Twilio first, then cut the response short."""
        self.generation += 1
        self.stats.barge_ins += 1
        await self._barge_ins.send(BargeIn(self.generation, detected_at, source))
        session = self._session
        if session is not None and session.cut():
            provider_cancels = self._settings.config.turn_detection.interrupt_response
            if source != "provider" or not provider_cancels:
                session.send_later(realtime.response_cancel())
        self._signal()

    async def _on_response_done(self, session: Session, event: realtime.ResponseDone) -> None:
        was_interrupted, calls, items = session.response_over(event)
        self.stats.responses += 1
        if event.usage is not None:
            self.stats.add_usage(dict(event.usage))
        log.info(
            "ai.response_done",
            response_id=event.response_id,
            status=event.status,
            status_reason=event.status_reason,
        )
        if calls:
            await self._answer_calls(session, calls, items, was_interrupted)
        if session.take_pending_create():
            session.send_later(realtime.response_create())
        self._signal()

    def _on_error(self, session: Session, event: realtime.RealtimeError) -> None:
        self.stats.errors += 1
        log.warning(
            "ai.error",
            code=event.code,
            error_type=event.type,
            message=event.message,
            param=event.param,
            fatal=event.is_fatal,
        )
        if "already shorter than" in event.message:
            self.stats.truncate_errors += 1
        outcome = Reconnect.after_error(event)
        if outcome is not None:
            session.end(outcome)

    # ---- tools --------------------------------------------------------------------

    async def _answer_calls(
        self, session: Session, calls: list[realtime.FunctionCall], items: set[str], was_interrupted: bool
    ) -> None:
        self.stats.tool_calls += len(calls)
        policy = self._settings.tools
        decisions = [interrupted(call) if was_interrupted else policy.decide(call) for call in calls]
        for call, decision in zip(calls, decisions, strict=True):
            log.info("ai.tool_call", tool=call.name, call_id=call.call_id, output=decision.output)
            session.send_later(realtime.function_call_output(decision.call_id, decision.output))
        actions = [decision.action for decision in decisions if decision.action is not None]
        if actions:
            self._acting = True
            assert self._tasks is not None
            self._tasks.start_soon(self._carry_out, actions[0], items, self.generation)
        elif not was_interrupted:
            session.pending_create = True

    async def _carry_out(self, action: Action, items: set[str], generation: int) -> None:
        """End or transfer the call once the caller has heard the model's last words."""
        heard = False
        with trio.move_on_after(self._settings.drain_timeout_s):
            heard = await self._playout_view.wait_heard(items, lambda: self.generation == generation)
        self._acting = False
        if not heard:  # the caller spoke over the goodbye (or it never played): the call goes on
            log.info("ai.action_abandoned", action=type(action).__name__, reason="caller interrupted")
            self._signal()
            return
        outcome = await carry_out(action, self._control)
        if isinstance(outcome, CallEnd):
            self._finish(outcome)
        elif self._session is not None:  # it failed: let the model tell the caller
            self._session.send_later(realtime.text_item("user", outcome, self._settings.dialect))
            self._session.send_later(realtime.response_create())

    # ---- reports from the writer, keys, local VAD ----------------------------------

    async def _truncate(self, heard: Heard) -> None:
        session = self._session
        for item in heard.items:
            received = session.received_ms.get(item.item_id) if session else None
            if received is None or session is None:
                continue  # not an item of the current session
            position = min(item.heard_ms, int(received))
            self.conversation.assistant_cut(item.item_id, position, received)
            if position <= 0 or position >= int(received):
                continue  # nothing heard: nothing to cut; all heard: nothing to cut either
            session.send_later(realtime.item_truncate(item.item_id, 0, position))
            self.stats.truncations += 1
            log.info("ai.truncated", item_id=item.item_id, audio_end_ms=position, received_ms=int(received))

    async def _keys_entered(self, keys: str) -> None:
        if self._settings.dtmf_to_ai:
            await self._tell("user", describe_keys(keys), reply=self._settings.dtmf_triggers_response)

    async def _operator_says(self, text: str) -> None:
        log.info("call.operator_say", characters=len(text))
        await self._tell("system", f"An operator asks you to tell the caller this, in your own words: {text}")

    async def _tell(self, role: str, text: str, *, reply: bool = True) -> None:
        """Add a text item to the conversation and (if asked) have the model answer it."""
        self.conversation.add_text(role, text)
        session = self._session
        if session is None or not session.send_later(realtime.text_item(role, text, self._settings.dialect)):
            self._want_response = self._want_response or reply  # the next session gets the replay
            return
        if not reply:
            return
        if session.active_response is not None:
            session.pending_create = True
        else:
            session.send_later(realtime.response_create())

    async def _caller_started_speaking(self, started_at: float) -> None:
        """The gateway's own VAD: faster than the provider's, so it may cut the assistant first."""
        if self._assistant_audible():
            self._barged_this_turn = True
            await self._barge_in("local", started_at)

    def _assistant_audible(self) -> bool:
        """The caller hears the assistant now, or is about to (a response is being generated)."""
        session = self._session
        return self._playout_view.playing or (session is not None and session.active_response is not None)

"""The realtime speech-to-speech protocol (OpenAI Realtime GA, Azure OpenAI, Azure Voice Live),
sans-I/O: the subset the gateway speaks.

`session` builds the session configuration in each dialect, `client_events` the other
events the gateway sends, `server_events` parses what the provider sends.
"""

from actors.realtime.client_events import (
    function_call_output,
    input_audio_append,
    item_truncate,
    response_cancel,
    response_create,
    text_item,
)
from actors.realtime.server_events import (
    DEFAULT_MAX_MESSAGE_CHARS,
    FATAL_ERROR_CODES,
    AssistantTranscriptDelta,
    AssistantTranscriptDone,
    AudioDelta,
    AudioDone,
    CallerTranscriptCompleted,
    FunctionCall,
    OtherEvent,
    RealtimeError,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    parse_server_event,
)
from actors.realtime.session import (
    SESSION_UPDATE_EVENT_ID,
    AudioFormat,
    Dialect,
    SessionConfig,
    TurnDetection,
    session_update,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_CHARS",
    "FATAL_ERROR_CODES",
    "SESSION_UPDATE_EVENT_ID",
    "AssistantTranscriptDelta",
    "AssistantTranscriptDone",
    "AudioDelta",
    "AudioDone",
    "AudioFormat",
    "CallerTranscriptCompleted",
    "Dialect",
    "FunctionCall",
    "OtherEvent",
    "RealtimeError",
    "ResponseCreated",
    "ResponseDone",
    "ServerEvent",
    "SessionConfig",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "TurnDetection",
    "function_call_output",
    "input_audio_append",
    "item_truncate",
    "parse_server_event",
    "response_cancel",
    "response_create",
    "session_update",
    "text_item",
]

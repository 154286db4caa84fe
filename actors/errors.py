"""Errors shared by the sans-I/O protocols and the actors, and the close codes they map to.

Following h11: a `RemoteProtocolError` means the peer broke the protocol (a malformed,
unknown or oversized frame); it ends that one call with a logged reason and the close
code it carries. A `LocalProtocolError` means our own code misused a protocol object
(a bug). Neither ever crosses into another call.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes this gateway sends (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002  # a frame the WebSocket protocol does not allow (masking, opcodes)
    UNSUPPORTED_DATA = 1003  # a binary frame where only JSON text is allowed
    INVALID_PAYLOAD = 1007  # a text frame that is not the JSON the protocol defines
    POLICY_VIOLATION = 1008  # failed authentication: bad token, wrong call, no start in time
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class ProtocolError(Exception):
    """A protocol was broken; `reason` says how, `close_code` is what to send."""

    def __init__(self, reason: str, close_code: CloseCode = CloseCode.INVALID_PAYLOAD) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class LocalProtocolError(ProtocolError):
    """Our own code used a protocol object out of order (a bug, never the peer's fault)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, CloseCode.INTERNAL_ERROR)

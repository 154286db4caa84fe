"""What the local agent can be told to do: its speed, and faults for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AgentOptions:
    speed: float = 4.0  # audio is streamed this many times faster than real time
    chunk_ms: int = 100  # audio per output delta
    drop_after_deltas: int = 0  # fault: close with 1011 after this many deltas of a session (0: never)
    drops: int = 1  # ...in this many sessions of the process
    expire_after_s: float = 0.0  # fault: each session ends with session_expired after this long
    accept_delay_ms: int = 0  # fault: a provider slow to accept the WebSocket
    read_delay_ms: int = 0  # fault: a provider slow to read what it is sent

    def take_drop(self) -> bool:
        if self.drop_after_deltas and self.drops > 0:
            self.drops -= 1
            return True
        return False

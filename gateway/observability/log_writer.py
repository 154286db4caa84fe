"""A log writer the event loop never waits for.

Log lines used to go straight to stdout: when the pipe behind it stalls (a log shipper
that stopped reading, a full terminal buffer), every `write` blocks the one thread
every call runs on. Here a write only appends to a bounded buffer; a thread of its own
writes the buffer out, blocking on the pipe as long as it must. When the buffer is
full, lines are dropped and counted, and once the pipe takes data again a line says
how many were lost (nothing is lost silently).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024


class LogWriter:
    """A file-like sink for structlog's BytesLogger: `write(bytes)` and `flush()`.

    `dropped_line(n)` renders the line that reports `n` dropped lines.
    """

    def __init__(
        self,
        out: BinaryIO,
        dropped_line: Callable[[int], bytes],
        max_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        self._out = out
        self._dropped_line = dropped_line
        self._max_bytes = max_bytes
        self._lines: deque[bytes] = deque()
        self._bytes = 0
        self._unreported = 0
        self.dropped = 0
        self._ready = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        threading.Thread(target=self._drain, name="log-writer", daemon=True).start()

    def write(self, data: bytes) -> int:
        with self._ready:
            if self._bytes + len(data) > self._max_bytes:
                self.dropped += 1
                self._unreported += 1
                self._ready.notify()  # the writer reports the drops once the pipe takes data
                return len(data)
            self._lines.append(data)
            self._bytes += len(data)
            self._idle.clear()
            self._ready.notify()
        return len(data)

    def flush(self) -> None:
        """Nothing to do here: the writer thread flushes after every batch."""

    def wait_written(self, timeout: float) -> bool:
        """Block (outside the event loop: at exit) until the buffer is written, or `timeout`."""
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        while True:
            batch, count = self._take()
            try:
                self._out.write(batch)
                self._out.flush()
            except (OSError, ValueError):  # the pipe is gone: nobody is left to tell, but count
                with self._ready:
                    self.dropped += count
                time.sleep(0.1)

    def _take(self) -> tuple[bytes, int]:
        """The lines waiting (and a report of the drops since the last batch), and their count."""
        with self._ready:
            while not self._lines and not self._unreported:
                self._idle.set()
                self._ready.wait()
            lines = list(self._lines)
            self._lines.clear()
            self._bytes = 0
            unreported, self._unreported = self._unreported, 0
        count = len(lines)
        if unreported:  # they were dropped after the buffered lines were taken in
            lines.append(self._dropped_line(unreported))
        return b"".join(lines), count


class TextLogWriter:
    """The same writer for stdlib logging's StreamHandler, which writes text."""

    def __init__(self, writer: LogWriter) -> None:
        self._writer = writer

    def write(self, text: str) -> int:
        self._writer.write(text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        self._writer.flush()

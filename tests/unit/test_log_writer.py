"""The log writer: a stalled log pipe costs dropped, counted lines, never a blocked loop."""

import os
import threading

import orjson

from gateway.observability.log_writer import LogWriter


def dropped_line(count: int) -> bytes:
    return orjson.dumps({"event": "log.dropped", "dropped": count}) + b"\n"


def test_writes_never_block_on_a_pipe_nobody_reads_and_every_drop_is_reported():
    """With the reader gone quiet, 10 MB of lines are taken at once (kept up to the buffer,
    the rest dropped and counted); when the reader is back, a line says how many were lost."""
    read_end, write_end = os.pipe()
    out = os.fdopen(write_end, "wb")
    writer = LogWriter(out, dropped_line, max_bytes=64 * 1024)
    line = b"x" * 1000 + b"\n"
    finished = threading.Event()

    def write_lots() -> None:
        for _ in range(10_000):
            writer.write(line)
        finished.set()

    threading.Thread(target=write_lots, daemon=True).start()
    assert finished.wait(10), "a write blocked on the stalled pipe"
    assert writer.dropped > 9_000
    received = bytearray()

    def read_all() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            while chunk := reader.read(1 << 20):
                received.extend(chunk)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()  # the log shipper is back
    assert writer.wait_written(10)
    out.close()
    reader.join(10)
    reports = [orjson.loads(row) for row in bytes(received).split(b"\n") if b"log.dropped" in row]
    lines = bytes(received).count(line)
    assert reports, "no line said how many were dropped"
    assert sum(report["dropped"] for report in reports) + lines == 10_000
    assert sum(report["dropped"] for report in reports) == writer.dropped

"""The capacity benchmark's report: the machine, every run, and the ratios gateway / relay."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

RATIO_FIGURES = {  # name in the report -> how to read it from a run
    "cpu": lambda r: r["cpu_ms_per_call_second"],
    "rss": lambda r: r["rss_kb_per_call"],
    "uplink_p99": lambda r: r["uplink_ms"]["p99"],
    "first_audio_p99": lambda r: r["downlink_first_audio_ms"]["p99"],
    "clear_p99": lambda r: r["clear_ms"]["p99"],
}


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gateway / relay for each step and AI leg measured with both (means over repeats),
    and the gateway's transcoding CPU over its passthrough CPU at the same step."""
    rows = []
    for (audio_format, transport, calls), gateway in _groups(results, "gateway").items():
        relay = _groups(results, "relay").get(("pcmu", transport, calls))
        passthrough = _groups(results, "gateway").get(("pcmu", transport, calls))
        row: dict[str, Any] = {"audio_format": audio_format, "transport": transport, "calls": calls}
        if audio_format == "pcmu" and relay:
            row.update({name: _ratio(gateway, relay, read) for name, read in RATIO_FIGURES.items()})
        if audio_format != "pcmu" and passthrough:
            row["cpu_over_passthrough"] = _ratio(gateway, passthrough, RATIO_FIGURES["cpu"])
        if len(row) > 3:
            rows.append(row)
    return rows


def _groups(results: list[dict[str, Any]], subject: str) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in results:
        if r["subject"] == subject:
            groups.setdefault((r["audio_format"], r["transport"], r["calls"]), []).append(r)
    return groups


def _ratio(top: list[dict[str, Any]], bottom: list[dict[str, Any]], read: Any) -> float | None:
    over = [read(r) for r in top if read(r) is not None]
    under = [read(r) for r in bottom if read(r) is not None]
    if not over or not under or statistics.mean(under) <= 0:
        return None
    return round(statistics.mean(over) / statistics.mean(under), 2)


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


RUN_COLUMNS = (
    "server | format | AI leg | calls | CPU | CPU ms / call-s | RSS KB / call | uplink p50 / p99 ms "
    "| first audio p50 / p99 ms | chunk lateness p99 ms | clear p50 / p99 ms | truncation min / p50 / max ms "
    "| media up / down per call-s | marks up / down per call-s | drops | underruns | violations | complete "
    "| ended by server | alive | load side CPU | glitch-free"
)
RATIO_COLUMNS = (
    "format | AI leg | calls | CPU | RSS | uplink p99 | first audio p99 | clear p99 | pcm24k CPU / pcmu"
)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, Linux {m['kernel']}; "
        f"server under test on one core, {report['seconds']:g} s calls",
        "",
        "| " + RUN_COLUMNS + " |",
        "| --- | --- | --- " + "| ---: " * 18 + "| --- |",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in _run_cells(r)) + " |" for r in report["steps"]]
    lines += ["", "Gateway / relay (lower is better for every figure):", "", "| " + RATIO_COLUMNS + " |",
              "| --- | --- " + "| ---: " * 7 + "|"]  # fmt: skip
    for row in report["ratios"]:
        cells = [row["audio_format"], row["transport"], row["calls"]]
        cells += [_or_dash(row.get(name)) for name in (*RATIO_FIGURES, "cpu_over_passthrough")]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    for r in report["steps"]:
        if "memory_top" in r:
            lines += _memory_lines(r)
    return "\n".join(lines) + "\n"


def _memory_lines(r: dict[str, Any]) -> list[str]:
    """What tracemalloc saw one call hold, by file and by line (a `--memory` run)."""
    memory = r["memory_top"]
    lines = ["", f"Held per call ({r['audio_format']}, {r['transport']}, {r['calls']} calls): "
             f"{memory['traced_kb_per_call']} KB traced, {r['rss_kb_per_call']} KB RSS under tracemalloc", "",
             "| allocated at | KB / call | blocks / call |", "| --- | ---: | ---: |"]  # fmt: skip
    for where, kb, blocks in memory["by_file"] + memory["by_line"]:
        lines.append(f"| {where} | {kb} | {blocks} |")
    return lines


def _run_cells(r: dict[str, Any]) -> list[Any]:
    up, first, clear = r["uplink_ms"], r["downlink_first_audio_ms"], r["clear_ms"]
    trunc, messages = r["truncation_error_ms"], r["messages_per_call_second"]
    return [
        r["subject"], r["audio_format"], r["transport"], r["calls"], f"{r['cpu_share']:.0%}",
        r["cpu_ms_per_call_second"], r["rss_kb_per_call"], f"{up['p50']} / {up['p99']}",
        f"{first['p50']} / {first['p99']}", r["downlink_chunk_lateness_ms"]["p99"],
        f"{clear['p50']} / {clear['p99']}",
        f"{_or_dash(trunc['min'])} / {_or_dash(trunc['p50'])} / {_or_dash(trunc['max'])}",
        f"{messages['up_media']} / {messages['down_media']}",
        f"{messages['up_marks']} / {messages['down_marks']}",
        _or_dash(r["drops"]), _or_dash(r["underruns"]), r["violations"], f"{r['completed']}/{r['calls']}",
        r["ended_by_gateway"], "yes" if r["gateway_alive"] else "NO", f"{r['load_cpu_share']:.0%}",
        "yes" if r["glitch_free"] else "no",
    ]  # fmt: skip


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value

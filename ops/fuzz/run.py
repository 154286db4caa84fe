"""`make fuzz`: every fuzz target under atheris (coverage-guided libFuzzer), a million inputs.

Runs each target of tests/fuzz_targets.py in a process of its own, two at a time, with a
share of the inputs weighted by what one costs; prints the inputs run, the crashes (each
one's input is kept under out/fuzz/) and the slowest input, and exits 1 on any crash or
if fewer inputs ran than asked.

    python ops/fuzz/run.py [--inputs 1000000] [--targets a,b] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parents[2]
WARM_UP = 10  # the first inputs of a target pay for imports and set-up: not counted as slowest
OUT = REPO / "out" / "fuzz"
# Shares of the inputs: cheap parsers get more, whole requests fewer.
WEIGHTS = {
    "twilio_media": 20, "realtime_event": 20, "stream_token": 10, "twilio_signature": 10,
    "websocket_frames": 15, "media_upgrade": 8, "request_line": 6, "http_request": 6, "admin_request": 5,
}  # fmt: skip


def child(target: str, runs: int) -> None:
    """Fuzz one target in this process (atheris ends the process when it is done)."""
    import atheris  # noqa: PLC0415  (only the fuzzing child needs it)

    structlog.configure(processors=[_drop])
    with atheris.instrument_imports(include=["actors", "gateway", "websockets", "tests"]):
        from tests.fuzz_targets import TARGETS  # noqa: PLC0415  (imported under instrumentation)
    function = TARGETS[target]
    report = {"target": target, "runs": 0, "slowest_ms": 0.0, "slowest_input": ""}
    path = OUT / f"{target}.json"

    def one(data: bytes) -> None:
        started = time.perf_counter()
        try:
            function(data)
        finally:
            report["runs"] += 1
            elapsed = (time.perf_counter() - started) * 1000
            if report["runs"] > WARM_UP and elapsed > report["slowest_ms"]:
                report["slowest_ms"], report["slowest_input"] = round(elapsed, 3), data[:256].hex()
            if report["runs"] % 5000 == 0 or report["runs"] == runs:
                path.write_text(json.dumps(report))

    args = [sys.argv[0], f"-runs={runs}", "-max_len=2048", "-timeout=30", f"-artifact_prefix={OUT}/{target}-"]
    atheris.Setup(args, one)
    atheris.Fuzz()


def _drop(_logger: object, _method: str, _event: object) -> object:
    raise structlog.DropEvent


def run_target(target: str, runs: int) -> dict:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, __file__, "--child", target, "--inputs", str(runs)],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    path = OUT / f"{target}.json"
    report = json.loads(path.read_text()) if path.exists() else {"target": target, "runs": 0}
    report["crashed"] = result.returncode != 0
    report["seconds"] = round(time.monotonic() - started, 1)
    if report["crashed"]:
        report["output"] = result.stderr[-3000:]
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--targets", default=",".join(WEIGHTS))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--child")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.child, args.inputs)
        return 0
    targets = args.targets.split(",")
    total_weight = sum(WEIGHTS[t] for t in targets)
    shares = {t: max(1, args.inputs * WEIGHTS[t] // total_weight) for t in targets}
    shares[targets[0]] += args.inputs - sum(shares.values())
    for target in targets:
        (OUT / f"{target}.json").unlink(missing_ok=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        reports = list(pool.map(lambda t: run_target(t, shares[t]), targets))
    return summarise(reports, args.inputs)


def summarise(reports: list[dict], asked: int) -> int:
    print(f"{'target':18} {'inputs':>9} {'crashed':>8} {'slowest ms':>11} {'seconds':>8}")
    for r in reports:
        print(f"{r['target']:18} {r['runs']:>9} {'yes' if r['crashed'] else 'no':>8} "
              f"{r.get('slowest_ms', 0):>11} {r['seconds']:>8}")  # fmt: skip
    runs = sum(r["runs"] for r in reports)
    crashes = [r for r in reports if r["crashed"]]
    slowest = max(reports, key=lambda r: r.get("slowest_ms", 0))
    print(f"inputs {runs}, crashes {len(crashes)}, slowest input {slowest.get('slowest_ms')} ms "
          f"({slowest['target']}: {slowest.get('slowest_input', '')[:80]}...)")  # fmt: skip
    for crash in crashes:
        print(f"--- {crash['target']} crashed:\n{crash.get('output', '')}")
    (OUT / "summary.json").write_text(
        json.dumps({"inputs": runs, "crashes": len(crashes), "reports": reports})
    )
    return 1 if crashes or runs < asked else 0


if __name__ == "__main__":
    sys.exit(main())

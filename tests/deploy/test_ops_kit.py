"""The deployment kit in ops/, checked by the real validators and against the gateway itself.

- Kubernetes manifests: kubernetes-validate, strict, for the newest schema it ships; and
  they must agree with the gateway (every variable they set is a real setting, the grace
  period covers the drain deadline, probes hit the real endpoints).
- Prometheus: `promtool check rules`, `promtool test rules` (each alert fires when it
  should), `promtool check config`.
- Grafana: the dashboard type-checks against @grafana/schema with `tsc --strict` (unknown
  fields and bad enum values fail), and every query parses as PromQL (via promtool).
- Every metric named by the rules, the dashboard and the autoscaler is one the gateway
  exports.
- Log shipping: `rsyslogd -N1` accepts the config, and rsyslogd run for real on container
  log lines parses them, files them and forwards them over TCP.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gateway.calls.live import LiveCalls
from gateway.observability.metrics import GatewayMetrics
from gateway.settings.fields import FIELDS

REPO = Path(__file__).parents[2]
OPS = REPO / "ops"
K8S_VERSION = kubernetes_validate.latest_version()
GRAFANA_SCHEMA = "@grafana/schema@13.2.3"
TYPESCRIPT = "typescript@5.9.3"


def manifests() -> dict[str, dict]:
    found = {}
    for path in sorted((OPS / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)


# ---- Kubernetes -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(manifests()))
def test_each_manifest_is_valid_kubernetes(name):
    kubernetes_validate.validate(manifests()[name], K8S_VERSION, strict=True)


def test_the_validator_is_strict():
    deployment = json.loads(json.dumps(manifests()["Deployment/voice-gateway"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_every_variable_the_manifests_set_is_a_gateway_setting():
    settings = {spec.env for spec in FIELDS if spec.env}
    found = manifests()
    names = [*found["ConfigMap/voice-gateway"]["data"], *found["Secret/voice-gateway"]["stringData"]]
    container = found["Deployment/voice-gateway"]["spec"]["template"]["spec"]["containers"][0]
    names += [variable["name"] for variable in container["env"]]
    assert set(names) - settings == set()


def test_the_deployment_drains_before_it_is_stopped():
    found = manifests()
    config = found["ConfigMap/voice-gateway"]["data"]
    pod = found["Deployment/voice-gateway"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["terminationGracePeriodSeconds"] >= float(config["GATEWAY_DRAIN_SECONDS"]) + 20
    assert container["lifecycle"]["preStop"]["exec"]["command"][:3] == ["gateway", "drain", "--wait"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == int(config["GATEWAY_PORT"])
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert found["Deployment/voice-gateway"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# ---- Prometheus ----------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool():
    result = run("promtool", "check", "rules", "voice-gateway-rules.yml", cwd=OPS / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_when_it_should_and_only_then():
    result = run("promtool", "test", "rules", "voice-gateway-rules.test.yml", cwd=OPS / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scrape_config_passes_promtool(tmp_path):
    """Debian's promtool is built without Kubernetes service discovery, so the pod discovery
    block is swapped for a static target; everything else is checked as shipped."""
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["gateway:8080"]}]
    credentials = tmp_path / "token"
    credentials.write_text("scrape-token")
    job["authorization"]["credentials_file"] = str(credentials)
    shutil.copy(OPS / "prometheus" / "voice-gateway-rules.yml", tmp_path)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run("promtool", "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- Grafana -------------------------------------------------------------------------------


def dashboard() -> dict:
    return json.loads((OPS / "grafana" / "voice-gateway.json").read_text())


def dashboard_queries() -> list[str]:
    queries = []
    for panel in dashboard()["panels"]:
        queries += [target["expr"] for target in panel.get("targets", [])]
    return queries


def test_the_dashboard_type_checks_against_grafanas_schema(tmp_path):
    npm = run(
        "npm", "install", "--no-audit", "--no-fund", "--silent", GRAFANA_SCHEMA, TYPESCRIPT, cwd=tmp_path
    )
    assert npm.returncode == 0, npm.stderr
    source = (
        "import type { Dashboard } from '@grafana/schema';\n"
        "// JSON cannot name a TypeScript enum member, so enums are checked by their values.\n"
        "type Json<T> = T extends string ? `${T}`\n"
        "  : T extends number | boolean | null | undefined ? T\n"
        "  : T extends Array<infer U> ? Array<Json<U>>\n"
        "  : T extends object ? { [K in keyof T]: Json<T[K]> } : T;\n"
        "export const dashboard: Json<Dashboard> = "
        + (OPS / "grafana" / "voice-gateway.json").read_text()
        + ";\n"
    )
    (tmp_path / "dashboard.ts").write_text(source)
    (tmp_path / "broken.ts").write_text(source.replace('"title": "Live calls by pod"', '"titel": "x"'))
    flags = [
        "--noEmit",
        "--strict",
        "--target",
        "es2022",
        "--module",
        "esnext",
        "--moduleResolution",
        "bundler",
    ]
    tsc = str(tmp_path / "node_modules" / ".bin" / "tsc")
    result = run(tsc, *flags, "dashboard.ts", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = run(tsc, *flags, "broken.ts", cwd=tmp_path)
    assert "'\"titel\"' does not exist" in broken.stdout  # the check is real


def test_every_dashboard_query_is_valid_promql(tmp_path):
    variables = {"$__rate_interval": "5m", "$namespace": ".*"}
    rules = []
    for index, query in enumerate(dashboard_queries()):
        expression = query
        for name, value in variables.items():
            expression = expression.replace(name, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expression})
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run("promtool", "check", "rules", "queries.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rules) >= 20


def exported_series() -> set[str]:
    """Every sample name the gateway's /metrics can show (from the TYPE lines)."""
    metrics = GatewayMetrics(
        LiveCalls(), max_calls=1, admin_clients=lambda: 0, ready=lambda: True, draining=lambda: False
    )
    names = {"up"}
    suffixes = {"histogram": ("_bucket", "_sum", "_count")}
    for line in metrics.render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {name + suffix for suffix in suffixes.get(kind, ("",))}
    return names


def test_every_metric_the_kit_names_is_one_the_gateway_exports():
    texts = [
        *dashboard_queries(),
        (OPS / "prometheus" / "voice-gateway-rules.yml").read_text(),
        (OPS / "k8s" / "hpa.yaml").read_text(),
        (OPS / "k8s" / "prometheus-adapter-rules.yaml").read_text(),
    ]
    named = {name for text in texts for name in re.findall(r"\b((?:gateway|process)_[a-z_]+)\b", text)}
    assert named - exported_series() == set()
    assert {"gateway_active_calls", "gateway_audio_frames_dropped_total"} <= named


# ---- log shipping ---------------------------------------------------------------------------


def test_rsyslog_accepts_the_shipping_config():
    result = run("rsyslogd", "-N1", "-f", str(OPS / "logging" / "rsyslog-voice-gateway.conf"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rsyslog_parses_files_and_forwards_the_gateways_lines(tmp_path):
    """Container log lines in, as the CRI writes them: JSON events out to files and over TCP."""
    events = [
        {"event": "call.started", "level": "info", "call_sid": "CA1", "audio_format": "pcmu"},
        {"event": "ai.unavailable", "level": "error", "call_sid": "CA1", "reason": "refused"},
        {"event": "call.summary", "level": "info", "call_sid": "CA1", "drops": {"caller_audio": 0}},
    ]
    containers, out, spool = tmp_path / "containers", tmp_path / "out", tmp_path / "spool"
    for folder in (containers, out, spool):
        folder.mkdir()
    log = containers / "voice-gateway-5d9c7b-abcde_voice_gateway-0123abcd.log"
    lines = [f"2026-11-21T07:43:16.938873Z stdout F {json.dumps(event)}" for event in events]
    log.write_text("\n".join([*lines, "2026-11-21T07:43:17.000000Z stdout F not json"]) + "\n")

    collector = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    threading.Thread(target=_collect, args=(collector, received), daemon=True).start()
    config = (OPS / "logging" / "rsyslog-voice-gateway.conf").read_text()
    config = (
        config.replace("/var/log/containers/", f"{containers}/")
        .replace("/var/log/voice-gateway/", f"{out}/")
        .replace("/var/spool/rsyslog", str(spool))
        .replace(
            'target="logs.example.internal" port="5140"',
            f'target="127.0.0.1" port="{collector.getsockname()[1]}"',
        )
    )
    (tmp_path / "rsyslog.conf").write_text(config)
    daemon = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(tmp_path / "rsyslog.conf"), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while b"".join(received).count(b"\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        collector.close()

    forwarded = [json.loads(line) for line in b"".join(received).decode().splitlines()]
    filed = [json.loads(line) for line in (out / "events.json").read_text().splitlines()]
    for shipped in (forwarded, filed):
        assert [event["event"] for event in shipped] == ["call.started", "ai.unavailable", "call.summary"]
        assert shipped[2]["drops"] == {"caller_audio": 0}  # nested fields arrive as JSON, not text
        assert shipped[0]["source_file"] == str(log)
    assert [json.loads(line)["event"] for line in (out / "call-summaries.json").read_text().splitlines()] == [
        "call.summary"
    ]
    assert [json.loads(line)["event"] for line in (out / "errors.json").read_text().splitlines()] == [
        "ai.unavailable"
    ]
    assert (out / "unparsed.log").read_text().strip().endswith("stdout F not json")


def _collect(server: socket.socket, received: list[bytes]) -> None:
    connection, _ = server.accept()
    with connection:
        while data := connection.recv(65536):
            received.append(data)


def test_the_tools_are_real():
    assert shutil.which("promtool"), "promtool: apt-get install prometheus (make test does)"
    assert shutil.which("rsyslogd"), "rsyslogd: apt-get install rsyslog (make test does)"
    assert shutil.which("npm"), "npm is needed to fetch @grafana/schema and TypeScript"
    assert sys.version_info >= (3, 11)

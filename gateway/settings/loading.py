"""Loading settings: built-in defaults, then a TOML file, then environment variables.

The environment names are a contract (users and test harnesses set them). A bad or
missing setting stops start-up with one `ConfigError` line that names the setting as
the user wrote it (`GATEWAY_PORT`, or `[server] port` in the file). Secrets are held in
`Secret`, whose repr never shows the value, so a settings object can be logged whole.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.settings.fields import FIELDS, Field
from gateway.settings.model import DEV_ADMIN_TOKEN, DEV_TWILIO_AUTH_TOKEN, ConfigError, Settings
from gateway.settings.parsers import is_loopback
from gateway.settings.secret import Secret


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from defaults, the TOML file at `path`, then `environ`."""
    environ = os.environ if environ is None else environ
    table = _read_toml(path) if path is not None else {}
    values: dict[str, Any] = {}
    for spec in FIELDS:
        where, raw = _lookup(spec, table, environ, path)
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where} {exc}") from None
    _reject_unknown_keys(table, path)
    return _complete(values, environ)


def _lookup(
    spec: Field, table: Mapping[str, Any], environ: Mapping[str, str], path: Path | None
) -> tuple[str, Any]:
    if spec.env and environ.get(spec.env, "") != "":
        return spec.env, environ[spec.env]
    section: Any = table
    for part in spec.section.split("."):
        section = section.get(part, {}) if isinstance(section, dict) else {}
    if isinstance(section, dict) and spec.key in section:
        return f"{path} [{spec.section}] {spec.key}", section[spec.key]
    return spec.env or f"[{spec.section}] {spec.key}", spec.default


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def _reject_unknown_keys(table: Mapping[str, Any], path: Path | None) -> None:
    known = {(spec.section, spec.key) for spec in FIELDS}
    sections = {spec.section for spec in FIELDS}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and dotted in sections:
                walk(value, dotted)
            elif (prefix, key) not in known:
                raise ConfigError(f"{path} has an unknown setting [{prefix or '-'}] {key}")

    walk(table, "")


def _complete(values: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    development = not values["twilio_auth_token"]  # and, as checked next, loopback only
    if development:
        public_host = urlsplit(values["public_url"]).hostname if values["public_url"] else values["host"]
        if not (is_loopback(values["host"]) and is_loopback(public_host)):
            raise ConfigError(
                "TWILIO_AUTH_TOKEN is required unless GATEWAY_HOST and GATEWAY_PUBLIC_URL are loopback "
                "(without it no webhook signature can be checked)"
            )
        values["twilio_auth_token"] = Secret(DEV_TWILIO_AUTH_TOKEN)
    if development and not values["admin_token"]:
        values["admin_token"] = Secret(DEV_ADMIN_TOKEN)
    if not values["instance_id"]:
        values["instance_id"] = f"{socket.gethostname()}-{os.getpid()}"
    _check_provider(values)
    if values["tools_transfer_to"] and not values["twilio_account_sid"]:
        raise ConfigError(
            "GATEWAY_TRANSFER_TO needs TWILIO_ACCOUNT_SID: transfers go through Twilio's REST API"
        )
    if values["ai_transcription_model"] == "auto":
        values["ai_transcription_model"] = _TRANSCRIPTION_DEFAULTS[values["ai_provider"]]
    return Settings(**values)


# Caller transcripts let a new AI session continue the conversation after a drop. Azure
# OpenAI wants the name of a transcription *deployment*, which only the user knows.
_TRANSCRIPTION_DEFAULTS = {
    "local": "loopback",
    "openai": "gpt-4o-mini-transcribe",
    "azure-openai": "",
    "azure-voice-live": "azure-speech",
}

_PROVIDER_NEEDS = {
    "openai": ("openai_api_key", "OPENAI_API_KEY"),
    "azure-openai": (
        "azure_openai_endpoint",
        "AZURE_OPENAI_ENDPOINT",
        "azure_openai_api_key",
        "AZURE_OPENAI_API_KEY",
    ),
    "azure-voice-live": (
        "azure_voice_live_endpoint",
        "AZURE_VOICE_LIVE_ENDPOINT",
        "azure_voice_live_api_key",
        "AZURE_VOICE_LIVE_API_KEY",
    ),
}


def _check_provider(values: dict[str, Any]) -> None:
    provider = values["ai_provider"]
    needs = _PROVIDER_NEEDS.get(provider, ())
    for name, env in zip(needs[::2], needs[1::2], strict=True):
        if not values[name]:
            raise ConfigError(f"{env} is required when GATEWAY_AI_PROVIDER={provider}")

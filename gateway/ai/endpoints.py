"""Where each realtime provider lives and how it is authenticated.

Providers differ in URL, authentication header and dialect, nothing else:

- openai: `OPENAI_BASE_URL` with ws(s) and `/realtime?model=` (as the openai SDK builds
  it); `Authorization: Bearer`; GA.
- azure-openai: `wss://<resource>.openai.azure.com/openai/v1/realtime?model=<deployment>`;
  `api-key`; GA.
- azure-voice-live: `wss://<resource>/voice-live/realtime?api-version=<v>&model=<model>`;
  `api-key`; the Voice Live dialect.
- local: the in-process agent on loopback; `Authorization: Bearer` with a per-process key; GA.

No `OpenAI-Beta` header is ever sent (since 2026-05-12 it gets the session closed).
Credentials live only in headers, never in URLs, so URLs can be logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from actors.realtime import Dialect
from gateway.settings import Secret, Settings, websocket_url


@dataclass(frozen=True)
class RealtimeEndpoint:
    url: str
    api_key: Secret
    auth_header: str = "Authorization"  # or "api-key" (Azure)
    dialect: Dialect = Dialect.GA

    @classmethod
    def openai(cls, base_url: str, model: str, api_key: Secret) -> RealtimeEndpoint:
        return cls(f"{websocket_url(base_url.rstrip('/'))}/realtime?model={quote(model, safe='')}", api_key)

    @classmethod
    def azure_openai(cls, endpoint: str, deployment: str, api_key: Secret) -> RealtimeEndpoint:
        host = websocket_url(_origin(endpoint))
        return cls(f"{host}/openai/v1/realtime?model={quote(deployment, safe='')}", api_key, "api-key")

    @classmethod
    def azure_voice_live(
        cls, endpoint: str, api_version: str, model: str, api_key: Secret
    ) -> RealtimeEndpoint:
        query = f"api-version={quote(api_version, safe='')}&model={quote(model, safe='')}"
        url = f"{websocket_url(_origin(endpoint))}/voice-live/realtime?{query}"
        return cls(url, api_key, "api-key", Dialect.VOICE_LIVE)

    @classmethod
    def for_provider(cls, settings: Settings) -> RealtimeEndpoint:
        """The endpoint of a cloud provider (the local agent announces its own)."""
        model = settings.ai_model
        if settings.ai_provider == "azure-openai":
            return cls.azure_openai(settings.azure_openai_endpoint, model, settings.azure_openai_api_key)
        if settings.ai_provider == "azure-voice-live":
            return cls.azure_voice_live(
                settings.azure_voice_live_endpoint,
                settings.azure_voice_live_api_version,
                model,
                settings.azure_voice_live_api_key,
            )
        return cls.openai(settings.openai_base_url, model, settings.openai_api_key)

    def headers(self) -> list[tuple[bytes, bytes]]:
        value = self.api_key.reveal()
        if self.auth_header == "Authorization":
            value = "Bearer " + value
        return [(self.auth_header.encode(), value.encode())]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

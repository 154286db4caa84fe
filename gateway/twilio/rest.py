"""Twilio's REST API: the calls the gateway makes, on one shared httpx2 client per process.

httpx2 (the maintained continuation of httpx) runs natively on trio. Requests are
form-encoded with HTTP Basic auth (Account SID and auth token). Only 429 and 5xx answers,
and transport failures, are retried, with exponential backoff; every other error surfaces
as `TwilioRestError` with Twilio's own code and message. The base URL is configurable so
tests point it at a local server that records requests.
"""

from __future__ import annotations

from typing import Any

import httpx2
import structlog
import trio

from actors.call_control import CallControlError
from gateway.settings import Secret
from gateway.twilio import twiml

log = structlog.get_logger("gateway.twilio.rest")

API_VERSION = "2010-04-01"
# A hang-up of a call that is already over is a success: 20404 "not found", 21220 "not in progress".
ALREADY_ENDED = frozenset({20404, 21220})


class TwilioRestError(Exception):
    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}, Twilio error {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class TwilioRest:
    def __init__(
        self,
        client: httpx2.AsyncClient,
        account_sid: str,
        auth_token: Secret,
        base_url: str,
        *,
        attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self._client = client
        self._account_sid = account_sid
        self._auth = (account_sid, auth_token.reveal())
        self._base = f"{base_url.rstrip('/')}/{API_VERSION}/Accounts/{account_sid}"
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def create_call(
        self,
        to: str,
        from_: str,
        *,
        url: str,
        status_callback: str,
        timeout_s: int = 30,
        machine_detection: str = "",
    ) -> dict[str, Any]:
        """Place a call; when answered, Twilio fetches `url` (our voice webhook) as for inbound calls."""
        form: dict[str, str | list[str]] = {
            "To": to,
            "From": from_,
            "Url": url,
            "Method": "POST",
            "StatusCallback": status_callback,
            "StatusCallbackMethod": "POST",
            # Repeated fields, one per event: a single space-separated field stops at "initiated".
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "Timeout": str(timeout_s),
        }
        if machine_detection:
            form["MachineDetection"] = machine_detection
        return await self._post("/Calls.json", form)

    async def update_call(self, call_sid: str, form: dict[str, str]) -> dict[str, Any]:
        return await self._post(f"/Calls/{call_sid}.json", dict(form))

    async def hang_up(self, call_sid: str, *, ringing: bool = False) -> None:
        """End the call; a call still ringing is canceled (completed has no effect before answer)."""
        try:
            await self.update_call(call_sid, {"Status": "canceled" if ringing else "completed"})
        except TwilioRestError as exc:
            if exc.code not in ALREADY_ENDED:
                raise
            log.info("twilio.call_already_ended", call_sid=call_sid, code=exc.code)

    async def redirect(self, call_sid: str, twiml: str) -> None:
        await self.update_call(call_sid, {"Twiml": twiml})

    async def _post(self, path: str, form: dict[str, str | list[str]]) -> dict[str, Any]:
        url = self._base + path
        for attempt in range(1, self._attempts + 1):
            retryable = await self._attempt(url, form)
            if isinstance(retryable, dict):
                return retryable
            if attempt == self._attempts:
                raise retryable
            log.warning("twilio.retrying", path=path, attempt=attempt, error=str(retryable))
            await trio.sleep(self._backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _attempt(self, url: str, form: dict[str, str | list[str]]) -> dict[str, Any] | TwilioRestError:
        """One request: the JSON answer, a retryable error to return, or a final error raised."""
        try:
            response = await self._client.post(url, data=form, auth=self._auth)
        except httpx2.TransportError as exc:
            return TwilioRestError(0, None, f"{type(exc).__name__}: {exc}")
        if response.is_success:
            body: dict[str, Any] = response.json()
            return body
        error = _error(response)
        if response.status_code == 429 or response.status_code >= 500:
            return error
        log.warning(
            "twilio.request_failed", url=url, status=error.status, code=error.code, message=error.message
        )
        raise error


def _error(response: httpx2.Response) -> TwilioRestError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    return TwilioRestError(
        response.status_code, code if isinstance(code, int) else None, str(message or response.text[:200])
    )


class TwilioCallControl:
    """`CallControl` for one call, over the REST API."""

    def __init__(self, rest: TwilioRest, call_sid: str) -> None:
        self._rest = rest
        self._call_sid = call_sid

    async def hang_up(self) -> None:
        try:
            await self._rest.hang_up(self._call_sid)
        except TwilioRestError as exc:
            raise CallControlError(str(exc)) from exc

    async def transfer(self, destination: str) -> None:
        try:
            await self._rest.redirect(self._call_sid, twiml.dial(destination))
        except TwilioRestError as exc:
            raise CallControlError(str(exc)) from exc

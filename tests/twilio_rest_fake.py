"""A Twilio REST API stand-in on a real loopback HTTP server: records requests, answers as told."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import hypercorn.config
import hypercorn.trio
import trio
from quart import request
from quart_trio import QuartTrio


@dataclass
class RestRequest:
    path: str
    form: dict[str, list[str]]
    user: str
    password: str


@dataclass
class FakeTwilioRest:
    requests: list[RestRequest] = field(default_factory=list)
    answers: list[tuple[int, dict]] = field(default_factory=list)  # served in order, then defaults
    url: str = ""

    def app(self) -> QuartTrio:
        app = QuartTrio(__name__)

        @app.post("/2010-04-01/Accounts/<account>/Calls.json")
        async def create_call(account: str):
            created = {"sid": "CA" + secrets.token_hex(16), "account_sid": account, "status": "queued"}
            return await self._record(created, 201)

        @app.post("/2010-04-01/Accounts/<account>/Calls/<call>.json")
        async def update_call(account: str, call: str):
            return await self._record({"sid": call, "account_sid": account, "status": "completed"}, 200)

        return app

    async def _record(self, body: dict, status: int):
        form = await request.form
        credentials = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
        user, _, password = credentials.partition(":")
        self.requests.append(RestRequest(request.path, {k: form.getlist(k) for k in form}, user, password))
        if self.answers:
            status, body = self.answers.pop(0)
        return body, status


@asynccontextmanager
async def fake_twilio_rest() -> AsyncIterator[FakeTwilioRest]:
    fake = FakeTwilioRest()
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(hypercorn.trio.serve, fake.app(), config))
        fake.url = binds[0]
        yield fake
        nursery.cancel_scope.cancel()

"""OpenAPI 3.1 description of the admin REST API, served at /admin/openapi.json."""

from __future__ import annotations

from typing import Any

_CALL_SID = {
    "name": "call_sid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^CA[0-9a-zA-Z]{32}$"},
}
_E164 = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$", "examples": ["+15551234567"]}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad request",
        401: "Missing or wrong admin token",
        404: "No such call",
        409: "The call is not in a state that allows this",
        501: "Twilio REST is not configured",
        502: "Twilio refused (its code is in twilio_code)",
        503: "Draining, or (in a fleet) Redis or the instance that owns the call cannot be reached",
    }
    return {str(status): {"description": text[status], **_json(_ref("Error"))} for status in (401, *statuses)}


def _call_action(summary: str, body: dict[str, Any] | None, ok: int, *statuses: int) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_CALL_SID],
        "responses": {str(ok): {"description": "Done", **_json(_ref("Call"))}, **_errors(*statuses)},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    return {"post": operation}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Trio telephony gateway: admin API", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/admin/calls": {
            "get": {
                "summary": "List calls (live, and ended within the retention time)",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"enum": ["ringing", "connecting", "live", "ending", "ended"]},
                    },
                    {"name": "direction", "in": "query", "schema": {"enum": ["inbound", "outbound"]}},
                ],
                "responses": {
                    "200": {
                        "description": "Calls",
                        **_json(
                            {
                                "type": "object",
                                "required": ["calls"],
                                "properties": {"calls": {"type": "array", "items": _ref("Call")}},
                            }
                        ),
                    },
                    **_errors(400),
                },
            },
            "post": {
                "summary": "Place an outbound call; once answered it is bridged to the AI like inbound ones",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "required": ["to"],
                            "properties": {
                                "to": _E164,
                                "from": {**_E164, "description": "Caller ID; default GATEWAY_CALLER_ID"},
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "Placed (ringing)", **_json(_ref("Call"))},
                    **_errors(400, 501, 502, 503),
                },
            },
        },
        "/admin/calls/{call_sid}": {
            "get": {
                "summary": "One call",
                "parameters": [_CALL_SID],
                "responses": {"200": {"description": "The call", **_json(_ref("Call"))}, **_errors(400, 404)},
            },
        },
        "/admin/calls/{call_sid}/hangup": _call_action(
            "Hang up (or cancel a ringing call)", None, 200, 400, 404, 409, 501, 502
        ),
        "/admin/calls/{call_sid}/transfer": _call_action(
            "Transfer a live call with <Dial>",
            {"type": "object", "required": ["to"], "properties": {"to": _E164}},
            200,
            400,
            404,
            409,
            501,
            502,
        ),
        "/admin/calls/{call_sid}/say": {
            "post": {
                "summary": "Have the AI tell the caller something next",
                "parameters": [_CALL_SID],
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "required": ["text"],
                            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000}},
                        }
                    ),
                },
                "responses": {
                    "202": {
                        "description": "Queued",
                        **_json(
                            {
                                "type": "object",
                                "properties": {"call_sid": {"type": "string"}, "queued": {"type": "boolean"}},
                            }
                        ),
                    },
                    **_errors(400, 404, 409),
                },
            }
        },
        "/admin/drain": {
            "post": {
                "summary": "Stop taking new calls on this instance, or on the one named; live calls go on",
                "requestBody": {
                    "required": False,
                    **_json({"type": "object", "properties": {"instance": {"type": "string"}}}),
                },
                "responses": {
                    "202": {
                        "description": "Draining",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "instance": {"type": "string"},
                                    "draining": {"type": "boolean"},
                                    "live_calls": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **_errors(400, 404, 503),
                },
            }
        },
        "/admin/instances": {
            "get": {
                "summary": "The instances of the fleet (this one alone without Redis)",
                "responses": {
                    "200": {
                        "description": "Instances",
                        **_json(
                            {
                                "type": "object",
                                "properties": {"instances": {"type": "array", "items": _ref("Instance")}},
                            }
                        ),
                    },
                    **_errors(503),
                },
            }
        },
        "/admin/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors()},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "GATEWAY_ADMIN_TOKEN"}
        },
        "schemas": {
            "Call": {
                "type": "object",
                "required": ["call_sid", "direction", "state"],
                "properties": {
                    "call_sid": {"type": "string"},
                    "direction": {"enum": ["inbound", "outbound"]},
                    "state": {"enum": ["ringing", "connecting", "live", "ending", "ended"]},
                    "from_number": {"type": "string"},
                    "to_number": {"type": "string"},
                    "instance": {"type": "string"},
                    "created_at": {"type": "number"},
                    "stream_sid": {"type": "string"},
                    "answered_at": {"type": ["number", "null"]},
                    "live_at": {"type": ["number", "null"]},
                    "ended_at": {"type": ["number", "null"]},
                    "end_reason": {"type": "string"},
                    "twilio_status": {"type": "string"},
                },
            },
            "Instance": {
                "type": "object",
                "required": ["instance", "state", "live_calls"],
                "properties": {
                    "instance": {"type": "string"},
                    "address": {"type": "string"},
                    "state": {"enum": ["serving", "draining"]},
                    "live_calls": {"type": "integer"},
                    "started_at": {"type": "number"},
                    "heartbeat_at": {"type": "number"},
                },
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "twilio_code": {"type": "integer"},
                        },
                    }
                },
            },
        },
    },
}

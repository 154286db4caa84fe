"""Operators: the admin REST API, the control WebSocket, OpenAPI, operator commands, the CLI's client."""

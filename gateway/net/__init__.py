"""Sockets: the front door, the lean WebSocket layer, the hypercorn hand-off, the trio-websocket adapter."""

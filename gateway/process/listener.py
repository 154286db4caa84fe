"""The listening socket, bound by the gateway itself.

Binding it here (not by hypercorn) lets port 0 work and lets accepted sockets inherit
keepalive and `TCP_USER_TIMEOUT`: a peer that stops acknowledging is dropped by the
kernel (trio-stack pitfall 1: hypercorn's shielded writes would otherwise pin a stalled
connection).
"""

from __future__ import annotations

import socket

from gateway.net.transport import keep_alive

LISTEN_BACKLOG = 1024


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    keep_alive(listener)  # Linux: accepted sockets inherit keepalive and TCP_USER_TIMEOUT
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    return listener

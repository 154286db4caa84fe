"""The listening socket, bound by the gateway itself.

Binding it here (not by hypercorn) lets port 0 work and lets accepted sockets inherit
`TCP_USER_TIMEOUT`: a peer that stops acknowledging is dropped by the kernel (trio-stack
pitfall 1: hypercorn's shielded writes would otherwise pin a stalled connection).
"""

from __future__ import annotations

import socket

# A peer that stops acknowledging data is dropped by the kernel after this long.
TCP_USER_TIMEOUT_MS = 10_000
LISTEN_BACKLOG = 1024


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux; accepted sockets inherit it
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    return listener

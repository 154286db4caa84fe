"""The listening socket, bound by the gateway itself.

Binding it here (not by hypercorn) lets port 0 work and lets accepted sockets inherit
keepalive and `TCP_USER_TIMEOUT`: a peer that stops acknowledging is dropped by the
kernel (trio-stack pitfall 1: hypercorn's shielded writes would otherwise pin a stalled
connection).

Workers of one host each bind their own listener to the shared port with SO_REUSEPORT,
so the kernel balances connections between them (hypercorn's workers share one socket
instead, and its parent ends WebSockets 0.2 s after SIGTERM: ../shared/reference/scale-out.md).
"""

from __future__ import annotations

import socket

from gateway.net.transport import keep_alive

LISTEN_BACKLOG = 1024


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket; with `reuse_port`, one of several on the port (the workers of
    `gateway.process.workers`), the kernel spreading new connections between them."""
    listener = bound(host, port, reuse_port=reuse_port)
    keep_alive(listener)  # Linux: accepted sockets inherit keepalive and TCP_USER_TIMEOUT
    listener.listen(LISTEN_BACKLOG)
    return listener


def bound(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock

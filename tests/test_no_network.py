"""The core's tests run offline: outbound sockets are refused, loopback is allowed."""

from __future__ import annotations

import socket

import pytest

def test_outbound_connection_is_refused():
    with pytest.raises(RuntimeError, match="offline"):
        socket.create_connection(("203.0.113.1", 80), timeout=0.1)  # TEST-NET-3, never routed
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RuntimeError, match="offline"):
            s.connect(("93.184.216.34", 443))
        with pytest.raises(RuntimeError, match="offline"):
            s.connect_ex(("2001:db8::1", 443, 0, 0))
    finally:
        s.close()


def test_loopback_still_works():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=2)
        client.close()
    finally:
        server.close()

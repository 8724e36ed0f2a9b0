"""A guard that keeps tests off the real network (our take on PTB's ``tests/auxil/networking.py``).

While ``block_real_network()`` is active, connecting a socket to anything but a loopback address,
or resolving a name other than ``localhost``, raises ``RealNetworkAccess`` and is recorded. The
record matters: PTB turns any exception from its HTTP layer into ``NetworkError``, which a bot may
log and retry, so the guard also fails the test when the block ends. In ``tests/conftest.py``::

    from tests.support.networking import block_real_network

    @pytest.fixture(autouse=True)
    def _no_real_network() -> Iterator[None]:
        with block_real_network():
            yield
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["NetworkGuard", "RealNetworkAccess", "block_real_network", "is_loopback"]


class RealNetworkAccess(RuntimeError):
    """A test tried to reach a non-loopback address."""


def is_loopback(host: object) -> bool:
    """True for 127.0.0.0/8, ::1, ``localhost`` and unix-socket paths."""
    if host is None:
        return True  # getaddrinfo(None, port): the local host
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str):
        return False
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Records attempts to reach the network; ``check()`` fails if there were any."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def refuse(self, what: str) -> RealNetworkAccess:
        with self._lock:
            self.violations.append(what)
        return RealNetworkAccess(f"test tried to reach the real network: {what}")

    def check(self) -> None:
        if self.violations:
            listed = "\n  ".join(self.violations)
            raise AssertionError(f"the test tried to reach the real network:\n  {listed}")


def _address_host(family: int, address: Any) -> object:
    if family == getattr(socket, "AF_UNIX", None):
        return None
    if isinstance(address, tuple) and address:
        return address[0]
    return address


@contextlib.contextmanager
def block_real_network(*, fail_on_exit: bool = True) -> Iterator[NetworkGuard]:
    """Refuse non-loopback connections and DNS look-ups for the duration of the block.

    Yields the ``NetworkGuard``; on exit it raises ``AssertionError`` listing every refused
    attempt (unless ``fail_on_exit=False``, then call ``guard.check()`` yourself).
    """
    guard = NetworkGuard()
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo
    original_create_connection = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        host = _address_host(self.family, address)
        if not is_loopback(host):
            raise guard.refuse(f"connect to {address!r}")
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        host = _address_host(self.family, address)
        if not is_loopback(host):
            raise guard.refuse(f"connect_ex to {address!r}")
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            raise guard.refuse(f"DNS look-up of {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not is_loopback(address[0]):
            raise guard.refuse(f"create_connection to {address!r}")
        return original_create_connection(address, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket.create_connection = create_connection
    try:
        yield guard
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo
        socket.create_connection = original_create_connection
    if fail_on_exit:
        guard.check()

"""Is a listening port free? Checked before a simulator server starts on a fixed port.

pymodbus reports a busy port as ``RuntimeError("Could not start listen ...")`` after logging
the ``OSError``, and asyncua logs a traceback before raising it; checking first turns both
into one :class:`PortInUse` that the commands print as a message.
"""

from __future__ import annotations

import errno
import socket


class PortInUse(OSError):
    """Another process listens on the port a server was asked to use."""

    def __init__(self, what: str, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{what} port {port} on {host} is already in use")
        self.what = what
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


def ensure_free(what: str, host: str, port: int) -> None:
    """Raise :class:`PortInUse` when ``host:port`` cannot be bound (``port`` 0: any is free)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(what, host, port) from None
            raise

"""Why a tag is BAD: the runtime's small vocabulary of reasons, and the one place that turns
an exception into one.

A tag's reason is part of its state: the pipeline publishes a BAD tag again whenever its
reason changes. Reasons are therefore stable strings — no countdowns, no measured durations,
no errno numbers or object reprs that differ between two attempts — so a device that stays
down is published once when it goes down and once when it comes back. The time of the next
attempt and the latest attempt's own error are figures of the device's status
(``Runtime.status()``, ``GET /api/scada/status``), not of its tags.

The vocabulary (docs/tags.md, "Values, quality, deadband"):

- ``not read yet``: the runtime has not read the tag since it started;
- ``device disabled``: the device has ``enabled: false``;
- ``no driver for device type 'x': ...``: nothing can talk to the device;
- ``device offline: <cause> (<where>)``: the device cannot be reached; ``<cause>`` is one of
  :data:`CAUSES` (or a driver's own stable phrase such as ``cannot connect to host:port``),
  kept for the whole outage — the cause it went offline with;
- per point, while the device answers: ``unit 3 did not answer within 1 s``,
  ``exception 2 (illegal data address)`` (Modbus), an OPC-UA status name
  (``BadNodeIdUnknown``), ``stale: no publish from the server within 6 s``,
  ``cannot decode ...``, ``not a finite number``.

Drivers map their library's exceptions to a phrase first (pymodbus' ``ConnectionException``
is ``connection lost``, an OPC-UA status error is its status name) and hand anything else to
:func:`cause`; this module imports no device library.
"""

from __future__ import annotations

import errno
import re
import socket

from .types import DeviceUnavailable, WriteFailed

NOT_READ_YET = "not read yet"
DISABLED = "device disabled"
OFFLINE = "device offline"

#: the causes :func:`cause` answers for the usual network failures
CAUSES = ("connection refused", "connection lost", "no answer within N s", "host unreachable",
          "network unreachable", "unknown host")

_ERRNO_CAUSES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection lost",
    errno.ECONNABORTED: "connection lost",
    errno.EPIPE: "connection lost",
    errno.ENOTCONN: "connection lost",
    errno.ETIMEDOUT: "no answer in time",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EHOSTDOWN: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ENETDOWN: "network unreachable",
}
_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]")


def cause(exc: BaseException, timeout: float | None = None) -> str:
    """A short, stable phrase for why ``exc`` happened (``connection refused``).

    :param timeout: the timeout that expired, when ``exc`` is a timeout (``no answer within
        2 s``)
    """
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, OSError):
        found = _ERRNO_CAUSES.get(exc.errno or 0)
        if found is None and exc.errno is None:
            # asyncio's "Multiple exceptions: [Errno 111] ..., [Errno 111] ..." (IPv4 and v6)
            codes = {int(n) for n in _ERRNO_IN_TEXT.findall(str(exc))}
            found = _ERRNO_CAUSES.get(codes.pop()) if len(codes) == 1 else None
        if found is not None:
            if found == "no answer in time" and timeout:
                return f"no answer within {timeout:g} s"
            return found
        if exc.errno:
            return (exc.strerror or errno.errorcode.get(exc.errno, "error")).lower()
    if isinstance(exc, EOFError):
        return "connection lost"
    text = str(exc)
    if text and isinstance(exc, (DeviceUnavailable, WriteFailed, ValueError)):
        return text  # the driver's own words (stable by the drivers' rule)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def offline(why: str | BaseException, where: str | None = None,
            timeout: float | None = None) -> str:
    """``device offline: <cause> (<where>)``; a reason that already says so is kept as is."""
    text = why if isinstance(why, str) else cause(why, timeout)
    if text.startswith(OFFLINE):
        return text
    return f"{OFFLINE}: {text} ({where})" if where else f"{OFFLINE}: {text}"


def offline_cause(reason: str) -> str:
    """The cause inside ``device offline: <cause>`` (the text itself when it is no such
    reason)."""
    prefix = OFFLINE + ": "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


__all__ = ["CAUSES", "DISABLED", "NOT_READ_YET", "OFFLINE", "cause", "offline",
           "offline_cause"]

"""The one place exceptions become reasons: stable phrases from real socket failures."""

from __future__ import annotations

import asyncio
import socket

import pytest

from engine.scada.reasons import cause, offline, offline_cause
from engine.scada.types import DeviceUnavailable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def refused() -> BaseException:
    try:
        await asyncio.open_connection("127.0.0.1", closed_port())
    except OSError as exc:
        return exc
    raise AssertionError("the port answered")


async def test_a_refused_connection_reads_the_same_every_time() -> None:
    first, second = await refused(), await refused()
    assert str(first) != "connection refused"  # the raw text names the errno and address
    assert cause(first) == cause(second) == "connection refused"
    assert offline(first, "127.0.0.1:5020") == "device offline: connection refused (127.0.0.1:5020)"


async def test_localhost_with_two_addresses_is_still_refused() -> None:
    # asyncio joins one failure per address ("Multiple exceptions: [Errno 111] ...")
    exc = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0), "
                  "[Errno 111] Connect call failed ('127.0.0.1', 1)")
    assert cause(exc) == "connection refused"


async def test_timeouts_name_the_limit_not_the_time_waited() -> None:
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    except TimeoutError as exc:
        assert cause(exc, 2.0) == "no answer within 2 s"
        assert cause(exc) == "no answer in time"


def test_unknown_host_and_lost_connections() -> None:
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo("no-such-host.invalid", 502)
    assert cause(info.value) == "unknown host"
    assert cause(ConnectionResetError(104, "Connection reset by peer")) == "connection lost"
    assert cause(BrokenPipeError(32, "Broken pipe")) == "connection lost"
    assert cause(EOFError()) == "connection lost"


def test_driver_words_are_kept_and_not_wrapped_twice() -> None:
    reason = offline("cannot connect to 10.0.0.5:502")
    assert reason == "device offline: cannot connect to 10.0.0.5:502"
    assert offline(DeviceUnavailable(reason), "elsewhere") == reason
    assert offline(reason) == reason
    assert offline_cause(reason) == "cannot connect to 10.0.0.5:502"
    assert offline_cause("BadNodeIdUnknown") == "BadNodeIdUnknown"


def test_an_unexpected_exception_still_says_what_it_was() -> None:
    assert cause(KeyError("x")) == "KeyError: 'x'"
    assert cause(RuntimeError()) == "RuntimeError"

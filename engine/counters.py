"""Fixed-window counters shared by every worker process of one server (rate limits).

A leaf module (standard library only), so the lean gunicorn master of ``campo serve`` can
create the table without importing the web stack.

The counters live in an anonymous shared memory map created before gunicorn forks its
workers (``campo serve`` makes one and hands it to each worker's app), guarded by one
process-shared lock held for a few microseconds, so a limit counts the requests of all
workers together. A test or a single process simply makes its own.

A hit costs a hash, one lock round trip and three ``struct`` operations (~2 µs), however
far from the limit; flask-limiter's whole-API limit cost 10-16 % of a request.

Table: ``slots`` entries of (key hash, window number, count), open addressing over
``PROBES`` neighbours; an entry whose window is over is free for reuse. When every
neighbour is taken by a live window the key shares the last one (counting more, never
less: a full table errs on the side of refusing).
"""

from __future__ import annotations

import mmap
import multiprocessing
import re
import struct
import time
from dataclasses import dataclass

_SLOT = struct.Struct("<QqQ")  # key hash, window number, count
PROBES = 8


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one hit."""

    allowed: bool
    limit: int
    remaining: int
    #: epoch seconds when the window ends
    reset: float


class SharedCounters:
    """Counters in shared memory; create before forking so every worker sees the same."""

    def __init__(self, slots: int = 16_384) -> None:
        self.slots = slots
        self._mem = mmap.mmap(-1, slots * _SLOT.size)  # MAP_SHARED | MAP_ANONYMOUS
        self._lock = multiprocessing.get_context("fork").Lock()

    @staticmethod
    def _hash(key: str) -> int:
        # str hashes are salted per interpreter, and forked workers share the master's
        # salt: the same key gives the same slot in every process that shares the table
        return (hash(key) & 0xFFFF_FFFF_FFFF_FFFF) or 1

    def hit(self, key: str, amount: int, period: float, now: float | None = None,
            cost: int = 1) -> Verdict:
        """Count ``cost`` requests of ``key`` against ``amount`` per ``period`` seconds."""
        now = time.time() if now is None else now
        window = int(now // period)
        h = self._hash(key)
        base = h % self.slots
        size = _SLOT.size
        mem = self._mem
        with self._lock:
            offset, count, free = -1, 0, -1
            for i in range(PROBES):
                off = ((base + i) % self.slots) * size
                kh, win, n = _SLOT.unpack_from(mem, off)
                if kh == h:
                    offset, count = off, (n if win == window else 0)
                    break
                if free < 0 and (kh == 0 or win != window):
                    free = off
            if offset < 0:
                if free >= 0:
                    offset = free
                else:  # every neighbour is busy: share the last one
                    offset = ((base + PROBES - 1) % self.slots) * size
                    count = _SLOT.unpack_from(mem, offset)[2]
            if count + cost > amount:
                allowed = False
            else:
                count += cost
                allowed = True
            _SLOT.pack_into(mem, offset, h, window, count)
        return Verdict(allowed, amount, max(0, amount - count), (window + 1) * period)

    def clear(self, key: str) -> None:
        """Forget ``key``'s count (e.g. after an admin unlock)."""
        h = self._hash(key)
        base = h % self.slots
        with self._lock:
            for i in range(PROBES):
                off = ((base + i) % self.slots) * _SLOT.size
                if _SLOT.unpack_from(self._mem, off)[0] == h:
                    _SLOT.pack_into(self._mem, off, 0, 0, 0)


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.I)


@dataclass(frozen=True, slots=True)
class Rate:
    """``amount`` per ``period`` seconds, in flask-limiter's notation."""

    amount: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"1200 per minute"``, ``"10/second"``, ``"5 per 2 hours"``; empty: ``None``.

        :raises ValueError: text in another form (a setting's mistake, reported at start).
        """
        if not text.strip():
            return None
        m = _RATE.match(text)
        if m is None:
            raise ValueError(f"rate limit {text!r}: expected 'N per second|minute|hour|day' "
                             "(e.g. '1200 per minute', '5 per 2 hours')")
        count = int(m.group(2) or 1)
        return cls(int(m.group(1)), float(count * _UNITS[m.group(3).lower()]))

"""Helpers for the historian tests: stores on each backend, random data, brute-force answers."""

from __future__ import annotations

import datetime as dt
import random
import struct
from dataclasses import dataclass
from typing import Any

from engine.db import create_engine_for
from engine.historian.catalog import Catalog, TagPolicy
from engine.historian.ingest import Ingest, PathRow
from engine.historian.query import History
from engine.historian.samples import US
from engine.historian.store import Store, open_store

#: "now" for queries, fixed per run (recent: TimescaleDB's policies work on the real clock)
NOW = round(dt.datetime.now(dt.UTC).replace(microsecond=789012).timestamp() * US)
BACKENDS = ["sqlite", "postgresql", "timescaledb"]


@dataclass
class Hist:
    """A store with its catalog, ingest and queries, for one test."""

    store: Store
    catalog: Catalog
    ingest: Ingest
    history: History


def make_hist(url: str, tags: list[TagPolicy]) -> Hist:
    engine = create_engine_for(url)
    store = open_store(engine)
    store.create()
    catalog = Catalog(store)
    catalog.sync(tags)
    return Hist(store, catalog, Ingest(store, catalog), History(store, catalog, clock=lambda: NOW))


def f32(x: float) -> float:
    """``x`` as a float32 register would give it."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def random_series(rng: random.Random, path: str, start: int, end: int, mean_gap_s: float,
                  kind: str = "number") -> list[PathRow]:
    """Samples of one tag at random times in ``[start, end)``."""
    out: list[PathRow] = []
    t = start + rng.randrange(0, int(mean_gap_s * US))
    v = rng.uniform(100, 1000)
    while t < end:
        q = 2 if rng.random() > 0.05 else rng.choice([0, 1])
        if kind == "bool":
            out.append((path, t, rng.random() < 0.5, None, q))
        elif kind == "text":
            out.append((path, t, None, rng.choice(["run", "stop", "trip"]), q))
        else:
            v += rng.gauss(0, 5)
            out.append((path, t, round(v, 2) if rng.random() < 0.5 else f32(v), None, q))
        t += max(1, int(rng.expovariate(1 / (mean_gap_s * US))))
    return out


def brute(samples: list[tuple[int, float]], start: int, end: int, width: int, now: int
          ) -> list[dict[str, Any]]:
    """Every aggregate of every bucket by definition (value held until the next sample)."""
    out = []
    for b in range(start, end, width):
        e = b + width
        inside = [(t, v) for t, v in samples if b <= t < e]
        row: dict[str, Any] = {"ts": b, "count": len(inside)}
        if inside:
            vals = [v for _t, v in inside]
            row.update(avg=sum(vals) / len(vals), min=min(vals), max=max(vals),
                       first=vals[0], last=vals[-1])
        else:
            row.update(avg=None, min=None, max=None, first=None, last=None)
        area = covered = 0.0
        hi = min(e, now)
        for i, (t, v) in enumerate(samples):
            nxt = samples[i + 1][0] if i + 1 < len(samples) else hi
            lo_seg, hi_seg = max(t, b), min(nxt, hi)
            if hi_seg > lo_seg:
                area += float(v) * (hi_seg - lo_seg) / US
                covered += (hi_seg - lo_seg) / US
        row["twa"] = area / covered if covered > 0 else None
        out.append(row)
    return out


def close(a: Any, b: Any, tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(a)), abs(float(b)))

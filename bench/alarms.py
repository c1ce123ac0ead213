"""Alarms: latency to a WebSocket client, rule evaluations per second, replay speed.

A generated site of 10,000 tags (1,000 instances of a 10-tag OPC-UA template; values are fed
to the pipeline directly, no device is polled) with 5,000 alarms
(per instance: two analog rules with hi and lo levels, one expression alarm over two tags).

- ``RESULT alarm_latency_p99_ms``: samples go into the runtime's pipeline at a steady rate
  (5,000 changes/s of background values plus 20 limit crossings/s); the alarm engine sits
  behind its sink queue, writes states and journal to SQLite, publishes on the bus's event
  channel; a WebSocket client of a real ``/api/ws`` (signed in, ``subscribe_alarms``)
  receives the events. Latency: from ``Pipeline.process`` returning the crossing to the
  event arriving on the socket (99th percentile; goal < 50 ms).
- ``RESULT alarm_evals_per_s``: rule evaluations per second of the engine in memory on one
  thread (batches of 1,000 changed tags; goal >= 100,000).
- ``RESULT alarm_replay_speedup``: ``replay`` over a day of history (every tag every
  10 minutes: 576,000 samples of the 4,000 tags the rules read) from the historian's
  store, as ``campo alarms replay`` does: the day is first written through the historian's
  ingest (catalog, rollups) into a SQLite file, then replayed with ``HistorianReader``;
  simulated time / wall time of the replay, reading included (goal >= 1,000).

Run: ``python bench/alarms.py`` (no arguments, < 2 minutes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

INSTANCES = 1_000
SECONDS = 15.0
BACKGROUND_PER_S = 5_000
CROSSINGS_PER_S = 20
PASSWORD = "bench-alarms-password"

TEMPLATE = """template: unit
scan_class: fast
tags:
""" + "".join(f"  t{i}: {{node: 'ns=2;s=${{instance}}.t{i}', type: float32, "
              f"range: [0, 100]}}\n" for i in range(10)) + """alarms:
  a0:
    tag: t0
    analog: {hi: 90, lo: 10}
    deadband: 1
    priority: low
  a1:
    tag: t1
    analog: {hi: 90, lo: 10}
    deadband: 1
    priority: low
  both:
    when: t2 > 95 and t3 > 95
    priority: medium
"""


def project(root: Path) -> Path:
    (root / "tags" / "templates").mkdir(parents=True)
    (root / "tags" / "sites").mkdir(parents=True)
    (root / "tags" / "scan_classes.yaml").write_text("scan_classes:\n  fast: {period: 1s}\n")
    (root / "tags" / "templates" / "unit.yaml").write_text(TEMPLATE)
    lines = ["site: big", "devices:"]
    lines += ["  ua: {type: opcua, endpoint: 'opc.tcp://127.0.0.1:1'}", "instances:"]
    lines += [f"  u{i}: {{template: unit, device: ua}}" for i in range(INSTANCES)]
    (root / "tags" / "sites" / "big.yaml").write_text("\n".join(lines) + "\n")
    return root


class S:
    __slots__ = ("tag", "value", "quality", "ts", "reason")

    def __init__(self, tag: str, value: Any, ts: dt.datetime) -> None:
        self.tag, self.value, self.quality, self.ts, self.reason = tag, value, 2, ts, None


def evals_per_s(compiled: Any) -> float:
    from engine.alarms.engine import AlarmEngine

    engine = AlarmEngine(compiled, None, timer_period=0)
    engine.load()
    tags = sorted(compiled.by_tag)
    rnd = random.Random(1)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    batches = []
    for b in range(200):
        ts = t0 + dt.timedelta(seconds=b)
        batches.append([S(t, rnd.uniform(0, 100), ts) for t in rnd.sample(tags, 1000)])
    start_evals = engine.evaluations
    start = time.process_time()
    for batch in batches:
        engine.process(batch, now=batch[0].ts)
    cpu = time.process_time() - start
    return (engine.evaluations - start_evals) / cpu


def day_of_history(tags: Sequence[str], start: dt.datetime) -> Iterator[Any]:
    from engine.alarms.replay import HistSample

    rnd = random.Random(2)
    step = 600
    for k in range(0, 86_400, step):
        ts = start + dt.timedelta(seconds=k)
        for i, t in enumerate(tags):
            yield HistSample(t, 50 + 45 * (1 if (i + k // step) % 97 == 0 else
                                           rnd.uniform(-0.8, 0.8)), 2,
                             ts + dt.timedelta(microseconds=i))


def historian_replay_speedup(compiled: Any, tags_model: Any, folder: Path
                             ) -> tuple[float, int, float]:
    """Store the day through the historian (SQLite), then replay it from the store.
    Returns the speedup, the samples replayed and the seconds the ingest took."""
    from engine.alarms.replay import HistorianReader, replay
    from engine.db import create_engine_for
    from engine.historian import Catalog, open_store, policies_from
    from engine.historian.ingest import Ingest
    from engine.historian.samples import to_us

    # recent, so that the default retention keeps it
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    db = create_engine_for(f"sqlite:///{folder / 'history.db'}")
    store = open_store(db)
    store.create()
    catalog = Catalog(store)
    catalog.sync(policies_from(tags_model))
    ingest = Ingest(store, catalog)
    t0 = time.perf_counter()
    batch: list[Any] = []
    for h in day_of_history(sorted(compiled.by_tag), start):
        batch.append((h.tag, to_us(h.ts), h.value, None, h.quality))
        if len(batch) >= 50_000:
            ingest.write(batch)
            batch = []
    if batch:
        ingest.write(batch)
    wrote = time.perf_counter() - t0
    result = replay(compiled, HistorianReader(store), start, start + dt.timedelta(days=1),
                    batch_seconds=60)
    db.dispose()
    return result.speedup, result.samples, wrote


def latency(root: Path, tags_model: Any, compiled: Any) -> list[float]:
    from argon2 import PasswordHasher
    from werkzeug.serving import make_server

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
    from wsclient import Client, ConnectionClosed  # the tests' wsproto client

    from engine.alarms.engine import AlarmEngine
    from engine.alarms.store import AlarmStore, ensure_alarm_tables
    from engine.api import create_app
    from engine.auth.hooks import auth_init_hook, authorize, current_username
    from engine.auth.passwords import Passwords
    from engine.auth.users import create_user
    from engine.bus.events import EventHub
    from engine.db import build_metadata, create_engine_for
    from engine.scada.pipeline import Pipeline
    from engine.scada.sinks import QueuedSink
    from engine.scada.types import Quality, Reading
    from engine.settings import Settings
    from metamodel import load

    repo = Path(__file__).resolve().parents[1]
    model = load(repo)
    db = create_engine_for(f"sqlite:///{root / 'campo.db'}")
    build_metadata(model).create_all(db)
    ensure_alarm_tables(db)
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    settings = Settings(project=root, data_dir=root, jwt_secret="bench-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="100000 per minute")
    hub = EventHub()

    def init(app: Any, _api: Any) -> None:
        from engine.bus import InProcessBus
        from engine.live import LiveTags, init_live

        init_live(app, _api, LiveTags(tags_model, InProcessBus(), db))
        app.extensions["campo_events"] = hub

    app = create_app(model, db, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(db, settings, model, hasher=hasher), init])
    with db.begin() as conn:
        create_user(conn, model, username="op", now=dt.datetime.now(dt.UTC),
                    password_hash=Passwords(hasher).hash(PASSWORD), roles=["operator"],
                    sites=["*"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = app.test_client().post("/api/auth/login", json={
        "username": "op", "password": PASSWORD}).json["access_token"]

    engine = AlarmEngine(compiled, AlarmStore(db), timer_period=0.2)
    engine.listeners.append(lambda events: hub.publish("alarms", events))
    pipeline = Pipeline(tags_model.tags.values())
    queued = QueuedSink(engine)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(queued.start(), loop).result(30)
    pipeline.subscribe("**", queued.offer)

    sent: dict[float, float] = {}
    got: list[float] = []
    ws = Client.connect(f"ws://127.0.0.1:{server.server_port}/api/ws?token={token}")
    ws.send(json.dumps({"type": "subscribe_alarms"}))
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                raw = ws.receive(timeout=0.5)
            except ConnectionClosed:
                return
            if raw is None:
                continue
            now = time.perf_counter()
            msg = json.loads(raw)
            if msg.get("type") != "alarms":
                continue
            for e in msg["events"]:
                v = e.get("value")
                if e["action"] == "raise" and v in sent:
                    got.append((now - sent.pop(v)) * 1000)

    threading.Thread(target=receive, daemon=True).start()
    time.sleep(0.5)
    paths = [t.path for t in tags_model.tags.values()]
    watched = [f"big.u{i}.t0" for i in range(INSTANCES)]
    quiet = [p for p in paths if not p.endswith((".t0", ".t1", ".t2", ".t3"))]
    rnd = random.Random(3)
    tick = 0.05
    end = time.monotonic() + SECONDS
    k = 0
    level: dict[str, float] = {}
    while time.monotonic() < end:
        t_start = time.monotonic()
        now = dt.datetime.now(dt.UTC)
        readings = {p: Reading(rnd.uniform(20, 80), Quality.GOOD)
                    for p in rnd.sample(quiet, int(BACKGROUND_PER_S * tick))}
        crossing: dict[str, float] = {}
        for _ in range(max(1, int(CROSSINGS_PER_S * tick))):
            tag = watched[k % len(watched)]
            k += 1
            if level.get(tag, 50.0) > 90:  # back to normal first (no event timed)
                readings[tag] = Reading(50.0, Quality.GOOD)
                level[tag] = 50.0
                continue
            value = round(91 + (k % 1000) / 1000 + k * 1e-6, 6)
            readings[tag] = Reading(value, Quality.GOOD)
            crossing[tag] = value
            level[tag] = value
        pipeline.process(readings, now)
        t = time.perf_counter()
        for v in crossing.values():
            sent[v] = t
        time.sleep(max(0.0, tick - (time.monotonic() - t_start)))
    time.sleep(2.0)
    stop.set()
    ws.close()
    asyncio.run_coroutine_threadsafe(queued.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    server.shutdown()
    db.dispose()
    if sent:
        print(f"# {len(sent)} crossing(s) without an event within the run")
    return got


def main() -> None:
    import logging

    from engine.alarms.compile import compile_alarms
    from metamodel.tags import load_tags

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp))
        t0 = time.perf_counter()
        tags = load_tags(root)
        compiled = compile_alarms(tags)
        print(f"# {len(tags.tags)} tags, {len(compiled.alarms)} alarms, loaded and compiled "
              f"in {time.perf_counter() - t0:.1f} s")
        eps = evals_per_s(compiled)
        speedup, samples, wrote = historian_replay_speedup(compiled, tags, Path(tmp))
        print(f"# replay: {samples} samples over one day from the historian's SQLite store "
              f"(written through its ingest in {wrote:.1f} s)")
        lat = latency(root, tags, compiled)
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
        print(f"# latency over {len(lat)} alarm(s): median {statistics.median(lat):.1f} ms, "
              f"max {lat[-1]:.1f} ms" if lat else "# no latency sample")
        print(f"RESULT alarm_latency_p99_ms {p99:.1f}")
        print(f"RESULT alarm_evals_per_s {eps:.0f}")
        print(f"RESULT alarm_replay_speedup {speedup:.0f}")


if __name__ == "__main__":
    main()

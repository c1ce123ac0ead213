"""Record events on ``/api/ws`` (issue 13, live): the API's committed writes reach the
sockets that watch their entity, filtered per user by read permission and row scope.

Real threaded HTTP servers hand sockets to the hub; writes go through the REST API; on
PostgreSQL a second app with its own engine (as a second web process would) hears the
first one's writes through LISTEN/NOTIFY.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from werkzeug.serving import make_server
from wsclient import Client

from engine.api import create_app, record_events
from engine.auth.hooks import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.db import build_metadata, create_engine_for
from engine.settings import Settings
from engine.wiring.edge import EdgePlugin
from metamodel import load

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pump intake 812"
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
FACILITIES = "/api/wells/facility"
MODEL = load(REPO)


class Web:
    """One app (as one web process) served on a free port."""

    def __init__(self, db_url: str, tmp_path: Path, *, create: bool) -> None:
        settings = Settings(project=REPO, data_dir=tmp_path, jwt_secret="rec-secret-" + "x" * 40,
                            login_rate_limit="1000 per minute",
                            api_rate_limit="100000 per minute", simulate=False)
        self.engine = create_engine_for(db_url)
        if create:
            build_metadata(MODEL).create_all(self.engine)
        self.plugin = EdgePlugin(None, InProcessBus(), self.engine, run_runtime=False)
        self.app = create_app(MODEL, self.engine, settings, **api_hooks(),
                              on_init=[auth_init_hook(self.engine, settings, MODEL,
                                                      hasher=HASHER), self.plugin.init_app])
        self.client = self.app.test_client()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.plugin.stop()
        self.engine.dispose()

    def login(self, user: str) -> str:
        r = self.client.post("/api/auth/login", json={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.json
        return str(r.json["access_token"])

    def call(self, token: str, method: str, url: str, body: Any = None) -> Any:
        r = self.client.open(url, method=method, json=body,
                             headers={"Authorization": f"Bearer {token}"})
        return r

    def socket(self, token: str) -> Client:
        # the events of this process's earlier writes have left (its publisher sends them
        # after their commit): a new socket hears of what happens from now on
        assert record_events.flush(self.engine)
        ws = Client.connect(f"ws://127.0.0.1:{self.server.server_port}/api/ws?token={token}")
        recv(ws, "ready")
        return ws


def recv(ws: Client, kind: str, within: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + within
    while time.monotonic() < end:
        raw = ws.receive(timeout=0.2)
        if raw is not None and (msg := json.loads(raw))["type"] == kind:
            return dict(msg)
    pytest.fail(f"no '{kind}' message within {within} s")


def watch(ws: Client, entity: str = "wells.facility", **extra: Any) -> dict[str, Any]:
    ws.send(json.dumps({"type": "subscribe_records", "entity": entity, **extra}))
    return recv(ws, "subscribed_records")


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Web]]:
    made: list[Web] = []

    def make(create: bool = False) -> Web:
        w = Web(db_url, tmp_path, create=not made or create)
        if not made:
            hashed = HASHER.hash(PASSWORD)
            with w.engine.begin() as conn:
                now = dt.datetime.now(dt.UTC)
                for name, roles, sites in (("adm", ["admin"], ["*"]),
                                           ("opa", ["operator"], ["pad_a"]),
                                           ("opall", ["operator"], ["*"]),
                                           ("svc", ["scada"], ["*"])):
                    create_user(conn, MODEL, username=name, now=now, password_hash=hashed,
                                roles=roles, sites=sites)
        made.append(w)
        return w

    yield make
    for w in reversed(made):
        w.close()


def seed(w: Web, token: str) -> int:
    r = w.call(token, "POST", "/api/wells/oil_field", {"code": "LLL", "name": "Loma"})
    assert r.status_code == 201, r.json
    return int(r.json["id"])


def facility(w: Web, token: str, field: int, code: str, site: str) -> dict[str, Any]:
    r = w.call(token, "POST", FACILITIES, {"code": code, "name": code, "oil_field": field,
                                           "site": site})
    assert r.status_code == 201, r.json
    return dict(r.json)


def test_writes_reach_watching_sockets_after_commit(web: Callable[..., Web]) -> None:
    w = web()
    adm = w.login("adm")
    field = seed(w, adm)
    ws = w.socket(adm)
    assert watch(ws)["entities"] == ["wells.facility"]

    a = facility(w, adm, field, "BAT-1", "pad_a")
    msg = recv(ws, "records")
    assert msg["events"] == [{"entity": "wells.facility", "id": a["id"], "version": 1,
                              "op": "create"}]
    # a refused write (unique code taken: rolled back) announces nothing; the next one does
    r = w.call(adm, "POST", FACILITIES, {"code": "BAT-1", "name": "x", "oil_field": field,
                                         "site": "pad_a"})
    assert r.status_code == 409
    r = w.call(adm, "PATCH", f"{FACILITIES}/{a['id']}", {"name": "Battery one", "version": 1})
    assert r.status_code == 200, r.json
    msg = recv(ws, "records")
    assert msg["events"] == [{"entity": "wells.facility", "id": a["id"], "version": 2,
                              "op": "update"}]
    # no field values travel
    assert "Battery one" not in json.dumps(msg)
    # another entity's writes do not reach this subscription
    r = w.call(adm, "PATCH", f"/api/wells/oil_field/{field}", {"name": "Loma 2"})
    assert r.status_code == 200, r.json
    r = w.call(adm, "DELETE", f"{FACILITIES}/{a['id']}")
    assert r.status_code == 204, r.json
    msg = recv(ws, "records")
    assert msg["events"] == [{"entity": "wells.facility", "id": a["id"], "version": None,
                              "op": "delete"}]
    # after unsubscribing nothing comes
    ws.send(json.dumps({"type": "unsubscribe_records"}))
    assert recv(ws, "unsubscribed_records")["entities"] == []
    facility(w, adm, field, "BAT-2", "pad_a")
    w.call(adm, "PATCH", f"/api/wells/oil_field/{field}", {"name": "Loma 3"})
    ws.send(json.dumps({"type": "subscribe_records", "entity": "wells.oil_field"}))
    assert recv(ws, "subscribed_records")["entities"] == ["wells.oil_field"]
    w.call(adm, "PATCH", f"/api/wells/oil_field/{field}", {"name": "Loma 4"})
    got = recv(ws, "records")["events"]
    assert [e["entity"] for e in got] == ["wells.oil_field"]
    ws.close()


def test_an_operator_of_site_a_hears_nothing_of_site_b(web: Callable[..., Web]) -> None:
    w = web()
    adm = w.login("adm")
    field = seed(w, adm)
    a1 = facility(w, adm, field, "BAT-A1", "pad_a")
    a2 = facility(w, adm, field, "BAT-A2", "pad_a")
    b1 = facility(w, adm, field, "BAT-B1", "pad_b")
    b2 = facility(w, adm, field, "BAT-B2", "pad_b")

    opa = w.socket(w.login("opa"))
    # the ids a client shows are kept only when the scope confirms them (b1 is not)
    watch(opa, ids=[a1["id"], b1["id"]])
    opall = w.socket(w.login("opall"))
    watch(opall)

    # B first, then A: the site-A operator's first batch holds A only
    assert w.call(adm, "PATCH", f"{FACILITIES}/{b2['id']}", {"name": "b2"}).status_code == 200
    assert w.call(adm, "PATCH", f"{FACILITIES}/{a2['id']}", {"name": "a2"}).status_code == 200
    assert [e["id"] for e in recv(opall, "records")["events"]] in (
        [b2["id"]], [b2["id"], a2["id"]])
    assert recv(opa, "records")["events"] == [
        {"entity": "wells.facility", "id": a2["id"], "version": 2, "op": "update"}]
    # a record moved out of the operator's sites: that write is not told either
    assert w.call(adm, "PATCH", f"{FACILITIES}/{a2['id']}", {"site": "pad_b"}).status_code == 200
    # deletes: of records the socket knows in its sites (told of a1 at subscribe) only
    for rec in (b1, b2, a2, a1):
        assert w.call(adm, "DELETE", f"{FACILITIES}/{rec['id']}").status_code == 204
    events = recv(opa, "records")["events"]
    assert events == [{"entity": "wells.facility", "id": a1["id"], "version": None,
                       "op": "delete"}]
    # the operator with every site hears every delete (in one or more batches)
    heard: set[int] = set()
    end = time.monotonic() + 10
    while len(heard) < 4 and time.monotonic() < end:
        heard |= {e["id"] for e in recv(opall, "records")["events"] if e["op"] == "delete"}
    assert heard == {a1["id"], a2["id"], b1["id"], b2["id"]}
    # nothing else is on its way to the site-A operator
    facility(w, adm, field, "BAT-B3", "pad_b")
    a3 = facility(w, adm, field, "BAT-A3", "pad_a")
    assert [e["id"] for e in recv(opa, "records")["events"]] == [a3["id"]]
    opa.close()
    opall.close()


def test_an_entity_the_user_may_not_read_cannot_be_watched(web: Callable[..., Web]) -> None:
    w = web()
    acct = w.socket(w.login("svc"))
    acct.send(json.dumps({"type": "subscribe_records", "entity": "wells.facility"}))
    err = recv(acct, "error")
    assert (err["code"], err["field"]) == (404, "entity")
    assert "wells.facility" in err["message"]
    acct.send(json.dumps({"type": "subscribe_records", "entity": "nope.nothing"}))
    assert recv(acct, "error")["code"] == 404
    acct.send(json.dumps({"type": "subscribe_records", "entity": "wells.pad",
                          "ids": ["1"]}))
    assert recv(acct, "error")["code"] in (400, 404)
    acct.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_web_processes_hear_each_others_writes(web: Callable[..., Web]) -> None:
    one = web()
    two = web()
    adm1, adm2 = one.login("adm"), two.login("adm")
    field = seed(one, adm1)
    ws1, ws2 = one.socket(adm1), two.socket(adm2)
    watch(ws1)
    watch(ws2)
    a = facility(one, adm1, field, "BAT-9", "pad_a")
    want = [{"entity": "wells.facility", "id": a["id"], "version": 1, "op": "create"}]
    assert recv(ws2, "records")["events"] == want
    assert recv(ws1, "records")["events"] == want  # once, by LISTEN, in the writer's too
    assert two.call(adm2, "PATCH", f"{FACILITIES}/{a['id']}", {"name": "x"}).status_code == 200
    for ws in (ws1, ws2):
        assert recv(ws, "records")["events"][0]["version"] == 2
    ws1.close()
    ws2.close()


def test_only_committed_events_leave_and_big_batches_fit_notify(db_url: str) -> None:
    """Straight on the feed: a rolled-back transaction or savepoint announces nothing, a
    commit announces what is left, and 3,000 records fit PostgreSQL's payload limit."""
    import queue

    import sqlalchemy as sa

    from engine.api.record_events import MAX_PAYLOAD, decode, emit, encode
    from engine.live.records import RecordFeed

    payloads = encode("wells.well", "create", [(i, 1) for i in range(3000)])
    assert len(payloads) > 1 and all(len(p.encode()) < MAX_PAYLOAD for p in payloads)
    assert [e.id for p in payloads for e in decode(p)] == list(range(3000))

    engine = create_engine_for(db_url)
    got: queue.Queue[list[Any]] = queue.Queue()
    feed = RecordFeed(engine, got.put).start()
    try:
        assert feed.wait_ready(10)
        with engine.connect() as conn:
            with conn.begin():
                emit(conn, "a.b", "update", [(1, 2)])
                sp = conn.begin_nested()
                emit(conn, "a.b", "update", [(2, 2)])
                inner = conn.begin_nested()
                emit(conn, "a.b", "update", [(5, 2)])
                inner.commit()  # released into sp, then gone with it
                sp.rollback()
                emit(conn, "a.b", "delete", [(3, None)])
            trans = conn.begin()
            emit(conn, "a.b", "update", [(4, 2)])
            trans.rollback()
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            emit(conn, "a.b", "create", [(i, 1) for i in range(10, 3010)])
        events: list[Any] = []
        end = time.monotonic() + 10
        while len(events) < 3002 and time.monotonic() < end:
            try:
                events += got.get(timeout=0.5)
            except queue.Empty:
                pass
        assert [(e.id, e.op) for e in events[:2]] == [(1, "update"), (3, "delete")]
        assert [e.id for e in events[2:]] == list(range(10, 3010))
        with pytest.raises(queue.Empty):
            got.get(timeout=0.5)
    finally:
        feed.stop()
        engine.dispose()



@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_events_arriving_while_a_check_waits_are_sent_after_it(web: Callable[..., Web]) -> None:
    """A scope check held up (here: the table locked by another transaction) does not lose
    or reorder what arrives meanwhile: it goes out once the check is done."""
    import sqlalchemy as sa

    from engine.api.record_events import emit

    w = web()
    adm = w.login("adm")
    field = seed(w, adm)
    a = facility(w, adm, field, "BAT-L", "pad_a")
    opa = w.socket(w.login("opa"))
    watch(opa)
    table = MODEL.entity("wells.facility").table
    with w.engine.connect() as locker:
        locker.begin()
        locker.execute(sa.text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
        with w.engine.begin() as conn:  # the check of this one waits for the lock
            emit(conn, "wells.facility", "update", [(a["id"], 2)])
        time.sleep(0.3)  # the check is running (and waiting); these come meanwhile
        for version in (3, 4):
            with w.engine.begin() as conn:
                emit(conn, "wells.facility", "update", [(a["id"], version)])
            time.sleep(0.1)
        assert opa.receive(timeout=0.5) is None  # nothing passes a check that waits
        locker.rollback()
    seen: list[int] = []
    end = time.monotonic() + 10
    while (not seen or seen[-1] < 4) and time.monotonic() < end:
        seen += [e["version"] for e in recv(opa, "records")["events"]]
    assert seen[0] == 2 and seen[-1] == 4 and seen == sorted(seen)
    opa.close()


def test_a_stream_of_writes_keeps_flowing_while_checks_run(web: Callable[..., Web]) -> None:
    """Batches that arrive while the previous one's scope check runs are sent after it
    (a scoped user makes every batch a database check); the last version always comes."""
    w = web()
    adm = w.login("adm")
    field = seed(w, adm)
    a = facility(w, adm, field, "BAT-S", "pad_a")
    opa = w.socket(w.login("opa"))
    watch(opa)
    for n in range(60):
        r = w.call(adm, "PATCH", f"{FACILITIES}/{a['id']}", {"name": f"n{n}"})
        assert r.status_code == 200, r.json
    last = 0
    end = time.monotonic() + 15
    while last < 61 and time.monotonic() < end:
        for e in recv(opa, "records")["events"]:
            assert e["version"] > last  # in order, the latest per record in each batch
            last = e["version"]
    assert last == 61
    opa.close()


def test_payloads_keep_runs_in_order() -> None:
    """A publisher batch becomes one payload per run of entity and operation, in order: a
    record's create, update and delete never change places, even across entities."""
    from engine.api.record_events import RecordEvent, batch_payloads, decode

    batch = [RecordEvent("a.b", 1, 1, "create"), RecordEvent("a.b", 1, 2, "update"),
             RecordEvent("a.b", 2, 2, "update"), RecordEvent("c.d", 9, 1, "create"),
             RecordEvent("a.b", 1, None, "delete"), RecordEvent("a.b", 3, 4, "update")]
    payloads = list(batch_payloads(batch))
    assert len(payloads) == 5
    assert [e for p in payloads for e in decode(p)] == batch


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_events_leave_after_the_commit_and_survive_a_dropped_connection(db_url: str) -> None:
    """PostgreSQL: the write's own transaction sends no NOTIFY (the publisher does, after
    the commit); concurrent writers' events all arrive, each writer's in order; when the
    publisher's connection is cut, the next batch goes out on a new one."""
    import queue

    import sqlalchemy as sa

    from engine.api.record_events import emit, flush
    from engine.live.records import RecordFeed

    engine = create_engine_for(db_url)
    got: queue.Queue[list[Any]] = queue.Queue()
    feed = RecordFeed(engine, got.put).start()

    def heard(count: int) -> list[Any]:
        events: list[Any] = []
        end = time.monotonic() + 10
        while len(events) < count and time.monotonic() < end:
            try:
                events += got.get(timeout=0.2)
            except queue.Empty:
                pass
        return events

    try:
        assert feed.wait_ready(10)
        with engine.begin() as conn:
            emit(conn, "a.b", "update", [(1, 2)])
            # not queued on the write's COMMIT (engine.db.atcommit) any more
            assert not conn.info.get("campo_at_commit")
        assert [(e.id, e.version) for e in heard(1)] == [(1, 2)]

        def writer(base: int) -> None:
            for version in range(1, 26):
                with engine.begin() as conn:
                    emit(conn, "a.b", "update", [(base, version)])

        threads = [threading.Thread(target=writer, args=(100 + n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = heard(100)
        assert len(events) == 100
        for n in range(4):
            assert [e.version for e in events if e.id == 100 + n] == list(range(1, 26))

        assert flush(engine)
        with engine.connect() as conn:  # cut the publisher's connection
            cut = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND query LIKE 'SELECT pg_notify%'")).scalar()
        assert cut >= 1  # this engine's publisher (and any an earlier test left)
        with engine.begin() as conn:
            emit(conn, "a.b", "delete", [(7, None)])
        assert [(e.id, e.op) for e in heard(1)] == [(7, "delete")]
    finally:
        feed.stop()
        engine.dispose()

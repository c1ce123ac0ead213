"""The audit trail: rows written in the caller's transaction (none for a failed one),
who/ip/request id from the request, change diffs, login/logout/failure/denial rows,
``GET /api/audit`` filters and paging, and immutability (API and database)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.auth import Harness, bearer, demo_table

from engine.audit import audit_table, record
from engine.auth import ensure_platform_tables
from engine.db import create_engine_for

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration


def test_write_and_audit_row_commit_together(harness: Harness) -> None:
    token = harness.tokens("bob")["access_token"]
    r = harness.client.post("/api/test/items", json={"name": "separator", "qty": "12.50"},
                            headers={**bearer(token), "X-Request-ID": "req-write-1"},
                            environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert r.status_code == 201
    row = harness.audit_rows(action="create", entity="demo.item")[0]
    assert (row["user_id"], row["username"], row["source_ip"], row["request_id"],
            row["record_id"]) == (harness.users["bob"], "bob", "198.51.100.4", "req-write-1",
                                  str(r.json["id"]))
    assert row["before"] is None
    assert row["after"] == {"id": r.json["id"], "name": "separator", "qty": "12.50"}
    assert abs(row["ts"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_failed_transaction_leaves_no_audit_row(harness: Harness) -> None:
    token = harness.tokens("bob")["access_token"]
    r = harness.client.post("/api/test/items", json={"name": "tank", "fail": True},
                            headers=bearer(token))
    assert r.status_code == 409
    assert harness.audit_rows(entity="demo.item") == []
    with harness.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demo_table)).scalar() == 0


def test_record_outside_a_request_and_update_diff(db_url: str, tmp_path: Path) -> None:
    engine = create_engine_for(db_url)
    ensure_platform_tables(engine)
    before = {"id": 7, "name": "W-1", "depth": decimal.Decimal("1200.50"), "status": "drilling",
              "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "version": 3}
    after = {**before, "status": "producing", "depth": decimal.Decimal("1200.50"),
             "updated_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "version": 4,
             "spud": dt.date(2026, 1, 2)}
    with engine.begin() as conn:
        rid = record(conn, action="update", entity="production.well", record_id=7,
                     before=before, after=after, username="scada-runtime")
    with engine.begin() as conn:  # a rolled-back transaction takes its row with it
        record(conn, action="delete", entity="production.well", record_id=7, before=after)
        conn.rollback()
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(audit_table))]
    assert len(rows) == 1
    # PostgreSQL sends the row with the COMMIT (engine.db.atcommit): no id before it
    assert rid is None if engine.dialect.name == "postgresql" else rows[0]["id"] == rid
    row = rows[0]
    assert (row["username"], row["user_id"], row["source_ip"], row["request_id"]) == (
        "scada-runtime", None, None, None)
    assert row["before"] == {"status": "drilling"}
    assert row["after"] == {"status": "producing", "spud": "2026-01-02"}
    engine.dispose()


def test_login_logout_failure_and_denial_rows(harness: Harness) -> None:
    harness.login("bob", "nope-nope-nope")
    t = harness.tokens("bob")
    harness.get("/api/audit", t["access_token"])  # operator: denied
    harness.client.post("/api/auth/logout", headers=bearer(t["access_token"]))
    rows = harness.audit_rows()
    got = [(r["action"], r["username"], r["entity"]) for r in rows]
    assert got == [("login.failed", "bob", "campo_user"), ("login", "bob", "campo_session"),
                   ("permission.denied", "bob", None), ("logout", "bob", "campo_session")]
    assert rows[0]["record_id"] == str(harness.users["bob"])
    assert rows[2]["detail"] == {"action": "audit.AuditList", "method": "GET",
                                 "path": "/api/audit"}
    assert rows[3]["record_id"] == t["session_id"]
    assert all(r["source_ip"] == "127.0.0.1" and r["request_id"] for r in rows)


def test_audit_api_filters_and_pages(harness: Harness) -> None:
    with harness.engine.begin() as conn:
        base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        for i in range(12):
            record(conn, action="tag.write" if i % 3 == 0 else "update",
                   entity="tag" if i % 3 == 0 else "plant.gauge", record_id=str(i % 4),
                   username="erin" if i % 2 else "bob", user_id=None,
                   before={"v": i}, after={"v": i + 1}, ts=base + dt.timedelta(hours=i))
    # an admin reads every row; a supervisor only what the generated API's rules let them
    # (engine.api.trail), and this app has no generated API: nothing, logins included
    sue = harness.tokens("alice")["access_token"]
    supervisor = harness.tokens("sue")["access_token"]
    r = harness.get("/api/audit", supervisor)
    assert r.status_code == 200 and r.json["total"] == 0 and r.json["items"] == []

    def q(query: str) -> dict:  # type: ignore[type-arg]
        r = harness.get(f"/api/audit?{query}", sue)
        assert r.status_code == 200, r.json
        return r.json  # type: ignore[no-any-return]

    assert q("entity=tag")["total"] == 4
    assert q("user=erin&entity=plant.gauge")["total"] == 4
    assert q("entity=plant.gauge&record=1")["total"] == 2
    assert q("action=tag.write")["total"] == 4
    window = q("from=2026-03-01T02:00:00Z&to=2026-03-01T05:00:00Z&entity=plant.gauge")
    assert [i["ts"] for i in window["items"]] == ["2026-03-01T04:00:00+00:00",
                                                  "2026-03-01T02:00:00+00:00"]
    page = q("entity=plant.gauge&page=2&page_size=3")
    assert page["total"] == 8 and page["page"] == 2 and len(page["items"]) == 3
    assert page["items"][0]["ts"] == "2026-03-01T07:00:00+00:00"  # newest first
    first = q("entity=tag&page_size=1")["items"][0]
    assert first["before"] == {"v": 9} and first["after"] == {"v": 10}
    assert q("action=login.*")["total"] == 2  # alice's and sue's logins
    one = harness.get(f"/api/audit/{first['id']}", sue)
    assert one.status_code == 200 and one.json == first
    assert harness.get("/api/audit/999999", sue).status_code == 404
    assert harness.get(f"/api/audit/{first['id']}", supervisor).status_code == 404
    # bad query parameters: 400 naming them, with a message, like the generated API
    bad = harness.get("/api/audit?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", sue)
    assert bad.status_code == 400 and "from" in bad.json["errors"]["query"]
    assert "from" in bad.json["message"]
    for query in ("colour=red", "from=yesterday", "from=0001-01-01T00:00:00%2B05:00",
                  "to=0001-01-01T00:00:00%2B05:00", f"user_id={2**63}", f"page={2**63}",
                  "page=", "page_size=0"):
        r = harness.get(f"/api/audit?{query}", sue)
        name = query.split("=")[0]
        assert r.status_code == 400 and name in r.json["errors"]["query"], (query, r.json)
        assert name in r.json["message"], query
    r = harness.get(f"/api/audit/{2**63}", sue)
    assert r.status_code == 400 and "row_id" in r.json["errors"]["path"], r.json


def test_audit_rows_cannot_be_changed_through_the_api(harness: Harness) -> None:
    admin = bearer(harness.tokens("alice")["access_token"])
    row_id = harness.audit_rows()[0]["id"]
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in ("/api/audit", f"/api/audit/{row_id}"):
            r = harness.client.open(path, method=method, headers=admin, json={"action": "x"})
            assert r.status_code == 405, (method, path)
    assert len(harness.audit_rows()) == 1  # alice's login, untouched


def test_audit_rows_are_immutable_in_the_database(harness: Harness) -> None:
    harness.tokens("bob")
    for stmt in (sa.update(audit_table).values(username="mallory"), sa.delete(audit_table)):
        with pytest.raises(sa.exc.DBAPIError, match="immutable"):
            with harness.engine.begin() as conn:
                conn.execute(stmt)
    assert harness.audit_rows()[0]["username"] == "bob"


def test_sqlite_rows_are_stored_as_the_table_statement_stores_them(tmp_path: Path) -> None:
    """The SQLite writer's driver-level INSERT (no statement compiled per write) stores the
    same text as ``sa.insert(audit_table)``: instants, JSON, nulls."""
    from engine.audit.writer import _INSERT

    engine = create_engine_for(f"sqlite:///{tmp_path / 'a.db'}")
    ensure_platform_tables(engine)
    ts = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    after = {"depth": decimal.Decimal("1.5"), "spud": dt.date(2024, 1, 1), "name": "Ñandú"}
    with engine.begin() as conn:
        rid = record(conn, action="create", entity="x.y", record_id=5, after=after, ts=ts,
                     username="u", detail={"why": None})
        conn.execute(_INSERT, {"ts": ts, "action": "create", "user_id": None, "username": "u",
                               "source_ip": None, "request_id": None, "entity": "x.y",
                               "record_id": "5", "before": None,
                               "after": {"depth": "1.5", "spud": "2024-01-01",
                                         "name": "Ñandú"}, "detail": {"why": None}})
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM campo_audit ORDER BY id").all()
    assert rid == rows[0][0] and rows[0][1:] == rows[1][1:]
    assert rows[0][1] == "2026-01-02 06:04:05.678901"
    engine.dispose()


def test_a_sqlite_driver_error_reaches_the_caller_as_sqlalchemys(tmp_path: Path) -> None:
    """The SQLite writer goes through the sqlite3 cursor; its errors still arrive as
    ``sa.exc.DBAPIError`` (what the API's database-error handling catches), and the
    write's transaction rolls back whole."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'a.db'}")
    ensure_platform_tables(engine)
    with engine.begin() as conn:  # the audit trail refuses to store anything for a moment
        conn.exec_driver_sql("CREATE TABLE written (x INTEGER)")
        conn.exec_driver_sql("ALTER TABLE campo_audit RENAME TO campo_audit_away")
    with pytest.raises(sa.exc.OperationalError, match="no such table: campo_audit"):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO written (x) VALUES (1)")
            record(conn, action="create", entity="x.y", record_id=1, after={"a": 1})
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM written").scalar() == 0
    engine.dispose()

"""Statements sent with the COMMIT (:mod:`engine.db.atcommit`) on a real PostgreSQL: a
write's audit row and notice cost no round trip of their own, and leave only with the
commit (not with a rollback, nor a rolled-back savepoint); a failing one fails the commit
as SQLAlchemy's ``DBAPIError`` and nothing of the transaction is kept."""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from engine.audit import audit_table, record
from engine.auth import ensure_platform_tables
from engine.db import create_engine_for
from engine.db.atcommit import at_commit, notify, queues

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = create_engine_for(pg_url)
    ensure_platform_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE thing (id serial PRIMARY KEY, name text)")
    yield engine
    engine.dispose()


def _listen(engine: sa.Engine) -> Any:
    raw = engine.raw_connection()
    conn = raw.driver_connection
    raw.detach()
    conn.autocommit = True
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    conn.execute(f'LISTEN "test_note:{schema}"')
    return conn


def _heard(listener: Any) -> list[str]:
    select.select([listener.pgconn.socket], [], [], 0.5)
    return [n.payload for n in listener.notifies(timeout=0.2, stop_after=16)]


def _audited(engine: sa.Engine) -> list[str | None]:
    with engine.connect() as conn:
        return [r.record_id for r in conn.execute(sa.select(audit_table.c.record_id)
                                                   .order_by(audit_table.c.id))]


def test_audit_and_notice_ride_on_the_commit(engine: sa.Engine) -> None:
    listener = _listen(engine)
    sent: list[str] = []
    with engine.begin() as conn:
        sa.event.listen(engine, "before_cursor_execute", lambda c, _cur, statement, *_a:
                        sent.append(statement.split()[0]) if c is conn else None)
        assert queues(conn)
        conn.exec_driver_sql("INSERT INTO thing (name) VALUES ('W-1')")
        assert record(conn, action="create", entity="t.thing", record_id=1,
                      after={"name": "W-1"}) is None  # no id before the commit
        notify(conn, "test_note:", "one")
        with engine.connect() as other:  # not there before the commit
            assert other.execute(sa.select(sa.func.count()).select_from(audit_table)
                                 ).scalar() == 0
    assert sent == ["INSERT"]  # the audit row and the notice went with the COMMIT
    assert _audited(engine) == ["1"] and _heard(listener) == ["one"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(audit_table)).one()._mapping
    assert (row["before"], row["after"], row["detail"]) == (None, {"name": "W-1"}, None)
    assert row["ts"].tzinfo is not None
    listener.close()


def test_rollbacks_drop_what_they_queued(engine: sa.Engine) -> None:
    listener = _listen(engine)
    with engine.begin() as conn:
        record(conn, action="create", entity="t.thing", record_id="kept-1")
        sp = conn.begin_nested()
        record(conn, action="create", entity="t.thing", record_id="dropped-1")
        notify(conn, "test_note:", "dropped")
        sp.rollback()
        sp = conn.begin_nested()
        inner = conn.begin_nested()
        record(conn, action="create", entity="t.thing", record_id="kept-2")
        inner.commit()
        sp.commit()
        notify(conn, "test_note:", "kept")
    with engine.begin() as conn:
        record(conn, action="create", entity="t.thing", record_id="dropped-2")
        notify(conn, "test_note:", "dropped too")
        conn.rollback()
    assert _audited(engine) == ["kept-1", "kept-2"]
    assert _heard(listener) == ["kept"]
    listener.close()


def test_a_failing_statement_fails_the_commit(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.DBAPIError) as err, engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO thing (name) VALUES ('lost')")
        at_commit(conn, "INSERT INTO no_such_table VALUES (%(v)s)", {"v": 1})
    assert "no_such_table" in str(err.value)
    with engine.begin() as conn:  # the pool's connection is usable again
        assert conn.exec_driver_sql("SELECT count(*) FROM thing").scalar() == 0


def test_outside_a_transaction_at_once(engine: sa.Engine) -> None:
    listener = _listen(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert not queues(conn)
        record(conn, action="login", entity="campo_user", record_id="auto")
        notify(conn, "test_note:", "now")
    assert _audited(engine) == ["auto"] and _heard(listener) == ["now"]
    listener.close()

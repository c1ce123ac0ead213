"""Pool liveness without a pre-ping per checkout: an idle connection that died is replaced."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.db import create_engine_for
from engine.db import tables as db_tables

pytestmark = pytest.mark.integration


def test_no_ping_per_checkout_but_a_dead_idle_connection_is_replaced(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine_for(pg_url)
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, s, *_a: seen.append(s))
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    seen.clear()
    for _ in range(3):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 2")).scalar_one()
    assert seen == ["SELECT 2"] * 3  # no SELECT 1 in front of each checkout
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    admin.dispose()
    monkeypatch.setattr(db_tables, "IDLE_PING_SECONDS", 0.0)  # as if idle for long
    with engine.connect() as conn:  # the pool notices, reconnects, and the request works
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
    engine.dispose()


def test_health_is_computed_at_most_once_a_second(sqlite_url: str, project) -> None:  # type: ignore[no-untyped-def]
    from engine.api import create_app
    from engine.api import health as health_mod
    from metamodel import load

    model = load(project({"modules/m.yaml": "module: m\nentities:\n  thing:\n    fields:\n"
                                            "      name: {type: string}\n"}))
    engine = create_engine_for(sqlite_url)
    app = create_app(model, engine)
    client = app.test_client()
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, s, *_a: seen.append(s))
    for _ in range(20):
        assert client.get("/api/health").status_code == 200
    assert seen.count("SELECT 1") == 1
    assert health_mod.REPORT_CACHE_SECONDS == 1.0
    engine.dispose()

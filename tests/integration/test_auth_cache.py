"""The credential cache: a hit costs no query, and revocations still land within the bound.

The bound (docs/security.md): at once in the process that made the change; on PostgreSQL
in every other process through NOTIFY (tested with a separate OS process making the
change and a cache TTL far longer than the wait); and within ``auth_cache_seconds`` for a
change made behind Campo's back (SQL by hand), on both databases.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.auth import MODULE_YAML, bearer, make_harness

from engine.auth.limits import SharedCounters
from engine.auth.tables import session_table
from metamodel import Model

pytestmark = pytest.mark.integration
pytest_plugins = ("support.auth",)

REPO = Path(__file__).resolve().parents[2]


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, stmt, *_a: seen.append(stmt))
    return seen


def test_a_cached_token_costs_no_query(db_url: str, tmp_path: Path, auth_model: Model) -> None:
    h = make_harness(db_url, tmp_path, auth_model)
    token = h.tokens("bob")["access_token"]
    assert h.get("/api/test/ping", token).status_code == 200  # fills the cache
    seen = _statements(h.engine)
    for _ in range(5):
        r = h.get("/api/test/ping", token)
        assert r.status_code == 200 and r.json["user"] == "bob"
    assert seen == []
    # an API key too
    h.client.get("/api/test/ping", headers={"X-API-Key": h.api_key})
    seen.clear()
    r = h.client.get("/api/test/ping", headers={"X-API-Key": h.api_key})
    assert r.status_code == 200 and r.json["user"] == "scada1" and seen == []
    h.engine.dispose()


def test_revocations_through_campo_apply_at_once(db_url: str, tmp_path: Path,
                                                 auth_model: Model) -> None:
    h = make_harness(db_url, tmp_path, auth_model, auth_cache_seconds=300)
    admin = h.tokens("alice")["access_token"]
    bob = h.tokens("bob")
    assert h.get("/api/test/ping", bob["access_token"]).status_code == 200
    r = h.client.delete(f"/api/auth/sessions/{bob['session_id']}", headers=bearer(admin))
    assert r.status_code == 204
    r = h.get("/api/test/ping", bob["access_token"])
    assert r.status_code == 401 and "revoked" in r.json["message"]
    # role and site changes show at the next request
    erin = h.tokens("erin")["access_token"]
    assert h.get("/api/test/ping", erin).json["sites"] == ["pad7", "pad9"]
    r = h.client.patch(f"/api/auth/users/{h.users['erin']}", json={"sites": ["pad9"]},
                       headers=bearer(admin))
    assert r.status_code == 200
    assert h.get("/api/test/ping", erin).json["sites"] == ["pad9"]
    # logout
    vic = h.tokens("vic")["access_token"]
    assert h.get("/api/test/ping", vic).status_code == 200
    assert h.client.post("/api/auth/logout", headers=bearer(vic)).status_code == 204
    assert h.get("/api/test/ping", vic).status_code == 401
    h.engine.dispose()


def test_changes_behind_campos_back_are_seen_within_the_ttl(db_url: str, tmp_path: Path,
                                                           auth_model: Model) -> None:
    h = make_harness(db_url, tmp_path, auth_model)  # the default bound: 2 s
    bob = h.tokens("bob")
    assert h.get("/api/test/ping", bob["access_token"]).status_code == 200
    with h.engine.begin() as conn:  # SQL by hand: no announcement
        conn.execute(sa.update(session_table).where(session_table.c.id == bob["session_id"])
                     .values(revoked_at=h.clock(), revoked_reason="by hand"))
    assert h.get("/api/test/ping", bob["access_token"]).status_code == 200  # still cached
    h.clock.advance(seconds=h.state.settings.auth_cache_seconds)
    r = h.get("/api/test/ping", bob["access_token"])
    assert r.status_code == 401 and "by hand" in r.json["message"]
    h.engine.dispose()


def _until(check: Callable[[], bool], seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


CHANGE = """
import sys, datetime as dt, sqlalchemy as sa
from engine.db import create_engine_for
from engine.auth.sessions import revoke_session
from engine.auth.users import update_user
from metamodel import load
url, what, arg = sys.argv[1:4]
engine = create_engine_for(url)
with engine.begin() as conn:
    now = dt.datetime.now(dt.UTC)
    if what == "revoke":
        revoke_session(conn, arg, now, "revoked elsewhere")
    else:
        update_user(conn, load(sys.argv[4]), int(arg), now, sites=["pad9"])
engine.dispose()
"""


def test_changes_in_another_process_reach_this_one_through_notify(
        pg_url: str, tmp_path: Path, auth_model: Model) -> None:
    from engine.auth.notify import listen

    h = make_harness(pg_url, tmp_path, auth_model, auth_cache_seconds=300)
    listener = listen(h.engine)
    assert listener is not None and listener.wait_ready(10)
    root = tmp_path / "elsewhere"
    (root / "modules").mkdir(parents=True)
    (root / "modules" / "plant.yaml").write_text(MODULE_YAML)

    def change(what: str, arg: str) -> None:
        subprocess.run([sys.executable, "-c", CHANGE, pg_url, what, arg, str(root)],
                       check=True, cwd=REPO, timeout=60)

    bob = h.tokens("bob")
    assert h.get("/api/test/ping", bob["access_token"]).status_code == 200
    change("revoke", bob["session_id"])
    _until(lambda: h.get("/api/test/ping", bob["access_token"]).status_code == 401, 3.0)

    erin = h.tokens("erin")["access_token"]
    assert h.get("/api/test/ping", erin).json["sites"] == ["pad7", "pad9"]
    change("sites", str(h.users["erin"]))
    _until(lambda: h.get("/api/test/ping", erin).json["sites"] == ["pad9"], 3.0)

    vic = h.tokens("vic")["access_token"]
    assert h.get("/api/test/ping", vic).status_code == 200
    subprocess.run([str(Path(sys.executable).parent / "campo"), "user", "disable", "vic",
                    "--project", str(root), "--database-url", pg_url],
                   check=True, cwd=REPO, timeout=60, capture_output=True)
    _until(lambda: h.get("/api/test/ping", vic).status_code == 401, 3.0)
    h.engine.dispose()


def _hit_three_times(counters: SharedCounters) -> None:
    for _ in range(3):
        counters.hit("api:user:7", 5, 60.0, now=1000.0)


def test_rate_limit_counters_are_shared_by_forked_workers() -> None:
    counters = SharedCounters(slots=64)
    child = multiprocessing.get_context("fork").Process(target=_hit_three_times,
                                                       args=(counters,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    v = counters.hit("api:user:7", 5, 60.0, now=1000.0)
    assert v.allowed and v.remaining == 1
    assert counters.hit("api:user:7", 5, 60.0, now=1000.0).allowed
    refused = counters.hit("api:user:7", 5, 60.0, now=1000.0)
    assert not refused.allowed and refused.reset == 1020.0
    assert counters.hit("api:user:7", 5, 60.0, now=1021.0).allowed  # a new window
    assert counters.hit("api:user:8", 5, 60.0, now=1000.0).remaining == 4


def test_rate_limit_table_full_errs_on_refusing() -> None:
    counters = SharedCounters(slots=8)
    for i in range(40):
        counters.hit(f"k{i}", 1000, 60.0, now=5.0)
    # every slot is live: new keys share one, and are counted, never lost
    verdicts = [counters.hit("late", 2, 60.0, now=5.0) for _ in range(3)]
    assert not verdicts[-1].allowed

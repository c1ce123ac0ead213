"""Naming series on SQLite and PostgreSQL: 20 concurrent creates get 20 consecutive numbers
(no gap, no duplicate), a rolled-back insert gives its number back, one counter per
rendered prefix, bulk creates number in input order."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from support.api import assert_error
from support.rules import RulesEnv, make_rules_env

from engine.api.naming import series_state

pytestmark = pytest.mark.integration

YY = f"{dt.date.today().year % 100:02d}"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> RulesEnv:
    e = make_rules_env(tmp_path / "project", db_url)
    yield e
    e.engine.dispose()


def test_twenty_concurrent_creates_get_consecutive_numbers(env: RulesEnv) -> None:
    n = 20
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    crew = env.create("crew", {"code": "C1", "name": "Alpha"})["id"]
    item = env.create("item", {"code": "BOLT", "price": "2.50"})["id"]

    def create(i: int) -> None:
        client = env.app.test_client()       # one client (and DB connection) per thread
        barrier.wait()
        if i % 2:  # reads links (crew, items) before it writes: needs the write lock first
            r = client.post("/api/works/job", json={
                "crew": crew, "lines": [{"item": item, "description": "x", "qty": "1"}]})
        else:
            r = client.post("/api/works/ticket", json={"site": "PAD7", "code": f"c{i}"})
        results[i] = (r.status_code, r.json)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None and r[0] == 201 for r in results), results
    refs = sorted(r[1]["ref"] for r in results[::2])
    assert refs == [f"PAD7-{YY}-{k:03d}" for k in range(1, n // 2 + 1)]  # no gap, no duplicate
    year = dt.date.today().year
    numbers = sorted(r[1]["number"] for r in results[1::2])
    assert numbers == [f"JOB-{year}-{k:04d}" for k in range(1, n // 2 + 1)]
    with env.engine.connect() as conn:
        assert series_state(conn, "works.ticket") == {f"PAD7-{YY}-{{#}}": n // 2}
        assert series_state(conn, "works.job") == {f"JOB-{year}-{{#}}": n // 2}


def test_rolled_back_create_returns_its_number(env: RulesEnv) -> None:
    first = env.create("ticket", {"site": "PAD7", "code": "A"})
    assert first["ref"] == f"PAD7-{YY}-001"
    # the insert fails after the number was taken (code is unique): nothing is consumed
    body = assert_error(env.post("ticket", {"site": "PAD7", "code": "A"}), 409)
    assert "code" in body["message"]
    assert env.create("ticket", {"site": "PAD7", "code": "B"})["ref"] == f"PAD7-{YY}-002"
    # another prefix has its own counter
    assert env.create("ticket", {"site": "PAD9", "code": "C"})["ref"] == f"PAD9-{YY}-001"
    # bulk: consecutive numbers in input order, per prefix
    r = env.post("ticket/bulk", [{"site": "PAD9", "code": "D"}, {"site": "PAD7", "code": "E"},
                                 {"site": "PAD9", "code": "F"}])
    assert r.status_code == 201, r.json
    assert [i["ref"] for i in r.json["items"]] == [f"PAD9-{YY}-002", f"PAD7-{YY}-003",
                                                   f"PAD9-{YY}-003"]
    # a bulk that fails as a whole consumes nothing
    r = env.post("ticket/bulk", [{"site": "PAD7", "code": "G"}, {"site": "PAD7", "code": "A"}])
    assert_error(r, 409)
    assert env.create("ticket", {"site": "PAD7", "code": "H"})["ref"] == f"PAD7-{YY}-004"
    # the name cannot be chosen by the client, nor changed
    assert_error(env.post("ticket", {"site": "PAD7", "ref": "PAD7-99-999"}), 422)
    assert_error(env.patch(f"ticket/{first['id']}", {"ref": "X"}), 422)
    assert env.patch(f"ticket/{first['id']}", {"site": "PAD8"}).json["ref"] == first["ref"]

"""``__icontains`` folds the case of every script's letters on SQLite as on PostgreSQL
(issue 8.13): SQLite's ``lower()`` and ``LIKE`` fold ASCII only, so ``ü`` did not find
``Über`` there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from support.api import PLANT_YAML, ApiEnv, make_env

from engine.db import create_engine_for

pytestmark = pytest.mark.integration

NAMES = ["Über Pumpe", "über", "MÜLLER 50%", "plain pump", "ÇA VA", "Ωmega", "under_score/ü"]


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    for i, name in enumerate(NAMES):
        e.create("equipment", {"tag": f"E-{i}", "name": name})
    yield e
    e.engine.dispose()


def _names(env: ApiEnv, query: str) -> list[str]:
    r = env.client.get(f"/api/plant/equipment?{query}&fields=name&sort=id&limit=100")
    assert r.status_code == 200, r.json
    return [item["name"] for item in r.json["items"]]


@pytest.mark.parametrize("search, expected", [
    ("ü", ["Über Pumpe", "über", "MÜLLER 50%", "under_score/ü"]),
    ("ÜBER", ["Über Pumpe", "über"]),
    ("müller", ["MÜLLER 50%"]),
    ("ü%", []),                                   # % is a character, not a wildcard
    ("ÜLLER 50%", ["MÜLLER 50%"]),
    ("R_SCORE/Ü", ["under_score/ü"]),             # _ and / too
    ("übe_", []),
    ("ça", ["ÇA VA"]),
    ("ωMEGA", ["Ωmega"]),
    ("PUMP", ["Über Pumpe", "plain pump"]),       # ASCII as before
])
def test_icontains_folds_non_ascii_case(env: ApiEnv, search: str, expected: list[str]) -> None:
    from urllib.parse import quote
    assert _names(env, f"name__icontains={quote(search)}") == expected
    # contains stays case-sensitive
    exact = [n for n in NAMES if search in n]
    assert _names(env, f"name__contains={quote(search)}") == exact


def test_the_sqlite_function_is_on_every_connection(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url, poolclass=sa.pool.NullPool)  # a new connection each
    for _ in range(2):
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT campo_lower('ÜBER Ω')")).scalar() == "über ω"
            assert conn.execute(sa.text("SELECT campo_lower(NULL)")).scalar() is None
    engine.dispose()

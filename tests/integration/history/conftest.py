"""Fixtures of the historian tests: a store on each backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from history_support import BACKENDS, Hist, make_hist

from engine.historian.catalog import TagPolicy


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, str]]:
    """``(backend, url)`` for SQLite, plain PostgreSQL (native partitions) and TimescaleDB."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'campo.db'}"
    elif request.param == "postgresql":
        yield "postgresql", str(request.getfixturevalue("pg_url"))
    else:
        yield "timescaledb", str(request.getfixturevalue("tsdb_url"))


@pytest.fixture
def new_hist(backend_url: tuple[str, str]) -> Iterator[Callable[..., Hist]]:
    """``new_hist(tags)``: a :class:`Hist` on the test's backend (engines disposed after)."""
    made: list[Hist] = []

    def make(tags: list[TagPolicy]) -> Hist:
        h = make_hist(backend_url[1], tags)
        made.append(h)
        return h

    yield make
    for h in made:
        h.store.engine.dispose()

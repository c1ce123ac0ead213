"""Shared fixtures: real PostgreSQL and Mosquitto, and helpers for YAML projects.

Service URLs come from ``CAMPO_TEST_DATABASE_URL`` and ``CAMPO_TEST_MQTT_URL`` (defaults:
PostgreSQL on 127.0.0.1:5432 database ``test``, Mosquitto on 127.0.0.1:1883). A test that
needs an unreachable service is skipped with the reason outside CI and fails when
``CI=true``, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, settings

# the helper modules of tests/support/ get pytest's assertion rewriting like test modules
pytest.register_assert_rewrite("support")

# The machine is shared and noisy: hypothesis must not fail a test because one example was
# slow (DeadlineExceeded / too_slow); bounds that matter are asserted on CPU time by tests.
settings.register_profile("campo", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("campo")

PG_URL = os.environ.get("CAMPO_TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MQTT_URL = os.environ.get("CAMPO_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
#: PostgreSQL with TimescaleDB (``bash ../shared/tools/timescaledb/start.sh``; .ci/run starts it)
TSDB_URL = os.environ.get("CAMPO_TEST_TSDB_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5433/test")
REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every property test (hypothesis ``@given``) is ``slow``: ``-m 'not slow'`` skips the
    fuzzing while developing; README's test command (what CI runs) runs everything."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.slow)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(url: str, default_port: int, what: str) -> None:
    """Skip (or fail in CI) when the service at ``url`` is unreachable."""
    u = urlparse(url.replace("+psycopg", ""))
    host, port = u.hostname or "127.0.0.1", u.port or default_port
    if not _reachable(host, port):
        msg = f"{what} not reachable at {host}:{port}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: services must run; see .ci/run)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server URL (the ``test`` database)."""
    require_service(PG_URL, 5432, "PostgreSQL")
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema for one test (dropped afterwards)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_server_url else "?"
    yield f"{pg_server_url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture(scope="session")
def tsdb_server_url() -> str:
    """The PostgreSQL-with-TimescaleDB server URL (the ``test`` database)."""
    require_service(TSDB_URL, 5433, "PostgreSQL with TimescaleDB "
                    "(bash ../shared/tools/timescaledb/start.sh)")
    return TSDB_URL


@pytest.fixture
def tsdb_url(tsdb_server_url: str) -> Iterator[str]:
    """A fresh schema on the TimescaleDB server (``public``, holding the extension, after it)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(tsdb_server_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield f"{tsdb_server_url}?options=-csearch_path%3D{schema}%2Cpublic"
    with admin.begin() as conn:
        # the schema's policy jobs first: dropping a hypertable while TimescaleDB's scheduler
        # runs one of its jobs can deadlock
        conn.exec_driver_sql("SELECT delete_job(job_id) FROM timescaledb_information.jobs "
                             f"WHERE hypertable_schema = '{schema}'")
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL to a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'campo.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'campo.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The Mosquitto broker URL."""
    require_service(MQTT_URL, 1883, "Mosquitto")
    return MQTT_URL


@pytest.fixture
def project(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write YAML files into a temporary project: ``project({"modules/a.yaml": "..."})``."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "project"
        for rel, text in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return write

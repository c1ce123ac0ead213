"""Fixtures of the browser tests: Debian's Chromium (launched by path through Playwright;
its own browser download is never used) and a real ``campo serve`` of the desk fixture
project on SQLite and PostgreSQL, with users of each role and two pads."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.desk_browser import (
    ADMIN_PASSWORD,
    ARGS,
    CHROMIUM,
    FIXTURE,
    OPEN,
    PASSWORD,
    USERS,
    Served,
    require_chromium,
    serving,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop running in
    # the main thread while it is open, which breaks every asyncio test that runs after.
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(autouse=True)
def _close_contexts() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(f"desk-{request.param}")
    root = tmp / "project"
    shutil.copytree(FIXTURE, root)
    schema = None
    if request.param == "sqlite":
        db = f"sqlite:///{tmp / 'desk.db'}"
    else:
        import sqlalchemy as sa

        base = request.getfixturevalue("pg_server_url")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(base)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in base else "?"
        db = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        with serving(root, db, tmp / "serve.log") as port:
            s = Served(port, request.param, root=root, url=db)
            s.login("admin", ADMIN_PASSWORD)
            for name, role in USERS.items():
                status, body = s.call("POST", "/api/auth/users", {
                    "username": name, "password": PASSWORD, "roles": [role], "sites": ["*"]})
                assert status == 201, body
                s.login(name, PASSWORD)
            for code in ("PZ-12", "QX-7"):
                status, body = s.call("POST", "/api/field/pad", {"code": code, "site": f"s-{code}"})
                assert status == 201, body
            yield s
    finally:
        if schema is not None:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()

"""docs/tutorial.md, followed step by step on PostgreSQL: every file it writes is written,
every command it runs is run (``engine.cli.main`` in the project folder) and checked against
its ``expect``, every request it makes is sent through the real API as a signed-in user."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.auth import FAST_HASHER, PASSWORD, bearer, build_settings
from support.oilfield import REPO

from engine.api import create_app
from engine.auth.hooks import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.cli import main
from engine.db import create_engine_for
from engine.rules import load_project

pytestmark = pytest.mark.integration

TUTORIAL = REPO / "docs" / "tutorial.md"
STEP = re.compile(r"<!-- (step|expect): ?(.*?) -->\n(?:\n?```\w*\n(.*?)```)?", re.S)


def steps() -> list[tuple[str, str, str]]:
    """(kind, argument, block) of every marked step, in order."""
    return [(m[1] if m[1] == "expect" else m[2].split(" ", 1)[0],
             m[2] if m[1] == "expect" else (m[2].split(" ", 1) + [""])[1], m[3] or "")
            for m in STEP.finditer(TUTORIAL.read_text(encoding="utf-8"))]


def test_the_tutorial_has_steps() -> None:
    kinds = [k for k, _, _ in steps()]
    assert kinds.count("write") == 3 and kinds.count("append") == 1
    assert kinds.count("run") == 4 and kinds.count("request") == 2


def test_follow_the_tutorial(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "project"
    for part in ("modules", "screens", "tags", "demo"):
        shutil.copytree(REPO / part, root / part)
    monkeypatch.chdir(root)
    monkeypatch.setenv("CAMPO_DATABASE_URL", pg_url)
    output = ""
    client = headers = engine = None
    for kind, arg, block in steps():
        if kind == "write":
            (root / arg).parent.mkdir(parents=True, exist_ok=True)
            (root / arg).write_text(block, encoding="utf-8")
        elif kind == "append":
            with (root / arg).open("a", encoding="utf-8") as fh:
                fh.write(block)
        elif kind == "run":
            output = ""
            for line in block.strip().splitlines():
                argv = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', line)]
                assert argv[0] == "campo"
                code = main(argv[1:])
                out = capsys.readouterr()
                assert code == 0, (line, out.err[-1500:])
                output += out.out
        elif kind == "expect":
            assert arg in output, (arg, output[-1500:])
        elif kind == "request":
            if client is None:
                client, headers, engine = _signed_in(root, pg_url, tmp_path)
            method, path, expect = arg.split(" ")
            body = json.loads(block) if block.strip() else None
            if body and "well" in body:     # the ids of this database's W1 and first product
                body["well"] = _first_id(client, headers, "/api/wells/well?name=W1")
                body["product"] = _first_id(client, headers, "/api/chemicals/product?code=CI-200")
            r = client.open(path, method=method, json=body, headers=headers)
            assert r.status_code == int(expect.split("=")[1]), r.json
            if r.status_code == 422:
                assert r.json["errors"]["json"]["litres"] == [
                    "More than 200 L/d in one well: check the dosing pump"]
            else:
                groups = {i["group"]["product"]: i for i in r.json["items"]}
                assert len(groups) == 2 and all(float(i["sum"]["cost"]) > 0
                                                for i in groups.values())
    assert client is not None and engine is not None
    engine.dispose()
    # a second load creates nothing (the tutorial says so)
    assert main(["demo", "load"]) == 0
    assert "0 records created" in capsys.readouterr().out


def _signed_in(root: Path, url: str, tmp_path: Path
               ) -> tuple[object, dict[str, str], sa.Engine]:
    model = load_project(root)
    engine = create_engine_for(url)
    settings = build_settings(tmp_path)
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    state = app.extensions["campo_auth"]
    with engine.begin() as conn:
        create_user(conn, model, username="opal", now=state.now(), roles=["engineer"],
                    sites=["sim_pad"], password_hash=state.passwords.hash(PASSWORD))
    client = app.test_client()
    r = client.post("/api/auth/login", json={"username": "opal", "password": PASSWORD})
    return client, bearer(r.json["access_token"]), engine


def _first_id(client: object, headers: dict[str, str], url: str) -> int:
    r = client.get(url, headers=headers)  # type: ignore[attr-defined]
    return int(r.json["items"][0]["id"])

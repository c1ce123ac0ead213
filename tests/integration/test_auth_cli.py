"""``campo user|role|apikey``: passwords never from argv, changes audited, keys usable."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.auth import MODULE_YAML, build_app, build_settings

from engine.audit import audit_table
from engine.auth.users import find_user
from engine.cli import main
from engine.db import create_engine_for
from metamodel import load

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(db_url: str, project: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    root = project({"modules/plant.yaml": MODULE_YAML})

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, "--project", str(root), "--database-url", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    run.root = root  # type: ignore[attr-defined]
    run.url = db_url  # type: ignore[attr-defined]
    return run


def test_user_create_list_passwd_disable(cli: Any, tmp_path: Path) -> None:
    code, out, _ = cli("user", "create", "Root", "--role", "admin", "--password-stdin",
                       stdin="root-password-1\n")
    assert code == 0 and "created user root (id 1) with roles admin" in out
    code, out, _ = cli("user", "create", "op1", "--role", "engineer", "--site", "pad7",
                       "--password-stdin", stdin="op1-password\n")
    assert code == 0
    code, out, _ = cli("user", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "ROLES", "SITES", "STATE"]
    assert lines[1].split() == ["op1", "engineer", "pad7", "active"]
    assert lines[2].split() == ["root", "admin", "-", "active"]

    engine = create_engine_for(cli.url)
    app, _ = build_app(engine, build_settings(tmp_path), load(cli.root))
    c = app.test_client()

    def login(name: str, pw: str) -> int:
        return c.post("/api/auth/login", json={"username": name, "password": pw}).status_code

    assert login("root", "root-password-1") == 200
    assert login("op1", "op1-password") == 200
    code, out, _ = cli("user", "passwd", "op1", "--password-stdin", stdin="op1-new-password\n")
    assert code == 0 and "1 session(s) revoked" in out
    assert login("op1", "op1-password") == 401
    assert login("op1", "op1-new-password") == 200
    code, out, _ = cli("user", "disable", "op1")
    assert code == 0 and "op1 disabled; 1 session(s) revoked" in out
    assert login("op1", "op1-new-password") == 401
    assert cli("user", "enable", "op1")[0] == 0
    assert login("op1", "op1-new-password") == 200
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_table.c.action, audit_table.c.username)
                            .where(audit_table.c.entity == "campo_user",
                                   audit_table.c.action.in_(["create", "update"]))
                            .order_by(audit_table.c.id)).all()
    assert [a for a, _ in rows] == ["create", "create", "update", "update", "update"]
    assert all(u.startswith("cli") for _, u in rows)
    engine.dispose()


def test_user_errors_are_messages_not_tracebacks(cli: Any) -> None:
    code, _, err = cli("user", "create", "x1", "--role", "operater", "--password-stdin",
                       stdin="long-enough-pw\n")
    assert code == 1 and "unknown role 'operater' (did you mean 'operator'?)" in err
    code, _, err = cli("user", "create", "x1", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 8 characters; nothing changed" in err
    code, _, err = cli("user", "passwd", "ghost", "--password-stdin", stdin="long-enough-pw\n")
    assert code == 1 and "no user named 'ghost'" in err
    assert cli("user", "create", "x1", "--password-stdin", stdin="long-enough-pw\n")[0] == 0
    code, _, err = cli("user", "create", "X1", "--password-stdin", stdin="long-enough-pw\n")
    assert code == 1 and "already exists" in err


def test_password_prompt_must_match(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["prompted-pw-1", "prompted-pw-2"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(answers))
    code, _, err = cli("user", "create", "pat")
    assert code == 1 and "do not match" in err
    answers = iter(["prompted-pw-1", "prompted-pw-1"])
    assert cli("user", "create", "pat")[0] == 0


def test_last_admin_cannot_be_disabled_from_the_cli(cli: Any) -> None:
    cli("user", "create", "root", "--role", "admin", "--password-stdin", stdin="root-pw-123\n")
    code, _, err = cli("user", "disable", "root")
    assert code == 1 and "last active admin" in err


def test_role_list(cli: Any) -> None:
    cli("user", "create", "e1", "--role", "engineer", "--password-stdin", stdin="e1-password\n")
    code, out, _ = cli("role", "list")
    assert code == 0
    table = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert set(table) == {"admin", "supervisor", "operator", "viewer", "scada", "engineer"}
    assert table["engineer"][1:4] == ["custom", "operator", "1"]
    assert table["admin"][1:4] == ["builtin", "-", "0"]


def test_apikey_create_list_revoke(cli: Any, tmp_path: Path) -> None:
    code, out, _ = cli("user", "create", "rtu1", "--service", "--role", "scada")
    assert code == 0 and "campo apikey create rtu1" in out
    code, out, _ = cli("apikey", "create", "rtu1", "--name", "pad7 gateway")
    assert code == 0
    key = out.strip().splitlines()[-1]
    assert key.startswith("campo_")
    engine = create_engine_for(cli.url)
    app, _ = build_app(engine, build_settings(tmp_path), load(cli.root))
    c = app.test_client()
    r = c.get("/api/auth/me", headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json["user"]["username"] == "rtu1"
    code, out, _ = cli("apikey", "list")
    assert key not in out
    assert out.splitlines()[1].split()[0:2] == ["1", "rtu1"] and out.rstrip().endswith("live")
    assert cli("apikey", "revoke", "1")[0] == 0
    assert c.get("/api/auth/me", headers={"X-API-Key": key}).status_code == 401
    code, _, err = cli("apikey", "revoke", "1")
    assert code == 1 and "no live API key with id 1" in err
    with engine.connect() as conn:
        assert find_user(conn, "rtu1").password_hash is None  # type: ignore[union-attr]
    engine.dispose()


def test_passwords_are_not_accepted_on_the_command_line(cli: Any) -> None:
    with pytest.raises(SystemExit):
        cli("user", "create", "x2", "--password", "in-argv-pw")

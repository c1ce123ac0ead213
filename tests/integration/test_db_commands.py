"""``campo plan`` and ``campo migrate`` end to end, through :func:`engine.cli.main`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.cli import main
from engine.db import create_engine_for
from engine.db.migrate import apply_on_start
from metamodel import load

pytestmark = pytest.mark.integration

V1 = """
module: m
entities:
  tank:
    fields:
      code: {type: string, max_length: 16, required: true, unique: true}
      level: {type: float}
      remark: {type: string, max_length: 40}
"""
V2 = V1.replace("      remark: {type: string, max_length: 40}\n", "")


def campo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def fill(url: str) -> None:
    eng = create_engine_for(url)
    with eng.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO m_tank (created_at, updated_at, code, level, remark) "
            "VALUES ('2025-01-01 00:00:00', '2025-01-01 00:00:00', 'T-1', 3.5, 'keep me')"))
    eng.dispose()


def test_plan_and_migrate(project: Any, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = project({"modules/m.yaml": V1})
    args = ("--project", str(root), "--database-url", db_url)
    code, out, _ = campo(capsys, "plan", *args)
    assert code == 0 and "+ create table m_tank (" in out
    code, out, _ = campo(capsys, "migrate", *args, "-m", "first tanks")
    assert code == 0 and "applied 2 change(s)" in out
    assert [p.name.split("_", 3)[-1] for p in (root / "migrations/versions").glob("*.py")] == [
        "first_tanks.py"]
    code, out, _ = campo(capsys, "plan", *args)
    assert code == 0 and out.startswith("No changes: the database matches the model")
    fill(db_url)
    project({"modules/m.yaml": V2})
    code, out, err = campo(capsys, "migrate", *args)
    assert code == 1
    assert "! drop column m_tank.remark  [DESTRUCTIVE]" in out
    assert "blast radius: 1 row(s) in m_tank, 1 non-null value(s) in remark" in out
    assert "--allow-data-loss" in err
    assert len(list((root / "migrations/versions").glob("*.py"))) == 1
    code, out, _ = campo(capsys, "migrate", *args, "--allow-data-loss")
    assert code == 0 and "drop column m_tank.remark" in out
    code, out, _ = campo(capsys, "migrate", *args)
    assert code == 0 and out.startswith("No changes")


def test_history_with_a_destructive_revision_needs_the_flag_elsewhere(
        project: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project({"modules/m.yaml": V1})
    first = f"sqlite:///{tmp_path / 'dev.db'}"
    assert campo(capsys, "migrate", "--project", str(root), "--database-url", first)[0] == 0
    project({"modules/m.yaml": V2})
    assert campo(capsys, "migrate", "--project", str(root), "--database-url", first,
                 "--allow-data-loss")[0] == 0
    site = f"sqlite:///{tmp_path / 'site.db'}"
    code, out, err = campo(capsys, "migrate", "--project", str(root), "--database-url", site)
    assert code == 1 and "lose data" in out + err
    code, out, _ = campo(capsys, "migrate", "--project", str(root), "--database-url", site,
                         "--allow-data-loss")
    assert code == 0 and out.count("applied revision") == 2 and "No changes" in out
    assert len(list((root / "migrations/versions").glob("*.py"))) == 2


def test_unreachable_database_is_a_message(project: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = project({"modules/m.yaml": V1})
    code, _, err = campo(capsys, "plan", "--project", str(root), "--database-url",
                         "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert code == 1 and err.startswith("database error on postgresql+psycopg://")
    assert "(nothing was changed)" in err


def test_reserved_registry_name_is_refused(project: Any, sqlite_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = project({"modules/c.yaml": "module: campo\nentities:\n  tables:\n    fields:\n"
                                      "      x: {type: int}\n"})
    code, _, err = campo(capsys, "plan", "--project", str(root), "--database-url", sqlite_url)
    # the loader refuses the module before the planner could create campo_tables
    assert code == 1
    assert "modules/c.yaml:1:9: module: module name 'campo' is reserved" in err


def test_concurrent_starts_apply_once(project: Any, db_url: str) -> None:
    root = project({"modules/m.yaml": V1})
    model = load(root)
    engine = create_engine_for(db_url)
    results: list[Any] = []

    def start() -> None:
        try:
            results.append(apply_on_start(engine, model, root))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    engine.dispose()
    assert sorted(len(r) for r in results) == [0, 2], results
    assert len(list((root / "migrations/versions").glob("*.py"))) == 1

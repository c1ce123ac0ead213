"""The repository's oil-field modules (wells, reservoir, drilling, production, interventions):
every module validates, migrates on SQLite and PostgreSQL from an empty database, and its
desk layouts match the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.rules import load_project
from metamodel.layout import load_layouts

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OILFIELD = ("wells", "reservoir", "drilling", "production", "interventions")


def copy_project(dest: Path) -> Path:
    """The repository's modules, screens and tags in a scratch folder (migrations go there)."""
    for part in ("modules", "screens", "tags"):
        shutil.copytree(REPO / part, dest / part)
    return dest


def test_oilfield_modules_are_loaded_with_layouts() -> None:
    model = load_project(REPO)
    present = {m for m in OILFIELD if m in model.modules}
    assert present >= {"wells", "reservoir"}
    layouts = load_layouts(REPO, model)
    for module in present:
        ents = [q for q, e in model.entities.items()
                if q.startswith(f"{module}.") and e.parent is None]
        assert ents and all(q in layouts.lists for q in ents), module


def test_oilfield_modules_migrate(db_url: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_project(tmp_path / "project")
    args = ["--project", str(root), "--database-url", db_url]
    assert main(["migrate", *args, "-m", "oil field"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "create table wells_well" in out and "create table reservoir_pvt_analysis" in out
    assert main(["plan", *args]) == 0
    assert capsys.readouterr().out.startswith("No changes")

"""The import contracts of pyproject.toml hold, and they catch a forbidden import.

``lint-imports`` runs here so that the test suite (and so CI) checks the layers; the second
test plants a forbidden import in a temporary copy of the packages and expects a failure,
so a contract that silently stopped checking would show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the project at ``root`` (its own copy of the packages)."""
    assert LINT_IMPORTS.is_file(), f"{LINT_IMPORTS}: install the test extras ('.[test]')"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    assert "engine layers: each package imports only the layers below it KEPT" in done.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The packages and pyproject.toml copied to a temporary project."""
    ignore = shutil.ignore_patterns("__pycache__", "static")
    for package in ("engine", "metamodel"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


LAYERS = "engine layers: each package imports only the layers below it BROKEN"


@pytest.mark.parametrize(("module", "line", "broken", "named"), [
    # live and scada are independent siblings
    ("engine/live/service.py", "from engine.scada.runtime import Runtime", LAYERS,
     "engine.live.service -> engine.scada.runtime"),
    # auth sits below scada
    ("engine/auth/users.py", "import engine.scada.runtime", LAYERS,
     "engine.auth.users -> engine.scada.runtime"),
    # nothing below the CLI imports the CLI
    ("engine/db/tables.py", "from engine.cli import main", LAYERS,
     "engine.db.tables -> engine.cli"),
    # a cycle inside engine.api
    ("engine/api/resource.py", "from .views import module_blueprints",
     "engine.api has no import cycles among its modules BROKEN", ".resource -> .views"),
])
def test_a_forbidden_import_fails(copy: Path, module: str, line: str, broken: str,
                                  named: str) -> None:
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    done = lint_imports(copy)
    assert done.returncode == 1, done.stdout
    assert broken in done.stdout
    assert named in done.stdout  # the report names the import

"""``campo validate``: every problem in one run, exit code 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "defs"
INVALID = FIXTURES / "invalid"


def test_valid_project(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "valid" / "full")]) == 0
    out = capsys.readouterr()
    assert (out.out, out.err) == ("ok: 3 modules, 5 entities, 8 roles\n", "")


@pytest.mark.parametrize("case", ["broken_field_does_not_hide_others", "yaml_syntax_error"])
def test_invalid_project_prints_the_golden_report(
        capsys: pytest.CaptureFixture[str], case: str) -> None:
    assert main(["validate", str(INVALID / case)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (INVALID / f"{case}.expected").read_text(encoding="utf-8")


def test_project_option_and_console_script(tmp_path: Path) -> None:
    """The installed entry point, as a consultant runs it: stderr report, exit 1."""
    case = INVALID / "unknown_field_type"
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "validate", "--project", str(case)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (INVALID / "unknown_field_type.expected").read_text(encoding="utf-8")
    assert "Traceback" not in proc.stderr


def test_missing_folders_are_user_errors(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err == f"{tmp_path / 'nope'}: no such folder\n"
    assert main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"{tmp_path}: no modules/ folder here; give the project folder "
        "(the one that contains modules/)\n")

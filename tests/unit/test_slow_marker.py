"""Fuzz and property tests carry the ``slow`` marker, and CI still runs them: README's test
command (which ``.ci/run`` runs verbatim) selects no marker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_test_command_runs_every_marker() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- test-command -->", 1)[1].split("```sh\n", 1)[1].split("```")[0]
    pytest_args = block.split("-m pytest", 1)[1]
    assert not re.search(r"\s-m\s|not slow|--deselect|\s-k\s", pytest_args), block


def test_property_and_fuzz_tests_are_slow() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "slow", "tests/unit/engine/test_expr_fuzz.py",
         "tests/unit/engine/test_scada_planner.py", "tests/integration/test_api_fuzz.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    picked = done.stdout
    assert "test_expr_fuzz.py::test_random_text" in picked
    assert "test_scada_planner.py::test_matches_exhaustive_search" in picked
    assert "test_api_fuzz.py::test_fuzz_every_operation" in picked
    assert "test_the_audit_hook_sees_what_it_should" not in picked  # not a property test
    assert "test_bus_time" not in picked

"""Settings from the environment: a variable that does not parse is a message, not a trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAMPO_SIM_MODBUS_PORT", "fifty")
    assert main(["validate", str(REPO)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("CAMPO_SIM_MODBUS_PORT: expected a valid integer")
    assert err.rstrip().endswith("got 'fifty'") and "Traceback" not in err
    monkeypatch.setenv("CAMPO_SIM_MODBUS_PORT", "5021")
    assert main(["validate", str(REPO)]) == 0

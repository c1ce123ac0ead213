"""Which failures of a batch say "this data cannot be stored" (skipped after a few strikes)
and which say "the database is away" (retried for ever), and that an SQLite web process
never loads psycopg or Alembic for them."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import sqlalchemy as sa

from engine.historian.writer import is_data_error


def test_data_errors_are_told_from_outages() -> None:
    assert is_data_error(psycopg.DataError("numeric field overflow"))
    assert is_data_error(psycopg.errors.NumericValueOutOfRange("out of range"))
    assert is_data_error(sa.exc.DataError("INSERT", {}, Exception("bad")))
    assert is_data_error(OverflowError("too big"))
    assert not is_data_error(psycopg.OperationalError("connection refused"))
    assert not is_data_error(sa.exc.OperationalError("SELECT", {}, Exception("gone")))
    assert not is_data_error(ConnectionResetError())


def test_importing_the_historian_and_startup_loads_neither_psycopg_nor_alembic() -> None:
    code = ("import sys, engine.historian, engine.wiring.startup, engine.wiring.history; "
            "print(sorted(m for m in ('psycopg', 'alembic', 'mako') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"

"""The error every command raises for a user's mistake; the CLI prints it.

A leaf module (it imports nothing of ours), like Alembic's ``util.exc.CommandError``: the
packages below the CLI (db, rules, scada, auth, the wiring) raise :class:`UserError` and
:func:`engine.cli.main` catches it, so nothing below the CLI imports the CLI.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake of the person running the command: printed, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code

"""Exceptions of the migration engine; every one derives from :class:`MigrationError`."""

from __future__ import annotations


class MigrationError(Exception):
    """A migration that cannot run; the message says why and what to do."""


class PlanError(MigrationError):
    """The model cannot be planned at all (e.g. it claims a name Campo reserves)."""


class RevisionError(MigrationError):
    """The migrations folder and the database disagree (unknown revision, several heads)."""


class DestructiveChange(MigrationError):
    """The plan loses data and ``allow_data_loss`` was not given; carries the plan text."""

    def __init__(self, plan_text: str) -> None:
        super().__init__(plan_text)
        self.plan_text = plan_text


class MigrationBlocked(MigrationError):
    """The rows in the database do not allow a step (duplicates, empty required values)."""

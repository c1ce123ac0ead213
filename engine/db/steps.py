"""What a migration plan is made of: :class:`Step` (what people read) and :class:`Item`
(what is rendered into the revision), collected in a :class:`Plan`.

A step is one change a person approves: ``+ add column showcase_asset.notes TEXT``. It owns
the items that carry it out, each an Alembic operation or a few lines of Python, tagged with
the phase that orders it in the revision (table renames first, drops last).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Phase(IntEnum):
    """Order of the work in a revision."""

    RENAME_TABLES = 0
    CREATE = 1
    PREPARE = 2      # data fixes that must run before a type change (truncating strings)
    #: column renames get a batch of their own: in one SQLite batch with constraint changes
    #: on the renamed column, Alembic drops the new constraints
    RENAME_COLUMNS = 3
    ALTER = 4        # adds, type changes, indexes, constraints
    FILL = 5         # existing rows get a new field's default
    REQUIRE = 6      # NOT NULL once every row has a value
    DROP = 7         # tables last, after the links to them are gone
    REGISTER = 8     # rows of the campo_tables registry (the registry exists by then)


@dataclass
class Item:
    """One piece of a revision: an Alembic operation, or Python source using ``op``/``sa``."""

    phase: Phase
    #: the table a table-level operation applies to (rendered in a batch block), else None
    table: str | None = None
    op: Any = None
    code: str | None = None
    imports: frozenset[str] = frozenset()


@dataclass
class Step:
    """One change of the plan, as shown to people."""

    symbol: str
    text: str
    table: str
    destructive: bool = False
    #: why the step cannot be applied as things are (the migration refuses to run)
    blocked: str | None = None
    #: blast radius and other facts about the data it touches
    details: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The step as printed: one line, then indented details."""
        if self.blocked:
            head = f"x {self.text}  [BLOCKED]"
        elif self.destructive:
            head = f"! {self.text}  [DESTRUCTIVE]"
        else:
            head = f"{self.symbol} {self.text}"
        out = [head]
        out += [f"    {d}" for d in self.details]
        if self.blocked:
            out.append(f"    blocked: {self.blocked}")
        return out


@dataclass
class Plan:
    """The changes that bring a database to the model, in the order they are applied."""

    url: str
    steps: list[Step] = field(default_factory=list)
    #: revisions of the project's migrations/ folder not applied to this database yet
    pending: list[str] = field(default_factory=list)
    #: platform revisions (campo_* tables) not applied to this database yet
    platform_pending: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the database already matches the model."""
        return not self.steps

    @property
    def destructive(self) -> list[Step]:
        """Steps that lose data (need ``--allow-data-loss``)."""
        return [s for s in self.steps if s.destructive]

    @property
    def blocked(self) -> list[Step]:
        """Steps the rows in the database do not allow."""
        return [s for s in self.steps if s.blocked]

    def items(self) -> list[Item]:
        """Every item of every step."""
        return [i for s in self.steps for i in s.items]

    def summary(self) -> str:
        """A short description for a revision message: ``add x.y; drop z``."""
        words = [s.text.split(" (")[0] for s in self.steps]
        text = "; ".join(words)
        return text if len(text) <= 70 else text[:67].rstrip() + "..."

    def format(self) -> str:
        """The plan as text: one line per step, destructive steps marked with ``!``."""
        out: list[str] = []
        if self.platform_pending:
            out.append(f"note: {len(self.platform_pending)} platform revision(s) (campo_* "
                       f"tables) are not applied to this database yet "
                       f"({', '.join(self.platform_pending)}); campo migrate and campo serve "
                       "apply them first")
        if self.pending:
            out.append(f"note: {len(self.pending)} revision(s) in migrations/ are not applied "
                       f"to this database yet ({', '.join(self.pending)}); "
                       "campo migrate applies them first")
        if self.empty:
            out.append(f"No changes: the database matches the model ({self.url}).")
            return "\n".join(out)
        n_d, n_b = len(self.destructive), len(self.blocked)
        extra = "".join([f", {n_d} destructive" if n_d else "",
                         f", {n_b} blocked" if n_b else ""])
        out.append(f"Plan for {self.url}: {len(self.steps)} change(s){extra}")
        for step in self.steps:
            out += ["  " + line for line in step.lines()]
        if n_d:
            out.append(f"{n_d} destructive step(s) marked '!': they lose data and need "
                       "--allow-data-loss")
        if n_b:
            out.append(f"{n_b} step(s) marked 'x' cannot run against the rows there now; "
                       "fix the data or the model first")
        return "\n".join(out)

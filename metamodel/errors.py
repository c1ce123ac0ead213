"""Locations and problems: how the metamodel reports a consultant's mistakes.

Every problem carries the file, line and column (counted from 1) of the YAML node it is
about, the dotted key path inside the document, a message and an optional hint. Problems
are collected, never raised one by one: ``campo validate`` prints all of them in one run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a YAML file; ``line`` and ``column`` count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


UNKNOWN = Location("<unknown>", 0, 0)


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in the definitions."""

    location: Location
    path: str
    message: str
    hint: str | None = None

    def format(self) -> str:
        """Render as ``file:line:col: key.path: message`` plus an indented hint line."""
        head = f"{self.location}: {self.path}: {self.message}" if self.path else (
            f"{self.location}: {self.message}"
        )
        return head + (f"\n  hint: {self.hint}" if self.hint else "")

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.file, self.location.line, self.location.column, self.message)


class DefinitionError(Exception):
    """Raised by :func:`metamodel.load` with every problem found in the definitions."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=Problem.sort_key)
        super().__init__(self.format())

    def format(self) -> str:
        """All problems, one per line (hints indented below), in file order."""
        return "\n".join(p.format() for p in self.problems)

    def summary(self) -> str:
        """``3 problems in 2 files``."""
        n, files = len(self.problems), len({p.location.file for p in self.problems})
        return f"{_count(n, 'problem')} in {_count(files, 'file')}"

    def report(self) -> str:
        """What ``campo validate`` prints: :meth:`format` then :meth:`summary`."""
        return f"{self.format()}\n{self.summary()}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass
class Problems:
    """A collector that checks append to; raises :class:`DefinitionError` when non-empty."""

    items: list[Problem] = field(default_factory=list)

    def add(self, location: Location, path: str, message: str, hint: str | None = None) -> None:
        self.items.append(Problem(location, path, message, hint))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise DefinitionError(self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest choice, or ``None``."""
    options = list(choices)
    same_letters = [c for c in options if c.lower() == word.lower() and c != word]
    close = same_letters or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def expected_one_of(word: str, choices: Iterable[str]) -> str:
    """A hint listing the allowed values, with a did-you-mean when one is close."""
    options = sorted(choices)
    hint = "expected one of " + ", ".join(options)
    guess = did_you_mean(word, options)
    return f"{hint}; {guess}" if guess else hint

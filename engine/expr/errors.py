"""The language's errors and how to place them in the YAML file they came from.

Every error, at compile time or at evaluation, is an :class:`ExprError` carrying the
0-based character offset into the expression's source. :func:`location_in_yaml` turns that
offset into the ``line:column`` of the YAML file, given where the scalar started.
"""

from __future__ import annotations

from metamodel.errors import did_you_mean

__all__ = ["EvalError", "ExprError", "did_you_mean", "location_in_yaml"]


class ExprError(Exception):
    """A mistake in an expression: ``message``, 0-based ``offset`` into the source, ``hint``."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.message} (at character {self.offset + 1})"
        return text + (f"; hint: {self.hint}" if self.hint else "")

    def excerpt(self, source: str) -> str:
        """The offending source line with a caret under the error, then message and hint."""
        start = source.rfind("\n", 0, self.offset) + 1
        end = source.find("\n", self.offset)
        line = source[start:] if end < 0 else source[start:end]
        caret = " " * (self.offset - start) + "^"
        out = f"{line}\n{caret}\n{self.message}"
        return out + (f"\nhint: {self.hint}" if self.hint else "")


class EvalError(ExprError):
    """An expression failed while being evaluated (a run-time type mismatch, a bound hit)."""


def location_in_yaml(base_line: int, base_col: int, offset: int, source: str,
                     style: str = "", indent: int | None = None) -> tuple[int, int]:
    """The 1-based (line, column) in a YAML file of character ``offset`` of ``source``.

    ``base_line``/``base_col`` (1-based) are where the YAML scalar holding ``source`` starts,
    as the loader records it. ``style`` is the scalar's style: ``""`` (plain), ``"'"`` or
    ``'"'`` (quoted: the text starts one column after the quote), ``"|"`` (literal block:
    the text starts on the next line, each line indented by ``indent`` columns, default
    ``base_col + 1``). A folded block (``">"``) joins lines, so only its first line is exact.
    Escapes inside double quotes are not undone (columns after one shift by its length).

    >>> location_in_yaml(12, 18, 5, "self.x > 1")
    (12, 23)
    """
    offset = max(0, min(offset, len(source)))
    before = source[:offset]
    line_delta = before.count("\n")
    col_in_line = offset - (before.rfind("\n") + 1)
    if style in ("|", ">"):
        first_col = (indent if indent is not None else base_col + 1)
        return base_line + 1 + line_delta, first_col + col_in_line
    start_col = base_col + (1 if style in ("'", '"') else 0)
    if line_delta == 0:
        return base_line, start_col + col_in_line
    # a multi-line flow scalar: continuation lines are indented at least to the key; the
    # best we know is the column within the text.
    return base_line + line_delta, col_in_line + 1

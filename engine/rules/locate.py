"""Where a character of an expression is in its YAML file.

The loader records where each scalar starts; the expression text is the scalar's value,
which YAML may have changed on the way (quotes, ``''`` and backslash escapes, folded line
breaks, the indentation of a ``|`` block). :func:`expression_location` walks the file text
from the scalar's start alongside the value, so an error lands on the character the
author wrote, whatever the style.
"""

from __future__ import annotations

import bisect
from typing import Any

from engine.expr import location_in_yaml
from metamodel.errors import Location

_SPACE = " \t\r\n"


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _align(text: str, start: int, value: str, offset: int, skippable: str) -> int | None:
    """Index in ``text`` of character ``offset`` of ``value``, reading from ``start``."""
    j = start
    for i in range(min(offset, len(value)) + 1):
        target = value[i] if i < len(value) else None
        while j < len(text) and text[j] != target and text[j] in skippable:
            j += 1
        if i == offset or target is None:
            return j
        if j >= len(text) or text[j] != target:
            return None
        j += 1
    return j


def expression_location(doc: Any, path: tuple[Any, ...], value: str, offset: int) -> Location:
    """Location of character ``offset`` of the scalar ``value`` at ``path`` of ``doc``."""
    loc: Location = doc.where(path)
    text = getattr(doc, "texts", {}).get(loc.file)
    if not text or loc.line < 1:
        return loc
    starts = _line_starts(text)
    if loc.line > len(starts):
        return loc
    at = starts[loc.line - 1] + loc.column - 1
    if at >= len(text):
        return loc
    style = text[at]
    skippable = _SPACE
    indent = None
    if style in "'\"":
        begin = at + 1
        skippable += "'" if style == "'" else "\\"
    elif style in "|>":
        eol = text.find("\n", at)
        begin = len(text) if eol < 0 else eol + 1
        line_end = text.find("\n", begin)
        first = text[begin:] if line_end < 0 else text[begin:line_end]
        indent = len(first) - len(first.lstrip(" ")) + 1
    else:
        style, begin = "", at
    j = _align(text, begin, value, offset, skippable)
    if j is None:
        line, col = location_in_yaml(loc.line, loc.column, offset, value, style, indent)
        return Location(loc.file, line, col)
    row = bisect.bisect_right(starts, j) - 1
    return Location(loc.file, row + 1, j - starts[row] + 1)

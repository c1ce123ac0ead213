"""Tag path patterns, matched segment by segment in linear time (no regular expressions).

A pattern is a dotted path whose segments may hold wildcards:

- ``*`` matches any run of characters within one segment (``pad7.*.pip``, ``w*``);
- ``?`` matches one character within a segment;
- ``**`` as a whole segment matches one or more whole segments (``pad7.**``, ``**.pip``,
  ``pad7.**.pip``); a run of stars longer than two is the same ``**``.

``**`` inside a segment (``pad**``) is refused: it would mean "anything, across dots", the
construct that made regular-expression matching backtrack. Matching never backtracks
across segments: the groups between ``**`` segments are placed at their earliest position,
which is always a valid choice because ``**`` absorbs whatever precedes the next group.
Within a segment, the literal pieces between ``*`` are found left to right the same way.
A match therefore costs O(segments x pattern length), whatever the pattern.

Example::

    pattern = compile_pattern("pad7.**.pip")
    pattern.match("pad7.w1.pip")     # True
    pattern.match("pad7.pip")        # False: ** takes at least one segment
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: longest pattern accepted, in characters
MAX_PATTERN_LENGTH = 256

SegmentTest = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern that is not valid (the message says why and how to write it)."""


def _any(_segment: str) -> bool:
    return True


def _piece_at(piece: str, text: str, i: int) -> bool:
    """Whether ``piece`` (literals and ``?``) matches ``text`` at offset ``i``."""
    if "?" not in piece:
        return text.startswith(piece, i)
    if i < 0 or i + len(piece) > len(text):
        return False
    return all(p == "?" or p == c for p, c in zip(piece, text[i:i + len(piece)], strict=True))


def _piece_find(piece: str, text: str, start: int, end: int) -> int:
    """The first offset >= ``start`` where ``piece`` matches wholly before ``end``; -1."""
    if "?" not in piece:
        return text.find(piece, start, end)
    for i in range(start, end - len(piece) + 1):
        if _piece_at(piece, text, i):
            return i
    return -1


def _segment_test(glob: str) -> SegmentTest:
    """A test for one segment glob (``*`` and ``?``, no dots)."""
    if glob == "*":
        return _any
    if "*" not in glob:
        if "?" not in glob:
            return glob.__eq__
        n = len(glob)
        return lambda s: len(s) == n and _piece_at(glob, s, 0)
    first, *middle, last = glob.split("*")
    middle = [m for m in middle if m]
    least = len(first) + len(last) + sum(len(m) for m in middle)

    def test(s: str) -> bool:
        if len(s) < least or not _piece_at(first, s, 0):
            return False
        end = len(s) - len(last)
        if not _piece_at(last, s, end):
            return False
        pos = len(first)
        for piece in middle:
            i = _piece_find(piece, s, pos, end)
            if i < 0:
                return False
            pos = i + len(piece)
        return True
    return test


def _run_at(tests: Sequence[SegmentTest], segments: Sequence[str], i: int) -> bool:
    for test in tests:
        if not test(segments[i]):
            return False
        i += 1
    return True


@dataclass(frozen=True, eq=False)
class TagPattern:
    """A compiled pattern; :meth:`match` tells whether a tag path matches it."""

    text: str
    #: segment tests before the first ``**``
    head: tuple[SegmentTest, ...]
    #: segment tests after each ``**`` (one group per ``**``; empty when two are adjacent)
    groups: tuple[tuple[SegmentTest, ...], ...]
    #: the fewest segments a matching path has
    least: int
    #: literal text every matching path starts and ends with (fast first checks)
    prefix: str
    suffix: str

    def match(self, path: str) -> bool:
        """Whether ``path`` matches (the whole path, not a prefix)."""
        if not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return False
        segments = path.split(".")
        n = len(segments)
        head = self.head
        if not self.groups:
            return n == len(head) and _run_at(head, segments, 0)
        if n < self.least or not _run_at(head, segments, 0):
            return False
        *middle, tail = self.groups
        end = n - len(tail)
        if not _run_at(tail, segments, end):
            return False
        pos = len(head)
        for group in middle:
            pos += 1  # the ** before this group takes at least one segment
            last_start = end - 1 - len(group)  # leave one segment for the next **
            while pos <= last_start and not _run_at(group, segments, pos):
                pos += 1
            if pos > last_start:
                return False
            pos += len(group)
        return pos + 1 <= end

    def __repr__(self) -> str:
        return f"TagPattern({self.text!r})"


def _normalise(segment: str) -> str:
    """``***`` and longer runs of stars alone in a segment mean ``**``."""
    return "**" if len(segment) >= 2 and set(segment) == {"*"} else segment


def compile_pattern(pattern: str) -> TagPattern:
    """Compile a tag path pattern (see the module docstring); :class:`PatternError` if bad."""
    if not isinstance(pattern, str):
        raise PatternError("a pattern is a string such as 'pad7.*.pip'")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern is {len(pattern)} characters long; the limit is "
                           f"{MAX_PATTERN_LENGTH}")
    head: list[SegmentTest] = []
    groups: list[list[SegmentTest]] = []
    current = head
    prefix: list[str] = []
    literal = True
    for raw in pattern.split("."):
        segment = _normalise(raw)
        if segment == "**":
            groups.append([])
            current = groups[-1]
            literal = False
            continue
        if "**" in segment:
            raise PatternError(f"'**' must be a whole segment (as in 'pad7.**' or "
                               f"'**.pip'), not part of {raw!r}; use '*' within a segment")
        if literal:
            if "*" in segment or "?" in segment:
                prefix.append(segment.split("*")[0].split("?")[0])
                literal = False
            else:
                prefix.append(segment + ".")
        current.append(_segment_test(segment))
    text_prefix = "".join(prefix)
    if literal and text_prefix:  # a pattern without wildcards: the whole path
        text_prefix = text_prefix[:-1]
    least = len(head) + sum(len(g) + 1 for g in groups)
    return TagPattern(pattern, tuple(head), tuple(tuple(g) for g in groups), least,
                      text_prefix, _literal_suffix(pattern))


def _literal_suffix(pattern: str) -> str:
    """The trailing literal segments after a wildcard one (``.pip`` of ``**.pip``), or ''."""
    segments = pattern.split(".")
    tail: list[str] = []
    for segment in reversed(segments):
        if "*" in segment or "?" in segment:
            return "".join("." + s for s in reversed(tail))
        tail.append(segment)
    return ""  # no wildcard at all: the prefix is the whole path


class PatternSet:
    """Several patterns as one: a path matches when any of them does."""

    def __init__(self, patterns: Iterable[str | TagPattern]) -> None:
        self.patterns = tuple(p if isinstance(p, TagPattern) else compile_pattern(p)
                              for p in patterns)

    def match(self, path: str) -> bool:
        """Whether ``path`` matches one of the patterns."""
        return any(p.match(path) for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)


__all__ = ["MAX_PATTERN_LENGTH", "PatternError", "PatternSet", "TagPattern", "compile_pattern"]

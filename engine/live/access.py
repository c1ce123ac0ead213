"""Who may see which tags, and which patterns a caller may ask for: one place for both.

Every way tags are served — ``GET /api/tags``, ``GET /api/tags/<path>``, the write endpoint,
WebSocket subscriptions (whatever transport carries them) — asks :func:`tag_visible`. A tag
of a site the caller may not see reads exactly like a tag that does not exist (404, absent
from lists, never pushed), so its existence does not leak.

Patterns from callers go through :func:`parse_patterns`: at most :data:`MAX_PATTERNS` per
request or socket, each at most :data:`~metamodel.tags.MAX_PATTERN_LENGTH` characters and
valid in the tag language (no ``**`` inside a segment), compiled once to a linear-time
matcher. A refused pattern raises :class:`PatternRefused` (status 400, naming the field).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from metamodel.tags import MAX_PATTERN_LENGTH, PatternError, Tag, TagPattern, compile_pattern

#: patterns one request (or one WebSocket, all subscriptions together) may hold
MAX_PATTERNS = 32


class SiteViewer(Protocol):
    """The caller's side of the check (:class:`engine.auth.principal.Principal` is one)."""

    def may_see_site(self, site: str | None) -> bool: ...


class PatternRefused(Exception):
    """A pattern list the caller may not send: ``status`` 400, ``field`` names the input."""

    def __init__(self, message: str, field: str = "pattern", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def tag_visible(viewer: SiteViewer, tag: Tag | None) -> bool:
    """Whether ``viewer`` may see ``tag`` at all (its site is one of theirs); None: no."""
    return tag is not None and viewer.may_see_site(tag.site)


def visible(viewer: SiteViewer, tags: Iterable[Tag]) -> list[Tag]:
    """The tags of ``tags`` that ``viewer`` may see, in order."""
    return [t for t in tags if viewer.may_see_site(t.site)]


def parse_patterns(raw: Any, *, field: str = "patterns", limit: int = MAX_PATTERNS,
                   held: int = 0) -> list[TagPattern]:
    """Check and compile caller-given patterns (a string or a list of strings).

    ``held`` is how many patterns the caller already holds (e.g. a socket's earlier
    subscriptions), counted against ``limit``.
    """
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
        raise PatternRefused(f"'{field}' must be a list of strings", field)
    if held + len(items) > limit:
        raise PatternRefused(f"at most {limit} patterns at a time; got {held + len(items)}",
                             field)
    out: list[TagPattern] = []
    for text in items:
        if len(text) > MAX_PATTERN_LENGTH:
            raise PatternRefused(f"a pattern may have at most {MAX_PATTERN_LENGTH} characters;"
                                 f" got {len(text)}", field)
        try:
            out.append(compile_pattern(text))
        except PatternError as err:
            raise PatternRefused(str(err), field) from None
    return out


__all__ = ["MAX_PATTERNS", "PatternRefused", "SiteViewer", "parse_patterns", "tag_visible",
           "visible"]

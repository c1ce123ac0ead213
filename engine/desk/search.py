"""Global search across the title fields of every entity the caller may read.

Typo-tolerant enough for well names: both the query and the stored values are compared
with case, spaces and punctuation removed, so ``pz12`` finds ``PZ-12`` and ``Pz 12``. The
comparison runs in SQL (the same expression on SQLite and PostgreSQL), inside the caller's
row scope, and only over fields the caller may see.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from metamodel import Entity

#: characters removed from both sides before comparing
_STRIP = (" ", "-", "_", ".", "/", "#", ",")
_TEXT_TYPES = ("string", "text", "enum")
_FIELD_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def normalize(text: str) -> str:
    """Lower case, accents and ``_STRIP`` characters removed: ``'Pz-12 '`` -> ``'pz12'``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    for ch in _STRIP:
        plain = plain.replace(ch, "")
    return plain


def _squashed(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    expr: sa.ColumnElement[Any] = sa.func.lower(sa.cast(col, sa.String))
    for ch in _STRIP:
        expr = sa.func.replace(expr, ch, "")
    return expr


def title_fields(ent: Entity) -> list[str]:
    """The text fields a record is known by: the ``title`` template's and ``naming``'s."""
    names: list[str] = []
    if ent.spec.title:
        names += _FIELD_REF.findall(ent.spec.title)
    if ent.spec.naming is not None:
        names.append(ent.spec.naming.field)
    out = []
    for n in names:
        f = ent.fields.get(n)
        if f is not None and f.type in _TEXT_TYPES and not f.is_virtual and n not in out:
            out.append(n)
    return out


def render_title(template: str | None, record: dict[str, Any], fallback: str) -> str:
    """``"{code} {name}"`` filled from ``record`` (missing values left out)."""
    if not template:
        return fallback
    text = _FIELD_REF.sub(lambda m: "" if record.get(m.group(1)) is None
                          else str(record.get(m.group(1))), template)
    return " ".join(text.split()) or fallback


def search_clause(table: sa.Table, fields: Iterable[str], query: str
                  ) -> sa.ColumnElement[bool] | None:
    """``WHERE`` for ``query``: every word (normalized) in one of ``fields``."""
    words = [normalize(w) for w in query.split()]
    words = [w for w in words if w]
    cols = [table.c[f] for f in fields if f in table.c]
    if not words or not cols:
        return None
    hay = _squashed(cols[0]) if len(cols) == 1 else _concat(cols)
    conds = []
    for w in words:
        escaped = w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(hay.like(f"%{escaped}%", escape="\\"))
    return sa.and_(*conds)


def _concat(cols: list[sa.Column[Any]]) -> sa.ColumnElement[Any]:
    parts: sa.ColumnElement[Any] = _squashed(sa.func.coalesce(sa.cast(cols[0], sa.String), ""))
    for c in cols[1:]:
        parts = parts.op("||")("|").op("||")(
            _squashed(sa.func.coalesce(sa.cast(c, sa.String), "")))
    return parts


def rank(query: str, title: str) -> tuple[int, int]:
    """Sort key: exact normalized match first, then prefix, then shorter titles."""
    q, t = normalize(query), normalize(title)
    return (0 if t == q else 1 if t.startswith(q) else 2, len(t))

"""SQL words that may not be used as entity or field names.

The set is PostgreSQL's reserved key words (both "reserved" categories of the key-word
appendix) plus SQLite's key words that cannot fall back to plain identifiers. Quoting would
make them work in generated SQL, but a consultant's names also end up in hand-written SQL,
reports and integrations; refusing them early avoids a class of surprises. Words that both
databases accept unquoted (``action``, ``plan``, ``temp``, ``range``, ``view``) are allowed.
"""

from __future__ import annotations

#: PostgreSQL: reserved, and reserved-but-allowed-as-function-or-type.
_POSTGRESQL = """
all analyse analyze and any array as asc asymmetric authorization binary both case cast
check collate collation column concurrently constraint create cross current_catalog
current_date current_role current_schema current_time current_timestamp current_user default
deferrable desc distinct do else end except false fetch for foreign freeze from full grant
group having ilike in initially inner intersect into is isnull join lateral leading left like
limit localtime localtimestamp natural not notnull null offset on only or order outer
overlaps placing primary references returning right select session_user similar some
symmetric system_user table tablesample then to trailing true union unique user using
variadic verbose when where window with
"""

#: SQLite: key words without the ``%fallback ID`` of its grammar.
_SQLITE = """
add all alter and as autoincrement between case check collate commit constraint create cross
default deferrable delete distinct drop else escape except exists foreign from full group
having in index indexed inner insert intersect into is isnull join left limit natural not
nothing notnull null on or order outer primary references returning right select set table
then to transaction union unique update using values when where window
"""

SQL_RESERVED: frozenset[str] = frozenset(_POSTGRESQL.split()) | frozenset(_SQLITE.split())

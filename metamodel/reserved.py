"""SQL words that may not be used as names: reserved in PostgreSQL or SQLite (or both).

Quoting would make most of them work, but a consultant's name ends up in hand-written SQL,
reports and integrations; refusing them early avoids a class of surprises.
"""

from __future__ import annotations

SQL_RESERVED: frozenset[str] = frozenset("""
abort action add all alter analyse analyze and any array as asc asymmetric attach
authorization autoincrement before begin between binary both by cascade case cast check
collate collation column commit concurrently conflict constraint create cross current_catalog
current_date current_role current_schema current_time current_timestamp current_user database
default deferrable deferred delete desc detach distinct do drop each else end escape except
exclusive exists explain fail fetch filter following for foreign freeze from full glob grant
group having if ignore ilike immediate in index indexed initially inner insert instead
intersect into is isnull join lateral leading left like limit localtime localtimestamp match
materialized natural no not nothing notnull null nulls of offset on only or order others outer
over overlaps partition placing plan pragma preceding primary query raise range recursive
references regexp reindex release rename replace restrict returning right rollback row rows
savepoint select session_user set similar some symmetric system_user table temp temporary then
ties to trailing transaction trigger unbounded union unique update user using vacuum values
variadic verbose view virtual when where window with without
""".split())

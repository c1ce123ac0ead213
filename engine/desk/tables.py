"""The desk's own platform tables: saved list views, comments and attachments.

They live on their own ``MetaData`` and are created when the desk starts (like
``campo_series`` in :mod:`engine.api.naming`); none holds model data.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

#: a user's saved list view: filters, sort, columns, group-by of one entity
view_table = sa.Table(
    "campo_desk_view", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    sa.Column("entity", sa.String(127), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("user_id", "entity", "name", name="uq_campo_desk_view_name"),
)

#: a comment on a record (part of the record's timeline)
comment_table = sa.Table(
    "campo_desk_comment", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(127), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("username", sa.String(150), nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_campo_desk_comment_record", "entity", "record_id"),
)

#: a file attached to a record's ``attach``/``attachments`` field (bytes on disk)
attachment_table = sa.Table(
    "campo_desk_attachment", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(127), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=True),
    sa.Column("field", sa.String(63), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(127), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(150), nullable=True),
    sa.Index("ix_campo_desk_attachment_record", "entity", "record_id"),
)


def ensure_desk_tables(engine: Engine) -> None:
    """Create the desk's tables when missing."""
    metadata.create_all(engine)

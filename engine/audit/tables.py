"""The ``campo_audit`` table: one immutable row per change, login and denial.

Declared on the platform tables' ``MetaData`` (:mod:`engine.db.platform`) and created by
the platform revisions (``engine/db/platform_versions``). Rows are immutable: besides the
API offering no route to change them, triggers on PostgreSQL and SQLite refuse ``UPDATE``
and ``DELETE`` (:func:`engine.db.platform_ddl.immutable_rows`, run after the table is
created).
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db import platform
from engine.db.platform_ddl import immutable_rows
from engine.db.tables import ID_TYPE, UTCDateTime

#: The platform tables' MetaData (kept under this name for existing imports).
platform_metadata = platform.metadata

audit_table = sa.Table(
    "campo_audit", platform_metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    #: e.g. ``create``, ``update``, ``delete``, ``workflow.approve``, ``login``,
    #: ``login.failed``, ``logout``, ``permission.denied``, ``tag.write``
    sa.Column("action", sa.String(64), nullable=False),
    #: who: the acting user (no foreign key: audit outlives users); for logins the name tried
    sa.Column("user_id", ID_TYPE, nullable=True),
    sa.Column("username", sa.String(150), nullable=True),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    #: what: an entity's qualified name (``module.entity``), ``tag``, ``campo_user``...
    sa.Column("entity", sa.String(128), nullable=True),
    sa.Column("record_id", sa.String(128), nullable=True),
    #: changed fields only: ``before[f]`` -> ``after[f]``
    sa.Column("before", sa.JSON(), nullable=True),
    sa.Column("after", sa.JSON(), nullable=True),
    #: anything else worth keeping (reason of a failure, workflow comment...)
    sa.Column("detail", sa.JSON(), nullable=True),
    sqlite_autoincrement=True,
)
sa.Index("ix_campo_audit_ts", audit_table.c.ts)
sa.Index("ix_campo_audit_username_ts", audit_table.c.username, audit_table.c.ts)
sa.Index("ix_campo_audit_entity_record", audit_table.c.entity, audit_table.c.record_id)
sa.Index("ix_campo_audit_action_ts", audit_table.c.action, audit_table.c.ts)

platform.on_create(audit_table, immutable_rows)

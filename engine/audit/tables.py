"""The engine-owned ``MetaData`` and the ``campo_audit`` table.

Platform tables (users, sessions, API keys, role and site assignments, audit) are
hand-written and live on their own :data:`platform_metadata`, never on the MetaData built
from the model, so the migration planner (which skips tables named ``campo_*``) leaves
them alone. Audit is the lowest layer, so the MetaData is defined here and
:mod:`engine.auth.tables` adds the identity tables to it.

Audit rows are immutable: besides the API offering no route to change them, a trigger on
PostgreSQL and SQLite refuses ``UPDATE`` and ``DELETE`` on ``campo_audit``.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db.tables import ID_TYPE, NAMING_CONVENTION, UTCDateTime

#: Every engine-owned table (``campo_*``); created by ``ensure_platform_tables``.
platform_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

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
)
sa.Index("ix_campo_audit_ts", audit_table.c.ts)
sa.Index("ix_campo_audit_username_ts", audit_table.c.username, audit_table.c.ts)
sa.Index("ix_campo_audit_entity_record", audit_table.c.entity, audit_table.c.record_id)
sa.Index("ix_campo_audit_action_ts", audit_table.c.action, audit_table.c.ts)

_PG_IMMUTABLE = sa.DDL("""
CREATE OR REPLACE FUNCTION campo_audit_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'campo_audit rows are immutable';
END $$;
CREATE TRIGGER campo_audit_immutable BEFORE UPDATE OR DELETE ON campo_audit
    FOR EACH ROW EXECUTE FUNCTION campo_audit_immutable();
""")
_SQLITE_NO_UPDATE = sa.DDL("""
CREATE TRIGGER campo_audit_no_update BEFORE UPDATE ON campo_audit
BEGIN SELECT RAISE(ABORT, 'campo_audit rows are immutable'); END
""")
_SQLITE_NO_DELETE = sa.DDL("""
CREATE TRIGGER campo_audit_no_delete BEFORE DELETE ON campo_audit
BEGIN SELECT RAISE(ABORT, 'campo_audit rows are immutable'); END
""")
sa.event.listen(audit_table, "after_create", _PG_IMMUTABLE.execute_if(dialect="postgresql"))
sa.event.listen(audit_table, "after_create", _SQLITE_NO_UPDATE.execute_if(dialect="sqlite"))
sa.event.listen(audit_table, "after_create", _SQLITE_NO_DELETE.execute_if(dialect="sqlite"))

"""platform tables: users, roles, sites, sessions, API keys, audit, naming series, transitions

The first revision of the platform branch. It also adopts a database whose ``campo_*``
tables were made before platform revisions existed (``create_all`` by Campo up to e16b6df):
a table that exists is kept as it is (its data untouched), a missing one is created, the
audit triggers are (re)installed, and on PostgreSQL the two primary keys created without
the naming convention are renamed to it, so old and new databases end up the same.
"""

import sqlalchemy as sa
from alembic import op

from engine.db import platform_ddl

revision = "p0001"
down_revision = None
branch_labels = ("campo_platform",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _create(name: str, *elements: object, **kw: object) -> bool:
    """Create the table unless it exists; True when created."""
    if sa.inspect(op.get_bind()).has_table(name):
        return False
    op.create_table(name, *elements, **kw)
    return True


def upgrade() -> None:
    if _create(
        "campo_audit",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("username", sa.String(length=150), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("entity", sa.String(length=128), nullable=True),
        sa.Column("record_id", sa.String(length=128), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campo_audit")),
        sqlite_autoincrement=True,
    ):
        op.create_index("ix_campo_audit_action_ts", "campo_audit", ["action", "ts"])
        op.create_index("ix_campo_audit_entity_record", "campo_audit", ["entity", "record_id"])
        op.create_index("ix_campo_audit_ts", "campo_audit", ["ts"])
        op.create_index("ix_campo_audit_username_ts", "campo_audit", ["username", "ts"])
    platform_ddl.immutable_rows(op.get_bind(), "campo_audit")

    _create(
        "campo_user",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_service", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=True),
        sa.Column("last_login_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campo_user")),
        sa.UniqueConstraint("username", name=op.f("uq_campo_user_username")),
        sqlite_autoincrement=True,
    )
    for name, column, length in (("campo_user_role", "role", 63),
                                 ("campo_user_site", "site", 100)):
        _create(
            name,
            sa.Column("user_id", ID, nullable=False),
            sa.Column(column, sa.String(length=length), nullable=False),
            sa.ForeignKeyConstraint(["user_id"], ["campo_user.id"],
                                    name=op.f(f"fk_{name}_user_id"), ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("user_id", column, name=op.f(f"pk_{name}")),
        )
    if _create(
        "campo_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("refresh_jti", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["campo_user.id"],
                                name=op.f("fk_campo_session_user_id"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campo_session")),
    ):
        op.create_index(op.f("ix_campo_session_user_id"), "campo_session", ["user_id"])
    if _create(
        "campo_api_key",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["campo_user.id"],
                                name=op.f("fk_campo_api_key_user_id"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campo_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_campo_api_key_prefix")),
        sqlite_autoincrement=True,
    ):
        op.create_index(op.f("ix_campo_api_key_user_id"), "campo_api_key", ["user_id"])

    _create(
        "campo_series",
        sa.Column("entity", sa.String(length=127), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "key", name=op.f("pk_campo_series")),
    )
    if _create(
        "campo_transition",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(length=127), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=63), nullable=False),
        sa.Column("from_state", sa.String(length=63), nullable=False),
        sa.Column("to_state", sa.String(length=63), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campo_transition")),
        sqlite_autoincrement=True,
    ):
        op.create_index("ix_campo_transition_record", "campo_transition",
                        ["entity", "record_id", "id"])

    if op.get_bind().dialect.name == "postgresql":
        # made by create_all without the naming convention: <table>_pkey
        for table in ("campo_series", "campo_transition"):
            pk = sa.inspect(op.get_bind()).get_pk_constraint(table).get("name")
            if pk == f"{table}_pkey":
                op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{pk}" TO "pk_{table}"')


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only")

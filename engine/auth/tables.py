"""Engine-owned identity tables: users, role and site assignments, sessions, API keys.

They are platform tables (:mod:`engine.db.platform`), never on the MetaData compiled from
the model, created and changed by the platform revisions. Call
:func:`ensure_platform_tables` at start-up (it applies pending platform revisions).

Example::

    engine = create_engine_for(settings.resolved_database_url())
    ensure_platform_tables(engine)
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.audit.tables import audit_table, platform_metadata
from engine.db import platform
from engine.db.tables import ID_TYPE, UTCDateTime

__all__ = [
    "api_key_table", "audit_table", "ensure_platform_tables", "platform_metadata",
    "session_table", "user_role_table", "user_site_table", "user_table",
]

user_table = sa.Table(
    "campo_user", platform_metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    #: lower-case login name
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    #: argon2id hash; NULL for service accounts (they use API keys)
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("is_service", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("password_changed_at", UTCDateTime(), nullable=True),
    sa.Column("last_login_at", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

user_role_table = sa.Table(
    "campo_user_role", platform_metadata,
    sa.Column("user_id", ID_TYPE, sa.ForeignKey("campo_user.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("role", sa.String(63), primary_key=True),
)

user_site_table = sa.Table(
    "campo_user_site", platform_metadata,
    sa.Column("user_id", ID_TYPE, sa.ForeignKey("campo_user.id", ondelete="CASCADE"),
              primary_key=True),
    #: a site code the user may see and act on; ``*`` means every site
    sa.Column("site", sa.String(100), primary_key=True),
)

session_table = sa.Table(
    "campo_session", platform_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", ID_TYPE, sa.ForeignKey("campo_user.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    #: end of the refresh token's validity; pushed forward by every refresh
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_reason", sa.String(64), nullable=True),
    #: the one refresh token (jti) that may still be used; older ones are re-use
    sa.Column("refresh_jti", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(255), nullable=True),
)

api_key_table = sa.Table(
    "campo_api_key", platform_metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("user_id", ID_TYPE, sa.ForeignKey("campo_user.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    #: public part of the key, used to find the row
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    #: SHA-256 of the secret part (hex); the key itself is shown once and never stored
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)


def ensure_platform_tables(engine: Engine) -> None:
    """Apply pending platform revisions (every ``campo_*`` table; cheap when there are none)."""
    platform.upgrade(engine)

"""alarms and notifications

Written by python -m engine.db.platform_revision, reviewed: tables that exist already (made
by create_all before the alarm and outbox tables joined the registry) are adopted.
"""
# ruff: noqa: E501

import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = 'p0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # tables made by create_all before they joined the registry are adopted as they are
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'campo_alarm_journal' not in existing:
        op.create_table('campo_alarm_journal',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
        sa.Column('alarm', sa.String(length=255), nullable=False),
        sa.Column('site', sa.String(length=63), nullable=False),
        sa.Column('area', sa.String(length=63), nullable=True),
        sa.Column('priority', sa.String(length=10), nullable=False),
        sa.Column('from_state', sa.String(length=20), nullable=False),
        sa.Column('to_state', sa.String(length=20), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('value', sa.Text(), nullable=True),
        sa.Column('limit_value', sa.Float(), nullable=True),
        sa.Column('username', sa.String(length=150), nullable=True),
        sa.Column('comment', sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campo_alarm_journal')),
        sqlite_autoincrement=True
        )
        with op.batch_alter_table('campo_alarm_journal', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_campo_alarm_journal_alarm'), ['alarm'], unique=False)
            batch_op.create_index('ix_campo_alarm_journal_site_ts', ['site', 'ts'], unique=False)
            batch_op.create_index(batch_op.f('ix_campo_alarm_journal_ts'), ['ts'], unique=False)
    if 'campo_alarm_state' not in existing:
        op.create_table('campo_alarm_state',
        sa.Column('alarm', sa.String(length=255), nullable=False),
        sa.Column('site', sa.String(length=63), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('raw', sa.Boolean(), nullable=False),
        sa.Column('pending', sa.String(length=3), nullable=True),
        sa.Column('pending_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acked', sa.Boolean(), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('raised_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('shelved_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('shelve_reason', sa.String(length=500), nullable=True),
        sa.Column('shelved_by', sa.String(length=150), nullable=True),
        sa.Column('suppressed', sa.Boolean(), nullable=False),
        sa.Column('oos_by', sa.String(length=150), nullable=True),
        sa.Column('value', sa.Text(), nullable=True),
        sa.Column('limit_value', sa.Float(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('alarm', name=op.f('pk_campo_alarm_state'))
        )
        with op.batch_alter_table('campo_alarm_state', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_campo_alarm_state_site'), ['site'], unique=False)
    if 'campo_notification' not in existing:
        op.create_table('campo_notification',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=63), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('rule', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('recipients', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('dedupe', sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campo_notification')),
        sa.UniqueConstraint('dedupe', name=op.f('uq_campo_notification_dedupe')),
        sqlite_autoincrement=True
        )
        with op.batch_alter_table('campo_notification', schema=None) as batch_op:
            batch_op.create_index('ix_campo_notification_due', ['status', 'next_at'], unique=False)
            batch_op.create_index('ix_campo_notification_rule', ['channel', 'rule', 'created_at'], unique=False)
    if 'campo_notification_attempt' not in existing:
        op.create_table('campo_notification_attempt',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('notification_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('duration_ms', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campo_notification_attempt')),
        sqlite_autoincrement=True
        )
        with op.batch_alter_table('campo_notification_attempt', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_campo_notification_attempt_notification_id'), ['notification_id'], unique=False)


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only")

"""historian: samples, compact blocks, rollups, tags, status, ERP rollup runs

Written by python -m engine.db.platform_revision; review before committing.
"""
# ruff: noqa: E501

import sqlalchemy as sa
from alembic import op

import engine.historian.tables

revision = "p0003"
down_revision = 'p0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campo_history',
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger().with_variant(sa.DateTime(timezone=True), 'postgresql'), nullable=False),
    sa.Column('value', sa.Float(precision=53), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('quality', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('tag_id', 'ts', name=op.f('pk_campo_history')),
    sqlite_with_rowid=False,
    **engine.historian.tables.history_options(op.get_bind()),
    )
    engine.historian.tables.make_hypertable(op.get_bind(), 'campo_history')
    op.create_table('campo_history_1h',
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.BigInteger().with_variant(sa.DateTime(timezone=True), 'postgresql'), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('sum', sa.Float(precision=53), nullable=False),
    sa.Column('min', sa.Float(precision=53), nullable=False),
    sa.Column('max', sa.Float(precision=53), nullable=False),
    sa.Column('first', sa.Float(precision=53), nullable=False),
    sa.Column('first_ts', sa.BigInteger(), nullable=False),
    sa.Column('last', sa.Float(precision=53), nullable=False),
    sa.Column('last_ts', sa.BigInteger(), nullable=False),
    sa.Column('area', sa.Float(precision=53), nullable=False),
    sa.Column('covered', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('tag_id', 'bucket', name=op.f('pk_campo_history_1h')),
    sqlite_with_rowid=False
    )
    op.create_table('campo_history_1m',
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.BigInteger().with_variant(sa.DateTime(timezone=True), 'postgresql'), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('sum', sa.Float(precision=53), nullable=False),
    sa.Column('min', sa.Float(precision=53), nullable=False),
    sa.Column('max', sa.Float(precision=53), nullable=False),
    sa.Column('first', sa.Float(precision=53), nullable=False),
    sa.Column('first_ts', sa.BigInteger(), nullable=False),
    sa.Column('last', sa.Float(precision=53), nullable=False),
    sa.Column('last_ts', sa.BigInteger(), nullable=False),
    sa.Column('area', sa.Float(precision=53), nullable=False),
    sa.Column('covered', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('tag_id', 'bucket', name=op.f('pk_campo_history_1m')),
    sqlite_with_rowid=False
    )
    op.create_table('campo_history_block',
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('hour', sa.BigInteger().with_variant(sa.DateTime(timezone=True), 'postgresql'), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('first_ts', sa.BigInteger(), nullable=False),
    sa.Column('last_ts', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('tag_id', 'hour', name=op.f('pk_campo_history_block')),
    sqlite_with_rowid=False
    )
    op.create_table('campo_history_day',
    sa.Column('day', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('compacted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('samples', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_campo_history_day'))
    )
    op.create_table('campo_history_rollup_run',
    sa.Column('rule', sa.String(length=127), nullable=False),
    sa.Column('instance', sa.String(length=255), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('entity', sa.String(length=127), nullable=False),
    sa.Column('record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('rule', 'instance', 'day', name=op.f('pk_campo_history_rollup_run'))
    )
    op.create_table('campo_history_status',
    sa.Column('node', sa.String(length=127), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('node', name=op.f('pk_campo_history_status'))
    )
    op.create_table('campo_history_tag',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('site', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=True),
    sa.Column('retention_days', sa.Float(), nullable=False),
    sa.Column('compaction_days', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('former_paths', sa.Text(), nullable=True),
    sa.Column('compacted_until', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campo_history_tag')),
    sa.UniqueConstraint('path', name=op.f('uq_campo_history_tag_path')),
    sqlite_autoincrement=True
    )


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only")

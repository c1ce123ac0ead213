"""create table campo_tables; create table finance_account; create tab...

Revision ID: dc3a64b869b9
Revises: 
Create Date: 2026-12-06 17:04:56.859875

Written by `campo migrate` from this plan:

Plan for sqlite:////tmp/srv1/campo.db: 11 change(s)
  + create table campo_tables (registry of the tables Campo generates)
  + create table finance_account (9 columns)
  + create table finance_journal_entry (12 columns)
  + create table maintenance_equipment (11 columns)
  + create table showcase_field_area (8 columns)
  + create table finance_journal_line (12 columns, 1 index)
  + create table maintenance_work_order (19 columns)
  + create table showcase_asset (19 columns, 2 indexes)
  + create table maintenance_work_order_line (12 columns, 1 index)
  + create table showcase_asset_reading (11 columns, 1 index)
  + create table showcase_inspection (9 columns)
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = 'dc3a64b869b9'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: True when applying this revision loses data: Campo applies it only with --allow-data-loss.
campo_destructive: bool = False


def upgrade() -> None:
    """Bring the schema to this revision."""
    op.create_table('campo_tables',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('entity', sa.String(length=127), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_campo_tables'))
    )
    op.create_table('finance_account',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_account')),
    sa.UniqueConstraint('code', name=op.f('uq_finance_account_code'))
    )
    op.create_table('finance_journal_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('posting_date', sa.Date(), nullable=False),
    sa.Column('memo', sa.String(length=200), nullable=True),
    sa.Column('total_debit', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('total_credit', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_journal_entry')),
    sa.UniqueConstraint('number', name=op.f('uq_finance_journal_entry_number'))
    )
    op.create_table('maintenance_equipment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('site', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('run_hours', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_equipment')),
    sa.UniqueConstraint('code', name=op.f('uq_maintenance_equipment_code'))
    )
    op.create_table('showcase_field_area',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_showcase_field_area')),
    sa.UniqueConstraint('name', name=op.f('uq_showcase_field_area_name'))
    )
    op.create_table('finance_journal_line',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idx', sa.Integer(), server_default='0', nullable=False),
    sa.Column('account', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_name', sa.String(length=80), nullable=True),
    sa.Column('debit', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('credit', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.ForeignKeyConstraint(['account'], ['finance_account.id'], name=op.f('fk_finance_journal_line_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['parent_id'], ['finance_journal_entry.id'], name=op.f('fk_finance_journal_line_parent_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_journal_line'))
    )
    op.create_table('maintenance_work_order',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('number', sa.String(length=24), nullable=True),
    sa.Column('equipment', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('equipment_name', sa.String(length=80), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('priority', sa.String(length=32), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('cause', sa.Text(), nullable=True),
    sa.Column('assigned_to', sa.String(length=64), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['equipment'], ['maintenance_equipment.id'], name=op.f('fk_maintenance_work_order_equipment'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_work_order')),
    sa.UniqueConstraint('number', name=op.f('uq_maintenance_work_order_number'))
    )
    op.create_table('showcase_asset',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('field_area', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('parent_asset', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('depth_m', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('run_hours', sa.BigInteger(), nullable=True),
    sa.Column('rate_bpd', sa.Float(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.Column('commissioned_on', sa.Date(), nullable=True),
    sa.Column('last_inspection_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['field_area'], ['showcase_field_area.id'], name=op.f('fk_showcase_asset_field_area'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['parent_asset'], ['showcase_asset.id'], name=op.f('fk_showcase_asset_parent_asset'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_showcase_asset')),
    sa.UniqueConstraint('code', name=op.f('uq_showcase_asset_code')),
    sa.UniqueConstraint('field_area', 'name', name=op.f('uq_showcase_asset_field_area_name'))
    )
    op.create_table('maintenance_work_order_line',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idx', sa.Integer(), server_default='0', nullable=False),
    sa.Column('description', sa.String(length=120), nullable=False),
    sa.Column('qty', sa.Numeric(precision=12, scale=3), nullable=True),
    sa.Column('unit_cost', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['maintenance_work_order.id'], name=op.f('fk_maintenance_work_order_line_parent_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_work_order_line'))
    )
    op.create_table('showcase_asset_reading',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idx', sa.Integer(), server_default='0', nullable=False),
    sa.Column('taken_on', sa.Date(), nullable=False),
    sa.Column('pressure_psi', sa.Float(), nullable=True),
    sa.Column('comment', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['showcase_asset.id'], name=op.f('fk_showcase_asset_reading_parent_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_showcase_asset_reading'))
    )
    op.create_table('showcase_inspection',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=150), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=150), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('asset', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('done_on', sa.Date(), nullable=False),
    sa.Column('result', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['asset'], ['showcase_asset.id'], name=op.f('fk_showcase_inspection_asset'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_showcase_inspection'))
    )
    with op.batch_alter_table('finance_journal_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_journal_line_parent_id'), ['parent_id'], unique=False)
    with op.batch_alter_table('showcase_asset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_showcase_asset_field_area'), ['field_area'], unique=False)
        batch_op.create_index(batch_op.f('ix_showcase_asset_kind_showcase_asset_active'), ['kind', 'active'], unique=False)
    with op.batch_alter_table('maintenance_work_order_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_work_order_line_parent_id'), ['parent_id'], unique=False)
    with op.batch_alter_table('showcase_asset_reading', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_showcase_asset_reading_parent_id'), ['parent_id'], unique=False)
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('finance_account', 'finance.account')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('finance_journal_entry', 'finance.journal_entry')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('maintenance_equipment', 'maintenance.equipment')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('showcase_field_area', 'showcase.field_area')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('finance_journal_line', 'finance.journal_line')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('maintenance_work_order', 'maintenance.work_order')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('showcase_asset', 'showcase.asset')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('maintenance_work_order_line', 'maintenance.work_order_line')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('showcase_asset_reading', 'showcase.asset_reading')")
    op.execute("INSERT INTO campo_tables (name, entity) VALUES ('showcase_inspection', 'showcase.inspection')")


def downgrade() -> None:
    """Campo migrations go forward only."""
    raise RuntimeError(
        "Campo migrations go forward only: restore the previous YAML (git) and run "
        "'campo migrate'; a rename back needs 'renamed_from'."
    )

"""vault-to-S3 migration: one row per archive, one per acknowledged chunk

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('migration_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('archive_id', sa.String(length=255), nullable=False),
    sa.Column('vault', sa.String(length=255), nullable=False),
    sa.Column('bucket', sa.String(length=255), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('tree_hash', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('archive_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('storage_class', sa.String(length=16), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.String(length=255), nullable=True),
    sa.Column('job_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('jobs_requested', sa.Integer(), nullable=False),
    sa.Column('chunk_size', sa.BigInteger(), nullable=False),
    sa.Column('upload_id', sa.String(length=255), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('bytes_fetched', sa.BigInteger(), nullable=False),
    sa.Column('source_deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('archive_id')
    )
    op.create_index('ix_migration_items_status', 'migration_items', ['status'])
    op.create_table('migration_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('tree_hash', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['migration_items.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'index', name='uq_migration_chunk')
    )


def downgrade() -> None:
    op.drop_table('migration_chunks')
    op.drop_index('ix_migration_items_status', 'migration_items')
    op.drop_table('migration_items')

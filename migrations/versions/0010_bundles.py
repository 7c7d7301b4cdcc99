"""bundles of small files: bundle files, their members, packed archives and restores

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from glacierd.store import totals

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # SQLite's batch mode copies files and archives: their triggers go with the
    # old tables, and are made again below, as this revision has them.
    for statement in totals.drop_statements(dialect):
        op.execute(statement)
    with op.batch_alter_table('files') as batch:
        batch.add_column(sa.Column('is_bundle', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table('archives') as batch:
        batch.add_column(sa.Column('bundle_row', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('member_offset', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('is_bundle', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.create_index('ix_archives_bundle_row', ['bundle_row'])
        batch.create_foreign_key('fk_archives_bundle_row', 'archives', ['bundle_row'], ['id'])
    with op.batch_alter_table('restores') as batch:
        batch.add_column(sa.Column('member_offset', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('range_first', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('range_last', sa.BigInteger(), nullable=True))
    op.create_table(
        'bundle_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bundle_file', sa.Integer(), nullable=False),
        sa.Column('file_id', sa.Integer(), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('offset', sa.BigInteger(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
        sa.Column('inode', sa.BigInteger(), nullable=False),
        sa.Column('mode', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('tree_hash', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('replaces', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['bundle_file'], ['files.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['replaces'], ['archives.id']),
        sa.ForeignKeyConstraint(['file_id'], ['files.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    dead = sa.text('deleted_at IS NOT NULL AND bundle_row IS NOT NULL')
    op.create_index('ix_archives_dead_members', 'archives', ['bundle_row'],
                    sqlite_where=dead, postgresql_where=dead)
    op.create_index('ix_bundle_members_bundle_file', 'bundle_members', ['bundle_file'])
    op.create_index('ix_bundle_members_file_id', 'bundle_members', ['file_id'])
    for statement in totals.create_statements(dialect, revision):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in totals.drop_statements(dialect):
        op.execute(statement)
    op.drop_index('ix_bundle_members_file_id', table_name='bundle_members')
    op.drop_index('ix_bundle_members_bundle_file', table_name='bundle_members')
    op.drop_index('ix_archives_dead_members', table_name='archives')
    op.drop_table('bundle_members')
    with op.batch_alter_table('restores') as batch:
        batch.drop_column('range_last')
        batch.drop_column('range_first')
        batch.drop_column('member_offset')
    with op.batch_alter_table('archives') as batch:
        batch.drop_constraint('fk_archives_bundle_row', type_='foreignkey')
        batch.drop_index('ix_archives_bundle_row')
        batch.drop_column('is_bundle')
        batch.drop_column('member_offset')
        batch.drop_column('bundle_row')
    with op.batch_alter_table('files') as batch:
        batch.drop_column('is_bundle')
    for statement in totals.create_statements(dialect, '0009'):
        op.execute(statement)

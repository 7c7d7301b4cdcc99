"""several hosts on one catalog: every file row knows its host (unique per host and
path), a daemon row per host, restores and unreadable folders per host, running
totals of files per host

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import socket

import sqlalchemy as sa
from alembic import op

from glacierd.store import totals

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# SQLite's batch mode reflects the unnamed UNIQUE (path) of revision 0001 by this name.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _owner() -> str:
    """The host the catalog's files belong to so far: its daemon's, else this one."""
    row = op.get_bind().execute(sa.text("SELECT host FROM daemon ORDER BY id LIMIT 1")).first()
    return str(row[0]) if row else socket.gethostname()


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    owner = _owner()
    for statement in totals.drop_statements(dialect):
        op.execute(statement)
    if dialect == "sqlite":
        with op.batch_alter_table('files', naming_convention=NAMING) as batch:
            batch.add_column(sa.Column('host', sa.String(length=255), nullable=False,
                                       server_default=owner))
            batch.drop_constraint('uq_files_path', type_='unique')
            batch.create_unique_constraint('uq_files_host_path', ['host', 'path'])
        with op.batch_alter_table('daemon') as batch:
            batch.create_unique_constraint('uq_daemon_host', ['host'])
        with op.batch_alter_table('restores') as batch:
            batch.add_column(sa.Column('host', sa.String(length=255), nullable=False,
                                       server_default=owner))
        with op.batch_alter_table('folder_problems', naming_convention=NAMING) as batch:
            batch.add_column(sa.Column('host', sa.String(length=255), nullable=False,
                                       server_default=owner))
            batch.drop_constraint('uq_folder_problems_path', type_='unique')
            batch.create_unique_constraint('uq_folder_problems_host_path', ['host', 'path'])
    else:
        op.add_column('files', sa.Column('host', sa.String(length=255), nullable=False,
                                         server_default=owner))
        op.drop_constraint('files_path_key', 'files', type_='unique')
        op.create_unique_constraint('uq_files_host_path', 'files', ['host', 'path'])
        op.create_unique_constraint('uq_daemon_host', 'daemon', ['host'])
        op.add_column('restores', sa.Column('host', sa.String(length=255), nullable=False,
                                            server_default=owner))
        op.add_column('folder_problems', sa.Column('host', sa.String(length=255),
                                                   nullable=False, server_default=owner))
        op.drop_constraint('folder_problems_path_key', 'folder_problems', type_='unique')
        op.create_unique_constraint('uq_folder_problems_host_path', 'folder_problems',
                                    ['host', 'path'])
    op.create_index('ix_files_host_state_updated', 'files', ['host', 'state', 'updated_at'])
    # the totals of files were kept without their host: counted again, with it
    op.execute("DELETE FROM totals WHERE kind = 'files'")
    op.execute(totals.RECOUNT_FILES_BY_HOST)
    for statement in totals.create_statements(dialect, revision):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for statement in totals.drop_statements(dialect):
        op.execute(statement)
    op.drop_index('ix_files_host_state_updated', table_name='files')
    if dialect == "sqlite":
        with op.batch_alter_table('folder_problems') as batch:
            batch.drop_constraint('uq_folder_problems_host_path', type_='unique')
            batch.create_unique_constraint('uq_folder_problems_path', ['path'])
            batch.drop_column('host')
        with op.batch_alter_table('restores') as batch:
            batch.drop_column('host')
        with op.batch_alter_table('daemon') as batch:
            batch.drop_constraint('uq_daemon_host', type_='unique')
        with op.batch_alter_table('files') as batch:
            batch.drop_constraint('uq_files_host_path', type_='unique')
            batch.create_unique_constraint('uq_files_path', ['path'])
            batch.drop_column('host')
    else:
        op.drop_constraint('uq_folder_problems_host_path', 'folder_problems', type_='unique')
        op.create_unique_constraint('folder_problems_path_key', 'folder_problems', ['path'])
        op.drop_column('folder_problems', 'host')
        op.drop_column('restores', 'host')
        op.drop_constraint('uq_daemon_host', 'daemon', type_='unique')
        op.drop_constraint('uq_files_host_path', 'files', type_='unique')
        op.create_unique_constraint('files_path_key', 'files', ['path'])
        op.drop_column('files', 'host')
    op.execute("DELETE FROM totals WHERE kind = 'files'")
    op.execute(totals.RECOUNT_SQL[0])
    for statement in totals.create_statements(dialect, '0010'):
        op.execute(statement)

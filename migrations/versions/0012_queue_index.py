"""the queue in order: files by host, state and id

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:20:00
"""

from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The drain walks the queue a page at a time, state by state in id order from
    # where it stopped (Store.pending_files): a range of this index, whatever the
    # size of the queue or of the catalog around it.
    op.create_index('ix_files_host_state_id', 'files', ['host', 'state', 'id'])


def downgrade() -> None:
    op.drop_index('ix_files_host_state_id', table_name='files')

"""the manifest archives of an encrypted archive whose path was too long

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A JSON array of archive ids (object keys): deleted with the archive.
    with op.batch_alter_table('uploads') as batch:
        batch.add_column(sa.Column('manifest_ids', sa.Text(), nullable=True))
    with op.batch_alter_table('archives') as batch:
        batch.add_column(sa.Column('manifest_ids', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('archives') as batch:
        batch.drop_column('manifest_ids')
    with op.batch_alter_table('uploads') as batch:
        batch.drop_column('manifest_ids')

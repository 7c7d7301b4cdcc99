"""each part's linear SHA-256 beside its tree hash (S3 lists and checks it)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Parts recorded before this revision keep NULL: they belong to vault uploads,
    # which are compared by tree hash only.
    with op.batch_alter_table('parts') as batch:
        batch.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('parts') as batch:
        batch.drop_column('sha256')

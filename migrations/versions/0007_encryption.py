"""encrypted uploads: age parameters until an upload ends, plaintext size and hash

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'upload_ciphers',
        sa.Column('upload_row', sa.Integer(), nullable=False),
        sa.Column('file_key', sa.LargeBinary(), nullable=False),
        sa.Column('header', sa.LargeBinary(), nullable=False),
        sa.Column('nonce', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['upload_row'], ['uploads.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('upload_row'),
    )
    with op.batch_alter_table('uploads') as batch:
        batch.add_column(sa.Column('wire_size', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('plain_sha256', sa.String(length=64), nullable=True))
    with op.batch_alter_table('archives') as batch:
        batch.add_column(sa.Column('plain_size', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('plain_sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('archives') as batch:
        batch.drop_column('plain_sha256')
        batch.drop_column('plain_size')
    with op.batch_alter_table('uploads') as batch:
        batch.drop_column('plain_sha256')
        batch.drop_column('wire_size')
    op.drop_table('upload_ciphers')

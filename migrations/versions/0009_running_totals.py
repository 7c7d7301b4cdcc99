"""running totals of files by state and live archives by vault, kept by triggers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from glacierd.store import totals

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'totals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.Column('bytes', sa.BigInteger(), nullable=False),
        sa.Column('small_n', sa.BigInteger(), nullable=False),
        sa.Column('small_bytes', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    dialect = op.get_bind().dialect.name
    for statement in (*totals.RECOUNT_SQL, *totals.create_statements(dialect, revision)):
        op.execute(statement)


def downgrade() -> None:
    for statement in totals.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('totals')

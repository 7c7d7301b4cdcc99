"""paths stored escaped (any bytes a name may hold); folder problems

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:20:00

Paths are kept in ``glacierd.pathtext``'s escaped form, so that a name that is
not UTF-8, or holds a newline or an escape sequence, is stored losslessly as
printable text. Names stored before were UTF-8 text as it was: a backslash or a
control character in them is escaped here, the rest is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from glacierd.pathtext import escape

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_PATH_COLUMNS = (("files", "path"), ("archives", "source_path"), ("restores", "source_path"),
                 ("restores", "dest_path"), ("jobs", "output_path"))


def upgrade() -> None:
    conn = op.get_bind()
    for table, column in _PATH_COLUMNS:
        rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
        for row_id, value in rows:
            if value is not None and escape(value) != value:
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :i"),
                             {"v": escape(value), "i": row_id})
    op.create_table('folder_problems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('path')
    )


def downgrade() -> None:
    op.drop_table('folder_problems')

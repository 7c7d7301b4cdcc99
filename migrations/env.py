"""Alembic environment: runs on the connection glacierd hands it.

``glacierd db upgrade`` (``glacierd.store.schema.upgrade``) passes an open
connection in ``config.attributes["connection"]``; the URL is never read from
an ini file, so credentials in a database URL stay out of Alembic's logs.
"""

from __future__ import annotations

from alembic import context

from glacierd.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `glacierd db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

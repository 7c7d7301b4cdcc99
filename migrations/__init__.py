"""Alembic migrations, installed as the package ``glacierd.migrations``."""

"""Alembic environment of the parameter store.

Normally driven programmatically by :class:`pipeline.store.ParameterStore`,
which passes an open connection (already inside a transaction) through
``config.attributes["connection"]``. From the ``alembic`` command line the URL
comes from ``sqlalchemy.url`` or, if that is empty, ``SOM_DATABASE_URL``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from pipeline.store import models

config = context.config
target_metadata = models.Base.metadata

# Arbitrary constant key: serialises concurrent upgrades on PostgreSQL.
_PG_MIGRATION_LOCK = 0x50_4D_53_4F  # "SOMP"

if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _migrate(connection: Connection) -> None:
    """Run the migrations on ``connection`` inside one transaction."""
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the migration SQL as a script (``alembic upgrade head --sql``)."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("SOM_DATABASE_URL")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate a live database, reusing the caller's connection when given one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("SOM_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or SOM_DATABASE_URL")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

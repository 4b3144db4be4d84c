"""Alembic environment: runs on the connection synclet hands over, or on the configured database."""
from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from synclet.tables import metadata

config = context.config
target_metadata = metadata


def run_on(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    from synclet.config import load_settings

    engine = create_engine(load_settings().database_url)
    with engine.begin() as connection:
        run_on(connection)


if context.is_offline_mode():
    raise SystemExit("synclet migrations run online only: use `python synclet.py init`")
run_online()

"""Alembic environment shared by the three stores; the store is chosen by the caller."""

from __future__ import annotations

from alembic import context

from gateway.db import make_engine

config = context.config
store = config.attributes.get("store", "main")
_url = config.get_main_option("sqlalchemy.url")
assert _url is not None
url: str = _url


def run() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run_with(connectable)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run_with(connection)
    engine.dispose()


def _run_with(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=f"alembic_version_{store}",
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


run()

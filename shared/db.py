"""SQLAlchemy 2.0 engines and sessions, database creation, and Alembic migrations per service."""

from __future__ import annotations

import select
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DisconnectionError

# Seconds to wait for PostgreSQL to accept a connection (libpq's minimum is 2): a database that is
# away makes a request answer `unavailable` promptly rather than hold its worker.
DB_CONNECT_TIMEOUT = 2


def server_went_away(dbapi_connection: Any) -> bool:
    """Whether an idle pooled connection can no longer be used, told without a round trip.

    An idle connection receives nothing unless the server ended it: a restart or a terminated
    backend sends its FATAL notice and closes the socket, which makes the socket readable. One
    `select` tells, where a ping (`SELECT 1`) would cost a round trip on every transaction.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        return bool(select.select([dbapi_connection.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _replace_dead_connections(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # The pool discards a connection refused here and checks out (or opens) another.
    if server_went_away(dbapi_connection):
        raise DisconnectionError("the database ended this connection")


@cache
def engine_for(url: str, pool_size: int = 10) -> Engine:
    """One pooled engine per URL per process; a connection that died (a database restart) is replaced on checkout."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": DB_CONNECT_TIMEOUT},
        future=True,
    )
    event.listen(engine, "checkout", _replace_dead_connections)
    return engine


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    """A connection in a transaction that commits on success and rolls back on any exception.

    Services speak SQL through `text()` and Core statements, so a Core connection is all
    they need: the ORM session's unit of work would cost a third of a millisecond a call.
    """
    with engine_for(url).begin() as connection:
        yield connection


def analyze(url: str, tables: Iterable[str]) -> None:
    """Fresh planner statistics for tables a bulk load has just filled.

    Until autovacuum gets to them (a minute or more), the planner takes a freshly filled table
    for empty and may walk all of it where an index would answer at once.
    """
    names = sorted(set(tables))
    if not names:
        return
    with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE " + ", ".join(f'"{name}"' for name in names)))


def ensure_database(url: str) -> bool:
    """Create the database named in `url` when missing; True when it was created."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = make_url(url)
    engine_for.cache_clear()
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def migrate(url: str, migrations_dir: Path, revision: str = "head") -> None:
    """Create the database if needed and bring it to `revision` with the service's Alembic scripts."""
    from alembic import command
    from alembic.config import Config

    ensure_database(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["url"] = url
    command.upgrade(cfg, revision)


def run_alembic_env() -> None:
    """The body of every service's `migrations/env.py`: online migrations on the configured URL."""
    from alembic import context

    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()

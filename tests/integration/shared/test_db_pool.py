"""The connection pool against a real PostgreSQL: a connection the server ended is never handed out."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from shared.db import transaction


def _backend(url: str) -> int:
    with transaction(url) as session:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_pooled_connection_whose_backend_was_terminated_is_replaced_before_use(db_url: str) -> None:
    first = _backend(db_url)
    # From outside the pool, as a database restart or an administrator would.
    outside = create_engine(db_url, poolclass=NullPool)
    with outside.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    time.sleep(0.2)  # the server's farewell reaches the idle socket
    second = _backend(db_url)  # no error: the dead connection was set aside at checkout
    assert second != first


def test_a_healthy_pooled_connection_is_reused(db_url: str) -> None:
    assert _backend(db_url) == _backend(db_url)

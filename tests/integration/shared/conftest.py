"""Fixtures of the shared library's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shared.config import Settings
from shared.db import drop_database, ensure_database
from shared.outbox import outbox_table, processed_events_table


@pytest.fixture
def db_url(settings: Settings) -> Iterator[str]:
    url = settings.database_url("outboxtest") + "_" + settings.namespace.rsplit("-", 1)[-1]
    ensure_database(url)
    meta = sa.MetaData()
    outbox_table(meta)
    processed_events_table(meta)
    engine = sa.create_engine(url)
    meta.create_all(engine)
    engine.dispose()
    yield url
    drop_database(url)

"""Integration fixtures: each service's real database, migrated once, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from deploy.local import DEFINITIONS
from shared.config import Settings
from shared.db import migrate, transaction


@pytest.fixture(scope="session")
def migrated(base_settings: Settings) -> Settings:
    for name, (_, migrations) in DEFINITIONS.items():
        migrate(base_settings.database_url(name), migrations)
    return base_settings


def truncate(url: str, only: tuple[str, ...] | None = None) -> None:
    """Empty every table of a service's database (or just those of `only` that exist)."""
    with transaction(url) as session:
        tables = (
            session.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
            .scalars()
            .all()
        )
        tables = [t for t in tables if only is None or t in only]
        if tables:
            session.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))


@pytest.fixture
def db(migrated: Settings, settings: Settings) -> Iterator[Settings]:
    """Empty service databases for this test, with the test's own bus namespace."""
    for name in DEFINITIONS:
        truncate(settings.database_url(name))
    yield settings


@pytest.fixture(scope="session")
def demo_roster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from services.directory.roster.generate import write_demo_roster

    target = tmp_path_factory.mktemp("demo-roster")
    write_demo_roster(target)
    return target

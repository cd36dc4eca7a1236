"""Conversations against the real directory: the roster imported, the directory answering RPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services import directory
from services.conversations.handlers import methods
from services.directory.handlers import import_roster
from shared.config import Settings
from shared.db import transaction
from shared.rpc import Caller, Method, RpcServer
from tests.integration.conftest import truncate

TEACHER, STUDENT, OTHER = "user-t-001", "user-s-0001", "user-s-0002"
ADMIN, DISTRICT_ADMIN = "user-a-001", "user-a-000"


class Api:
    """Calls the service's RPC methods in-process, as a given user."""

    def __init__(self, table: dict[str, Method]) -> None:
        self.table = table

    def __getitem__(self, name: str) -> Method:
        return self.table[name]

    def call(self, user: str | None, method: str, **params: Any) -> Any:
        return self.table[method](Caller(user) if user else None, params)

    def start(self, sender: str, *recipients: str | tuple[str, str], body: str = "Hello", **extra: Any) -> Any:
        listed = [{"type": "user", "id": r} if isinstance(r, str) else {"type": r[0], "id": r[1]} for r in recipients]
        return self.call(sender, "conversations.create", recipients=listed, body=body, **extra)

    def send(self, sender: str, conversation_id: str, body: str, **extra: Any) -> Any:
        return self.call(sender, "messages.send", conversation_id=conversation_id, body=body, **extra)

    def conversation(self, user: str, conversation_id: str) -> Any:
        return self.call(user, "conversations.get", conversation_id=conversation_id)


@pytest.fixture
def db(migrated: Settings, settings: Settings, demo_roster: Path) -> Settings:
    """An empty conversations database beside a directory holding the demo roster and no policy.

    The roster is imported once and kept (importing costs a second); what tests change in the
    directory (blocks, rules, privileges, events) is emptied before each test.
    """
    truncate(settings.database_url("conversations"))
    url = settings.database_url("directory")
    with transaction(url) as session:
        loaded = session.execute(text("SELECT count(*) FROM users")).scalar_one() > 0
    if not loaded:
        import_roster(url, demo_roster)
    truncate(url, only=("outbox", "processed_events", "messaging_blocks", "communication_rules", "privileges"))
    return settings


@pytest.fixture
def rpc(db: Settings) -> Iterator[dict[str, Method]]:
    server = RpcServer(db, "directory", directory.DEFINITION.methods(db), threads=2).start()
    yield methods(db)
    server.stop(wait=False)


@pytest.fixture
def api(rpc: dict[str, Method]) -> Api:
    return Api(rpc)


def outbox(settings: Settings, type_: str) -> list[Any]:
    with transaction(settings.database_url("conversations")) as session:
        return [
            r.envelope
            for r in session.execute(text("SELECT envelope FROM outbox WHERE type = :t ORDER BY id"), {"t": type_})
        ]

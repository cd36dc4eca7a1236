"""Moderation against the real conversations and directory services: their RPC servers running,
moderation's own methods called in-process, its events handled as its consumer handles them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from services import conversations
from services.moderation.handlers import consumers, methods
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.events import Envelope
from shared.rpc import Caller, RpcServer
from tests.integration.conftest import truncate
from tests.integration.conversations.conftest import Api, api, db, rpc  # noqa: F401  (fixtures this layer builds on)


class World:
    """Conversations (in-process, and serving RPC for moderation) and moderation, as named users."""

    def __init__(self, settings: Settings, conversations_api: Api) -> None:
        self.settings = settings
        self.api = conversations_api
        self.moderation = methods(settings)
        self.consumer = consumers(settings)[0]

    def call(self, user: str | None, method: str, **params: Any) -> Any:
        if method.split(".")[0] in ("reports", "audit", "safeguarding"):
            return self.moderation[method](Caller(user) if user else None, params)
        return self.api.call(user, method, **params)

    def refusal(self, user: str | None, method: str, **params: Any) -> AppError:
        with pytest.raises(AppError) as info:
            self.call(user, method, **params)
        return info.value

    def report(
        self,
        reporter: str,
        to: str,
        *,
        message_id: str | None = None,
        conversation_id: str | None = None,
        reason: str = "Unkind words",
    ) -> dict[str, Any]:
        target = {"message_id": message_id} if message_id else {"conversation_id": conversation_id}
        return self.call(reporter, "reports.create", to_user_id=to, reason=reason, **target)

    def deliver(self) -> None:
        """Hand moderation the conversations events it consumes, as its consumer would, and forget them."""
        with transaction(self.settings.database_url("conversations")) as session:
            rows = session.execute(
                text("DELETE FROM outbox WHERE type = ANY(:types) RETURNING envelope"),
                {"types": list(self.consumer.bindings)},
            ).all()
        for row in rows:
            self.consumer.handler(Envelope.from_json(row.envelope))

    def rows(self, service: str, sql: str, **params: Any) -> list[Any]:
        with transaction(self.settings.database_url(service)) as session:
            return list(session.execute(text(sql), params))

    def events(self, service: str, type_: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.envelope)
            for r in self.rows(service, "SELECT envelope FROM outbox WHERE type = :t ORDER BY id", t=type_)
        ]


@pytest.fixture
def world(db: Settings, api: Api) -> Iterator[World]:  # noqa: F811  (the fixtures imported above)
    truncate(db.database_url("moderation"))
    server = RpcServer(db, "conversations", conversations.DEFINITION.methods(db), threads=2).start()
    yield World(db, api)
    server.stop(wait=False)

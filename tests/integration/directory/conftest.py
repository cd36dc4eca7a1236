"""The demo roster in the real directory database, its RPC methods, and what they left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.directory.handlers import import_roster, methods
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.rpc import Caller, Method


class Directory:
    """The directory's RPC methods called in-process, as a named user, plus reads of its rows."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url("directory")
        self.methods: dict[str, Method] = methods(settings)

    def __call__(self, method: str, params: dict[str, Any] | None = None, *, as_user: str | None = None) -> Any:
        return self.methods[method](Caller(as_user) if as_user else None, params or {})

    def refusal(self, method: str, params: dict[str, Any] | None = None, *, as_user: str | None = None) -> AppError:
        with pytest.raises(AppError) as info:
            self(method, params, as_user=as_user)
        return info.value

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with transaction(self.url) as session:
            return list(session.execute(text(sql), params))

    def scalar(self, sql: str, **params: Any) -> Any:
        with transaction(self.url) as session:
            return session.execute(text(sql), params).scalar()

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The envelopes waiting in the outbox, oldest first."""
        envelopes = [json.loads(r.envelope) for r in self.rows("SELECT envelope FROM outbox ORDER BY id")]
        return [e for e in envelopes if type_ is None or e["type"] == type_]

    def clear_events(self) -> None:
        with transaction(self.url) as session:
            session.execute(text("DELETE FROM outbox"))

    def user(self, user_id: str) -> dict[str, Any]:
        return self("users.get", {"ids": [user_id]})["users"][0]

    def state(self) -> tuple[Any, ...]:
        """Everything an administrator's action could change, to show a refusal changed nothing."""
        return (
            self.rows("SELECT target_kind, target_id FROM messaging_blocks ORDER BY 1, 2"),
            self.rows("SELECT org_id, student_policy FROM communication_rules ORDER BY 1"),
            self.rows("SELECT user_id, privilege FROM privileges ORDER BY 1, 2"),
            self.scalar("SELECT count(*) FROM outbox"),
        )


@pytest.fixture
def directory(db: Settings, demo_roster: Path) -> Directory:
    """The demo roster imported, its import events gone."""
    found = Directory(db)
    import_roster(found.url, demo_roster)
    found.clear_events()
    return found

"""Mass messaging against the real directory and conversations services (their RPC servers
running), its own methods in-process, and its Celery tasks run in-process in queue order."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from services import conversations
from services.mass_messaging.handlers import methods
from services.mass_messaging.worker import Runner, make_app
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.rpc import Caller, RpcServer
from tests.integration.conftest import truncate
from tests.integration.conversations.conftest import Api, api, db, rpc  # noqa: F401  (fixtures this layer builds on)

ADMIN, DISTRICT_ADMIN, OTHER_ADMIN = "user-a-002", "user-a-000", "user-a-001"


class Tasks:
    """The Celery queue as a list: what was sent, run when the test says."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, list[Any]]] = deque()

    def send_task(self, name: str, args: list[Any], **_: Any) -> None:
        self.queue.append((name, args))


class Mass:
    def __init__(self, settings: Settings, conversations_api: Api) -> None:
        self.settings = settings
        self.api = conversations_api
        self.methods = methods(settings)
        self.tasks = Tasks()
        self.runner = Runner(settings, make_app(settings))
        self.runner.app = self.tasks  # type: ignore[assignment]  (tasks it queues land in the list)

    def call(self, user: str | None, method: str, **params: Any) -> Any:
        return self.methods[method](Caller(user) if user else None, params)

    def refusal(self, user: str | None, method: str, **params: Any) -> AppError:
        with pytest.raises(AppError) as info:
            self.call(user, method, **params)
        return info.value

    def run(self, limit: int | None = None) -> int:
        """Run queued tasks in order (at most `limit`); how many ran."""
        ran = 0
        while self.tasks.queue and (limit is None or ran < limit):
            name, args = self.tasks.queue.popleft()
            getattr(self.runner, name.split(".")[1])(*args)
            ran += 1
        return ran

    def rows(self, service: str, sql: str, **params: Any) -> list[Any]:
        with transaction(self.settings.database_url(service)) as session:
            return list(session.execute(text(sql), params))


@pytest.fixture
def mass(db: Settings, api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mass]:  # noqa: F811
    truncate(db.database_url("mass_messaging"))
    server = RpcServer(db, "conversations", conversations.DEFINITION.methods(db), threads=2).start()
    world = Mass(db, api)
    # The request hands its job to the queue above rather than to a broker nobody consumes here.
    monkeypatch.setattr(
        "services.mass_messaging.handlers.queue_plan", lambda app, job_id: world.tasks.send_task("mass.plan", [job_id])
    )
    grant(world, ADMIN)
    yield world
    server.stop(wait=False)


def grant(world: Mass, user: str) -> None:
    with transaction(world.settings.database_url("directory")) as session:
        session.execute(
            text(
                "INSERT INTO privileges (user_id, privilege, granted_by) VALUES (:u, 'mass_messaging', 'user-a-000') "
                "ON CONFLICT DO NOTHING"
            ),
            {"u": user},
        )

"""The sync service against the real broker and database: a running change logger, an observer of
what it republishes, and helpers to publish events and read a user's sync."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kombu import Connection, Queue, binding
from sqlalchemy import text

from deploy.local import delete_topology
from services.sync.handlers import methods
from services.sync.log import ChangeLogger
from shared.bus import events_exchange
from shared.config import Settings
from shared.db import transaction
from shared.events import Envelope, make_event
from shared.rpc import Caller, Method
from tests.support.bus import publish  # noqa: F401  (the sync tests import it from here)
from tests.support.waiting import wait_for

ALICE, BOB, CAROL = "user-a", "user-b", "user-c"


@pytest.fixture
def db(migrated: Settings, settings: Settings) -> Iterator[Settings]:
    """An empty change log (positions from 1 again, floor 0) and this test's own bus namespace.

    The namespace's queues and exchanges are removed afterwards.
    """
    with transaction(settings.database_url("sync")) as session:
        session.execute(text("TRUNCATE changes, change_audience, change_messages RESTART IDENTITY"))
        session.execute(text("DELETE FROM log_floor"))
        session.execute(text("INSERT INTO log_floor (id, seq) VALUES (true, 0)"))
    yield settings
    delete_topology(settings)


def message(audience: list[str] | None, body: str = "hello", **extra: Any) -> Envelope:
    data = {"message": {"id": f"m-{body}", "body": body}, "conversation_id": "c1", **extra}
    return make_event("conversations.message.created", data, producer="test", audience=audience)


def publish_raw(settings: Settings, body: bytes | str, routing_key: str = "conversations.message.created") -> None:
    """Put anything on the bus, shaped like an event or not."""
    with Connection(settings.amqp_url) as conn:
        conn.Producer().publish(
            body,
            exchange=settings.exchange,
            routing_key=routing_key,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
        )


def logged_rows(settings: Settings) -> list[tuple[str, int]]:
    """(event id, position) of every logged change, in log order."""
    with transaction(settings.database_url("sync")) as session:
        return [
            (str(r.event_id), r.seq) for r in session.execute(text("SELECT event_id, seq FROM changes ORDER BY seq"))
        ]


def queue_depth(settings: Settings, name: str) -> int:
    with Connection(settings.amqp_url) as conn:
        return conn.default_channel.queue_declare(name, passive=True).message_count


@dataclass
class Republished:
    routing_key: str
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def seq(self) -> int:
        return self.body["seq"]


class Observer:
    """A queue bound to `logged.#`: everything the change logger republishes, in order."""

    def __init__(self, settings: Settings) -> None:
        self.conn = Connection(settings.amqp_url)
        self.queue = Queue(
            settings.consumer_queue("test.observer"),
            bindings=[binding(events_exchange(settings), routing_key="logged.#")],
            durable=False,
            auto_delete=False,
        )
        channel = self.conn.channel()
        events_exchange(settings)(channel).declare()
        self.bound = self.queue(channel)
        self.bound.declare()
        self.received: list[Republished] = []

    def _drain(self) -> None:
        while (message := self.bound.get(no_ack=True)) is not None:
            self.received.append(Republished(message.delivery_info["routing_key"], json.loads(message.body)))

    def wait(self, predicate: Callable[[list[Republished]], bool], timeout: float = 15.0) -> list[Republished]:
        def check() -> bool:
            self._drain()
            return predicate(self.received)

        assert wait_for(check, timeout), [(r.routing_key, r.id, r.seq) for r in self.received]
        return self.received

    def wait_ids(self, ids: list[str], timeout: float = 15.0) -> list[Republished]:
        """Wait until each of `ids` has been republished at least once."""
        wanted = set(ids)
        return self.wait(lambda got: wanted <= {r.id for r in got}, timeout)

    def settle(self, quiet: float = 0.5) -> list[Republished]:
        """Everything republished, once nothing more has come for `quiet` seconds."""
        count = -1
        while count != len(self.received):
            count = len(self.received)
            time.sleep(quiet)
            self._drain()
        return self.received

    def close(self) -> None:
        self.bound.delete()
        self.conn.release()


@pytest.fixture
def observer(db: Settings) -> Iterator[Observer]:
    watching = Observer(db)
    yield watching
    watching.close()


class RunningLogger:
    def __init__(self, logger: ChangeLogger) -> None:
        self.logger = logger
        self.thread = threading.Thread(target=logger.run, name="test-change-logger", daemon=True)

    def start(self) -> RunningLogger:
        self.thread.start()
        assert self.logger.ready.wait(10), "the change logger did not start"
        return self

    def stop(self) -> None:
        self.logger.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the change logger did not stop"


@pytest.fixture
def start_logger(db: Settings) -> Iterator[Callable[..., RunningLogger]]:
    """`start_logger()`: a ChangeLogger running in a thread, consuming; stopped after the test."""
    started: list[RunningLogger] = []

    def _start(logger: ChangeLogger | None = None) -> RunningLogger:
        running = RunningLogger(logger or ChangeLogger(db)).start()
        started.append(running)
        return running

    yield _start
    for running in started:
        if running.thread.is_alive():
            running.stop()


@pytest.fixture
def logger(start_logger: Callable[..., RunningLogger]) -> RunningLogger:
    return start_logger()


class Sync:
    """`sync.changes` as the gateway calls it, for one user at a time."""

    def __init__(self, table: dict[str, Method]) -> None:
        self.method = table["sync.changes"]

    def __call__(self, user: str, **params: Any) -> dict[str, Any]:
        return self.method(Caller(user), params)

    def everything(self, user: str, since: str, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
        """Every change after `since`, page by page; the changes and the final cursor."""
        changes: list[dict[str, Any]] = []
        while True:
            page = self(user, since=since, limit=limit)
            changes += page["changes"]
            since = page["cursor"]
            if not page["has_more"]:
                return changes, since


@pytest.fixture
def sync(db: Settings) -> Sync:
    return Sync(methods(db))


@pytest.fixture
def log_events(db: Settings, logger: RunningLogger) -> Callable[..., list[Envelope]]:
    """Publish events through the bus and wait until the running logger has stored them all."""

    def _log(*events: Envelope) -> list[Envelope]:
        publish(db, *events)
        ids = {e.id for e in events}
        assert wait_for(lambda: ids <= {event_id for event_id, _ in logged_rows(db)}), "events were not logged"
        return list(events)

    return _log

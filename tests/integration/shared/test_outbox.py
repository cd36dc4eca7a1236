"""The transactional outbox and its relay against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import dataclasses
import time

import pytest
from sqlalchemy import text

from shared.bus import ConsumerSpec, start_consumer
from shared.config import Settings
from shared.db import transaction
from shared.events import Envelope
from shared.outbox import add_event, claim_event, start_relay
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_for


def _outbox_rows(url: str) -> int:
    with transaction(url) as session:
        return session.execute(text("SELECT count(*) FROM outbox")).scalar_one()


def test_an_event_leaves_only_if_its_transaction_commits(settings: Settings, db_url: str) -> None:
    received: list[Envelope] = []
    consumer, _ = start_consumer(settings, ConsumerSpec("t-outbox-commit", ("directory.#",), received.append))
    relay, _ = start_relay(settings, "outboxtest", db_url)
    try:
        with pytest.raises(RuntimeError):
            with transaction(db_url) as session:
                add_event(session, "outboxtest", "directory.user.removed", {"user_id": "rolled-back"})
                raise RuntimeError("the state change failed")
        with transaction(db_url) as session:
            kept = add_event(session, "outboxtest", "directory.user.removed", {"user_id": "kept"})
        assert wait_for(lambda: len(received) == 1)
        time.sleep(0.3)
        assert [e.id for e in received] == [kept.id]
        assert wait_for(lambda: _outbox_rows(db_url) == 0)
    finally:
        relay.stop()
        consumer.stop()


def test_events_wait_while_the_broker_is_unreachable_and_each_is_handled_once_when_it_is_back(
    settings: Settings, db_url: str
) -> None:
    handled: list[str] = []

    def handler(envelope: Envelope) -> None:
        with transaction(db_url) as session:
            if claim_event(session, "t-outbox-down", envelope.id):
                handled.append(envelope.data["user_id"])

    consumer, _ = start_consumer(settings, ConsumerSpec("t-outbox-down", ("directory.#",), handler))
    proxy = TcpProxy("127.0.0.1", 5672)
    relay_settings = dataclasses.replace(settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}//")
    relay, _ = start_relay(relay_settings, "outboxtest", db_url)
    try:
        with transaction(db_url) as session:
            add_event(session, "outboxtest", "directory.user.removed", {"user_id": "before"})
        assert wait_for(lambda: handled == ["before"])

        proxy.cut()
        for i in range(5):
            with transaction(db_url) as session:
                add_event(session, "outboxtest", "directory.user.removed", {"user_id": f"during-{i}"})
        time.sleep(2.0)
        assert handled == ["before"]
        assert _outbox_rows(db_url) == 5

        proxy.restore()
        assert wait_for(lambda: len(handled) == 6, timeout=20)
        assert wait_for(lambda: _outbox_rows(db_url) == 0)
        time.sleep(0.5)
        assert handled == ["before"] + [f"during-{i}" for i in range(5)]
    finally:
        relay.stop()
        consumer.stop()
        proxy.close()


def test_a_claimed_event_is_not_handled_twice(db_url: str) -> None:
    with transaction(db_url) as session:
        assert claim_event(session, "c", "6f1d4f8e-6f0e-4d59-9a43-2d8a4d36b1a1") is True
    with transaction(db_url) as session:
        assert claim_event(session, "c", "6f1d4f8e-6f0e-4d59-9a43-2d8a4d36b1a1") is False
        assert claim_event(session, "other", "6f1d4f8e-6f0e-4d59-9a43-2d8a4d36b1a1") is True


def test_only_one_relay_per_service_publishes_so_order_is_kept(settings: Settings, db_url: str) -> None:
    received: list[Envelope] = []
    consumer, _ = start_consumer(settings, ConsumerSpec("t-outbox-order", ("directory.#",), received.append))
    relays = [start_relay(settings, "outboxtest", db_url)[0] for _ in range(3)]
    try:
        for i in range(200):
            with transaction(db_url) as session:
                add_event(session, "outboxtest", "directory.user.removed", {"user_id": str(i)})
        assert wait_for(lambda: len(received) == 200)
        assert [int(e.data["user_id"]) for e in received] == list(range(200))
    finally:
        for relay in relays:
            relay.stop()
        consumer.stop()

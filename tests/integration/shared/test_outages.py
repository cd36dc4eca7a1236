"""Outages of the broker seen by each kind of loop: nothing ends, callers hear `unavailable` at once,
and every loop serves again within two seconds of the broker's return."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from shared.bus import ConsumerSpec, start_consumer
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.events import Envelope
from shared.outbox import add_event, start_relay
from shared.rpc import RpcClient, RpcServer
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_for


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5672)
    yield proxy
    proxy.close()


def _through(settings: Settings, proxy: TcpProxy) -> Settings:
    return dataclasses.replace(settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}//")


def _echo(caller: Any, params: dict[str, Any]) -> dict[str, Any]:
    return params


def _recovered_within(check: Any, timeout: float = 10.0) -> float:
    """Seconds until `check()` holds (AssertionError if it never does within `timeout`)."""
    started = time.monotonic()
    assert wait_for(check, timeout=timeout)
    return time.monotonic() - started


def test_a_call_while_the_broker_is_away_answers_unavailable_at_once_and_works_again_soon_after(
    settings: Settings, proxy: TcpProxy
) -> None:
    server = RpcServer(settings, "outage", {"echo": _echo}, threads=1).start()
    client = RpcClient(_through(settings, proxy))
    try:
        assert client.call("outage", "echo", {"n": 1}) == {"n": 1}
        proxy.cut()
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(AppError) as info:
                client.call("outage", "echo", {"n": 2}, timeout=5)
            assert info.value.code == "unavailable" and info.value.status == 503
            assert time.monotonic() - started < 0.5, "nobody waits for a broker that is away"
        proxy.restore()

        def answers() -> bool:
            try:
                return client.call("outage", "echo", {"n": 3}, timeout=1) == {"n": 3}
            except AppError:
                return False

        assert _recovered_within(answers) < 2.0
    finally:
        client.close()
        server.stop()


def test_rpc_workers_and_consumers_serve_again_within_two_seconds_of_the_broker(
    settings: Settings, proxy: TcpProxy
) -> None:
    via_proxy = _through(settings, proxy)
    server = RpcServer(via_proxy, "outage2", {"echo": _echo}, threads=2).start()
    received: list[str] = []
    consumer, _ = start_consumer(via_proxy, ConsumerSpec("t-outage", ("directory.#",), lambda e: received.append(e.id)))
    client = RpcClient(settings)
    try:
        proxy.cut()
        assert wait_for(lambda: not consumer.ready.is_set() and not any(w.ready.is_set() for w in server.workers))
        time.sleep(3.0)  # long enough for kombu's old back-off (2 s, then 4 s) to show
        proxy.restore()
        took = _recovered_within(lambda: consumer.ready.is_set() and all(w.ready.is_set() for w in server.workers))
        assert took < 2.0, f"back after {took:.1f}s"
        assert client.call("outage2", "echo", {"n": 1}) == {"n": 1}
    finally:
        consumer.stop()
        server.stop()
        client.close()


def test_a_relay_with_rows_waiting_survives_a_broker_that_keeps_refusing_and_publishes_them_after(
    settings: Settings, proxy: TcpProxy, db_url: str
) -> None:
    # Each event once, in the order first seen: a batch whose confirms the cut swallowed is published
    # again (at least once, as consumers expect), and may arrive twice.
    received: dict[str, str] = {}
    lock = threading.Lock()

    def handler(envelope: Envelope) -> None:
        with lock:
            received.setdefault(envelope.id, envelope.data["user_id"])

    def outbox_rows() -> int:
        with transaction(db_url) as session:
            return session.execute(text("SELECT count(*) FROM outbox")).scalar_one()

    consumer, _ = start_consumer(settings, ConsumerSpec("t-outage-relay", ("directory.#",), handler))
    relay, thread = start_relay(_through(settings, proxy), "outboxtest", db_url)
    try:
        assert wait_for(relay.ready.is_set)
        for round_ in range(3):
            proxy.cut()
            with transaction(db_url) as session:
                for i in range(20):
                    add_event(session, "outboxtest", "directory.user.removed", {"user_id": f"r{round_}-{i}"})
            time.sleep(1.5)  # the relay tries, fails, and tries again
            assert thread.is_alive() and not relay.ready.is_set()
            assert outbox_rows() == 20
            proxy.restore()
            took = _recovered_within(lambda n=20 * (round_ + 1): len(received) == n)
            assert took < 2.0, f"round {round_}: published {took:.1f}s after the broker came back"
            assert wait_for(lambda: outbox_rows() == 0), "published but not taken off the outbox"
        assert list(received.values()) == [f"r{r}-{i}" for r in range(3) for i in range(20)]
    finally:
        relay.stop()
        consumer.stop()


def test_a_database_that_is_away_answers_unavailable_not_internal(settings: Settings) -> None:
    import sqlalchemy as sa

    gone = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})

    def read(caller: Any, params: dict[str, Any]) -> Any:
        with gone.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar()

    def bug(caller: Any, params: dict[str, Any]) -> Any:
        raise KeyError("a bug")

    server = RpcServer(settings, "dbaway", {"read": read, "bug": bug}, threads=1).start()
    client = RpcClient(settings)
    try:
        with pytest.raises(AppError) as info:
            client.call("dbaway", "read")
        assert info.value.code == "unavailable" and info.value.status == 503
        with pytest.raises(AppError) as info:
            client.call("dbaway", "bug")
        assert info.value.code == "internal"
    finally:
        client.close()
        server.stop()
        gone.dispose()

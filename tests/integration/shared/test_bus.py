"""The event bus against a real RabbitMQ: confirms, redelivery, dead-lettering."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

from kombu import Connection

from shared.bus import ConsumerSpec, start_consumer
from shared.config import Settings
from shared.events import Envelope, make_event
from tests.support.bus import publish
from tests.support.waiting import wait_for


def _event(text: str = "hello") -> Envelope:
    return make_event("directory.user.removed", {"user_id": text}, producer="test")


def _queue_depth(settings: Settings, name: str) -> int:
    with Connection(settings.amqp_url) as conn:
        return conn.default_channel.queue_declare(name, passive=True).message_count


def test_a_confirmed_event_reaches_every_bound_consumer_once(settings: Settings) -> None:
    received: list[Envelope] = []
    consumer, _ = start_consumer(settings, ConsumerSpec("t-confirm", ("directory.#",), received.append))
    try:
        events = [_event(f"u{i}") for i in range(50)]
        publish(settings, *events)
        assert wait_for(lambda: len(received) == 50)
        time.sleep(0.3)
        assert [e.id for e in received] == [e.id for e in events]
    finally:
        consumer.stop()


def test_a_consumer_only_gets_the_types_it_is_bound_to(settings: Settings) -> None:
    received: list[Envelope] = []
    consumer, _ = start_consumer(settings, ConsumerSpec("t-bound", ("conversations.#",), received.append))
    try:
        publish(settings, _event())
        time.sleep(0.5)
        assert received == []
    finally:
        consumer.stop()


def test_an_event_is_redelivered_when_its_consumer_dies_before_acking(settings: Settings, tmp_path) -> None:
    marker = tmp_path / "seen"
    # A consumer in another process that dies in the middle of handling, before its ack.
    script = textwrap.dedent(
        f"""
        import dataclasses, os, pathlib
        from shared.config import Settings
        from shared.bus import ConsumerSpec, EventConsumer
        settings = dataclasses.replace(Settings.from_env(), namespace={settings.namespace!r})
        def die(envelope):
            pathlib.Path({str(marker)!r}).write_text(envelope.id)
            os._exit(17)
        EventConsumer(settings, ConsumerSpec("t-redeliver", ("directory.#",), die)).run()
        """
    )
    # Declare the queue first so the event is routed before the dying consumer is up.
    received: list[Envelope] = []
    survivor, _ = start_consumer(settings, ConsumerSpec("t-redeliver", ("directory.#",), received.append, prefetch=1))
    survivor.stop()
    time.sleep(1.5)
    event = _event("redelivered")
    publish(settings, event)
    proc = subprocess.run([sys.executable, "-c", script], timeout=30)
    assert proc.returncode == 17
    assert marker.read_text() == event.id
    consumer, _ = start_consumer(settings, ConsumerSpec("t-redeliver", ("directory.#",), received.append))
    try:
        assert wait_for(lambda: len(received) == 1)
        assert received[0].id == event.id
    finally:
        consumer.stop()


def test_a_poison_message_is_retried_a_few_times_then_dead_lettered(settings: Settings) -> None:
    calls: list[str] = []

    def always_fails(envelope: Envelope) -> None:
        calls.append(envelope.id)
        raise RuntimeError("boom")

    consumer, _ = start_consumer(settings, ConsumerSpec("t-poison", ("directory.#",), always_fails, max_attempts=3))
    try:
        event = _event("poison")
        publish(settings, event)
        dead = f"{settings.consumer_queue('t-poison')}.dead"
        assert wait_for(lambda: _queue_depth(settings, dead) == 1)
        time.sleep(0.5)
        assert calls == [event.id] * 3
        assert _queue_depth(settings, settings.consumer_queue("t-poison")) == 0
    finally:
        consumer.stop()


def test_an_unparseable_message_goes_straight_to_the_dead_letter_queue(settings: Settings) -> None:
    calls: list[Envelope] = []
    consumer, _ = start_consumer(settings, ConsumerSpec("t-garbage", ("directory.#",), calls.append))
    try:
        with Connection(settings.amqp_url) as conn:
            producer = conn.Producer()
            producer.publish(
                b"{not json",
                exchange=settings.exchange,
                routing_key="directory.user.removed",
                content_type="application/json",
                content_encoding="utf-8",
            )
            # JSON of every wrong shape: an object that is no envelope, a string, a list, a number
            # too big for an int, nesting deeper than the parser goes.
            odd = [json.dumps({"type": "x"}), '"x"', "[1, 2]", '{"version": 1e400}', "[" * 100_000]
            for body in odd:
                producer.publish(
                    body,
                    exchange=settings.exchange,
                    routing_key="directory.user.removed",
                    content_type="application/json",
                )
            good = make_event("directory.user.removed", {"user_id": "u1"}, producer="test")
            producer.publish(
                good.to_json(), exchange=settings.exchange, routing_key=good.type, content_type="application/json"
            )
        dead = f"{settings.consumer_queue('t-garbage')}.dead"
        # The consumer survives them all and handles what comes behind them.
        assert wait_for(lambda: [c.id for c in calls] == [good.id])
        assert wait_for(lambda: _queue_depth(settings, dead) == 1 + len(odd))
    finally:
        consumer.stop()


def test_the_handler_runs_on_one_message_at_a_time_per_consumer_thread(settings: Settings) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow(envelope: Envelope) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1

    consumer, _ = start_consumer(settings, ConsumerSpec("t-serial", ("directory.#",), slow))
    try:
        publish(settings, *[_event(str(i)) for i in range(20)])
        assert wait_for(lambda: _queue_depth(settings, settings.consumer_queue("t-serial")) == 0)
        assert peak == 1
    finally:
        consumer.stop()

"""Talking to the real bus from tests: publish as a relay does, run a service's consumers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shared.bus import ConfirmingPublisher, ConsumerSpec, EventConsumer, start_consumer
from shared.config import Settings
from shared.events import Envelope


def publish(settings: Settings, *events: Envelope) -> None:
    """Publish as a service's outbox relay does: routing key = event type, confirmed by the broker."""
    publisher = ConfirmingPublisher(settings)
    try:
        publisher.publish([(e.id, e.type, e.to_json()) for e in events])
    finally:
        publisher.close()


@contextlib.contextmanager
def consuming(settings: Settings, specs: list[ConsumerSpec]) -> Iterator[list[EventConsumer]]:
    """Run these consumers (each in its thread, consuming) for the block; stop them after."""
    started = [start_consumer(settings, spec)[0] for spec in specs]
    try:
        yield started
    finally:
        for consumer in started:
            consumer.stop()

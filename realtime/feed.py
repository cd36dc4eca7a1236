"""Domain events in, Socket.IO emits out: this process's own queue on the event bus.

Every realtime process consumes from a queue of its own, so each connected client gets
each event once, from whichever process holds its socket. The queue expires a while
after its process is gone; a clean shutdown deletes it at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from realtime.routing import Delivery, client_bindings, deliveries
from shared.bus import ConsumerSpec, EventConsumer, broker_connection, connect_once
from shared.config import Settings
from shared.cursor import Cursors, encode_sync
from shared.events import Envelope

log = logging.getLogger(__name__)

QUEUE_EXPIRES_MS = 5 * 60 * 1000
RECENT_EVENT_IDS = 10_000
YIELD_EVERY = 100

Emit = Callable[[Delivery], None]
Spawn = Callable[[Callable[[], None]], Any]


def queue_name() -> str:
    """Unique per process: host and pid help an operator, the random part survives pid reuse."""
    return f"realtime.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"


class RecentIds:
    """A bounded memory of event ids, so a redelivered event is not pushed to clients twice."""

    def __init__(self, capacity: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class Feed:
    def __init__(
        self,
        settings: Settings,
        emit: Emit,
        here: Callable[[str], bool],
        on_resume: Callable[[], None] | None = None,
        pause: Callable[[], None] = lambda: None,
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self._emit = emit
        self._here = here
        self._on_resume = on_resume
        self._pause = pause
        self._flush = flush
        self._consumed_before = False
        self._cursors = Cursors(settings.cursor_secret)
        self._seen = RecentIds(RECENT_EVENT_IDS)
        self._started = False
        self._finished = threading.Event()
        spec = ConsumerSpec(
            name=queue_name(),
            bindings=client_bindings(),
            handler=self.deliver,
            prefetch=settings.consumer_prefetch,
            # Emitting only fails on a bug; a few retries are plenty before dead-lettering.
            max_attempts=3,
            expires_ms=QUEUE_EXPIRES_MS,
            on_ready=self._ready,
        )
        self.consumer = EventConsumer(settings, spec)

    @property
    def queue(self) -> str:
        return self.consumer.queue.name

    @property
    def ready(self) -> bool:
        return self.consumer.ready.is_set() and not self._finished.is_set()

    def _ready(self) -> None:
        """Consuming again after the broker was gone: events may have been lost with the queue, so
        clients are told to catch up with /sync (the first start needs no such thing)."""
        if self._consumed_before and self._on_resume is not None:
            self._on_resume()
        self._consumed_before = True

    def deliver(self, envelope: Envelope) -> None:
        """The consumer's handler: emit to the audience's rooms (at-least-once in, once out).

        Returns (and so lets the consumer ack) only once every emit is done: `flush` waits for
        emits that another thread carries out (asyncio: the event loop's)."""
        if envelope.id in self._seen:
            return
        try:
            for count, delivery in enumerate(deliveries(envelope, self._here, self._cursor), 1):
                self._emit(delivery)
                if count % YIELD_EVERY == 0:
                    # Let the writers put what is queued on the wire while a big fan-out goes on.
                    self._pause()
        finally:
            self._flush()
        self._seen.add(envelope.id)

    def _cursor(self, user_id: str, seq: int) -> str:
        return encode_sync(self._cursors, user_id, seq)

    def start(self, spawn: Spawn) -> None:
        """Consume in a background task of the server's async mode (a green thread on eventlet, a
        thread on asyncio: kombu blocks)."""
        self._started = True
        spawn(self._run)

    def _run(self) -> None:
        try:
            self.consumer.run()
        finally:
            self._finished.set()

    def stop(self, timeout: float) -> None:
        """Stop consuming and delete this process's queues; never raises, never waits past `timeout`."""
        self.consumer.stop()
        # The consumer notices within a drain interval; while reconnecting it may not, so do not wait forever.
        if self._started and not self._finished.wait(timeout):
            log.warning("realtime: the consumer did not stop within %.1fs", timeout)
        self._delete_queues()

    def _delete_queues(self) -> None:
        try:
            with broker_connection(self.settings.amqp_url) as conn:
                connect_once(conn)
                channel = conn.channel()
                channel.queue_delete(self.queue)
                # Keep dead letters for inspection; the broker refuses (closing the channel) if any.
                channel.queue_delete(f"{self.queue}.dead", if_empty=True)
        except Exception as exc:  # noqa: BLE001  (shutdown must finish; the queue expires by itself)
            log.warning("realtime: could not delete queue %s: %r", self.queue, exc)

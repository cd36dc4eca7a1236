"""The event bus on RabbitMQ (kombu): topology, confirmed publishing, and at-least-once consumers.

Topology, all durable and prefixed by the namespace:
- `<ns>.events`: the topic exchange every event goes through; routing key = event type.
- `<ns>.dead`: a direct exchange; each consumer queue dead-letters into `<queue>.dead`.
A consumer acks after its handler succeeds; a failing handler is retried a few times with
back-off, then its message is dead-lettered, so a poison message never loops.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import amqp
from kombu import Connection, Consumer, Exchange, Producer, Queue, binding

from shared.config import Settings
from shared.events import Envelope
from shared.supervise import Supervised, start_thread, unavailable

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-attempts"
# Seconds to wait for the broker to accept a connection: it answers at once, or it is away.
CONNECT_TIMEOUT = 2.0
# How long a consumer waits for messages before it looks after itself (heartbeats, idle work, stopping).
DRAIN_SECONDS = 1.0
# Seconds a socket read or write with no deadline of its own may block (the handshake, a declare's answer).
IO_TIMEOUT = 5.0


def broker_connection(url: str, *, heartbeat: int = 0, io_timeout: float = IO_TIMEOUT) -> Connection:
    """A (lazy) connection whose connect and every blocking socket operation give up after a bound.

    Without `io_timeout`, a broker that accepts the TCP connection but sends nothing (a network
    black hole, a half-dead proxy) would hold the AMQP handshake, and whoever waits on it, until
    the network heals. Reads that pass a timeout of their own (draining, confirms) keep theirs.
    """
    return Connection(
        url,
        heartbeat=heartbeat,
        connect_timeout=CONNECT_TIMEOUT,
        transport_options={"read_timeout": io_timeout, "write_timeout": io_timeout},
    )


def connect_once(conn: Connection) -> Connection:
    """Connect with one attempt: the broker answers at once or it is away (kombu's `connect()` tries
    twice, two seconds apart). Retrying is the business of the loop around it (shared.supervise)."""
    return conn.ensure_connection(max_retries=0)


def events_exchange(settings: Settings) -> Exchange:
    return Exchange(settings.exchange, type="topic", durable=True)


def dead_letter_exchange(settings: Settings) -> Exchange:
    return Exchange(settings.dead_letter_exchange, type="direct", durable=True)


def consumer_queue(
    settings: Settings,
    name: str,
    bindings: Iterable[str],
    *,
    expires_ms: int | None = None,
    arguments: dict[str, Any] | None = None,
) -> Queue:
    """A durable queue bound to the event exchange by routing patterns, dead-lettering on refusal."""
    qname = settings.consumer_queue(name)
    arguments = {
        **(arguments or {}),
        "x-dead-letter-exchange": settings.dead_letter_exchange,
        "x-dead-letter-routing-key": qname,
    }
    if expires_ms is not None:
        # A per-process queue disappears some time after its process does.
        arguments["x-expires"] = expires_ms
    exchange = events_exchange(settings)
    return Queue(
        qname,
        bindings=[binding(exchange, routing_key=pattern) for pattern in bindings],
        # A per-process queue dies with its process: keeping its messages on disk buys nothing.
        durable=expires_ms is None,
        queue_arguments=arguments,
    )


def declare_consumer_queue(channel: Any, settings: Settings, queue: Queue) -> None:
    """Declare the queue, its bindings and its dead-letter queue (idempotent).

    A queue that expires (a per-process queue) gets a dead-letter queue that expires too, so
    a crashed process leaves nothing behind for good.
    """
    events_exchange(settings)(channel).declare()
    dlx = dead_letter_exchange(settings)(channel)
    dlx.declare()
    expires = (queue.queue_arguments or {}).get("x-expires")
    Queue(
        f"{queue.name}.dead",
        exchange=dlx,
        routing_key=queue.name,
        durable=True,
        queue_arguments={"x-expires": expires} if expires else None,
    )(channel).declare()
    queue(channel).declare()


class PublishFailed(Exception):
    """The broker refused (nacked) or did not confirm a publish in time."""


class ConfirmingPublisher:
    """Publishes batches of events and returns only once the broker has confirmed all of them.

    Confirms are batched: publish N messages, then wait for the acks (RabbitMQ acks with
    `multiple`), which costs far less than one blocking round trip per message. kombu's own
    `confirm_publish` waits per message, so this talks to the py-amqp channel underneath.
    Not thread-safe: one publisher per thread.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conn = broker_connection(settings.amqp_url)
        self._channel: amqp.Channel | None = None
        self._last_tag = 0
        self._pending: set[int] = set()
        self._nacked = False

    def _open(self) -> amqp.Channel:
        if self._channel is not None:
            return self._channel
        connect_once(self.conn)
        channel = self.conn.channel()
        events_exchange(self.settings)(channel).declare()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._channel, self._last_tag, self._nacked = channel, 0, False
        self._pending = set()
        return channel

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._pending = {tag for tag in self._pending if tag > delivery_tag}
        else:
            self._pending.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True

    def publish(self, bodies: list[tuple[str, str, str]], *, timeout: float = 10.0) -> None:
        """Publish (event_id, routing_key, json_body) triples; raise PublishFailed unless all are confirmed."""
        if not bodies:
            return
        try:
            channel = self._open()
            exchange = self.settings.exchange
            for event_id, routing_key, body in bodies:
                message = amqp.Message(
                    body,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=event_id,
                    type=routing_key,
                )
                channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
                self._last_tag += 1
                self._pending.add(self._last_tag)
            deadline = time.monotonic() + timeout
            while self._pending and not self._nacked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishFailed("publisher confirms timed out")
                self.conn.drain_events(timeout=remaining)
            if self._nacked:
                raise PublishFailed("the broker refused a message")
        except Exception as exc:  # noqa: BLE001  (whatever went wrong, these events are not confirmed)
            self.reset()
            if isinstance(exc, PublishFailed):
                raise
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    def connect(self) -> None:
        """Open the connection now (else the first publish does): a caller learns at once that the broker is away."""
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001  (any failure to connect is "the broker is unavailable")
            self.reset()
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    def reset(self) -> None:
        """Drop the connection; the next publish opens a fresh one."""
        self._channel = None
        try:
            self.conn.release()
        except Exception:  # noqa: BLE001  (the connection is already broken; nothing to save)
            pass
        self.conn = broker_connection(self.settings.amqp_url)

    def close(self) -> None:
        self.reset()
        self.conn.release()


Handler = Callable[[Envelope], None]


@dataclass
class ConsumerSpec:
    name: str
    bindings: tuple[str, ...]
    handler: Handler
    prefetch: int = 32
    max_attempts: int = 5
    expires_ms: int | None = None
    # Called each time consuming (re)starts, e.g. after the broker was unreachable.
    on_ready: Callable[[], None] | None = None


class QueueConsumer(Supervised):
    """One connection consuming queues, kept running by `shared.supervise` until `stop()`.

    A session connects once (no hidden retries), declares and consumes (`consumers`), says it
    serves, and drains until stopped; anything that goes wrong ends the session and the
    supervisor starts a new one after its back-off. Subclasses own only what they consume.
    """

    heartbeat = 30

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(name, stall_seconds=settings.loop_stall_seconds)
        self.settings = settings

    def consumers(self, channel: Any) -> list[Consumer]:
        """Declare what this consumes and return its (not yet consuming) consumers."""
        raise NotImplementedError

    def on_ready(self) -> None:
        """Called each time consuming (re)starts."""

    def after_drain(self, connection: Connection, channel: Any) -> None:
        """Called after messages were handled (a batch may be completed here)."""

    def on_idle(self) -> None:
        """Called about once a second when nothing arrives."""

    def on_session_end(self) -> None:
        """Called when a session ends, for whatever reason (unacknowledged messages come again)."""

    def session(self) -> None:
        try:
            with broker_connection(self.settings.amqp_url, heartbeat=self.heartbeat) as conn:
                connect_once(conn)
                channel = conn.channel()
                with contextlib.ExitStack() as consuming:
                    for consumer in self.consumers(channel):
                        consuming.enter_context(consumer)
                    self.loop.up()
                    self.on_ready()
                    checked = time.monotonic()
                    while not self._stop.is_set():
                        self.loop.beat()
                        try:
                            conn.drain_events(timeout=DRAIN_SECONDS)
                        except TimeoutError:
                            self.on_idle()
                        else:
                            self.after_drain(conn, channel)
                        if time.monotonic() - checked >= DRAIN_SECONDS:
                            # Sends our heartbeats, and raises if the broker has gone silent.
                            conn.heartbeat_check()
                            checked = time.monotonic()
        finally:
            self.on_session_end()


class EventConsumer(QueueConsumer):
    """Consumes one queue at-least-once: ack after the handler, retry with back-off, then dead-letter."""

    def __init__(self, settings: Settings, spec: ConsumerSpec) -> None:
        super().__init__(settings, f"consumer {spec.name}")
        self.spec = spec
        self.queue = consumer_queue(settings, spec.name, spec.bindings, expires_ms=spec.expires_ms)

    def consumers(self, channel: Any) -> list[Consumer]:
        declare_consumer_queue(channel, self.settings, self.queue)
        return [
            Consumer(
                channel,
                queues=[self.queue],
                on_message=self._on_message,
                prefetch_count=self.spec.prefetch,
                accept=["json"],
            )
        ]

    def on_ready(self) -> None:
        if self.spec.on_ready is not None:
            self.spec.on_ready()

    def _on_message(self, message: Any) -> None:
        try:
            envelope = Envelope.from_json(message.body)
        except ValueError as exc:
            # Unparseable input can never succeed: straight to the dead-letter queue.
            log.error("consumer %s: dead-lettering malformed message: %s", self.spec.name, exc)
            message.reject(requeue=False)
            return
        try:
            self.spec.handler(envelope)
        except Exception as exc:  # noqa: BLE001  (any failure is retried, then dead-lettered)
            if unavailable(exc):
                # The database or the broker is away: no attempt of this event's is spent (it would be
                # dead-lettered after a few seconds of outage). The session ends, the message goes back
                # to the queue unacknowledged, and comes again once the consumer is back.
                raise
            self._retry_or_dead_letter(message, envelope, exc)
            return
        message.ack()

    def _retry_or_dead_letter(self, message: Any, envelope: Envelope, exc: Exception) -> None:
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        if attempts >= self.spec.max_attempts:
            log.error(
                "consumer %s: %s failed %d times, dead-lettered: %r", self.spec.name, envelope.type, attempts, exc
            )
            message.reject(requeue=False)
            return
        log.warning("consumer %s: %s failed (attempt %d): %r", self.spec.name, envelope.type, attempts, exc)
        time.sleep(min(0.1 * 2**attempts, 2.0))
        # Republish before acking: a crash in between means a duplicate, never a loss.
        Producer(message.channel).publish(
            message.body,
            exchange="",
            routing_key=self.queue.name,
            headers={**(message.headers or {}), ATTEMPTS_HEADER: attempts},
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            message_id=envelope.id,
            type=envelope.type,
        )
        message.ack()


def start_consumer(
    settings: Settings, spec: ConsumerSpec, *, wait: float | None = 10.0
) -> tuple[EventConsumer, threading.Thread]:
    """Run a consumer in a daemon thread; with `wait`, until it is consuming (TimeoutError if not)."""
    consumer = EventConsumer(settings, spec)
    thread = start_thread(consumer.run, f"consumer-{spec.name}")
    if wait is not None and not consumer.ready.wait(wait):
        raise TimeoutError(f"consumer {spec.name} did not start")
    return consumer, thread

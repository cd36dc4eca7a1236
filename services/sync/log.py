"""The change logger: every client-visible event gets its place in the log, then goes out to realtime.

One logger is active at a time (the queue has a single active consumer; others stand by),
so positions are handed out in one order and a change is committed before anything later
is: a sync since position N can never miss a change that commits after it with a smaller
number. Events are logged in batches (what has arrived while the last batch was stored),
published as `logged.<type>` with their position, and only then acknowledged, so a crash
anywhere republishes (with the same position, found by event id) and loses nothing.

The log also records which messages each change mentions (`change_messages`). A message's
deletion takes its content out of every change logged before it, in the same transaction
(`services.sync.redact`): a deleted message's text stays nowhere in the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Consumer, Queue
from sqlalchemy import Connection as Db
from sqlalchemy import text

from services.sync.redact import deletion, mentioned_messages, redacted
from shared.bus import ConfirmingPublisher, QueueConsumer, consumer_queue, declare_consumer_queue
from shared.config import Settings
from shared.db import transaction
from shared.events import LOGGED_PREFIX, Envelope, client_types

log = logging.getLogger(__name__)

SERVICE = "sync"
QUEUE = "sync.log"
BATCH = 500
PRUNE_EVERY_SECONDS = 60.0


def log_queue(settings: Settings) -> Queue:
    # Single active consumer: a second logger is a hot standby that takes over in order.
    return consumer_queue(settings, QUEUE, client_types(), arguments={"x-single-active-consumer": True})


@dataclass(frozen=True, slots=True)
class Pending:
    delivery_tag: int
    envelope: Envelope | None  # None: malformed, dead-lettered without logging
    body: str = ""


_LOGGABLE = frozenset(client_types())


def parse(body: bytes | str) -> Envelope:
    """The envelope in a message body; ValueError for anything the log can never store or republish.

    Such a message is dead-lettered: it must neither stop the logger nor be retried forever and
    block the events behind it (PostgreSQL text refuses NUL and unpaired surrogates, and the
    type becomes the routing key of the republished event).
    """
    envelope = Envelope.from_json(body)
    if envelope.type not in _LOGGABLE:
        raise ValueError(f"not a client event type: {envelope.type[:100]!r}")
    for user in envelope.audience or ():
        if "\x00" in user:
            raise ValueError("an audience member's id holds a NUL character")
        user.encode("utf-8")  # UnicodeEncodeError (a ValueError) on an unpaired surrogate
    return envelope


# One round trip: number the new events in order, find the numbers of those already logged (a
# redelivery), and record who saw each and which messages each mentions. The CTEs share one
# snapshot, so `known` sees only what was logged before this statement, and `fresh` what it logs now.
_STORE = text(
    """
    WITH fresh AS (
        INSERT INTO changes (event_id, type, envelope)
        SELECT i, t, e FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:bodies AS text[]))
             WITH ORDINALITY AS x(i, t, e, n)
        ORDER BY n
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id, seq
    ), known AS (
        SELECT event_id, seq FROM changes WHERE event_id = ANY(CAST(:ids AS uuid[]))
    ), positions AS (
        SELECT * FROM fresh UNION ALL SELECT * FROM known
    ), seen AS (
        INSERT INTO change_audience (user_id, seq)
        SELECT a.u, p.seq
        FROM unnest(CAST(:users AS text[]), CAST(:user_events AS uuid[])) AS a(u, e)
        JOIN positions p ON p.event_id = a.e
        ON CONFLICT DO NOTHING
    ), mentioned AS (
        INSERT INTO change_messages (message_id, seq)
        SELECT m.id, p.seq
        FROM unnest(CAST(:messages AS text[]), CAST(:message_events AS uuid[])) AS m(id, e)
        JOIN positions p ON p.event_id = m.e
        ON CONFLICT DO NOTHING
    )
    SELECT event_id, seq FROM positions
    """
)


def store(session: Db, events: list[tuple[Envelope, str]]) -> dict[str, int]:
    """Log (envelope, body as received) pairs in order, idempotent by event id; event id -> position.

    A message deletion in the batch also takes the message's content out of every change logged
    before it (`redact_deleted`), in the same transaction.
    """
    users: list[str] = []
    user_events: list[str] = []
    messages: list[str] = []
    message_events: list[str] = []
    for envelope, _ in events:
        for user in dict.fromkeys(envelope.audience or ()):
            users.append(user)
            user_events.append(envelope.id)
        for message_id in mentioned_messages(envelope.data):
            messages.append(message_id)
            message_events.append(envelope.id)
    rows = session.execute(
        _STORE,
        {
            "ids": [e.id for e, _ in events],
            "types": [e.type for e, _ in events],
            "bodies": [body for _, body in events],
            "users": users,
            "user_events": user_events,
            "messages": messages,
            "message_events": message_events,
        },
    )
    seqs = {str(r.event_id): r.seq for r in rows}
    deletions = [(deleted, seqs[e.id]) for e, _ in events if (deleted := deletion(e)) is not None]
    if deletions:
        redact_deleted(session, deletions)
    return seqs


# The changes that mention a deleted message and were logged before its deletion (the deletion
# itself and what comes after hold no content of it), each with the deleted messages it mentions.
_MENTIONING = text(
    """
    SELECT c.seq, c.envelope, array_agg(DISTINCT d.id) AS messages
    FROM unnest(CAST(:messages AS text[]), CAST(:below AS bigint[])) AS d(id, below)
    JOIN change_messages m ON m.message_id = d.id AND m.seq < d.below
    JOIN changes c ON c.seq = m.seq
    GROUP BY c.seq
    """
)

_REWRITE = text(
    "UPDATE changes c SET envelope = u.envelope "
    "FROM unnest(CAST(:seqs AS bigint[]), CAST(:envelopes AS text[])) AS u(seq, envelope) WHERE c.seq = u.seq"
)


def redact_deleted(session: Db, deletions: list[tuple[str, int]]) -> int:
    """Take the content of deleted messages out of the changes logged before their deletion.

    `deletions`: (message id, the position of its deletion). Idempotent: a change already
    redacted is left as it is. The number of changes rewritten.
    """
    rows = session.execute(
        _MENTIONING, {"messages": [d[0] for d in deletions], "below": [d[1] for d in deletions]}
    ).all()
    seqs: list[int] = []
    envelopes: list[str] = []
    for row in rows:
        try:
            rewritten = redacted(row.envelope, set(row.messages))
        except (ValueError, RecursionError) as exc:  # it was parsed once when logged; never expected
            log.error("sync logger: cannot redact change %d: %s", row.seq, exc)
            continue
        if rewritten is not None:
            seqs.append(row.seq)
            envelopes.append(rewritten)
    if seqs:
        session.execute(_REWRITE, {"seqs": seqs, "envelopes": envelopes})
    return len(seqs)


def with_position(body: str, seq: int) -> str:
    """The event's JSON with its position added, without parsing it again (`body` is a JSON object)."""
    return body.rstrip()[:-1] + f',"seq":{seq}}}'


def prune(session: Db, retention_hours: float) -> int:
    """Forget changes older than the retention; cursors before the new floor then get `cursor_expired`."""
    floor = session.execute(
        text("SELECT max(seq) FROM changes WHERE logged_at < now() - make_interval(secs => :secs)"),
        {"secs": retention_hours * 3600},
    ).scalar()
    if floor is None:
        return 0
    session.execute(text("UPDATE log_floor SET seq = greatest(seq, :floor)"), {"floor": floor})
    session.execute(text("DELETE FROM change_audience WHERE seq <= :floor"), {"floor": floor})
    session.execute(text("DELETE FROM change_messages WHERE seq <= :floor"), {"floor": floor})
    return session.execute(text("DELETE FROM changes WHERE seq <= :floor"), {"floor": floor}).rowcount


class ChangeLogger(QueueConsumer):
    """Consumes client-visible events, logs them, republishes them with their position. `run()` blocks."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "sync logger")
        self.url = settings.database_url(SERVICE)
        self.queue = log_queue(settings)
        self.publisher = ConfirmingPublisher(settings)
        self._pending: list[Pending] = []
        self._last_prune = 0.0

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.publisher.close()

    def consumers(self, channel: Any) -> list[Consumer]:
        declare_consumer_queue(channel, self.settings, self.queue)
        channel.basic_qos(0, BATCH, False)
        # Republishing is part of logging: a logger that cannot publish is not ready.
        self.publisher.connect()
        return [Consumer(channel, queues=[self.queue], on_message=self._receive, no_ack=False)]

    def after_drain(self, connection: Connection, channel: Any) -> None:
        # Take whatever else has already arrived, then store it all at once.
        while len(self._pending) < BATCH:
            try:
                connection.drain_events(timeout=0)
            except TimeoutError:
                break
        self._flush(channel)

    def on_idle(self) -> None:
        self._maybe_prune()

    def on_session_end(self) -> None:
        self._pending.clear()  # unacknowledged: the broker delivers them again

    def _receive(self, message: Any) -> None:
        try:
            envelope: Envelope | None = parse(message.body)
            body = message.body if isinstance(message.body, str) else message.body.decode("utf-8")
        except ValueError as exc:
            log.error("sync logger: dead-lettering a malformed message: %s", exc)
            envelope, body = None, ""
        self._pending.append(Pending(message.delivery_tag, envelope, body))

    def _flush(self, channel: Any) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        events = [(p.envelope, p.body) for p in batch if p.envelope is not None]
        if events:
            with transaction(self.url) as session:
                seqs = store(session, events)
            self.publisher.publish(
                [(e.id, LOGGED_PREFIX + e.type, with_position(body, seqs[e.id])) for e, body in events]
            )
        for p in batch:
            if p.envelope is None:
                channel.basic_reject(p.delivery_tag, requeue=False)
        logged = [p.delivery_tag for p in batch if p.envelope is not None]
        if logged:
            # One ack for the batch; the rejected ones are settled already and stay so.
            channel.basic_ack(logged[-1], multiple=True)

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        with transaction(self.url) as session:
            pruned = prune(session, self.settings.sync_retention_hours)
        if pruned:
            log.info("sync logger: pruned %d changes past the retention", pruned)

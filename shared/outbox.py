"""The transactional outbox, its relay, and the processed-event record of idempotent consumers.

A service writes its state change and its events in one transaction (`add_event`); the
relay publishes committed events with publisher confirms and then deletes them. When the
broker is down the rows simply wait. One relay per service is active at a time (a
PostgreSQL advisory lock), which keeps each service's events in commit order; start more
for fail-over. A NOTIFY on commit wakes the relay at once; it also polls as a safety net. The relay runs under
`shared.supervise`: no outage of the broker or the database ends it.
"""

from __future__ import annotations

import logging
import threading
import zlib
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import Connection, make_url, text

from shared.bus import ConfirmingPublisher
from shared.config import Settings
from shared.db import DB_CONNECT_TIMEOUT
from shared.events import Envelope, make_event
from shared.supervise import Supervised, start_thread

log = logging.getLogger(__name__)


def _outbox_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _processed_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table("outbox", metadata, *_outbox_columns())


def processed_events_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table("processed_events", metadata, *_processed_columns())


def create_tables(op: Any) -> None:
    """Called from each service's first Alembic migration."""
    op.create_table("outbox", *_outbox_columns())
    op.create_table("processed_events", *_processed_columns())
    op.create_index("processed_events_processed_at", "processed_events", ["processed_at"])


def channel_name(service: str) -> str:
    return f"outbox_{service}"


def add_event(
    session: Connection,
    service: str,
    type_: str,
    data: dict[str, Any],
    *,
    audience: list[str] | None = None,
) -> Envelope:
    """Record an event in the caller's open transaction; it leaves only if that transaction commits."""
    return add_events(session, service, [(type_, data, audience)])[0]


_INSERT = text("INSERT INTO outbox (event_id, type, envelope) VALUES (:id, :type, :envelope)")
_INSERT_AND_NOTIFY = text(
    "WITH queued AS (INSERT INTO outbox (event_id, type, envelope) VALUES (:id, :type, :envelope)) "
    "SELECT pg_notify(:channel, '')"
)


def add_events(
    session: Connection,
    service: str,
    events: list[tuple[str, dict[str, Any], list[str] | None]],
) -> list[Envelope]:
    """Record many (type, data, audience) events in the caller's open transaction."""
    envelopes = [make_event(type_, data, producer=service, audience=audience) for type_, data, audience in events]
    if not envelopes:
        return envelopes
    rows = [{"id": e.id, "type": e.type, "envelope": e.to_json(), "channel": channel_name(service)} for e in envelopes]
    if len(rows) == 1:
        # The common case in one round trip. NOTIFY is delivered on commit only.
        session.execute(_INSERT_AND_NOTIFY, rows[0])
    else:
        session.execute(_INSERT, rows)
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel_name(service)})
    return envelopes


def claim_event(session: Connection, consumer: str, event_id: str) -> bool:
    """True the first time `consumer` sees `event_id` (in this transaction); False for a repeat."""
    row = session.execute(
        text(
            "INSERT INTO processed_events (consumer, event_id) VALUES (:consumer, :id) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {"consumer": consumer, "id": event_id},
    ).first()
    return row is not None


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxRelay(Supervised):
    """Moves committed outbox rows to RabbitMQ. `run()` blocks until `stop()`, through any outage."""

    BATCH = 500
    POLL_SECONDS = 1.0

    def __init__(self, settings: Settings, service: str, database_url: str) -> None:
        super().__init__(f"outbox relay {service}", stall_seconds=settings.loop_stall_seconds)
        self.settings = settings
        self.service = service
        self.dsn = _psycopg_dsn(database_url)
        self.publisher = ConfirmingPublisher(settings)
        self.lock_key = zlib.crc32(f"outbox-relay:{service}".encode())

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.publisher.close()

    def session(self) -> None:
        """Connected to the database: stand by for the lock, then relay until stopped or a failure.

        Any failure (broker or database) ends the session: the batch in hand rolls back, the lock
        goes with the connection, and the supervisor starts a new session after its back-off.
        """
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=DB_CONNECT_TIMEOUT) as conn:
            # Only one relay per service publishes, so events leave in commit order.
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,)).fetchone()[0]:
                self.loop.up()  # a standby that can reach its database is ready to take over
                if self._stop.wait(self.POLL_SECONDS):
                    return
            # Open the broker connection now: a relay that cannot publish is not ready, even with nothing to send.
            self.publisher.connect()
            conn.execute(f"LISTEN {channel_name(self.service)}")
            self.loop.up()
            while not self._stop.is_set():
                self.loop.beat()
                if self.relay_once(conn) >= self.BATCH:
                    continue  # a full batch: more may be waiting
                # Every commit that queued events notifies this connection, so rows committed while
                # the last batch was out have woken it already: no empty look at the outbox to find
                # out. The poll is only a safety net.
                for _ in conn.notifies(timeout=self.POLL_SECONDS, stop_after=1):
                    pass
                # Whatever else is pending announces rows the next batch takes anyway.
                for _ in conn.notifies(timeout=0):
                    pass

    def relay_once(self, conn: psycopg.Connection) -> int:
        """Publish one batch; the number published (0 when the outbox is empty).

        The batch is taken off the outbox and published in one transaction that commits only
        after the broker confirmed every event: a failed publish (PublishFailed) rolls the rows
        back, and a crash in between publishes them again (consumers are idempotent).
        """
        with conn.transaction():
            rows = conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT %s) "
                "RETURNING id, event_id::text, type, envelope",
                (self.BATCH,),
            ).fetchall()
            rows.sort()
            self.publisher.publish([(event_id, type_, body) for _, event_id, type_, body in rows])
        return len(rows)


def oldest_waiting_seconds(session: Connection) -> float:
    """How long the oldest event in this service's outbox has waited (0 when it is empty)."""
    age = session.execute(text("SELECT extract(epoch FROM now() - min(created_at)) FROM outbox")).scalar()
    return float(age or 0.0)


def start_relay(settings: Settings, service: str, database_url: str) -> tuple[OutboxRelay, threading.Thread]:
    relay = OutboxRelay(settings, service, database_url)
    return relay, start_thread(relay.run, f"outbox-relay-{service}")

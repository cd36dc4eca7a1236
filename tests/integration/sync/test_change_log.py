"""The change logger: every client event gets one position in the log, in order, and goes out again
as `logged.<type>` with it; redeliveries, restarts, stand-bys and garbage lose and reorder nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shared.config import Settings
from shared.events import LOGGED_PREFIX, Envelope, make_event
from tests.integration.sync.conftest import (
    ALICE,
    BOB,
    CAROL,
    Observer,
    RunningLogger,
    Sync,
    logged_rows,
    message,
    publish,
    publish_raw,
    queue_depth,
)
from tests.support.waiting import wait_for


def _positions(received: list, ids: list[str]) -> list[int]:
    first = {}
    for r in received:
        first.setdefault(r.id, r.seq)
    return [first[i] for i in ids]


def test_events_are_logged_in_order_and_republished_with_their_position(
    db: Settings, logger: RunningLogger, observer: Observer, sync: Sync
) -> None:
    start = sync(ALICE)["cursor"]
    events = [message([ALICE, BOB] if i % 2 else [ALICE], f"m{i}") for i in range(30)]
    events.insert(
        10,
        make_event(
            "conversations.conversation.updated",
            {"conversation_id": "c1", "changes": {}},
            producer="test",
            audience=[ALICE],
        ),
    )
    # In several publishes, so that they arrive in more than one batch.
    for chunk in (events[:1], events[1:12], events[12:]):
        publish(db, *chunk)

    received = observer.wait(lambda got: len(got) >= len(events))
    assert [r.id for r in received] == [e.id for e in events]
    seqs = [r.seq for r in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for event, republished in zip(events, received, strict=True):
        assert republished.routing_key == LOGGED_PREFIX + event.type
        assert republished.body == {**event.to_dict(), "seq": republished.seq}
    # The log holds them in the same order, under the same positions.
    assert logged_rows(db) == [(r.id, r.seq) for r in received]

    changes, _ = sync.everything(ALICE, start)
    assert [(c["event_id"], c["seq"]) for c in changes] == [(r.id, r.seq) for r in received]
    assert observer.settle() == received  # nothing republished twice


def test_a_redelivered_event_keeps_its_one_position(
    db: Settings, logger: RunningLogger, observer: Observer, sync: Sync
) -> None:
    start = sync(ALICE)["cursor"]
    first, second, third = message([ALICE], "one"), message([ALICE], "two"), message([ALICE], "three")
    publish(db, first, second)
    observer.wait_ids([first.id, second.id])
    # The same event again, alone and later (a relay that published it but crashed before
    # deleting it from its outbox), then twice in one batch.
    publish(db, first)
    publish(db, third, first, third)

    received = observer.wait(lambda got: len(got) >= 6)
    assert observer.settle() == received and len(received) == 6
    by_id: dict[str, set[int]] = {}
    for r in received:
        by_id.setdefault(r.id, set()).add(r.seq)
    assert {k: len(v) for k, v in by_id.items()} == {first.id: 1, second.id: 1, third.id: 1}
    assert min(by_id[first.id]) < min(by_id[second.id]) < min(by_id[third.id])

    assert [event_id for event_id, _ in logged_rows(db)] == [first.id, second.id, third.id]
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == [first.id, second.id, third.id]
    assert [c["message"]["body"] for c in changes] == ["one", "two", "three"]


def test_a_logger_restarted_mid_stream_loses_nothing(
    db: Settings, start_logger: Callable[..., RunningLogger], observer: Observer, sync: Sync
) -> None:
    first = start_logger()
    start = sync(ALICE)["cursor"]
    events = [message([ALICE], f"m{i}") for i in range(400)]
    published = threading.Event()

    def publish_steadily() -> None:
        for i in range(0, len(events), 5):
            publish(db, *events[i : i + 5])
            time.sleep(0.005)
        published.set()

    publisher = threading.Thread(target=publish_steadily)
    publisher.start()
    try:
        # Stop the logger once part of the stream is logged, and start another while events keep coming.
        assert wait_for(lambda: len(logged_rows(db)) >= 50)
        first.stop()
        assert not published.is_set(), "the stream ended before the restart; make it longer"
        time.sleep(0.3)
        start_logger()
    finally:
        publisher.join()

    ids = [e.id for e in events]
    received = observer.wait_ids(ids, timeout=30)
    assert set(r.id for r in observer.settle()) == set(ids)
    # At least once on the bus, always with the event's one position, in publish order.
    positions = _positions(received, ids)
    assert positions == sorted(positions) and len(set(positions)) == len(ids)
    assert all(r.seq == dict(zip(ids, positions, strict=True))[r.id] for r in received)
    # Exactly once in the log and in sync.
    assert logged_rows(db) == list(zip(ids, positions, strict=True))
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == ids


def test_a_logger_that_dies_after_storing_republishes_with_the_same_positions(
    db: Settings, start_logger: Callable[..., RunningLogger], observer: Observer, sync: Sync, tmp_path: Path
) -> None:
    """A crash between storing a batch and publishing it: the next logger republishes what is in the log."""
    marker = tmp_path / "stored"
    script = textwrap.dedent(
        f"""
        import dataclasses, os, pathlib
        from shared.config import Settings
        from services.sync import log
        settings = dataclasses.replace(
            Settings.from_env(), namespace={db.namespace!r}, db_prefix={db.db_prefix!r},
            amqp_url={db.amqp_url!r}, postgres_url={db.postgres_url!r},
        )
        def die(bodies, **kwargs):
            pathlib.Path({str(marker)!r}).write_text(str(len(bodies)))
            os._exit(17)
        logger = log.ChangeLogger(settings)
        logger.publisher.publish = die
        logger.run()
        """
    )
    start = sync(ALICE)["cursor"]
    # Declare the queue (a logger that stops at once), so the events wait there for the dying one.
    start_logger().stop()
    events = [message([ALICE], f"m{i}") for i in range(5)]
    publish(db, *events)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 17 and marker.exists()
    stored = logged_rows(db)
    assert [event_id for event_id, _ in stored] == [e.id for e in events[: len(stored)]] and stored
    assert observer.settle(0.3) == []  # it died before anything went out

    start_logger()
    later = message([ALICE], "later")
    publish(db, later)
    ids = [e.id for e in events] + [later.id]
    received = observer.wait_ids(ids)
    assert [r.id for r in received] == ids
    assert [(r.id, r.seq) for r in received[: len(stored)]] == stored
    assert logged_rows(db) == [(r.id, r.seq) for r in received]
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == ids


class Recording:
    """Which messages each logger received (the real logger, with its deliveries noted)."""

    @staticmethod
    def logger(settings: Settings, seen: list[str]):  # type: ignore[no-untyped-def]
        from services.sync.log import ChangeLogger

        logger = ChangeLogger(settings)
        receive = logger._receive

        def noting(message) -> None:  # type: ignore[no-untyped-def]
            seen.append(message.properties.get("message_id") or "")
            receive(message)

        logger._receive = noting  # type: ignore[method-assign]
        return logger


def test_two_loggers_one_active_the_other_takes_over_in_order(
    db: Settings, start_logger: Callable[..., RunningLogger], observer: Observer, sync: Sync
) -> None:
    seen_first: list[str] = []
    seen_second: list[str] = []
    first = start_logger(Recording.logger(db, seen_first))
    start_logger(Recording.logger(db, seen_second))
    start = sync(ALICE)["cursor"]

    before = [message([ALICE], f"before{i}") for i in range(40)]
    for i in range(0, 40, 4):
        publish(db, *before[i : i + 4])
    observer.wait_ids([e.id for e in before])
    assert seen_first == [e.id for e in before]
    assert seen_second == []  # a hot stand-by: nothing while the first one runs

    first.stop()
    after = [message([ALICE], f"after{i}") for i in range(40)]
    for i in range(0, 40, 4):
        publish(db, *after[i : i + 4])
    observer.wait_ids([e.id for e in after])
    assert seen_second == [e.id for e in after]

    ids = [e.id for e in before + after]
    received = observer.settle()
    assert [r.id for r in received] == ids
    seqs = [r.seq for r in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == ids


MALFORMED: list[bytes | str] = [
    b"{not json",
    b"\xff\xfe not utf-8",
    '"just a string"',
    "[1, 2, 3]",
    "42",
    "null",
    '{"type": "conversations.message.created"}',
    '{"id": "not-a-uuid", "type": "conversations.message.created", "data": {}}',
    '{"id": "4b6c3e8e-5d0c-4a8e-9a57-3a1f6c7d8e90", "type": "conversations.message.created", "data": []}',
    '{"id": "4b6c3e8e-5d0c-4a8e-9a57-3a1f6c7d8e91", "type": "conversations.message.created", "data": {}, '
    '"audience": "user-a"}',
    '{"id": "4b6c3e8e-5d0c-4a8e-9a57-3a1f6c7d8e92", "type": "conversations.message.created", "data": {}, '
    '"version": 1e400}',
    "[" * 100_000,
]


def test_a_malformed_message_is_dead_lettered_and_does_not_block_what_follows(
    db: Settings, logger: RunningLogger, observer: Observer, sync: Sync
) -> None:
    start = sync(ALICE)["cursor"]
    before, after = message([ALICE], "before"), message([ALICE], "after")
    publish(db, before)
    for body in MALFORMED:
        publish_raw(db, body)
    publish(db, after)

    received = observer.wait_ids([before.id, after.id])
    assert [r.id for r in observer.settle()] == [before.id, after.id]
    dead = f"{logger.logger.queue.name}.dead"
    assert wait_for(lambda: queue_depth(db, dead) == len(MALFORMED)), queue_depth(db, dead)
    assert queue_depth(db, logger.logger.queue.name) == 0
    assert logger.thread.is_alive()
    assert [event_id for event_id, _ in logged_rows(db)] == [before.id, after.id]
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == [r.id for r in received]


def test_an_envelope_the_log_cannot_hold_is_dead_lettered_and_does_not_block_what_follows(
    db: Settings, logger: RunningLogger, observer: Observer, sync: Sync
) -> None:
    """Well-formed JSON envelopes that no retry can ever store or republish."""
    unstorable = [
        Envelope(type="conversations.message.created", data={}, producer="test", audience=["user-\u0000a"]),
        Envelope(type="conversations.message.created", data={}, producer="test", audience=["user-\ud800"]),
        Envelope(type="conversations.message.created\u0000", data={}, producer="test", audience=[ALICE]),
        Envelope(type="conversations." + "x" * 300, data={}, producer="test", audience=[ALICE]),
    ]
    before, after = message([ALICE], "before"), message([ALICE], "after")
    start = sync(ALICE)["cursor"]
    publish(db, before)
    for envelope in unstorable:
        publish_raw(db, envelope.to_json())
    publish(db, after)

    received = observer.wait_ids([before.id, after.id])
    assert [r.id for r in observer.settle()] == [before.id, after.id]
    dead = f"{logger.logger.queue.name}.dead"
    assert wait_for(lambda: queue_depth(db, dead) == len(unstorable)), queue_depth(db, dead)
    assert logger.thread.is_alive()
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == [r.id for r in received]


def test_only_client_events_are_logged(db: Settings, logger: RunningLogger, observer: Observer, sync: Sync) -> None:
    start = sync(ALICE)["cursor"]
    internal = make_event("directory.user.removed", {"user_id": ALICE}, producer="test", audience=[ALICE])
    visible = message([ALICE, CAROL])
    publish(db, internal, visible)
    observer.wait_ids([visible.id])
    assert [r.id for r in observer.settle()] == [visible.id]
    changes, _ = sync.everything(ALICE, start)
    assert [c["event_id"] for c in changes] == [visible.id]

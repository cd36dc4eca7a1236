"""`sync.changes`: what a client that was away gets, only its own, oldest first, page by page,
with cursors nobody else can use and an honest `cursor_expired` once the log has moved on."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from services import sync as sync_service
from services.sync.handlers import methods
from services.sync.log import prune
from shared.config import Settings
from shared.cursor import Cursors, decode_sync, encode_sync
from shared.db import engine_for, transaction
from shared.errors import STATUS_BY_CODE, AppError
from shared.events import Envelope, make_event, with_personal
from shared.rpc import Caller, RpcClient, RpcServer
from tests.integration.sync.conftest import ALICE, BOB, CAROL, Sync, message
from tests.support.waiting import wait_for

LogEvents = Callable[..., list[Envelope]]


def _refused(call: Callable[[], object]) -> AppError:
    with pytest.raises(AppError) as refused:
        call()
    return refused.value


def _prune_everything(settings: Settings) -> int:
    with transaction(settings.database_url("sync")) as session:
        return prune(session, 0)


def test_without_a_cursor_there_are_no_changes_and_a_cursor_to_start_from(
    db: Settings, sync: Sync, log_events: LogEvents
) -> None:
    log_events(message([ALICE], "old"))
    first = sync(ALICE)
    assert first["changes"] == [] and first["has_more"] is False
    # The cursor starts after what is already logged: only what comes later is returned.
    new = log_events(message([ALICE], "new"))
    page = sync(ALICE, since=first["cursor"])
    assert [c["event_id"] for c in page["changes"]] == [new[0].id]
    assert page["has_more"] is False


def test_a_user_gets_the_changes_meant_for_them_oldest_first_as_they_were_pushed(
    db: Settings, sync: Sync, log_events: LogEvents
) -> None:
    start = sync(ALICE)["cursor"]
    hello = message([ALICE, BOB], "hello")
    renamed = make_event(
        "conversations.conversation.updated",
        {"conversation_id": "c1", "changes": {"name": "Math 9B"}},
        producer="test",
        audience=[BOB, ALICE],
    )
    unread = make_event(
        "conversations.unread.updated",
        {"conversation_id": "c1", "unread_count": 0, "unread_total": 3},
        producer="test",
        audience=[ALICE],
    )
    log_events(hello, renamed, unread, message([BOB], "not for alice"))

    page = sync(ALICE, since=start)
    assert page["has_more"] is False
    assert [c["event"] for c in page["changes"]] == ["message.created", "conversation.updated", "unread.updated"]
    seqs = [c["seq"] for c in page["changes"]]
    assert seqs == sorted(seqs)
    assert page["changes"][0] == {
        "event": "message.created",
        "message": {"id": "m-hello", "body": "hello"},
        "conversation_id": "c1",
        "event_id": hello.id,
        "occurred_at": hello.occurred_at,
        "seq": seqs[0],
    }
    assert page["changes"][1]["changes"] == {"name": "Math 9B"}
    assert page["changes"][2]["unread_total"] == 3
    # Caught up: the next sync from the returned cursor is empty, and stays valid.
    assert sync(ALICE, since=page["cursor"])["changes"] == []
    # The cursor moves past the last change too, though it was Bob's alone.
    assert decode_sync(Cursors(db.cursor_secret), page["cursor"], ALICE) == seqs[-1] + 1


def test_each_user_gets_their_own_personal_part_and_nobody_elses(
    db: Settings, sync: Sync, log_events: LogEvents
) -> None:
    starts = {user: sync(user)["cursor"] for user in (ALICE, BOB, CAROL)}
    views = {
        ALICE: {"id": "c1", "name": "Math 9B", "unread_count": 0, "can": ["send"]},
        BOB: {"id": "c1", "name": "Math 9B", "unread_count": 4, "can": ["send", "rename-secret-bob"]},
        CAROL: {"id": "c1", "name": "Math 9B", "unread_count": 0, "can": ["send"]},
    }
    data = with_personal("conversation", views, {})
    created = make_event("conversations.conversation.created", data, producer="test", audience=[ALICE, BOB, CAROL])
    log_events(created)

    for user, view in views.items():
        [change] = sync(user, since=starts[user])["changes"]
        assert change["conversation"] == view
        assert "personal" not in change
    alice_text = json.dumps(sync(ALICE, since=starts[ALICE]))
    assert "rename-secret-bob" not in alice_text and BOB not in alice_text


def test_paging_with_limit_returns_everything_once_in_order(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    start = sync(ALICE)["cursor"]
    mine = [message([ALICE], f"m{i}") for i in range(7)]
    others = [message([BOB], f"b{i}") for i in range(5)]
    log_events(*[e for pair in zip(mine, others + [None, None], strict=True) for e in pair if e is not None])

    pages = []
    since = start
    while True:
        page = sync(ALICE, since=since, limit=3)
        pages.append(page)
        since = page["cursor"]
        if not page["has_more"]:
            break
    assert [len(p["changes"]) for p in pages] == [3, 3, 1]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert [c["event_id"] for p in pages for c in p["changes"]] == [e.id for e in mine]
    assert sync(ALICE, since=since, limit=3) == {"changes": [], "cursor": since, "has_more": False}

    # A page of exactly what is left says so.
    exact = sync(ALICE, since=start, limit=7)
    assert len(exact["changes"]) == 7 and exact["has_more"] is False
    # The default limit takes them all at once; a limit given as text is understood.
    assert len(sync(ALICE, since=start)["changes"]) == 7
    assert len(sync(ALICE, since=start, limit="2")["changes"]) == 2


def test_nothing_about_one_user_reaches_another(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    starts = {user: sync(user)["cursor"] for user in (ALICE, BOB, CAROL)}
    alice_only = [message([ALICE], f"alice-secret-{i}") for i in range(10)]
    bob_only = [message([BOB, BOB], f"bob-secret-{i}") for i in range(10)]
    shared = [message([ALICE, BOB], f"shared-{i}") for i in range(3)]
    nobody = [message(None, "for-nobody"), message([], "for-no-one")]
    log_events(*alice_only[:5], *shared[:2], *bob_only, *nobody, *alice_only[5:], shared[2])

    got = {user: sync.everything(user, starts[user], limit=4)[0] for user in (ALICE, BOB, CAROL)}
    assert [c["event_id"] for c in got[ALICE]] == [e.id for e in alice_only[:5] + shared[:2] + alice_only[5:]] + [
        shared[2].id
    ]
    assert [c["event_id"] for c in got[BOB]] == [e.id for e in shared[:2] + bob_only + shared[2:]]
    assert got[CAROL] == []
    assert "alice-secret" not in json.dumps(got[BOB])
    assert "bob-secret" not in json.dumps(got[ALICE])
    assert "for-no" not in json.dumps(got)


def test_a_cursor_of_another_user_or_a_forged_one_is_refused(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    log_events(message([ALICE, BOB], "shared"))
    alices = sync(ALICE)["cursor"]
    assert _refused(lambda: sync(BOB, since=alices)).code == "invalid_cursor"

    other_secret = encode_sync(Cursors("not-the-service-secret"), BOB, 0)
    tampered = alices[:-2] + ("AA" if not alices.endswith("AA") else "BB")
    page_cursor = Cursors(db.cursor_secret).encode(BOB, "conversations", [0])  # a cursor of another kind
    negative = Cursors(db.cursor_secret).encode(BOB, "sync", [-1])
    for forged in (other_secret, tampered, page_cursor, negative, "garbage", 12, ["x"], "x" * 5000):
        refused = _refused(lambda forged=forged: sync(BOB, since=forged))
        assert refused.code == "invalid_cursor", forged
        assert STATUS_BY_CODE[refused.code] == 400


@pytest.mark.parametrize("limit", [0, -1, 1001, 5000, "abc", "1.5", [3], {"n": 1}, float("inf")])
def test_a_limit_out_of_range_or_not_a_number_is_refused(
    db: Settings, sync: Sync, limit: object, log_events: LogEvents
) -> None:
    start = sync(ALICE)["cursor"]
    refused = _refused(lambda: sync(ALICE, since=start, limit=limit))
    assert refused.code == "validation_failed" and refused.details == {"field": "limit"}
    assert STATUS_BY_CODE[refused.code] == 422


def test_after_pruning_an_old_cursor_expires_and_a_fresh_one_works(
    db: Settings, sync: Sync, log_events: LogEvents
) -> None:
    old = sync(ALICE)["cursor"]
    log_events(*[message([ALICE], f"m{i}") for i in range(3)])
    caught_up = sync(ALICE, since=old)["cursor"]
    log_events(message([BOB], "last"))  # the log ends with a change Alice did not see

    assert _prune_everything(db) == 4
    expired = _refused(lambda: sync(ALICE, since=old))
    assert expired.code == "cursor_expired" and expired.status == 410 == STATUS_BY_CODE["cursor_expired"]
    # The floor is one for everyone: a cursor before it expires, though what was pruned after it was Bob's.
    assert _refused(lambda: sync(ALICE, since=caught_up)).code == "cursor_expired"
    bobs = sync(BOB)["cursor"]
    assert sync(BOB, since=bobs)["changes"] == []

    fresh = sync(ALICE)
    assert fresh["changes"] == []
    later = log_events(message([ALICE], "after the reload"))
    assert [c["event_id"] for c in sync(ALICE, since=fresh["cursor"])["changes"]] == [later[0].id]
    # Pruning again with nothing old enough changes nothing.
    with transaction(db.database_url("sync")) as session:
        assert prune(session, 1) == 0
    assert [c["event_id"] for c in sync(ALICE, since=fresh["cursor"])["changes"]] == [later[0].id]


def test_a_cursor_at_the_floor_is_still_served(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    log_events(*[message([ALICE], f"m{i}") for i in range(3)])
    caught_up = sync(ALICE)["cursor"]
    _prune_everything(db)
    later = log_events(message([ALICE], "later"))
    assert [c["event_id"] for c in sync(ALICE, since=caught_up)["changes"]] == [later[0].id]


def test_a_cursor_beyond_the_log_expires(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    """A cursor from a log that was since reset (restored from a backup, say)."""
    log_events(message([ALICE], "one"))
    ahead = encode_sync(Cursors(db.cursor_secret), ALICE, 1_000_000)
    assert _refused(lambda: sync(ALICE, since=ahead)).code == "cursor_expired"


def test_a_prune_during_a_sync_never_skips_changes_silently(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    """The bounds and the rows come from one snapshot, however the logger's prune interleaves."""
    start = sync(ALICE)["cursor"]
    events = log_events(*[message([ALICE], f"m{i}") for i in range(3)])
    url = db.database_url("sync")
    result: list[object] = []
    with engine_for(url).connect() as pruning:
        # Hold the audience table, so the sync reads its bounds and then waits for its rows...
        pruning.execute(text("LOCK TABLE change_audience IN ACCESS EXCLUSIVE MODE"))

        def syncing() -> None:
            try:
                result.append(sync(ALICE, since=start))
            except AppError as exc:
                result.append(exc)

        reader = threading.Thread(target=syncing)
        reader.start()
        waiting = text(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = CAST('change_audience' AS regclass)"
        )
        with engine_for(url).connect() as watch:
            assert wait_for(lambda: watch.execute(waiting).scalar_one() > 0)
        # ...while the prune removes everything it would have read.
        assert prune(pruning, 0) == 3
        pruning.commit()
        reader.join(timeout=10)
    [answer] = result
    # Either all of them or `cursor_expired`; never an empty page that moves the cursor past them.
    if isinstance(answer, AppError):
        assert answer.code == "cursor_expired"
    else:
        assert isinstance(answer, dict)
        assert [c["event_id"] for c in answer["changes"]] == [e.id for e in events]


def test_sync_needs_a_signed_in_user(db: Settings) -> None:
    refused = _refused(lambda: methods(db)["sync.changes"](None, {}))
    assert refused.code == "unauthenticated"


@pytest.fixture
def rpc(db: Settings) -> Iterator[RpcClient]:
    server = RpcServer(db, "sync", sync_service.DEFINITION.rpc_methods(db), threads=2).start()
    client = RpcClient(db)
    yield client
    client.close()
    server.stop()


def test_sync_over_rpc_as_the_gateway_calls_it(db: Settings, rpc: RpcClient, log_events: LogEvents) -> None:
    assert rpc.call("sync", "health.check")["ok"] is True
    start = rpc.call("sync", "sync.changes", {}, caller=ALICE)
    assert start["changes"] == [] and start["has_more"] is False
    events = log_events(message([ALICE], "one"), message([BOB], "two"), message([ALICE], "three"))
    page = rpc.call("sync", "sync.changes", {"since": start["cursor"], "limit": 1}, caller=ALICE)
    assert [c["event_id"] for c in page["changes"]] == [events[0].id] and page["has_more"] is True
    page = rpc.call("sync", "sync.changes", {"since": page["cursor"], "limit": "1"}, caller=Caller(ALICE))
    assert [c["event_id"] for c in page["changes"]] == [events[2].id] and page["has_more"] is False

    assert _refused(lambda: rpc.call("sync", "sync.changes", {"since": start["cursor"]}, caller=BOB)).code == (
        "invalid_cursor"
    )
    assert _refused(lambda: rpc.call("sync", "sync.changes", {"limit": 0}, caller=ALICE)).code == "validation_failed"
    assert _refused(lambda: rpc.call("sync", "sync.changes", {})).code == "unauthenticated"
    _prune_everything(db)
    expired = _refused(lambda: rpc.call("sync", "sync.changes", {"since": start["cursor"]}, caller=ALICE))
    assert expired.code == "cursor_expired" and expired.status == 410


def test_a_settings_secret_change_invalidates_cursors(db: Settings, log_events: LogEvents) -> None:
    before = Sync(methods(db))(ALICE)["cursor"]
    rotated = Sync(methods(dataclasses.replace(db, cursor_secret="a-new-secret")))
    assert _refused(lambda: rotated(ALICE, since=before)).code == "invalid_cursor"


def test_any_text_in_an_event_comes_back_as_it_was_sent(db: Settings, sync: Sync, log_events: LogEvents) -> None:
    start = sync(ALICE)["cursor"]
    body = 'nul \u0000, emoji \U0001f600, lone \ud800, quote " and \\ backslash'
    [event] = log_events(message([ALICE], body))
    [change] = sync(ALICE, since=start)["changes"]
    assert change["message"] == {"id": f"m-{body}", "body": body}
    assert change["event_id"] == event.id

"""A deleted message's content leaves the change log: every change logged before its deletion is
rewritten without it, so nothing in the sync tables still holds its text, and a client catching
up from an old cursor ends with the message deleted, its unread count right."""

from __future__ import annotations

import uuid
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from services.sync import MIGRATIONS
from services.sync.log import prune, store
from shared.config import Settings
from shared.db import migrate, transaction
from shared.events import Envelope, make_event, with_personal
from tests.integration.sync.conftest import ALICE, BOB, CAROL, Observer, Sync, logged_rows, publish
from tests.support.client_state import ClientState

CID = "c-redact"
AUDIENCE = [ALICE, BOB, CAROL]
DELETED = {"by": "author", "by_name": "Alice Example"}


def _secret(word: str) -> str:
    return f"secret{word}{uuid.uuid4().hex}"


def _message(mid: str, seq: int, body: str, **extra: Any) -> dict[str, Any]:
    """A message as the conversations service shows it."""
    return {
        "id": mid,
        "conversation_id": CID,
        "seq": seq,
        "sender": {"id": ALICE, "name": "Alice Example", "avatar_url": None},
        "body": body,
        "links": [{"url": f"https://example.org/{body}"}] if body else [],
        "attachments": [{"id": str(uuid.uuid4()), "name": f"{body}.pdf"}] if body else [],
        "created_at": "2025-03-01T10:00:00.000000Z",
        "edited_at": None,
        "deleted": None,
        "forwarded_from": None,
        "client_id": None,
        **extra,
    }


def _preview(mid: str, text_: str) -> dict[str, Any]:
    return {
        "id": mid,
        "preview": text_,
        "sender_id": ALICE,
        "sender_name": "Alice Example",
        "created_at": "2025-03-01T10:00:00.000000Z",
    }


def _created(mid: str, seq: int, body: str) -> Envelope:
    listed = {"id": CID, "last_seq": seq, "last_message": _preview(mid, body), "last_activity_at": "2025-03-01"}
    data = {"message": _message(mid, seq, body), "conversation_id": CID, "conversation": listed}
    return make_event("conversations.message.created", data, producer="conversations", audience=AUDIENCE)


def _updated(mid: str, seq: int, body: str) -> Envelope:
    listed = {"id": CID, "last_message": _preview(mid, body)}
    message = _message(mid, seq, body, edited_at="2025-03-01T10:01:00.000000Z")
    data = {"message": message, "conversation_id": CID, "conversation": listed}
    return make_event("conversations.message.updated", data, producer="conversations", audience=AUDIENCE)


def _renamed(mid: str, preview: str) -> Envelope:
    """A conversation.updated whose views, shared and personal, all carry the preview."""
    shared = {"id": CID, "name": "Chemistry", "status": "open", "last_message": _preview(mid, preview)}
    views = {
        ALICE: shared,
        BOB: shared,
        CAROL: {**shared, "name": "Alice, Bob", "last_message": {**_preview(mid, preview), "sender_name": "Alice E."}},
    }
    data = with_personal("conversation", views, {"conversation_id": CID, "changes": {"name": "Chemistry"}})
    assert data["personal"][0]["data"]["conversation"]["last_message"]["preview"] == preview
    return make_event("conversations.conversation.updated", data, producer="conversations", audience=AUDIENCE)


def _deleted(mid: str, seq: int, deleted: dict[str, Any] = DELETED, last: dict[str, Any] | None = None) -> Envelope:
    message = _message(mid, seq, "", deleted=deleted)
    data = {"message": message, "conversation_id": CID, "conversation": {"id": CID, "last_message": last}}
    return make_event("conversations.message.deleted", data, producer="conversations", audience=AUDIENCE)


def _holding(settings: Settings, word: str) -> int:
    """How many rows of the sync tables hold `word` anywhere."""
    with transaction(settings.database_url("sync")) as session:
        return session.execute(
            text(
                "SELECT (SELECT count(*) FROM changes c WHERE c::text LIKE :like) "
                "+ (SELECT count(*) FROM change_audience a WHERE a::text LIKE :like) "
                "+ (SELECT count(*) FROM change_messages m WHERE m::text LIKE :like)"
            ),
            {"like": f"%{word}%"},
        ).scalar_one()


def _envelopes(settings: Settings) -> dict[int, str]:
    with transaction(settings.database_url("sync")) as session:
        return {r.seq: r.envelope for r in session.execute(text("SELECT seq, envelope FROM changes"))}


def _mentions(settings: Settings) -> set[tuple[str, int]]:
    with transaction(settings.database_url("sync")) as session:
        return {(r.message_id, r.seq) for r in session.execute(text("SELECT message_id, seq FROM change_messages"))}


def _last_views(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each message as a client holds it once it applied the changes in order."""
    views: dict[str, dict[str, Any]] = {}
    for change in changes:
        if "message" in change:
            views[change["message"]["id"]] = change["message"]
    return views


def _bob_with_the_conversation_open() -> ClientState:
    """Bob's state before it all: the conversation listed and open, everything read."""
    state = ClientState(me=BOB, unread_total=0)
    state.conversations[CID] = {"id": CID, "name": "Chem", "last_seq": 1, "last_read_seq": 1, "unread_count": 0}
    state.messages[CID] = {}
    return state


def test_a_deleted_messages_text_is_gone_from_the_log_and_a_syncing_client_sees_it_deleted(
    db: Settings, log_events: Any, observer: Observer, sync: Sync
) -> None:
    start = {user: sync(user)["cursor"] for user in AUDIENCE}
    first, edited, renamed = _secret("first"), _secret("edited"), _secret("renamed")
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    keep = f"keepme{uuid.uuid4().hex}"
    log_events(_created(gone, 2, first), _updated(gone, 2, edited))
    log_events(_renamed(gone, renamed), _created(kept, 3, keep))
    for word in (first, edited, renamed):
        assert _holding(db, word) > 0
    before = logged_rows(db)
    assert {m for m, _ in _mentions(db)} == {gone, kept}

    delete = _deleted(gone, 2, last=_preview(kept, keep))
    log_events(delete)
    observer.wait_ids([delete.id])

    for word in (first, edited, renamed, "secret"):
        assert _holding(db, word) == 0, word
    with transaction(db.database_url("sync")) as session:
        assert session.execute(text("SELECT count(*) FROM changes WHERE envelope LIKE '%secret%'")).scalar_one() == 0
    # The other message keeps its text, everything keeps its position, and the deletion is indexed too.
    assert _holding(db, keep) == 2  # the message's own change, and the deletion's preview of it
    assert logged_rows(db)[:-1] == before
    assert (gone, logged_rows(db)[-1][1]) in _mentions(db)

    for user in AUDIENCE:
        changes, _ = sync.everything(user, start[user])
        assert [c["event"] for c in changes] == [
            "message.created",
            "message.updated",
            "conversation.updated",
            "message.created",
            "message.deleted",
        ]
        assert [c["seq"] for c in changes] == [seq for _, seq in logged_rows(db)]
        assert "secret" not in repr(changes)
        created, updated, conversation, other, deletion = changes
        for change in (created, updated):
            assert (change["message"]["body"], change["message"]["links"], change["message"]["attachments"]) == (
                "",
                [],
                [],
            )
            assert change["conversation"]["last_message"]["preview"] == ""
        assert created["message"]["seq"] == 2 and updated["message"]["edited_at"] is not None
        assert conversation["conversation"]["last_message"]["preview"] == ""
        assert conversation["conversation"]["name"] == ("Alice, Bob" if user == CAROL else "Chemistry")
        assert other["message"]["body"] == keep and other["conversation"]["last_message"]["preview"] == keep
        assert deletion["message"]["deleted"] == DELETED
        final = _last_views(changes)
        assert final[gone]["deleted"] == {"by": "author", "by_name": "Alice Example"} and final[gone]["body"] == ""
        assert final[kept]["body"] == keep

    # The reference client, with the conversation open, ends with the message deleted and counted out.
    state = _bob_with_the_conversation_open()
    state.apply_all(sync.everything(BOB, start[BOB])[0])
    assert state.messages[CID][gone]["deleted"] == DELETED
    assert state.conversations[CID]["unread_count"] == 1 and state.unread_total == 1  # only the kept one
    assert state.conversations[CID]["last_message"]["preview"] == keep


def test_a_redelivered_deletion_changes_nothing_more(
    db: Settings, log_events: Any, observer: Observer, sync: Sync
) -> None:
    secret, gone = _secret("redelivered"), str(uuid.uuid4())
    log_events(_created(gone, 2, secret))
    delete = _deleted(gone, 2, deleted={"by": "moderator", "by_name": "Mo Derator"})
    log_events(delete)
    observer.wait_ids([delete.id])
    assert _holding(db, secret) == 0
    envelopes, mentions, rows = _envelopes(db), _mentions(db), logged_rows(db)
    start = sync(ALICE)["cursor"]

    publish(db, delete)
    observer.wait(lambda got: sum(r.id == delete.id for r in got) >= 2)
    later = _created(str(uuid.uuid4()), 3, "later")
    log_events(later)  # the redelivery is behind us once this one is logged

    now = logged_rows(db)
    assert now[:-1] == rows and now[-1][0] == later.id  # (a position may be skipped: the redelivery drew one)
    assert {s: e for s, e in _envelopes(db).items() if s in envelopes} == envelopes
    assert _mentions(db) - mentions == {(later.data["message"]["id"], now[-1][1])}
    assert [c["event_id"] for c in sync.everything(ALICE, start)[0]] == [later.id]


def test_a_deletion_in_the_same_batch_as_the_message_redacts_it(db: Settings, sync: Sync) -> None:
    secret, gone, kept = _secret("batch"), str(uuid.uuid4()), str(uuid.uuid4())
    start = sync(BOB)["cursor"]
    events = [
        _created(gone, 2, secret),
        _updated(gone, 2, secret + "edited"),
        _created(kept, 3, "unrelated"),
        _renamed(gone, secret),
        _deleted(gone, 2, last=_preview(kept, "unrelated")),
    ]
    # One call of store() is one batch of the logger, in one transaction.
    with transaction(db.database_url("sync")) as session:
        seqs = store(session, [(e, e.to_json()) for e in events])
    assert [seqs[e.id] for e in events] == [1, 2, 3, 4, 5]
    assert _holding(db, secret) == 0
    assert _holding(db, "unrelated") == 2

    changes, _ = sync.everything(BOB, start)
    assert [c["seq"] for c in changes] == [1, 2, 3, 4, 5]
    assert _last_views(changes)[gone]["deleted"] == DELETED
    assert _last_views(changes)[kept]["body"] == "unrelated"

    # The same batch again (a redelivery): the same positions, nothing rewritten.
    envelopes = _envelopes(db)
    with transaction(db.database_url("sync")) as session:
        assert store(session, [(e, e.to_json()) for e in events]) == seqs
    assert _envelopes(db) == envelopes


def test_a_deletion_leaves_later_changes_and_other_readers_alone(db: Settings, sync: Sync) -> None:
    """Only what was logged before the deletion is rewritten; the deletion itself stays as it was sent."""
    gone = str(uuid.uuid4())
    delete = _deleted(gone, 2, last=_preview(gone, ""))
    after = _renamed(gone, "logged after the deletion")
    with transaction(db.database_url("sync")) as session:
        store(session, [(_created(gone, 2, "hello there"), _created(gone, 2, "hello there").to_json())])
        store(session, [(delete, delete.to_json()), (after, after.to_json())])
    envelopes = _envelopes(db)
    assert envelopes[2] == delete.to_json() and envelopes[3] == after.to_json()
    assert _holding(db, "hello there") == 0


def test_pruning_forgets_which_messages_pruned_changes_mention(db: Settings) -> None:
    events = [_created(str(uuid.uuid4()), 2, f"m{i}") for i in range(3)]
    with transaction(db.database_url("sync")) as session:
        store(session, [(e, e.to_json()) for e in events])
    assert len(_mentions(db)) == 3
    with transaction(db.database_url("sync")) as session:
        assert prune(session, 0) == 3
    assert _mentions(db) == set()


def _alembic(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = settings.database_url("sync")
    return cfg


def test_the_migration_indexes_the_log_and_redacts_what_was_deleted_before_it(db: Settings) -> None:
    """Changes logged before the migration: indexed, and those before an already logged deletion redacted."""
    secret, gone, kept = _secret("migrated"), str(uuid.uuid4()), str(uuid.uuid4())
    events = [_created(gone, 2, secret), _created(kept, 3, "kept text"), _deleted(gone, 2), _renamed(gone, "")]
    command.downgrade(_alembic(db), "0001")
    try:
        with transaction(db.database_url("sync")) as session:
            session.execute(
                text("INSERT INTO changes (event_id, type, envelope) VALUES (CAST(:id AS uuid), :type, :envelope)"),
                [{"id": e.id, "type": e.type, "envelope": e.to_json()} for e in events],
            )
    finally:
        migrate(db.database_url("sync"), MIGRATIONS)
    assert _holding(db, secret) == 0
    assert _holding(db, "kept text") == 1
    assert _mentions(db) == {(gone, 1), (kept, 2), (gone, 3), (gone, 4)}

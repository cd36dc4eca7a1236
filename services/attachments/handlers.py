"""The attachments service's RPC methods, the events it follows, and its purge loop."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from services.attachments import domain, store
from shared.blobs import BlobNotFound, BlobStore, blob_store
from shared.bus import ConsumerSpec
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError, not_found, validation
from shared.events import Envelope
from shared.outbox import claim_event
from shared.rpc import Caller, Method, RpcClient, user_of
from shared.supervise import Periodic

log = logging.getLogger(__name__)

SERVICE = "attachments"
MESSAGE_EVENTS = "attachments.message-events"
PURGE_EVERY_SECONDS = 60.0
T = TypeVar("T")


def _destroy(blobs: BlobStore, keys: list[str]) -> None:
    """Delete blobs after their rows are gone (a failure leaves a stray blob, never a row without one)."""
    for key in keys:
        try:
            blobs.delete(key)
        except Exception as exc:  # noqa: BLE001  (one stuck blob must not stop the others)
            log.warning("attachments: could not delete blob %s: %r", key, exc)


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url(SERVICE)
    blobs = blob_store(settings)
    conversations = RpcClient(settings)
    allowed = settings.attachment_types
    inline = settings.attachment_inline_types

    def db(work: Callable[[Connection], T]) -> T:
        with transaction(url) as session:
            return work(session)

    def register(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """An upload the gateway has stored: judged by its content, kept or removed."""
        me, key = user_of(caller), params.get("key")
        try:
            size = blobs.size(key)
            head = blobs.head(key, domain.SNIFF_BYTES)
        except (ValueError, TypeError, BlobNotFound):
            raise validation("The upload is missing.", field="file") from None
        try:
            name = domain.clean_name(params.get("name"))
            content_type = domain.sniff(head)
            domain.check_file(name, size, content_type, allowed)
            inserted = db(lambda s: store.insert(s, me, key, name, size, content_type))
        except AppError:
            blobs.delete(key)
            raise
        except IntegrityError:
            # The key is registered already (a repeated request): the blob is that row's, not ours to remove.
            raise validation("This upload is already registered.", field="file") from None
        return inserted

    def discard(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me, ids = user_of(caller), store.as_ids(params.get("ids"), most=100)
        _destroy(blobs, db(lambda s: store.discard(s, me, ids)))
        return {}

    def claim(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """For conversations: the sender's unused uploads, taken for one message."""
        me, ids = user_of(caller), store.as_ids(params.get("ids"))
        message_id = uuid.UUID(str(params.get("message_id")))
        return {"attachments": db(lambda s: store.claim(s, me, ids, message_id))}

    def release(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        db(lambda s: store.release(s, me, uuid.UUID(str(params.get("message_id")))))
        return {}

    def open_(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """Where a download comes from, if the caller may have it: their own upload before it is sent,
        else a file of a message in a conversation they take part in (asked of conversations)."""
        me = user_of(caller)
        row = db(lambda s: store.get(s, params.get("id")))
        mine_unsent = row.owner_id == me and row.state != "attached"
        if not mine_unsent:
            access = conversations.call(
                "conversations", "attachments.access", {"attachment_id": str(row.id)}, caller=me
            )
            if not access.get("allowed"):
                raise not_found("attachment")
        return {
            **store.view(row),
            "key": row.blob_key,
            "inline": domain.matches(row.content_type, inline),
        }

    return {
        "attachments.register": register,
        "attachments.discard": discard,
        "attachments.claim": claim,
        "attachments.release": release,
        "attachments.open": open_,
    }


def consumers(settings: Settings) -> list[ConsumerSpec]:
    """Messages that carry files, and their deletion: a file lives while a message carries it.

    Conversations tells of these alone (`conversations.files.*`), so ordinary messages cost nothing here.
    """
    url = settings.database_url(SERVICE)
    blobs = blob_store(settings)

    def on_message_event(envelope: Envelope) -> None:
        data = envelope.data
        doomed: list[str] = []
        with transaction(url) as session:
            if not claim_event(session, MESSAGE_EVENTS, envelope.id):
                return
            if envelope.type == "conversations.files.attached":
                store.message_stored(session, data["message_id"], data["attachment_ids"])
            elif envelope.type == "conversations.files.released":
                doomed = store.message_gone(session, data["message_id"])
        _destroy(blobs, doomed)

    return [
        ConsumerSpec(
            MESSAGE_EVENTS,
            ("conversations.files.attached", "conversations.files.released"),
            on_message_event,
            prefetch=settings.consumer_prefetch,
        )
    ]


class Purger(Periodic):
    """Removes uploads nobody sent within `unclaimed_upload_hours`, once a minute."""

    name = "attachments purger"
    every = PURGE_EVERY_SECONDS

    def __init__(self, settings: Settings) -> None:
        super().__init__(stall_seconds=settings.loop_stall_seconds)
        self.settings = settings
        self.url = settings.database_url(SERVICE)
        self.blobs = blob_store(settings)

    def work(self) -> int:
        return self.purge_once()

    def purge_once(self) -> int:
        with transaction(self.url) as session:
            keys = store.purge(session, self.settings.unclaimed_upload_hours)
        _destroy(self.blobs, keys)
        return len(keys)

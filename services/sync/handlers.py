"""The sync service's RPC methods: catch-up for clients (F29)."""

from __future__ import annotations

from typing import Any

from services.sync import changes
from shared.config import Settings
from shared.cursor import Cursors, decode_sync, encode_sync
from shared.db import transaction
from shared.rpc import Caller, Method, user_of


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("sync")
    cursors = Cursors(settings.cursor_secret)

    def sync(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        since = decode_sync(cursors, params.get("since"), me)
        limit = changes.check_limit(params.get("limit"))
        with transaction(url) as session:
            result = changes.changes_since(session, me, since, limit)
        return {
            "changes": result["changes"],
            "cursor": encode_sync(cursors, me, result["position"]),
            "has_more": result["has_more"],
        }

    return {"sync.changes": sync}

"""RPC entry points of the conversations service: parse params, call one action, return plain data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from services.conversations import actions, domain
from shared.config import Settings
from shared.cursor import Cursors
from shared.db import transaction
from shared.errors import AppError, not_found
from shared.rpc import Caller, Method, RpcClient

T = TypeVar("T")


def _me(caller: Caller | None) -> str:
    if caller is None:
        raise AppError("unauthenticated", "Sign in to continue.")
    return caller.user_id


def _refuse_attachments(params: dict[str, Any]) -> None:
    if params.get("attachment_ids"):
        raise AppError("not_allowed", "Files cannot be attached yet.", {"field": "attachment_ids"})


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("conversations")
    cursors = Cursors(settings.cursor_secret)
    directory = RpcClient(settings)

    def in_transaction(work: Callable[[Connection], T]) -> T:
        # A concurrent twin (same client_id, same 1:1 pair) can win a unique index: once
        # more, and the retry finds what the twin made.
        for attempt in range(2):
            try:
                with transaction(url) as session:
                    return work(session)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def health(caller: Caller | None, params: dict[str, Any]) -> dict[str, bool]:
        with transaction(url) as session:
            session.execute(text("SELECT 1"))
        return {"ok": True}

    def create(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        _refuse_attachments(params)
        recipients = domain.parse_recipients(params.get("recipients"))
        people = [r for r in recipients if r.type == "user" and r.id != me]
        if len(recipients) != 1 or len(people) != 1:
            raise AppError("not_allowed", "Only conversations with one person can be started yet.")
        found = {u["id"]: u for u in directory.call("directory", "users.get", {"ids": [me, people[0].id]})["users"]}
        if people[0].id not in found:
            raise not_found("user")
        if me not in found:
            raise AppError("unauthenticated", "Your account is not in the roster.")
        return in_transaction(
            lambda s: actions.do_start_direct(
                s, me, found[people[0].id], found[me], params.get("body"), params.get("client_id")
            )
        )

    def list_conversations(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        with transaction(url) as session:
            return actions.list_conversations(session, cursors, me, params.get("cursor"), params.get("limit"))

    def get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        with transaction(url) as session:
            return actions.get_conversation(session, me, params.get("conversation_id"))

    def send(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        _refuse_attachments(params)
        return in_transaction(
            lambda s: actions.do_send_message(
                s, me, params.get("conversation_id"), params.get("body"), params.get("client_id")
            )
        )

    def history(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        with transaction(url) as session:
            return actions.list_messages(
                session, cursors, me, params.get("conversation_id"), params.get("cursor"), params.get("limit")
            )

    def unread_total(caller: Caller | None, params: dict[str, Any]) -> dict[str, int]:
        me = _me(caller)
        with transaction(url) as session:
            return {"unread_total": actions.unread_total(session, me)}

    return {
        "health.check": health,
        "conversations.create": create,
        "conversations.list": list_conversations,
        "conversations.get": get,
        "messages.send": send,
        "messages.list": history,
        "unread.total": unread_total,
    }

"""RPC entry points of the directory: parse params, call one function, return plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from services.directory import importer, queries
from services.directory.roster.errors import RosterError
from services.directory.roster.parse import load_bundle
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError, validation
from shared.rpc import Caller, Method


def _str_list(params: dict[str, Any], name: str, *, limit: int = 1000) -> list[str]:
    value = params.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation(f"{name} must be a list of ids.", field=name)
    if len(value) > limit:
        raise validation(f"At most {limit} {name}.", field=name)
    return value


def _require_caller(caller: Caller | None) -> Caller:
    if caller is None:
        raise AppError("unauthenticated", "Sign in to continue.")
    return caller


def roster_error(exc: RosterError) -> AppError:
    return AppError(
        "validation_failed",
        "The roster bundle was refused; nothing was imported.",
        {
            "errors": [{"file": i.file, "line": i.line, "column": i.column, "message": i.message} for i in exc.errors],
            "truncated": exc.truncated,
        },
    )


def import_roster(url: str, source: Path | bytes) -> dict[str, dict[str, int]]:
    """Parse and apply a bundle atomically; a refused bundle stores nothing."""
    try:
        bundle = load_bundle(source)
        with transaction(url) as session:
            return importer.apply_bundle(session, bundle)
    except RosterError as exc:
        raise roster_error(exc) from None


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("directory")

    def health(caller: Caller | None, params: dict[str, Any]) -> dict[str, bool]:
        with transaction(url) as session:
            session.execute(text("SELECT 1"))
        return {"ok": True}

    def users_get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        ids = _str_list(params, "ids")
        with transaction(url) as session:
            return {"users": queries.get_users(session, ids)}

    def search(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        q = params.get("q")
        if not isinstance(q, str):
            raise validation("q must be text.", field="q")
        with transaction(url) as session:
            return queries.search(session, me.user_id, q)

    def members(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        kind, group_id = params.get("kind"), params.get("id")
        if not isinstance(kind, str) or not isinstance(group_id, str):
            raise validation("kind and id are required.")
        with transaction(url) as session:
            return {"members": queries.group_members(session, kind, group_id)}

    return {
        "health.check": health,
        "users.get": users_get,
        "directory.search": search,
        "groups.members": members,
    }

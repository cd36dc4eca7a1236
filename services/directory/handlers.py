"""RPC entry points of the directory: parse params, call one function, return plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from services.directory import admin, contacts, importer, mass, policy, queries, staff
from services.directory.roster.errors import RosterError
from services.directory.roster.parse import load_bundle
from shared.config import Settings
from shared.db import analyze, transaction
from shared.errors import AppError, validation
from shared.rpc import Caller, Method


def _str_list(params: dict[str, Any], name: str, *, limit: int = 1000) -> list[str]:
    value = params.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation(f"{name} must be a list of ids.", field=name)
    if len(value) > limit:
        raise validation(f"At most {limit} {name}.", field=name)
    return value


MAX_ID = 200


def _id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise validation(f"{name} must be an id.", field=name)
    return value


def _ids(limit: int) -> Callable[[Any, str], list[str]]:
    def check(value: Any, name: str) -> list[str]:
        if not isinstance(value, list):
            raise validation(f"{name} must be a list of ids.", field=name)
        if len(value) > limit:
            raise validation(f"At most {limit} {name}.", field=name)
        return [_id(v, name) for v in value]

    return check


def _student_policy(value: Any, name: str) -> str | None:
    if value is not None and value not in policy.POLICIES:
        raise validation(f"{name} must be one of {', '.join(policy.POLICIES)}, or null.", field=name)
    return value


def _parse(
    params: dict[str, Any],
    required: Mapping[str, Callable[[Any, str], Any]],
    optional: Mapping[str, Callable[[Any, str], Any]] | None = None,
) -> dict[str, Any]:
    """Checked params: every required one present and well typed, optional ones when given, nothing else."""
    optional = optional or {}
    unknown = sorted(set(params) - set(required) - set(optional))
    if unknown:
        raise validation(f"Unknown parameters: {', '.join(unknown)}.", fields=unknown)
    missing = [name for name in required if name not in params]
    if missing:
        raise validation(f"{missing[0]} is required.", field=missing[0])
    checks = {**required, **optional}
    return {name: checks[name](value, name) for name, value in params.items()}


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
            counts = importer.apply_bundle(session, bundle)
    except RosterError as exc:
        raise roster_error(exc) from None
    analyze(url, importer.filled_tables(counts))
    return counts


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("directory")

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
            return queries.group_members(session, kind, group_id, caller.user_id if caller else None)

    def check_contacts(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"recipient_ids": _ids(1000)})
        with transaction(url) as session:
            return contacts.check_contacts(session, me.user_id, p["recipient_ids"])

    def messaging_state(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        p = _parse(params, {"user_ids": _ids(10_000)}, {"course_ids": _ids(1000)})
        with transaction(url) as session:
            return contacts.messaging_state(session, p["user_ids"], p.get("course_ids", []))

    def relationship(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"user_id": _id})
        with transaction(url) as session:
            return contacts.relationship(session, me.user_id, p["user_id"])

    def orgs_tree(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        _parse(params, {})
        with transaction(url) as session:
            return contacts.org_tree(session, me.user_id)

    def blocks_create(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {}, {"user_id": _id, "org_id": _id, "course_id": _id})
        if len(p) != 1:
            raise validation(
                "Give exactly one of user_id, org_id or course_id.", fields=["user_id", "org_id", "course_id"]
            )
        ((name, target_id),) = p.items()
        kind = {"user_id": "user", "org_id": "org", "course_id": "course"}[name]
        with transaction(url) as session:
            return admin.do_create_block(session, me.user_id, kind, target_id)  # type: ignore[arg-type]

    def blocks_delete(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"block_id": _id})
        with transaction(url) as session:
            return admin.do_delete_block(session, me.user_id, p["block_id"])

    def blocks_list(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        _parse(params, {})
        with transaction(url) as session:
            return admin.list_blocks(session, me.user_id)

    def rules_set(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"org_id": _id, "student_policy": _student_policy})
        with transaction(url) as session:
            return admin.do_set_rule(session, me.user_id, p["org_id"], p["student_policy"])

    def rules_get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"org_id": _id})
        with transaction(url) as session:
            return contacts.get_rule(session, me.user_id, p["org_id"])

    def privileges_grant(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"user_id": _id, "privilege": _id})
        with transaction(url) as session:
            return admin.do_grant_privilege(session, me.user_id, p["user_id"], p["privilege"])

    def privileges_revoke(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {"user_id": _id, "privilege": _id})
        with transaction(url) as session:
            return admin.do_revoke_privilege(session, me.user_id, p["user_id"], p["privilege"])

    def privileges_check(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        p = _parse(params, {"user_id": _id, "privilege": _id})
        with transaction(url) as session:
            return admin.has_privilege(session, p["user_id"], p["privilege"])

    def report_recipients(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, {}, {"exclude": _ids(100)})
        with transaction(url) as session:
            return staff.report_recipients(session, me.user_id, p.get("exclude", []))

    def admins_covering(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        p = _parse(params, {"org_id": _id})
        with transaction(url) as session:
            return staff.admins_covering(session, p["org_id"])

    def admins_scope(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        _parse(params, {})
        with transaction(url) as session:
            return staff.admin_scope(session, me.user_id)

    mass_required = {"org_id": _id}
    mass_optional = {"org_ids": _ids(mass.MAX_ORGS), "roles": mass.roles_param}

    def mass_authorise(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, mass_required, mass_optional)
        with transaction(url) as session:
            return mass.describe(session, me.user_id, p["org_id"], p.get("org_ids"), p.get("roles"))

    def mass_audience(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _require_caller(caller)
        p = _parse(params, mass_required, {**mass_optional, "after": mass.after_param, "limit": mass.limit_param})
        with transaction(url) as session:
            return mass.members(
                session,
                me.user_id,
                p["org_id"],
                p.get("org_ids"),
                p.get("roles"),
                after=p.get("after"),
                limit=p.get("limit", mass.DEFAULT_PAGE),
            )

    return {
        "users.get": users_get,
        "directory.search": search,
        "groups.members": members,
        "policy.check_contacts": check_contacts,
        "policy.messaging_state": messaging_state,
        "users.relationship": relationship,
        "orgs.tree": orgs_tree,
        "blocks.create": blocks_create,
        "blocks.delete": blocks_delete,
        "blocks.list": blocks_list,
        "rules.set": rules_set,
        "rules.get": rules_get,
        "privileges.grant": privileges_grant,
        "privileges.revoke": privileges_revoke,
        "privileges.check": privileges_check,
        "staff.report_recipients": report_recipients,
        "staff.admins_covering": admins_covering,
        "admins.scope": admins_scope,
        "mass.authorise": mass_authorise,
        "mass.audience": mass_audience,
    }

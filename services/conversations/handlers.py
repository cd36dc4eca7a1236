"""RPC entry points of the conversations service: parse params, ask the directory, call one action."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from services.conversations import actions, domain, mass, membership, moderation, views
from services.conversations.search import search_methods
from services.conversations.starting import Plan, do_start
from shared.config import Settings
from shared.cursor import Cursors
from shared.db import transaction
from shared.errors import AppError, validation
from shared.rpc import Caller, Method, RpcClient, user_of

T = TypeVar("T")
MAX_ATTACHMENTS = 10
USERS_PER_CALL = 1000


def _attachment_ids(params: dict[str, Any]) -> list[str]:
    raw = params.get("attachment_ids")
    if raw is None or raw == []:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS or not all(isinstance(i, str) for i in raw):
        raise validation(f"Attach at most {MAX_ATTACHMENTS} files, by their ids.", field="attachment_ids")
    return list(dict.fromkeys(raw))


class Files:
    """The attachments service, as a send sees it: claim the sender's uploads, give them back on failure."""

    def __init__(self, settings: Settings) -> None:
        self.rpc = RpcClient(settings)

    def claimed(self, me: str, ids: list[str], work: Callable[[list[dict[str, Any]], uuid.UUID], T]) -> T:
        """Run `work(files, message_id)` with the files claimed for that message (none asked: none)."""
        message_id = uuid.uuid4()
        if not ids:
            return work([], message_id)
        files = self.rpc.call(
            "attachments", "attachments.claim", {"ids": ids, "message_id": str(message_id)}, caller=me
        )["attachments"]
        try:
            return work(files, message_id)
        except BaseException:
            try:
                self.rpc.call("attachments", "attachments.release", {"message_id": str(message_id)}, caller=me)
            except AppError:
                pass  # unclaimed uploads are purged in time anyway
            raise


@dataclass
class Resolved:
    """Recipients as the directory knows them, and what the 300 rule makes of them."""

    me: dict[str, Any]
    people: list[str]
    groups: list[tuple[domain.Group, str, list[str]]]  # (group, its name, member ids)
    unique: list[str]
    decision: domain.Decision


class Directory:
    """The questions this service asks the directory, over RPC."""

    def __init__(self, settings: Settings) -> None:
        self.rpc = RpcClient(settings)

    def users(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), USERS_PER_CALL):
            chunk = unique[start : start + USERS_PER_CALL]
            found.update({u["id"]: u for u in self.rpc.call("directory", "users.get", {"ids": chunk})["users"]})
        return found

    def members(self, caller_id: str, kind: str, group_id: str) -> tuple[str, list[str]]:
        """A course's or project's name and members; `not_found` unless the caller belongs or governs it."""
        result = self.rpc.call("directory", "groups.members", {"kind": kind, "id": group_id}, caller=caller_id)
        return result["name"], [m["user_id"] for m in result["members"]]

    def check_contacts(self, caller_id: str, ids: list[str]) -> dict[str, Any]:
        return self.rpc.call("directory", "policy.check_contacts", {"recipient_ids": ids}, caller=caller_id)

    def course_messaging(self, kind: str, group_id: str) -> bool:
        if kind != "course":
            return True
        state = self.rpc.call("directory", "policy.messaging_state", {"user_ids": [], "course_ids": [group_id]})
        return bool(state["courses"].get(group_id, {}).get("messaging_enabled", True))


def resolve(directory: Directory, me: str, raw_recipients: Any) -> Resolved:
    """Who the recipients are and what the 300 rule allows; unknown or unreachable ones are not found."""
    recipients = domain.parse_recipients(raw_recipients)
    person_ids = [r.id for r in recipients if r.type == "user" and r.id != me]
    users = directory.users([me, *person_ids])
    if me not in users:
        raise AppError("unauthenticated", "Your account is not in the roster.")
    missing = [p for p in person_ids if p not in users]
    if missing:
        raise AppError("not_found", "No such user.", {"ids": missing})
    groups = []
    for r in recipients:
        if r.type in domain.GROUP_KINDS:
            name, members = directory.members(me, r.type, r.id)
            groups.append((domain.Group(r.type, r.id, len([m for m in members if m != me])), name, members))
    unique = list(dict.fromkeys([*person_ids, *(m for _, _, ms in groups for m in ms if m != me)]))
    decision = domain.decide(len(person_ids), [g for g, _, _ in groups], len(unique))
    return Resolved(users[me], person_ids, groups, unique, decision)


def check_contacts(directory: Directory, me: str, ids: list[str], mode: str) -> None:
    """Messaging blocks and communication rules (F2, F3), worded for the kind of conversation (seed 7.4)."""
    verdict = directory.check_contacts(me, ids)
    if verdict["sender_blocked"]:
        raise AppError("messaging_disabled", "Messaging is turned off for your account.", {"reason": "sender"})
    refused = verdict["refused"]
    if not refused:
        return
    unknown = [r["user_id"] for r in refused if r["code"] == "not_found"]
    if unknown:
        # Out of reach is told exactly like missing: nobody learns who exists elsewhere.
        raise AppError("not_found", "No such user.", {"ids": unknown})
    if mode == "direct":
        (one,) = refused
        if one["code"] == "communication_rule":
            raise AppError("communication_rule", one["message"], {"user_ids": [one["user_id"]]})
        raise AppError(
            "messaging_disabled",
            f"Your message cannot be delivered: {one['name']} cannot receive messages.",
            {"reason": "recipient", "user_ids": [one["user_id"]]},
        )
    rule = [r for r in refused if r["code"] == "communication_rule"]
    if rule:
        raise AppError("communication_rule", rule[0]["message"], {"user_ids": [r["user_id"] for r in rule]})
    names = [r["name"] for r in refused]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    raise AppError(
        "recipients_unavailable",
        f"{listed} cannot take part in this conversation: messaging is turned off.",
        {"user_ids": [r["user_id"] for r in refused]},
    )


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("conversations")
    cursors = Cursors(settings.cursor_secret)
    directory = Directory(settings)
    views.configure(settings.course_participants_url)
    files = Files(settings)

    def write(work: Callable[[Connection], T]) -> T:
        # A concurrent twin (same client_id, same 1:1 pair, same course) can win a unique index:
        # once more, and the retry finds what the twin made.
        for attempt in range(2):
            try:
                with transaction(url) as session:
                    return work(session)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def read(work: Callable[[Connection], T]) -> T:
        with transaction(url) as session:
            return work(session)

    def preview(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        return resolve(directory, user_of(caller), params.get("recipients")).decision.to_dict()

    def start(me: str, params: dict[str, Any], source: Any = None) -> dict[str, Any]:
        """A new conversation (or a post into a course's own) for a first message or a forwarded one."""
        client_id = domain.check_client_id(params.get("client_id"))
        attaching = bool(_attachment_ids(params)) if source is None else False
        body = source.body if source is not None else domain.check_body(params.get("body"), has_attachments=attaching)
        name = domain.check_name(params["name"]) if params.get("name") is not None else None
        resolved = resolve(directory, me, params.get("recipients"))
        mode = domain.choose_mode(resolved.decision, params.get("mode"))
        asked = ("start", params.get("recipients"), mode, body, name)
        fingerprint = domain.request_hash(*asked, *((_attachment_ids(params),) if attaching else ()))
        plan = Plan(caller=resolved.me, mode=mode, people={}, name=name)
        if source is not None:
            plan.attachments, plan.forwarded_from = source.attachments, source.id
        if mode == "group_conversation":
            group, group_name, members = resolved.groups[0]
            if not directory.course_messaging(group.kind, group.id):
                raise AppError("messaging_disabled", f"Messaging is turned off in {group_name}.", {"reason": "course"})
            check_contacts(directory, me, [], mode)
            plan.group, plan.group_name, plan.group_members = group, group_name, members
            plan.people = directory.users([m for m in members if m != me])
        else:
            check_contacts(directory, me, resolved.unique, mode)
            plan.people = directory.users(resolved.unique)
        if source is None:

            def started(claimed: list[dict[str, Any]], _: uuid.UUID) -> dict[str, Any]:
                plan.attachments = claimed
                return write(lambda s: do_start(s, plan, body, client_id, fingerprint))

            result = files.claimed(me, _attachment_ids(params), started)
        else:
            result = write(lambda s: do_start(s, plan, body, client_id, fingerprint))
        if plan.group is not None:
            reconcile(me, plan.group)
        return result

    def reconcile(me: str, group: domain.Group) -> None:
        # Enrolments that changed while the conversation was being made found no conversation
        # to change; a second look at the roster, now that it exists, catches them.
        _, latest = directory.members(me, group.kind, group.id)
        current = read(lambda s: membership.roster_members(s, group.kind, group.id)) or set()
        joined, left = [u for u in latest if u not in current and u != me], [u for u in current if u not in latest]
        if joined or left:
            people = list(directory.users(joined).values())
            write(lambda s: membership.reconcile_group(s, group.kind, group.id, people, left))

    def create(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        return start(user_of(caller), params)

    def list_conversations(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        page = read(lambda s: actions.list_conversations(s, cursors, me, params.get("cursor"), params.get("limit")))
        return page

    def get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return read(lambda s: actions.get_conversation(s, me, params.get("conversation_id")))

    def send(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        ids = _attachment_ids(params)
        client_id = domain.check_client_id(params.get("client_id"))
        if ids and client_id is not None and read(lambda s: actions.existing_send(s, me, client_id)) is not None:
            ids_to_claim: list[str] = []  # a retry: the first send has the files
        else:
            ids_to_claim = ids

        def sent(claimed: list[dict[str, Any]], message_id: uuid.UUID) -> dict[str, Any]:
            return write(
                lambda s: actions.do_send_message(
                    s,
                    me,
                    params.get("conversation_id"),
                    params.get("body"),
                    client_id,
                    attachment_ids=ids,
                    attachments=claimed,
                    message_id=message_id,
                )
            )

        return files.claimed(me, ids_to_claim, sent)

    def attachment_access(caller: Caller | None, params: dict[str, Any]) -> dict[str, bool]:
        """For attachments: may the caller download this file (a message carrying it, in a conversation
        they take part in, not deleted)?"""
        me = user_of(caller)
        return {"allowed": read(lambda s: actions.may_read_attachment(s, me, params.get("attachment_id")))}

    def history(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return read(
            lambda s: actions.list_messages(
                s, cursors, me, params.get("conversation_id"), params.get("cursor"), params.get("limit")
            )
        )

    def edit(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return write(lambda s: actions.do_edit_message(s, me, params.get("message_id"), params.get("body")))

    def delete(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return write(lambda s: moderation.do_delete_message(s, me, params.get("message_id")))

    def report_target(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """For moderation: what a report by the caller would point at (refusing what may not be reported)."""
        me = user_of(caller)
        return read(lambda s: moderation.report_target(s, me, params.get("message_id"), params.get("conversation_id")))

    def grant(caller: Caller | None, params: dict[str, Any]) -> dict[str, bool]:
        """For moderation: an open report lets the staff member it was sent to into its conversation."""
        user_id = params.get("user_id")
        reader = directory.users([user_id]).get(user_id) if isinstance(user_id, str) else None
        if reader is None:
            raise AppError("not_found", "No such user.")
        granted = write(
            lambda s: moderation.grant_access(s, params.get("report_id"), params.get("conversation_id"), reader)
        )
        return {"granted": granted}

    def revoke(caller: Caller | None, params: dict[str, Any]) -> dict[str, bool]:
        """For moderation: a closed report ends the access it gave."""
        user_id = params.get("user_id")
        if not isinstance(user_id, str):
            raise validation("user_id is required.", field="user_id")
        revoked = write(
            lambda s: moderation.revoke_access(s, params.get("report_id"), params.get("conversation_id"), user_id)
        )
        return {"revoked": revoked}

    def describe(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """For moderation: a conversation's type, for a report made by a safeguarding flag."""
        return read(lambda s: moderation.describe(s, params.get("conversation_id")))

    def deliver_mass(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """For mass messaging: deliver one chunk of a job (idempotent per job and recipient)."""
        job, recipients = mass.check_job(params.get("job")), mass.check_recipients(params.get("recipient_ids"))
        return write(lambda s: mass.do_deliver(s, job, recipients))

    def block(blocked: bool) -> Method:
        def change(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
            me = user_of(caller)
            return write(lambda s: moderation.do_set_block(s, me, params.get("conversation_id"), blocked=blocked))

        return change

    def forward(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        message_id = params.get("message_id")
        if params.get("conversation_id") is not None:
            if params.get("recipients") is not None:
                raise validation("Forward to a conversation or to recipients, not both.", field="recipients")
            return write(
                lambda s: {"message": actions.do_forward_to_conversation(s, me, message_id, params["conversation_id"])}
            )
        source = read(lambda s: actions.access_forwardable(s, me, message_id))
        return start(me, params, source)

    def mark_read(caller: Caller | None, params: dict[str, Any]) -> dict[str, int]:
        me = user_of(caller)
        return write(lambda s: actions.do_mark_read(s, me, params.get("conversation_id"), params.get("message_id")))

    def mark_unread(caller: Caller | None, params: dict[str, Any]) -> dict[str, int]:
        me = user_of(caller)
        return write(lambda s: actions.do_mark_unread(s, me, params.get("conversation_id"), params.get("message_id")))

    def unread_total(caller: Caller | None, params: dict[str, Any]) -> dict[str, int]:
        me = user_of(caller)
        return {"unread_total": read(lambda s: actions.unread_total(s, me))}

    def participants(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return read(lambda s: membership.list_participants(s, me, params.get("conversation_id")))

    def add_participants(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        user_ids = [u for u in membership.check_user_ids(params.get("user_ids")) if u != me]
        # Look before asking the directory: strangers learn nothing about the conversation.
        read(lambda s: membership.check_may(s, me, params.get("conversation_id"), "add_participants"))
        users = directory.users(user_ids)
        missing = [u for u in user_ids if u not in users]
        if missing:
            raise AppError("not_found", "No such user.", {"ids": missing})
        check_contacts(directory, me, user_ids, "group")
        return write(
            lambda s: membership.do_add_participants(s, me, params.get("conversation_id"), list(users.values()))
        )

    def remove_participant(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        user_id = params.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise validation("user_id is required.", field="user_id")
        return write(lambda s: membership.do_remove_participant(s, me, params.get("conversation_id"), user_id))

    def leave(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return write(lambda s: membership.do_leave(s, me, params.get("conversation_id")))

    def rename(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return write(lambda s: membership.do_rename(s, me, params.get("conversation_id"), params.get("name")))

    def status_change(action: str) -> Method:
        def change(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
            me = user_of(caller)
            return write(lambda s: membership.do_set_status(s, me, params.get("conversation_id"), action))

        return change

    return {
        "conversations.preview": preview,
        "conversations.create": create,
        "conversations.list": list_conversations,
        "conversations.get": get,
        "conversations.rename": rename,
        "conversations.close": status_change("close"),
        "conversations.reopen": status_change("reopen"),
        "conversations.delete": status_change("delete"),
        "conversations.restore": status_change("restore"),
        "conversations.leave": leave,
        "participants.list": participants,
        "participants.add": add_participants,
        "participants.remove": remove_participant,
        "messages.send": send,
        "attachments.access": attachment_access,
        "messages.list": history,
        "messages.edit": edit,
        "messages.delete": delete,
        "conversations.block": block(True),
        "conversations.unblock": block(False),
        "moderation.report_target": report_target,
        "moderation.grant": grant,
        "moderation.revoke": revoke,
        "moderation.describe": describe,
        "mass.deliver": deliver_mass,
        "messages.forward": forward,
        "read.mark": mark_read,
        "read.unmark": mark_unread,
        "unread.total": unread_total,
        **search_methods(settings),
    }

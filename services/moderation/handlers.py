"""RPC entry points and event consumers of the moderation service.

A report is made here, and the conversations service lets its staff member in: at once over
RPC (so they can open it as soon as they are told), and again when it hears
`moderation.report.*` (idempotent), so a crash between the two loses nothing. Closing a
report ends that access the same two ways.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

from kombu import Connection as AmqpConnection
from sqlalchemy import Connection, text

from services.moderation import domain, reports, safeguarding
from shared.bus import ConsumerSpec, consumer_queue, declare_consumer_queue
from shared.config import Settings
from shared.cursor import Cursors
from shared.db import transaction
from shared.errors import AppError, validation
from shared.events import Envelope
from shared.outbox import claim_event
from shared.rpc import Caller, Method, RpcClient, user_of

log = logging.getLogger(__name__)
T = TypeVar("T")
CONVERSATION_EVENTS = "moderation.conversation-events"
BINDINGS = ("conversations.moderation.recorded",)  # and message events while lists exist: see follow_messages
LISTS_TTL_SECONDS = 1.0
PEOPLE_TTL_SECONDS = 300.0


class Directory:
    """What moderation asks the directory: people, the staff a reporter may choose, an admin's organisations."""

    def __init__(self, settings: Settings) -> None:
        self.rpc = RpcClient(settings)
        self._people: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def person(self, user_id: str, *, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            cached = self._people.get(user_id)
        if cached is not None and not fresh and now - cached[0] < PEOPLE_TTL_SECONDS:
            return cached[1]
        users = self.rpc.call("directory", "users.get", {"ids": [user_id]})["users"]
        if not users:
            raise AppError("unauthenticated", "Your account is not in the roster.")
        with self._lock:
            self._people[user_id] = (now, users[0])
        return users[0]

    def people(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return {u["id"]: u for u in self.rpc.call("directory", "users.get", {"ids": ids})["users"]}

    def report_staff(self, reporter_id: str, exclude: list[str]) -> list[dict[str, Any]]:
        return self.rpc.call("directory", "staff.report_recipients", {"exclude": exclude}, caller=reporter_id)["items"]

    def admins_covering(self, org_id: str) -> list[dict[str, Any]]:
        return self.rpc.call("directory", "staff.admins_covering", {"org_id": org_id})["items"]

    def scope(self, admin_id: str) -> list[str]:
        return self.rpc.call("directory", "admins.scope", {}, caller=admin_id)["org_ids"]


def access(conversations: RpcClient, report: dict[str, Any], method: str) -> None:
    """Grant (or revoke) each recipient's access now; the conversations service's consumer does the same
    when it hears of the report, so a failure here only delays it."""
    for person in report["recipients"]:
        params = {"report_id": report["id"], "conversation_id": report["conversation_id"], "user_id": person["user_id"]}
        try:
            conversations.call("conversations", method, params)
        except AppError as exc:
            log.warning("report %s: %s for %s waits for the event (%s)", report["id"], method, person["user_id"], exc)


def actor(person: dict[str, Any]) -> dict[str, Any]:
    return {"id": person["id"], "name": person["name"], "role": person["role"]}


class Lists:
    """Every organisation's safeguarding list, compiled, re-read at most every LISTS_TTL_SECONDS.

    One per process (`lists_for`), so a change made through this process applies to the very
    next message; one made through another process, within LISTS_TTL_SECONDS.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._read_at = -LISTS_TTL_SECONDS
        self._lists: dict[str, tuple[safeguarding.Matcher, list[str]]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = -LISTS_TTL_SECONDS

    def current(self) -> dict[str, tuple[safeguarding.Matcher, list[str]]]:
        with self._lock:
            if time.monotonic() - self._read_at < LISTS_TTL_SECONDS:
                return self._lists
        read_at = time.monotonic()
        with transaction(self.url) as session:
            rows = session.execute(text("SELECT org_id, phrases, lead_ids FROM safeguarding_lists")).all()
        compiled = {r.org_id: (safeguarding.compile_phrases(r.phrases), list(r.lead_ids)) for r in rows if r.phrases}
        with self._lock:
            self._lists, self._read_at = compiled, read_at
        return compiled


_LISTS: dict[str, Lists] = {}


def lists_for(url: str) -> Lists:
    return _LISTS.setdefault(url, Lists(url))


# Messages are only delivered to moderation while some organisation keeps a list: a school
# that uses no safeguarding list costs nothing per message. Changes to the binding take turns
# (an advisory lock held with the change), so the last change decides it.
MESSAGE_EVENTS = ("conversations.message.created", "conversations.message.updated")
_FOLLOW_LOCK = zlib.crc32(b"moderation:follow-messages")


def follow_messages(session: Connection, settings: Settings) -> bool:
    """Bind (or unbind) moderation's queue to message events as the lists now in `session` need."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _FOLLOW_LOCK})
    wanted = session.execute(text("SELECT EXISTS (SELECT 1 FROM safeguarding_lists WHERE phrases <> '{}')")).scalar()
    queue = settings.consumer_queue(CONVERSATION_EVENTS)
    with AmqpConnection(settings.amqp_url) as conn:
        channel = conn.channel()
        declare_consumer_queue(channel, settings, consumer_queue(settings, CONVERSATION_EVENTS, BINDINGS))
        for key in MESSAGE_EVENTS:
            if wanted:
                channel.queue_bind(queue=queue, exchange=settings.exchange, routing_key=key)
            else:
                channel.queue_unbind(queue=queue, exchange=settings.exchange, routing_key=key)
    return bool(wanted)


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("moderation")
    cursors = Cursors(settings.cursor_secret)
    directory = Directory(settings)
    conversations = RpcClient(settings)

    def run(work: Callable[[Connection], T]) -> T:
        with transaction(url) as session:
            return work(session)

    def target_of(me: str, params: dict[str, Any]) -> dict[str, Any]:
        message_id, conversation_id = domain.check_target(params.get("message_id"), params.get("conversation_id"))
        return conversations.call(
            "conversations",
            "moderation.report_target",
            {"message_id": message_id, "conversation_id": conversation_id},
            caller=me,
        )

    def recipients(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        """The teachers and administrators the caller may send this report to."""
        me = user_of(caller)
        target = target_of(me, params)
        return {"items": directory.report_staff(me, [target["sender_id"]] if target["sender_id"] else [])}

    def create(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        domain.check_target(params.get("message_id"), params.get("conversation_id"))
        reason = domain.check_reason(params.get("reason"))
        to_user = domain.check_id(params.get("to_user_id"), "to_user_id")
        target = target_of(me, params)
        staff = directory.report_staff(me, [target["sender_id"]] if target["sender_id"] else [])
        chosen = next((s for s in staff if s["user_id"] == to_user), None)
        if chosen is None:
            raise validation("Choose one of the teachers or administrators offered.", field="to_user_id")
        reporter = directory.person(me, fresh=True)
        report = run(
            lambda s: reports.do_create(
                s,
                kind="person",
                reporter=actor(reporter),
                target=target,
                recipients=[chosen],
                reason=reason,
                org_ids=list(reporter.get("org_ids") or []),
            )
        )
        assert report is not None
        access(conversations, report, "moderation.grant")
        return report

    def get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        return run(lambda s: reports.public(reports.access_report(s, me, params.get("report_id"))))

    def listing(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        state = domain.check_state_filter(params.get("state"))
        return run(lambda s: reports.list_reports(s, cursors, me, state, params.get("cursor"), params.get("limit")))

    def closing(state: str) -> Method:
        def close(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
            me = user_of(caller)
            note = domain.check_note(params.get("note")) if state == "resolved" else ""
            person = actor(directory.person(me))
            report = run(lambda s: reports.do_close(s, person, params.get("report_id"), state, note))
            access(conversations, report, "moderation.revoke")
            return report

        return close

    def audit_list(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        filters = domain.audit_filters(params)
        scope = directory.scope(me)
        return run(
            lambda s: reports.list_audit(s, cursors, me, scope, filters, params.get("cursor"), params.get("limit"))
        )

    def governed(me: str, org_id: Any) -> str:
        org = domain.check_id(org_id, "org_id")
        if org not in directory.scope(me):
            raise AppError("forbidden", "You can only manage safeguarding in your own organisations.")
        return org

    def safeguarding_get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        org = governed(me, params.get("org_id"))
        row = run(
            lambda s: s.execute(
                text("SELECT phrases, lead_ids, updated_by, updated_at FROM safeguarding_lists WHERE org_id = :org"),
                {"org": org},
            ).first()
        )
        return _list_view(org, row)

    def safeguarding_set(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        org = governed(me, params.get("org_id"))
        phrases = safeguarding.check_phrases(params.get("phrases"))
        raw_leads = params.get("lead_ids", [])
        if not isinstance(raw_leads, list) or len(raw_leads) > 50 or not all(isinstance(u, str) for u in raw_leads):
            raise validation("lead_ids must be a list of at most 50 user ids.", field="lead_ids")
        leads = list(dict.fromkeys(raw_leads))
        admins = {a["user_id"] for a in directory.admins_covering(org)}
        strangers = [u for u in leads if u not in admins]
        if strangers:
            raise validation(
                "Safeguarding leads must be administrators of this organisation.", field="lead_ids", ids=strangers
            )
        person = actor(directory.person(me))

        def save(session: Connection) -> Any:
            row = session.execute(
                text(
                    """
                    INSERT INTO safeguarding_lists (org_id, phrases, lead_ids, updated_by) VALUES (:org, :p, :l, :me)
                    ON CONFLICT (org_id) DO UPDATE SET phrases = excluded.phrases, lead_ids = excluded.lead_ids,
                        updated_by = excluded.updated_by, updated_at = now()
                    RETURNING phrases, lead_ids, updated_by, updated_at
                    """
                ),
                {"org": org, "p": phrases, "l": leads, "me": me},
            ).one()
            follow_messages(session, settings)
            reports.audit(
                session,
                "safeguarding.changed",
                actor=person,
                report_ids=[],
                conversation_id=None,
                org_ids=[org],
                details={"org_id": org, "phrase_count": len(phrases), "lead_ids": leads},
            )
            return row

        row = run(save)
        lists_for(url).invalidate()
        return _list_view(org, row)

    return {
        "reports.recipients": recipients,
        "reports.create": create,
        "reports.list": listing,
        "reports.get": get,
        "reports.withdraw": closing("withdrawn"),
        "reports.resolve": closing("resolved"),
        "audit.list": audit_list,
        "safeguarding.get": safeguarding_get,
        "safeguarding.set": safeguarding_set,
    }


def _list_view(org_id: str, row: Any) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "phrases": list(row.phrases) if row else [],
        "lead_ids": list(row.lead_ids) if row else [],
        "updated_by": row.updated_by if row else None,
        "updated_at": domain.iso(row.updated_at) if row else None,
    }


# Events -----------------------------------------------------------------------------------------


def consumers(settings: Settings) -> list[ConsumerSpec]:
    url = settings.database_url("moderation")
    directory = Directory(settings)
    conversations = RpcClient(settings)
    lists = lists_for(url)

    def on_recorded(envelope: Envelope) -> None:
        """A moderator action in conversations, into the audit log (once per event)."""
        data = envelope.data
        person = directory.people([data["actor_id"]]).get(data["actor_id"], {})
        with transaction(url) as session:
            reports.audit(
                session,
                data["action"],
                actor={"id": data["actor_id"], "name": data["actor_name"], "role": data["actor_role"]},
                report_ids=list(data.get("report_ids") or []),
                conversation_id=data["conversation_id"],
                message_id=data.get("message_id"),
                subject_id=data.get("user_id"),
                org_ids=list(person.get("org_ids") or []),
                details={
                    "conversation_type": data.get("conversation_type"),
                    "through_report": bool(data.get("through_report")),
                },
                event_id=envelope.id,
            )

    def on_message(envelope: Envelope) -> None:
        """A message matching a safeguarding list reports itself to that school's leads; the sender is not told."""
        message = envelope.data["message"]
        body = message.get("body") or ""
        compiled = lists.current()
        if not body or not compiled:
            return
        sender = directory.person(message["sender"]["id"])
        hits = {org: compiled[org][0].find(body) for org in sender.get("org_ids") or [] if org in compiled}
        found = {org: compiled[org][1] for org, found_here in hits.items() if found_here}
        if not found:
            return
        matched = list(dict.fromkeys(p for phrases in hits.values() for p in phrases))
        staff: dict[str, dict[str, Any]] = {}
        for org, leads in found.items():
            chosen = directory.people(leads) if leads else {a["user_id"]: a for a in directory.admins_covering(org)}
            for uid, person in chosen.items():
                staff[uid] = {"user_id": uid, "name": person["name"], "role": person["role"]}
        staff.pop(sender["id"], None)
        if not staff:
            log.warning("message %s matched a safeguarding list with nobody to tell", message["id"])
            return
        described = conversations.call(
            "conversations", "moderation.describe", {"conversation_id": envelope.data["conversation_id"]}
        )
        target = {
            "conversation_id": envelope.data["conversation_id"],
            "conversation_type": described["type"],
            "message_id": message["id"],
            "sender_id": sender["id"],
            "sender_name": sender["name"],
        }
        with transaction(url) as session:
            if not claim_event(session, CONVERSATION_EVENTS, envelope.id):
                return
            report = reports.do_create(
                session,
                kind="safeguarding",
                reporter=None,
                target=target,
                recipients=sorted(staff.values(), key=lambda s: (s["name"], s["user_id"])),
                reason="Matched the safeguarding list.",
                org_ids=sorted(found),
                matched=matched,
            )
        if report is not None:
            access(conversations, report, "moderation.grant")

    def on_event(envelope: Envelope) -> None:
        if envelope.type == "conversations.moderation.recorded":
            on_recorded(envelope)
        elif envelope.data.get("message", {}).get("deleted") is None:
            on_message(envelope)

    def on_ready() -> None:
        with transaction(url) as session:
            follow_messages(session, settings)

    return [
        ConsumerSpec(CONVERSATION_EVENTS, BINDINGS, on_event, prefetch=settings.consumer_prefetch, on_ready=on_ready)
    ]

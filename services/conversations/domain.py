"""Conversation rules as plain functions over plain data: no I/O here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from linkify_it import LinkifyIt

from shared.errors import AppError, validation

MAX_BODY_CHARS = 10_000
PREVIEW_CHARS = 120
MAX_CLIENT_ID_CHARS = 100

_linkify = LinkifyIt()


def check_body(body: Any, *, has_attachments: bool = False) -> str:
    """The message text to store; refuses wrong types, over-long text and empty messages."""
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise validation("The message must be text.", field="body")
    if len(body) > MAX_BODY_CHARS:
        raise validation(
            f"A message can be at most {MAX_BODY_CHARS:,} characters.", field="body", max_length=MAX_BODY_CHARS
        )
    if not body.strip() and not has_attachments:
        raise validation("Write a message or attach a file.", field="body")
    return body


def check_client_id(client_id: Any) -> str | None:
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not client_id or len(client_id) > MAX_CLIENT_ID_CHARS:
        raise validation(f"client_id must be text of 1 to {MAX_CLIENT_ID_CHARS} characters.", field="client_id")
    return client_id


def request_hash(*parts: Any) -> str:
    """A fingerprint of what a client asked for, to tell a retry from a reused `client_id`."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def idempotent_replay(stored_hash: str | None, new_hash: str) -> None:
    """A retried request must be the same request; refuse a `client_id` reused for something else."""
    if stored_hash is not None and stored_hash != new_hash:
        raise AppError(
            "idempotency_conflict",
            "This client_id was already used for a different message.",
            {"field": "client_id"},
        )


def find_links(body: str) -> list[dict[str, Any]]:
    """Web links in the text, with the URL to open and where the link sits in the text."""
    matches = _linkify.match(body) or []
    return [
        {"url": m.url, "text": m.text, "start": m.index, "end": m.last_index}
        for m in matches
        if m.schema in ("", "http:", "https:", "//")
    ]


def preview(body: str) -> str:
    """One line of at most PREVIEW_CHARS characters for the conversation list."""
    line = " ".join(body.split())
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1].rstrip() + "…"


def pair_key(a: str, b: str) -> str:
    """The one key of the 1:1 conversation between two people, whoever starts it."""
    first, second = sorted((a, b))
    return json.dumps([first, second], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Recipient:
    type: str
    id: str


def parse_recipients(raw: Any) -> list[Recipient]:
    """Recipients as typed pairs, duplicates refused; refuses empty or malformed lists."""
    if not isinstance(raw, list) or not raw:
        raise validation("Choose at least one recipient.", field="recipients")
    if len(raw) > 1000:
        raise validation("Too many recipients in one request.", field="recipients")
    seen: set[tuple[str, str]] = set()
    result: list[Recipient] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"type", "id"}:
            raise validation("Each recipient is {type, id}.", field=f"recipients[{i}]")
        kind, ident = item.get("type"), item.get("id")
        if kind not in ("user", "course", "project") or not isinstance(ident, str) or not ident:
            raise validation("Each recipient is a user, course or project with an id.", field=f"recipients[{i}]")
        if (kind, ident) in seen:
            raise validation("A recipient is listed twice.", field=f"recipients[{i}]", id=ident)
        seen.add((kind, ident))
        result.append(Recipient(kind, ident))
    return result


def display_name(explicit: str | None, other_names: list[str], other_count: int) -> str:
    """An explicit name, else the other participants' names ("Ann Lee, Bo Kim and 3 others")."""
    if explicit:
        return explicit
    if not other_names:
        return "Only you"
    shown = other_names[:3]
    rest = other_count - len(shown)
    if rest > 0:
        return f"{', '.join(shown)} and {rest} other{'s' if rest != 1 else ''}"
    if len(shown) == 1:
        return shown[0]
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


def unread(last_seq: int, last_read_seq: int) -> int:
    """Messages after the reader's mark; sending moves the sender's mark, so own messages never count."""
    return max(0, last_seq - last_read_seq)


# The 300 rule (the seed's decision matrix, section 7.3) ---------------------------------------

MAX_RECIPIENTS = 300
GROUP_KINDS = ("course", "project")


@dataclass(frozen=True, slots=True)
class Group:
    """A course or project chosen as a recipient, with how many people it reaches (caller excluded)."""

    kind: str
    id: str
    size: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What the client may offer before sending, and what a send would do or get."""

    unique_count: int
    modes: tuple[str, ...]
    outcome: str  # direct | choice | course_conversation | project_conversation | refused
    error: AppError | None
    lone_group: bool = False  # one course or project and nobody else: "group" means its own conversation

    def to_dict(self) -> dict[str, Any]:
        return {
            "unique_count": self.unique_count,
            "modes": list(self.modes),
            "outcome": self.outcome,
            "error": self.error.to_dict() if self.error else None,
        }


def too_many(unique_count: int) -> AppError:
    return AppError(
        "too_many_recipients",
        f"You can't send to more than {MAX_RECIPIENTS} people at once. "
        "Write in the course or project conversation instead.",
        {"unique_count": unique_count, "limit": MAX_RECIPIENTS},
    )


def decide(people: int, groups: list[Group], unique_count: int) -> Decision:
    """The seed's decision matrix.

    `people` is the number of individual recipients (not the sender), `groups` the chosen
    courses and projects, `unique_count` everyone they reach together, each person once.
    """
    choice = ("group", "individual")
    over = too_many(unique_count) if unique_count > MAX_RECIPIENTS else None
    if unique_count == 0:
        error = validation("Choose at least one recipient other than yourself.", field="recipients")
        return Decision(0, (), "refused", error)
    if not groups:
        if people == 1:
            return Decision(unique_count, (), "direct", None)
        return Decision(unique_count, choice, "choice", over)
    large = [g for g in groups if g.size > MAX_RECIPIENTS]
    if large and (people or len(groups) > 1):
        return Decision(unique_count, (), "refused", too_many(unique_count))
    if large:
        return Decision(unique_count, (), f"{large[0].kind}_conversation", None, lone_group=True)
    # Every group is small: the sender chooses; a combined audience over the limit fails on send.
    return Decision(unique_count, choice, "choice", over, lone_group=len(groups) == 1 and not people)


def choose_mode(decision: Decision, mode: str | None) -> str:
    """How a send goes out: direct, group, individual or the group's own conversation; raises the rule's error."""
    if decision.error is not None:
        raise decision.error
    if decision.outcome == "direct":
        return "direct"
    if decision.outcome in ("course_conversation", "project_conversation"):
        return "group_conversation"
    if mode not in decision.modes:
        raise validation("Choose a group conversation or individual messages.", field="mode")
    if mode == "group" and decision.lone_group:
        return "group_conversation"
    return mode


# Who may do what ----------------------------------------------------------------------------

STAFF_ROLES = frozenset({"teacher", "admin"})
CLOSABLE = frozenset({"group", "course", "project"})


def allowed_actions(
    *, type_: str, status: str, role: str, is_creator: bool, through_report: bool = False, blocked: bool = False
) -> list[str]:
    """The actions a participant may take in a conversation, for the client's menus (`can`).

    Staff reading through a report (F23) may read, write, delete messages, close, delete and
    restore, but take no part in the group's own life (rename, add, remove, leave).
    """
    actions = ["read", "mark_unread", "view_participants"] + (["search"] if type_ != "mass" else [])
    is_staff = role in STAFF_ROLES
    writable = status == "open" and type_ not in ("mass",)
    if writable:
        actions += ["send"]
    if is_staff and type_ != "mass":
        actions += ["delete_messages"]
    if type_ == "group" and status == "open" and not through_report:
        actions += ["rename", "add_participants", "leave"]
        if is_staff:
            actions += ["remove_participants"]
    if type_ in CLOSABLE and (is_staff or (type_ == "group" and is_creator and not through_report)):
        actions += ["close"] if status == "open" else ["reopen"] if status == "closed" else []
    if type_ in ("course", "project") and is_staff:
        actions += ["delete"] if status != "deleted" else ["restore"]
    if type_ == "group" and not through_report:
        actions += ["report"]  # the conversation itself; any message of someone else can be reported
    if type_ == "direct" and role == "student" and not through_report:
        actions += ["unblock"] if blocked else ["block"]
    return actions


def check_action(actions: list[str], action: str) -> None:
    """Refuse an action the caller may not take here, naming it for the client."""
    if action not in actions:
        raise AppError("not_allowed", "You can't do that in this conversation.", {"action": action})


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise validation("Give the conversation a name.", field="name")
    name = " ".join(name.split())
    if len(name) > 100:
        raise validation("A conversation name can be at most 100 characters.", field="name")
    return name


def members_unavailable(names: list[str], user_ids: list[str]) -> dict[str, Any]:
    """The notice a sender gets when some members of a course cannot receive messages."""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    count = f"{len(names)} member{'s' if len(names) != 1 else ''}"
    return {
        "code": "members_unavailable",
        "message": f"{count} cannot receive messages: {shown}.",
        "user_ids": user_ids,
    }

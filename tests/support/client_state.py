"""A client's state as a real client keeps it, built from the API and kept right by events alone.

This is the reference for how a client applies pushed events and `/sync` changes (the web
client does the same): state fetched once, then changed only by what the server sends.
The state: the conversation list as `GET /conversations` shows it, and for the
conversations the client has open, their messages and participants.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import requests


def _all_pages(http: requests.Session, url: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = http.get(url, params={**params, "cursor": cursor} if cursor else params, timeout=10)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


@dataclass
class ClientState:
    me: str
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    unread_total: int = 0
    messages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # open conversations only
    participants: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def fetch(cls, http: requests.Session, api: str, me: str, *, open_all: bool = True) -> ClientState:
        """The state as a client that has just loaded everything sees it."""
        state = cls(me=me)
        for view in _all_pages(http, f"{api}/conversations", limit=100):
            state.conversations[view["id"]] = view
        me_view = http.get(f"{api}/me", timeout=10)
        me_view.raise_for_status()
        state.unread_total = me_view.json()["unread_total"]
        if open_all:
            for cid in state.conversations:
                state.open(http, api, cid)
        return state

    def open(self, http: requests.Session, api: str, cid: str) -> None:
        """Load one conversation's history and participants, as opening it in the panel does."""
        self.messages[cid] = {m["id"]: m for m in _all_pages(http, f"{api}/conversations/{cid}/messages", limit=100)}
        self.participants[cid] = {p["user_id"]: p for p in _all_pages(http, f"{api}/conversations/{cid}/participants")}

    def copy(self) -> ClientState:
        return copy.deepcopy(self)

    def comparable(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "unread_total": self.unread_total,
            "messages": self.messages,
            "participants": self.participants,
        }

    # Applying events ----------------------------------------------------------------------

    def _merge(self, cid: str, part: dict[str, Any] | None) -> None:
        if part and cid in self.conversations:
            self.conversations[cid].update(part)

    def _set_unread(self, cid: str, count: int) -> None:
        view = self.conversations[cid]
        self.unread_total += count - view["unread_count"]
        view["unread_count"] = count

    def apply(self, event: str, payload: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + event.replace(".", "_"), None)
        if handler is not None:
            handler(payload)

    def apply_all(self, changes: list[dict[str, Any]]) -> None:
        """Apply `/sync` changes (each names its event) in order."""
        for change in changes:
            self.apply(change["event"], change)

    def _on_conversation_created(self, p: dict[str, Any]) -> None:
        view = p["conversation"]
        known = self.conversations.get(view["id"])
        if known is None:
            self.conversations[view["id"]] = {**view, "unread_count": 0}
            self._set_unread(view["id"], view.get("unread_count", 0))
        else:
            self._merge(view["id"], {k: v for k, v in view.items() if k != "unread_count"})

    def _on_conversation_updated(self, p: dict[str, Any]) -> None:
        self._merge(p["conversation_id"], p.get("conversation"))

    def _on_participant_added(self, p: dict[str, Any]) -> None:
        cid, person = p["conversation_id"], p["participant"]
        if person["user_id"] == self.me and cid not in self.conversations:
            # Joined: the event carries the whole conversation as this user sees it.
            self.conversations[cid] = {**p["conversation"], "unread_count": 0}
            self._set_unread(cid, p["conversation"]["unread_count"])
            return
        self._merge(cid, p.get("conversation"))
        if cid in self.participants:
            self.participants[cid][person["user_id"]] = person

    def _on_participant_removed(self, p: dict[str, Any]) -> None:
        cid = p["conversation_id"]
        if p["user_id"] == self.me:
            gone = self.conversations.pop(cid, None)
            if gone is not None:
                self.unread_total -= gone["unread_count"]
            self.messages.pop(cid, None)
            self.participants.pop(cid, None)
            return
        self._merge(cid, p.get("conversation"))
        if cid in self.participants:
            self.participants[cid].pop(p["user_id"], None)

    def _on_message_created(self, p: dict[str, Any]) -> None:
        message, cid = p["message"], p["conversation_id"]
        view = self.conversations.get(cid)
        if view is None:
            return
        if message["seq"] > view["last_seq"]:  # not counted yet (a replay is)
            if message["sender"]["id"] == self.me:
                view["last_read_seq"] = message["seq"]
                self._set_unread(cid, 0)
            else:
                self._set_unread(cid, view["unread_count"] + 1)
        self._merge(cid, p.get("conversation"))
        if cid in self.messages:
            self.messages[cid][message["id"]] = message

    def _on_message_updated(self, p: dict[str, Any]) -> None:
        message, cid = p["message"], p["conversation_id"]
        self._merge(cid, p.get("conversation"))
        if cid in self.messages:
            self.messages[cid][message["id"]] = message

    def _on_message_deleted(self, p: dict[str, Any]) -> None:
        message, cid = p["message"], p["conversation_id"]
        view = self.conversations.get(cid)
        if view is None:
            return
        known = self.messages.get(cid, {}).get(message["id"])
        already = known is not None and known["deleted"] is not None
        if not already and message["seq"] > view["last_read_seq"]:
            self._set_unread(cid, max(view["unread_count"] - 1, 0))
        self._merge(cid, p.get("conversation"))
        if cid in self.messages:
            self.messages[cid][message["id"]] = message

    def _on_unread_updated(self, p: dict[str, Any]) -> None:
        cid = p["conversation_id"]
        if cid in self.conversations:
            self.conversations[cid]["unread_count"] = p["unread_count"]
            self.conversations[cid]["last_read_seq"] = p["last_read_seq"]
        self.unread_total = p["unread_total"]

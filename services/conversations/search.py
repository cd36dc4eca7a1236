"""Message search (F21, F22): within one conversation, and across all of the caller's.

What is searched: message text, link URLs and attachment names, through the `messages.search`
tsvector PostgreSQL computes itself (migration 0003: configuration `im_search` = `simple` +
`unaccent`, no stemming, because a school chat is multilingual). The last word of a query
also matches as a prefix ("hom" finds "homework").

What is not (the seed's limitations, section 5.4):
- emojis: a query with no letter or digit is refused; emojis beside words are ignored;
- mass-message conversations (type `mass`): never in results, and refused as a scope;
- people's names: only message content is indexed, never sender or participant names;
- weekly course updates: they do not exist in this system, so there is nothing to exclude.

Snippets are HTML: the indexed text is HTML-escaped before PostgreSQL parses it, so
`ts_headline` highlights escaped text and the only markup in a snippet is `<mark>…</mark>`.
A client may insert a snippet as HTML; it must never do so with `body`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from services.conversations.actions import access_participation, check_limit
from services.conversations.views import CONVERSATION_SELECT, MESSAGE_SELECT, conversation_view, message_view
from shared.config import Settings
from shared.cursor import Cursors
from shared.db import transaction
from shared.errors import AppError, validation
from shared.rpc import Caller, Method

MAX_QUERY_CHARS = 200
# A one-letter prefix matches a large part of every vocabulary: the last word must have two.
MIN_PREFIX_CHARS = 2
# Across conversations, look at recent messages first and widen by these steps (hours), so a
# common word is answered from the last hours instead of from every match ever written.
WINDOW_HOURS = (1, 4, 16, 64, 256, 1024, 4096)
# Below this many messages in the caller's conversations one query over all of them is cheap.
WINDOWED_ABOVE = 20_000
HEADLINE_OPTIONS = (
    'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=10, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)

_INVALID_CURSOR = "This page link is not valid. Reload the list."

# Pure rules ---------------------------------------------------------------------------------


def check_query(raw: Any) -> str:
    """The query text to search for; refuses non-text, blank, over-long and word-less queries."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise validation("The search must be text.", field="q")
    query = " ".join(raw.split())
    if not query:
        raise validation("Type something to search for.", field="q")
    if len(query) > MAX_QUERY_CHARS:
        raise validation(
            f"A search can be at most {MAX_QUERY_CHARS} characters.", field="q", max_length=MAX_QUERY_CHARS
        )
    # Letters and digits of any script are words; emojis, symbols and punctuation are not.
    if not any(ch.isalnum() for ch in query):
        raise validation("Search for words or numbers: emojis and symbols cannot be searched.", field="q")
    return query


def cursor_kind(scope: str, query: str) -> str:
    """Cursors are bound to the scope and the query: a page link of one search is no use in another."""
    return f"search:{scope}:{hashlib.sha256(query.encode()).hexdigest()[:16]}"


def seq_position(position: list[Any] | None) -> int | None:
    if position is None:
        return None
    try:
        (seq,) = position
        return int(seq)
    except (TypeError, ValueError):
        raise AppError("invalid_cursor", _INVALID_CURSOR) from None


def activity_position(position: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    if position is None:
        return None
    try:
        at, conversation_id = position
        return datetime.fromisoformat(at), uuid.UUID(conversation_id)
    except (TypeError, ValueError, AttributeError):
        raise AppError("invalid_cursor", _INVALID_CURSOR) from None


def windows(volume: int, anchor: datetime) -> list[datetime | None]:
    """The lower time bounds to try in turn (None: no bound); only one, unbounded, for a small volume."""
    if volume <= WINDOWED_ABOVE:
        return [None]
    return [anchor - timedelta(hours=h) for h in WINDOW_HOURS] + [None]


# Queries ------------------------------------------------------------------------------------

# The query goes through the same parser, unaccent and escaping as the documents; every word
# must match; the last word (the last position) also matches as a prefix. Quotes and
# backslashes in lexemes are escaped for tsquery input.
_TSQUERY = text(
    r"""
    SELECT CAST(string_agg(
               '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''''
               || CASE WHEN positions @> ARRAY[last] AND char_length(lexeme) >= :min_prefix THEN ':*' ELSE '' END,
               ' & ') AS tsquery)::text
    FROM (SELECT lexeme, positions, max(positions[cardinality(positions)]) OVER () AS last
          FROM unnest(to_tsvector('public.im_search', public.im_search_escape(:q)))) AS words
    """
)

# How much there is to search, and when the caller's conversations last saw a message.
_MY_VOLUME = text(
    """
    SELECT count(*) AS conversations, coalesce(sum(c.last_seq), 0) AS messages, max(c.last_activity_at) AS latest
    FROM participants me JOIN conversations c ON c.id = me.conversation_id
    WHERE me.user_id = :me AND c.type <> 'mass'
    """
)

_IN_CONVERSATION = text(
    """
    SELECT m.id, m.seq FROM messages m
    WHERE m.conversation_id = :cid AND m.search @@ CAST(:tsq AS tsquery) AND m.deleted IS NULL AND m.seq < :before
    ORDER BY m.seq DESC LIMIT :n
    """
)


def _newest_per_conversation(*, bounded: bool, after_cursor: bool) -> Any:
    """Each of the caller's conversations once, with its newest match; newest first.

    Membership is a subquery, not an array of ids: planning `= ANY(<2,000 ids>)` costs 4 ms a
    statement (the planner estimates each element), the semi-join half a millisecond.
    """
    since = " AND m.created_at >= :since" if bounded else ""
    before = " WHERE (created_at, conversation_id) < (:at, :after_id)" if after_cursor else ""
    return text(
        f"""
        SELECT conversation_id, id, created_at FROM (
            SELECT DISTINCT ON (m.conversation_id) m.conversation_id, m.id, m.created_at
            FROM messages m
            WHERE m.conversation_id IN (
                    SELECT me.conversation_id FROM participants me JOIN conversations c ON c.id = me.conversation_id
                    WHERE me.user_id = :me AND c.type <> 'mass')
                AND m.search @@ CAST(:tsq AS tsquery) AND m.deleted IS NULL{since}
            ORDER BY m.conversation_id, m.seq DESC
        ) AS newest{before}
        ORDER BY created_at DESC, conversation_id DESC
        LIMIT :n
        """
    )


_NEWEST = {(b, c): _newest_per_conversation(bounded=b, after_cursor=c) for b in (False, True) for c in (False, True)}

_WITH_SNIPPETS = text(
    f"""
    SELECT v.*, ts_headline('public.im_search', public.im_search_text(s.body, s.attachments),
                            CAST(:tsq AS tsquery), :options) AS snippet
    FROM ({MESSAGE_SELECT} WHERE m.id = ANY(:ids)) AS v JOIN messages s ON s.id = v.id
    WHERE s.deleted IS NULL
    """
)


def _tsquery(session: Connection, query: str) -> str | None:
    """The tsquery for a checked query; None when PostgreSQL finds no word in it."""
    # How many messages a word matches decides the plan (walk recent messages, or read the
    # GIN index): psycopg prepares statements it sees often, and a generic plan would not
    # know the word. Custom plans, for the rest of this transaction only.
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return session.execute(_TSQUERY, {"q": query, "min_prefix": MIN_PREFIX_CHARS}).scalar_one()


def _messages_with_snippets(session: Connection, tsq: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The message rows with their snippets, by id; one deleted since it matched is left out."""
    rows = session.execute(_WITH_SNIPPETS, {"ids": list(ids), "tsq": tsq, "options": HEADLINE_OPTIONS}).all()
    return {r.id: r for r in rows}


def _empty() -> dict[str, Any]:
    return {"items": [], "next_cursor": None}


def search_conversation(
    session: Connection, cursors: Cursors, caller_id: str, conversation_id: Any, q: Any, cursor: Any, limit: Any
) -> dict[str, Any]:
    """Messages of one conversation the caller takes part in that match `q`, newest first.

    Each item is a message view with a `snippet` (HTML, matches in <mark>). A conversation the
    caller does not take part in is `not_found`; a mass-message conversation `not_allowed`.
    """
    conversation = access_participation(session, caller_id, conversation_id)
    if conversation.type == "mass":
        raise AppError("not_allowed", "Mass messages cannot be searched.")
    query = check_query(q)
    limit = check_limit(limit)
    kind = cursor_kind(str(conversation.id), query)
    before = seq_position(cursors.decode(cursor, caller_id, kind))
    tsq = _tsquery(session, query)
    if tsq is None:
        return _empty()
    rows = session.execute(
        _IN_CONVERSATION,
        {
            "cid": conversation.id,
            "tsq": tsq,
            "before": before if before is not None else conversation.last_seq + 1,
            "n": limit + 1,
        },
    ).all()
    page = rows[:limit]
    found = _messages_with_snippets(session, tsq, [r.id for r in page])
    items = [{**message_view(found[r.id]), "snippet": found[r.id].snippet} for r in page if r.id in found]
    next_cursor = cursors.encode(caller_id, kind, [page[-1].seq]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def _newest_matches(
    session: Connection,
    caller_id: str,
    tsq: str,
    mine: Any,
    after: tuple[datetime, uuid.UUID] | None,
    n: int,
) -> list[Any]:
    """Up to `n` conversations with their newest match (older than `after`), newest first.

    For a common word the newest matches are recent: the query looks back an hour from the
    caller's latest activity, then wider, and stops at the first window holding `n`
    conversations. Correct at every step: a conversation with a match since `since` has its
    newest match there, and any other conversation's newest match is older than `since`, so
    it sorts after all of them.
    """
    params: dict[str, Any] = {"me": caller_id, "tsq": tsq, "n": n}
    anchor = mine.latest
    if after is not None:
        params["at"], params["after_id"] = after
        anchor = min(anchor, after[0])
    rows: list[Any] = []
    for since in windows(int(mine.messages), anchor):
        statement = _NEWEST[(since is not None, after is not None)]
        rows = session.execute(statement, {**params, "since": since}).all()
        if len(rows) >= n:
            break
    return rows


def search_all(
    session: Connection, cursors: Cursors, caller_id: str, q: Any, cursor: Any, limit: Any
) -> dict[str, Any]:
    """The caller's conversations with a message matching `q`, each once, newest match first.

    Each item: `conversation` (as in the list), `message` (its newest match) and `snippet`.
    """
    query = check_query(q)
    limit = check_limit(limit)
    kind = cursor_kind("all", query)
    after = activity_position(cursors.decode(cursor, caller_id, kind))
    tsq = _tsquery(session, query)
    if tsq is None:
        return _empty()
    mine = session.execute(_MY_VOLUME, {"me": caller_id}).one()
    if not mine.conversations:
        return _empty()
    rows = _newest_matches(session, caller_id, tsq, mine, after, limit + 1)
    page = rows[:limit]
    if not page:
        return _empty()
    messages = _messages_with_snippets(session, tsq, [r.id for r in page])
    conversations = {
        r.id: r
        for r in session.execute(
            text(CONVERSATION_SELECT + " WHERE me.user_id = :me AND c.id = ANY(:ids)"),
            {"me": caller_id, "ids": [r.conversation_id for r in page]},
        )
    }
    items = [
        {
            "conversation": conversation_view(conversations[r.conversation_id]),
            "message": message_view(messages[r.id]),
            "snippet": messages[r.id].snippet,
        }
        for r in page
        if r.id in messages and r.conversation_id in conversations
    ]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = cursors.encode(caller_id, kind, [last.created_at.isoformat(), str(last.conversation_id)])
    return {"items": items, "next_cursor": next_cursor}


# RPC ----------------------------------------------------------------------------------------


def _me(caller: Caller | None) -> str:
    if caller is None:
        raise AppError("unauthenticated", "Sign in to continue.")
    return caller.user_id


def search_methods(settings: Settings) -> dict[str, Method]:
    """`search.conversation` {conversation_id, q, cursor, limit} and `search.all` {q, cursor, limit}."""
    url = settings.database_url("conversations")
    cursors = Cursors(settings.cursor_secret)

    def in_conversation(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        with transaction(url) as session:
            return search_conversation(
                session,
                cursors,
                me,
                params.get("conversation_id"),
                params.get("q"),
                params.get("cursor"),
                params.get("limit"),
            )

    def everywhere(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = _me(caller)
        with transaction(url) as session:
            return search_all(session, cursors, me, params.get("q"), params.get("cursor"), params.get("limit"))

    return {"search.conversation": in_conversation, "search.all": everywhere}

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from services.conversations.actions import access_participation
from services.conversations.views import (
    CONVERSATION_SELECT,
    MESSAGE_SELECT,
    conversation_view,
    message_view,
)
from shared.config import Settings
from shared.cursor import Cursors, check_limit
from shared.db import transaction
from shared.errors import AppError, validation
from shared.rpc import Caller, Method, user_of

MAX_QUERY_CHARS = 200
# A short prefix matches a large part of any vocabulary (and defeats the planner's estimates):
# the last word matches as a prefix from three characters on.
MIN_PREFIX_CHARS = 3
# Across conversations (see `choose_plan`): reading this many matches from the GIN index is
# cheap (a few milliseconds); so is testing this many messages of the caller's one by one.
FEW_MATCHES = 3_000
SMALL_VOLUME = 20_000
# Otherwise look at recent messages first, widening by these steps (hours); past the last,
# reading every match costs no more than reading six weeks of everyone's messages.
WINDOW_HOURS = (1, 4, 16, 64, 256, 1024)
# A short message is shown whole, a long one as up to two fragments around the matches.
SHORT_SNIPPET_CHARS = 240
WHOLE = "StartSel=<mark>, StopSel=</mark>, HighlightAll=true"
FRAGMENTS = (
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


@dataclass(frozen=True, slots=True)
class After:
    """Where the next page of a search across conversations starts: below the last item shown,
    trying first the window that filled the previous page (smaller ones would not)."""

    at: datetime
    conversation_id: uuid.UUID
    window: int

    def position(self) -> list[Any]:
        return [self.at.isoformat(), str(self.conversation_id), self.window]


def activity_position(position: list[Any] | None) -> After | None:
    if position is None:
        return None
    try:
        at, conversation_id, window = position
        after = After(datetime.fromisoformat(at), uuid.UUID(conversation_id), window)
    except (TypeError, ValueError, AttributeError):
        raise AppError("invalid_cursor", _INVALID_CURSOR) from None
    if type(window) is not int or not 0 <= window <= len(WINDOW_HOURS) or after.at.tzinfo is None:
        raise AppError("invalid_cursor", _INVALID_CURSOR)
    return after


def choose_plan(estimated_matches: int, volume: int) -> str:
    """How to find each conversation's newest match, by what it costs to read.

    "index": few messages match anywhere, so read them all from the GIN index. "scan": the
    caller's conversations hold few messages, so test each of them. "windows": many matches
    in much history, so look at recent messages first (a common word is answered from hours).
    """
    if estimated_matches <= FEW_MATCHES:
        return "index"
    if volume <= SMALL_VOLUME:
        return "scan"
    return "windows"


def last_resort(estimated_matches: int, volume: int) -> str:
    """When no window held a page: read every match, or every message of the caller's, the fewer."""
    return "index" if estimated_matches <= volume else "scan"


def windows(anchor: datetime, start: int = 0) -> list[tuple[int, datetime]]:
    """The windows to try in turn, from `start`: (number, lower time bound), widening."""
    return [(i, anchor - timedelta(hours=h)) for i, h in enumerate(WINDOW_HOURS) if i >= start]


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

# How many of the caller's conversations are searchable, how many messages they hold, and
# when the latest of them was active.
_MINE = text(
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


def _newest_per_conversation(source: str, *, after_cursor: bool) -> Any:
    """Each of the caller's conversations once, with its newest match; newest first; no mass messages.

    `source` "index": PostgreSQL reads the matches from the GIN index. "since": it reads the
    messages of a time window and tests each. "scan": per conversation, it walks back from the
    newest message to the first match (a few steps for a common word). OFFSET 0 keeps the word
    test out of the reads: the planner underestimates reading the GIN index for a common word
    (20 ms for 180,000 matches) and would combine it with the window or repeat it per
    conversation. Membership is a subquery (`= ANY(<2,000 ids>)` costs 4 ms of planning).
    """
    words = "search @@ CAST(:tsq AS tsquery)"
    mine = "conversation_id IN (SELECT conversation_id FROM participants WHERE user_id = :me)"
    if source == "scan":
        newest = f"""
            SELECT me.conversation_id, hit.id, hit.created_at
            FROM participants me JOIN conversations c ON c.id = me.conversation_id AND c.type <> 'mass'
            CROSS JOIN LATERAL (
                SELECT id, created_at FROM (
                    SELECT id, created_at, search FROM messages
                    WHERE conversation_id = me.conversation_id AND deleted IS NULL
                    ORDER BY seq DESC OFFSET 0) AS walk
                WHERE {words} LIMIT 1) AS hit
            WHERE me.user_id = :me"""
    else:
        if source == "index":
            matches = f"""
                SELECT conversation_id, id, seq, created_at FROM messages
                WHERE {mine} AND deleted IS NULL AND {words}"""
        else:
            matches = f"""
                SELECT conversation_id, id, seq, created_at FROM (
                    SELECT conversation_id, id, seq, created_at, search FROM messages
                    WHERE {mine} AND deleted IS NULL AND created_at >= :since OFFSET 0) AS candidates
                WHERE {words}"""
        newest = f"""
            SELECT conversation_id, id, created_at FROM (
                SELECT DISTINCT ON (conversation_id) conversation_id, id, created_at FROM ({matches}) AS m
                ORDER BY conversation_id, seq DESC) AS per_conversation
            WHERE NOT EXISTS (
                SELECT 1 FROM conversations c WHERE c.id = per_conversation.conversation_id AND c.type = 'mass')"""
    before = " WHERE (created_at, conversation_id) < (:at, :after_id)" if after_cursor else ""
    return text(
        f"""
        SELECT conversation_id, id, created_at FROM ({newest}) AS newest{before}
        ORDER BY created_at DESC, conversation_id DESC
        LIMIT :n
        """
    )


_NEWEST = {
    (source, after): _newest_per_conversation(source, after_cursor=after)
    for source in ("index", "since", "scan")
    for after in (False, True)
}

# The planner's estimate of how many messages match, from the column's statistics.
_ESTIMATE = text("EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE search @@ CAST(:tsq AS tsquery)")

_WITH_SNIPPETS = text(
    f"""
    SELECT v.*, CASE WHEN char_length(shown.text) <= :short
                     THEN ts_headline('public.im_search', shown.text, CAST(:tsq AS tsquery), :whole)
                     ELSE ts_headline('public.im_search', shown.text, CAST(:tsq AS tsquery), :fragments)
                END AS snippet
    FROM ({MESSAGE_SELECT} WHERE m.id = ANY(:ids)) AS v JOIN messages s ON s.id = v.id
    CROSS JOIN LATERAL (SELECT public.im_search_text(s.body, s.attachments) AS text) AS shown
    WHERE s.deleted IS NULL
    """
)


def _tsquery(session: Connection, query: str) -> str | None:
    """The tsquery for a checked query; None when PostgreSQL finds no word in it.

    Also asks for plans made for this very query, for the rest of the transaction: how many
    messages a word matches decides the plan, and psycopg prepares statements it sees often,
    whose generic plans would not know the word.
    """
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return session.execute(_TSQUERY, {"q": query, "min_prefix": MIN_PREFIX_CHARS}).scalar_one()


def _messages_with_snippets(session: Connection, tsq: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The message rows with their snippets, by id; one deleted since it matched is left out."""
    rows = session.execute(
        _WITH_SNIPPETS,
        {"ids": list(ids), "tsq": tsq, "short": SHORT_SNIPPET_CHARS, "whole": WHOLE, "fragments": FRAGMENTS},
    ).all()
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


def _estimated_matches(session: Connection, tsq: str) -> int:
    return int(session.execute(_ESTIMATE, {"tsq": tsq}).scalar_one()[0]["Plan"]["Plan Rows"])


def _newest_matches(
    session: Connection, caller_id: str, tsq: str, mine: Any, after: After | None, n: int
) -> tuple[list[Any], int]:
    """Up to `n` conversations with their newest match (below `after`), newest first; and the
    window that found them (`len(WINDOW_HOURS)`: none).

    A window looks back from the caller's latest activity (or the page boundary). Its answer
    is exact once it holds `n` conversations: a conversation with a match since `since` has its
    newest match there, and any other conversation's newest match is older, so sorts after.
    """
    params: dict[str, Any] = {"me": caller_id, "tsq": tsq, "n": n}
    anchor, start, cursor = mine.latest, 0, after is not None
    if after is not None:
        params["at"], params["after_id"] = after.at, after.conversation_id
        anchor, start = min(anchor, after.at), after.window
    estimated, volume = _estimated_matches(session, tsq), int(mine.messages)
    how = choose_plan(estimated, volume)
    if how == "windows":
        for window, since in windows(anchor, start):
            rows = session.execute(_NEWEST[("since", cursor)], {**params, "since": since}).all()
            if len(rows) >= n:
                return rows, window
        how = last_resort(estimated, volume)
    return session.execute(_NEWEST[(how, cursor)], params).all(), len(WINDOW_HOURS)


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
    mine = session.execute(_MINE, {"me": caller_id}).one()
    if not mine.conversations:
        return _empty()
    rows, window = _newest_matches(session, caller_id, tsq, mine, after, limit + 1)
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
        next_cursor = cursors.encode(caller_id, kind, After(last.created_at, last.conversation_id, window).position())
    return {"items": items, "next_cursor": next_cursor}


# RPC ----------------------------------------------------------------------------------------


def search_methods(settings: Settings) -> dict[str, Method]:
    """`search.conversation` {conversation_id, q, cursor, limit} and `search.all` {q, cursor, limit}."""
    url = settings.database_url("conversations")
    cursors = Cursors(settings.cursor_secret)

    def in_conversation(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
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
        me = user_of(caller)
        with transaction(url) as session:
            return search_all(session, cursors, me, params.get("q"), params.get("cursor"), params.get("limit"))

    return {"search.conversation": in_conversation, "search.all": everywhere}

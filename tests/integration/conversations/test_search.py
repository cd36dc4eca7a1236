"""Message search (F21, F22) against real PostgreSQL: what matches, what never does, paging.

Rows are written with SQL: search reads what the service stores, however it came to be there.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from gateway.app import create_app
from services.conversations import search as search_module
from services.conversations.handlers import methods
from services.conversations.search import search_methods
from shared.auth import issue_token
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.rpc import Caller, Method, RpcServer

ANN, BO, CY, ZED = "search-ann", "search-bo", "search-cy", "search-zed"
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


class World:
    """Conversations, participants and messages written straight into the service's tables."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url("conversations")
        self.clock = NOW - timedelta(days=30)
        with transaction(self.url) as session:
            session.execute(
                text(
                    "INSERT INTO people (user_id, name, role, title, enabled) VALUES "
                    "(:a, 'Ann Archer', 'teacher', '', true), (:b, 'Bo Brook', 'student', '', true), "
                    "(:c, 'Cy Cole', 'student', '', true), (:z, 'Zelda Quintero', 'student', '', true)"
                ),
                {"a": ANN, "b": BO, "c": CY, "z": ZED},
            )

    def conversation(self, *members: str, type_: str = "group", name: str | None = None) -> str:
        with transaction(self.url) as session:
            conversation_id = session.execute(
                text(
                    "INSERT INTO conversations (type, name, created_by, created_at, last_activity_at) "
                    "VALUES (:t, :n, :by, :at, :at) RETURNING id"
                ),
                {"t": type_, "n": name, "by": members[0], "at": NOW - timedelta(days=90)},
            ).scalar_one()
            session.execute(
                text("INSERT INTO participants (conversation_id, user_id) VALUES (:c, :u)"),
                [{"c": conversation_id, "u": u} for u in members],
            )
        return str(conversation_id)

    def message(
        self,
        conversation_id: str,
        sender: str,
        body: str,
        *,
        links: list[str] | None = None,
        attachments: list[str] | None = None,
        deleted: bool = False,
        at: datetime | None = None,
    ) -> str:
        """A message, one minute after the previous one unless `at` says when."""
        self.clock = at or self.clock + timedelta(minutes=1)
        with transaction(self.url) as session:
            seq = session.execute(
                text(
                    "UPDATE conversations SET last_seq = last_seq + 1, "
                    "last_activity_at = greatest(last_activity_at, :at) WHERE id = :id RETURNING last_seq"
                ),
                {"id": conversation_id, "at": self.clock},
            ).scalar_one()
            return str(
                session.execute(
                    text(
                        """
                        INSERT INTO messages
                            (conversation_id, seq, sender_id, body, links, attachments, deleted, created_at)
                        VALUES (:c, :seq, :sender, :body, CAST(:links AS jsonb), CAST(:attachments AS jsonb),
                                CAST(:deleted AS jsonb), :at)
                        RETURNING id
                        """
                    ),
                    {
                        "c": conversation_id,
                        "seq": seq,
                        "sender": sender,
                        "body": body,
                        "links": json.dumps([{"url": u, "text": u, "start": 0, "end": len(u)} for u in links or []]),
                        "attachments": json.dumps(
                            [
                                {"id": f"file-{i}", "name": n, "size": 100, "content_type": "application/pdf"}
                                for i, n in enumerate(attachments or [])
                            ]
                        ),
                        "deleted": json.dumps({"by": "author"}) if deleted else None,
                        "at": self.clock,
                    },
                ).scalar_one()
            )

    def execute(self, sql: str, **params: Any) -> None:
        with transaction(self.url) as session:
            session.execute(text(sql), params)


@pytest.fixture
def world(db: Settings) -> World:
    return World(db)


@pytest.fixture
def rpc(db: Settings) -> dict[str, Method]:
    # The lead merges these into the service's table; the tests use the merged table.
    return {**methods(db), **search_methods(db)}


def in_conversation(rpc: dict[str, Method], user: str, conversation_id: str, q: Any, **extra: Any) -> dict[str, Any]:
    return rpc["search.conversation"](Caller(user), {"conversation_id": conversation_id, "q": q, **extra})


def everywhere(rpc: dict[str, Method], user: str, q: Any, **extra: Any) -> dict[str, Any]:
    return rpc["search.all"](Caller(user), {"q": q, **extra})


def bodies(page: dict[str, Any]) -> list[str]:
    return [m["body"] for m in page["items"]]


def refusal(call: Any) -> AppError:
    with pytest.raises(AppError) as info:
        call()
    return info.value


# What matches -------------------------------------------------------------------------------


def test_a_word_in_the_text_finds_the_message_with_a_highlighted_snippet(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "The homework is due on Friday")
    world.message(chat, BO, "Thanks, see you")
    page = in_conversation(rpc, BO, chat, "Homework")
    assert bodies(page) == ["The homework is due on Friday"]
    assert page["items"][0]["snippet"] == "The <mark>homework</mark> is due on Friday"
    assert page["items"][0]["sender"]["name"] == "Ann Archer"
    assert page["next_cursor"] is None


def test_every_word_of_the_query_must_match(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "math homework")
    world.message(chat, ANN, "history homework")
    assert bodies(in_conversation(rpc, ANN, chat, "homework math")) == ["math homework"]


def test_a_link_url_finds_the_message_even_by_a_part_of_its_path(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    url = "https://example.org/courses/algebra-basics?week=3"
    world.message(chat, ANN, f"Read {url}", links=[url])
    world.message(chat, ANN, "No link here")
    for q in ("algebra", "example.org", url):
        assert bodies(in_conversation(rpc, BO, chat, q)) == [f"Read {url}"], q


def test_an_attachment_name_finds_the_message(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "", attachments=["Field_trip_permission.pdf"])
    world.message(chat, ANN, "Unrelated")
    for q in ("permission", "field trip", "Field_trip_permission.pdf"):
        page = in_conversation(rpc, BO, chat, q)
        assert [m["attachments"][0]["name"] for m in page["items"]] == ["Field_trip_permission.pdf"], q
    assert "Field_trip_permission.pdf" in in_conversation(rpc, BO, chat, "permission")["items"][0]["snippet"]


def test_the_last_word_of_the_query_also_matches_as_a_prefix(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "homework for math")
    assert bodies(in_conversation(rpc, ANN, chat, "hom")) == ["homework for math"]
    assert bodies(in_conversation(rpc, ANN, chat, "for hom")) == ["homework for math"]
    assert bodies(in_conversation(rpc, ANN, chat, "hom math")) == []  # only the last word is a prefix
    assert bodies(in_conversation(rpc, ANN, chat, "ho")) == []  # two letters are too short to be a prefix
    assert "<mark>homework</mark>" in in_conversation(rpc, ANN, chat, "homew")["items"][0]["snippet"]


def test_accents_and_case_do_not_matter(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "Réunion à l'École demain")
    page = in_conversation(rpc, ANN, chat, "ecole REUNION")
    assert bodies(page) == ["Réunion à l'École demain"]
    assert "<mark>École</mark>" in page["items"][0]["snippet"]


def test_an_edited_message_is_found_by_its_new_text_only(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    message_id = world.message(chat, ANN, "meet at noon")
    world.execute("UPDATE messages SET body = 'meet at three', edited_at = now() WHERE id = :id", id=message_id)
    assert bodies(in_conversation(rpc, ANN, chat, "noon")) == []
    assert bodies(in_conversation(rpc, ANN, chat, "three")) == ["meet at three"]


def test_snippets_escape_the_message_html_and_mark_only_the_matches(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    body = '<script>alert("homework")</script> <b>homework</b> & <img src=x onerror=y>'
    world.message(chat, BO, body)
    for snippet in (
        in_conversation(rpc, ANN, chat, "homework")["items"][0]["snippet"],
        everywhere(rpc, ANN, "homework")["items"][0]["snippet"],
    ):
        assert snippet.count("<mark>homework</mark>") == 2
        assert snippet.startswith("&lt;script&gt;alert(&quot;<mark>homework</mark>")
        # Without the marks nothing in it is markup, and unescaped it is the person's own text.
        plain = snippet.replace("<mark>", "").replace("</mark>", "")
        assert not re.search(r"[<>]", plain)
        assert html.unescape(plain) == body


def test_words_inside_angle_brackets_are_searchable(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "if x<y and y>z then <div> wraps it")
    assert bodies(in_conversation(rpc, ANN, chat, "and")) == ["if x<y and y>z then <div> wraps it"]
    assert bodies(in_conversation(rpc, ANN, chat, "div")) == ["if x<y and y>z then <div> wraps it"]


def test_a_long_message_gets_a_short_snippet_around_the_match(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "filler " * 300 + "the needle is here " + "filler " * 300)
    snippet = in_conversation(rpc, ANN, chat, "needle")["items"][0]["snippet"]
    assert "<mark>needle</mark>" in snippet
    assert len(snippet) < 300


# Across conversations -----------------------------------------------------------------------


def test_search_across_conversations_lists_each_once_with_its_newest_match_newest_first(
    world: World, rpc: dict[str, Method]
) -> None:
    older, newer, quiet = world.conversation(ANN, BO), world.conversation(ANN, CY), world.conversation(ANN, BO, CY)
    world.message(older, BO, "first exam question")
    world.message(newer, CY, "exam room changed")
    world.message(older, ANN, "second exam question")
    world.message(quiet, ANN, "nothing to see")
    items = everywhere(rpc, ANN, "exam")["items"]
    assert [i["conversation"]["id"] for i in items] == [older, newer]
    assert [i["message"]["body"] for i in items] == ["second exam question", "exam room changed"]
    assert items[0]["snippet"] == "second <mark>exam</mark> question"
    assert items[0]["conversation"]["participant_count"] == 2
    assert items[0]["message"]["conversation_id"] == older


def test_a_course_conversation_found_across_conversations_links_to_its_participants_like_the_list(
    db: Settings, world: World, rpc: dict[str, Method]
) -> None:
    course = world.conversation(ANN, BO, type_="course", name="Biology 7B")
    world.execute("UPDATE conversations SET group_kind = 'course', group_id = 'bio-7b' WHERE id = :c", c=course)
    world.message(course, ANN, "Lab coats on Monday")
    (item,) = everywhere(rpc, BO, "lab")["items"]
    assert item["conversation"]["name"] == "Biology 7B"
    assert item["conversation"]["participants_url"] == db.course_participants_url.format(course_id="bio-7b")


def test_a_strangers_conversation_never_appears_and_searching_in_it_is_not_found(
    world: World, rpc: dict[str, Method]
) -> None:
    private = world.conversation(ANN, BO)
    world.message(private, ANN, "secret plans")
    assert everywhere(rpc, CY, "secret")["items"] == []
    hidden = refusal(lambda: in_conversation(rpc, CY, private, "secret"))
    missing = refusal(lambda: in_conversation(rpc, CY, "00000000-0000-0000-0000-000000000000", "secret"))
    garbage = refusal(lambda: in_conversation(rpc, CY, "not-a-uuid", "secret"))
    assert hidden.code == "not_found"
    assert hidden.to_dict() == missing.to_dict() == garbage.to_dict()


def test_a_participant_who_left_no_longer_finds_the_conversation(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "club meeting")
    world.execute("DELETE FROM participants WHERE conversation_id = :c AND user_id = :u", c=chat, u=BO)
    assert everywhere(rpc, BO, "club")["items"] == []
    assert refusal(lambda: in_conversation(rpc, BO, chat, "club")).code == "not_found"


def test_deleted_messages_never_match(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "rude words", deleted=True)
    later = world.message(chat, ANN, "more rude words")
    world.execute(
        "UPDATE messages SET deleted = CAST(:d AS jsonb) WHERE id = :id", id=later, d=json.dumps({"by": "moderator"})
    )
    world.message(chat, ANN, "polite words")
    assert bodies(in_conversation(rpc, BO, chat, "rude")) == []
    assert everywhere(rpc, BO, "rude")["items"] == []
    assert [i["message"]["body"] for i in everywhere(rpc, BO, "words")["items"]] == ["polite words"]


def test_mass_message_conversations_are_never_searched(world: World, rpc: dict[str, Method]) -> None:
    mass = world.conversation(ANN, BO, type_="mass", name="From the district")
    world.message(mass, ANN, "Snow day tomorrow")
    chat = world.conversation(ANN, BO)
    world.message(chat, BO, "Is tomorrow a snow day?")
    assert [i["conversation"]["id"] for i in everywhere(rpc, BO, "snow")["items"]] == [chat]
    assert refusal(lambda: in_conversation(rpc, BO, mass, "snow")).code == "not_allowed"


def test_a_persons_name_finds_nothing_unless_a_message_says_it(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, ZED, name="Quintero family")
    world.message(chat, ZED, "Hello from me")
    assert everywhere(rpc, ANN, "Quintero")["items"] == []
    assert everywhere(rpc, ANN, "Zelda")["items"] == []
    assert bodies(in_conversation(rpc, ANN, chat, "Zelda")) == []
    world.message(chat, ANN, "Thanks Zelda")
    assert [i["message"]["body"] for i in everywhere(rpc, ANN, "Zelda")["items"]] == ["Thanks Zelda"]


def test_emojis_beside_words_are_ignored(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "pizza party 🍕 on Friday")
    assert bodies(in_conversation(rpc, ANN, chat, "🍕 pizza")) == ["pizza party 🍕 on Friday"]


# Refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "   ", None, "😀", "🍕🎉 👍", "!!!", "?? :-)", "♥", 42])
def test_blank_emoji_only_and_non_text_queries_are_refused(world: World, rpc: dict[str, Method], q: Any) -> None:
    chat = world.conversation(ANN, BO)
    for call in (lambda: everywhere(rpc, ANN, q), lambda: in_conversation(rpc, ANN, chat, q)):
        error = refusal(call)
        assert error.code == "validation_failed"
        assert error.details["field"] == "q"


def test_a_query_longer_than_the_limit_is_refused(world: World, rpc: dict[str, Method]) -> None:
    error = refusal(lambda: everywhere(rpc, ANN, "a" * (search_module.MAX_QUERY_CHARS + 1)))
    assert error.code == "validation_failed"
    assert everywhere(rpc, ANN, "a" * search_module.MAX_QUERY_CHARS)["items"] == []


def test_searching_needs_a_signed_in_caller(rpc: dict[str, Method]) -> None:
    assert refusal(lambda: rpc["search.all"](None, {"q": "x"})).code == "unauthenticated"
    assert refusal(lambda: rpc["search.conversation"](None, {"q": "x", "conversation_id": "x"})).code == (
        "unauthenticated"
    )


# Paging -------------------------------------------------------------------------------------


def _all_pages(fetch: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = fetch(cursor)
        assert len(page["items"]) <= 3
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_paging_within_a_conversation_covers_every_match_once_newest_first(
    world: World, rpc: dict[str, Method]
) -> None:
    chat = world.conversation(ANN, BO)
    for i in range(8):
        world.message(chat, ANN, f"quiz {i}")
        world.message(chat, BO, f"other {i}")
    items = _all_pages(lambda cursor: in_conversation(rpc, BO, chat, "quiz", cursor=cursor, limit=3))
    assert [m["body"] for m in items] == [f"quiz {i}" for i in range(7, -1, -1)]


@pytest.mark.parametrize("plan", ["index", "scan", "windows"])
def test_paging_across_conversations_covers_every_conversation_once_newest_match_first(
    world: World, rpc: dict[str, Method], monkeypatch: pytest.MonkeyPatch, plan: str
) -> None:
    # Each way of finding the newest matches gives the same pages (a small table picks "index").
    monkeypatch.setattr(search_module, "choose_plan", lambda estimated, volume: plan)
    chats = [world.conversation(ANN, BO if i % 2 else CY) for i in range(7)]
    # Matches spread from weeks ago to the last minutes, interleaved with newer non-matches and
    # with older matches in the same conversations, so windows and cursors both have work.
    for i, chat in enumerate(chats):
        world.message(chat, ANN, f"trip note {i} old", at=NOW - timedelta(days=60 - i))
    for i, chat in enumerate(chats):
        world.message(chat, ANN, f"trip note {i}", at=NOW - timedelta(hours=(7 - i) ** 3))
        world.message(chat, BO, "unrelated", at=NOW - timedelta(minutes=7 - i))
    items = _all_pages(lambda cursor: everywhere(rpc, ANN, "trip", cursor=cursor, limit=3))
    assert [i["conversation"]["id"] for i in items] == chats[::-1]
    assert [i["message"]["body"] for i in items] == [f"trip note {i}" for i in range(6, -1, -1)]


def test_a_tampered_foreign_or_reused_cursor_is_refused(world: World, rpc: dict[str, Method]) -> None:
    chat = world.conversation(ANN, BO)
    for i in range(3):
        world.message(chat, ANN, f"lab report {i}")
    others = [world.conversation(ANN, BO) for _ in range(2)]
    for other in others:
        world.message(other, ANN, "lab report")
    inside = in_conversation(rpc, ANN, chat, "lab", limit=1)["next_cursor"]
    across = everywhere(rpc, ANN, "lab", limit=1)["next_cursor"]
    attempts = [
        lambda: in_conversation(rpc, ANN, chat, "lab", cursor=inside[:-2] + "xx"),
        lambda: in_conversation(rpc, BO, chat, "lab", cursor=inside),  # someone else's
        lambda: in_conversation(rpc, ANN, chat, "report", cursor=inside),  # another query
        lambda: in_conversation(rpc, ANN, others[0], "lab", cursor=inside),  # another conversation
        lambda: in_conversation(rpc, ANN, chat, "lab", cursor=across),  # another scope
        lambda: everywhere(rpc, ANN, "lab", cursor=across[:-2] + "xx"),
        lambda: everywhere(rpc, BO, "lab", cursor=across),
        lambda: everywhere(rpc, ANN, "lab", cursor="garbage"),
    ]
    for attempt in attempts:
        assert refusal(attempt).code == "invalid_cursor"


def test_a_signed_cursor_with_a_malformed_position_is_refused(
    db: Settings, world: World, rpc: dict[str, Method]
) -> None:
    from shared.cursor import Cursors

    chat = world.conversation(ANN, BO)
    cursors = Cursors(db.cursor_secret)
    forged_inside = cursors.encode(ANN, search_module.cursor_kind(chat, "lab"), ["not a number"])
    forged_across = cursors.encode(ANN, search_module.cursor_kind("all", "lab"), ["yesterday", "nobody"])
    assert refusal(lambda: in_conversation(rpc, ANN, chat, "lab", cursor=forged_inside)).code == "invalid_cursor"
    assert refusal(lambda: everywhere(rpc, ANN, "lab", cursor=forged_across)).code == "invalid_cursor"


# Through the gateway ------------------------------------------------------------------------


def test_the_gateway_serves_both_searches_with_the_api_error_shape(
    db: Settings, world: World, rpc: dict[str, Method]
) -> None:
    chat = world.conversation(ANN, BO)
    world.message(chat, ANN, "Bring your <b>calculator</b>")
    server = RpcServer(db, "conversations", rpc, threads=1).start()
    try:
        client = create_app(db).test_client()
        headers = {"Authorization": f"Bearer {issue_token(db, BO)}"}
        across = client.get("/api/v1/search", query_string={"q": "calc"}, headers=headers)
        assert across.status_code == 200
        assert across.json["items"][0]["snippet"] == "Bring your &lt;b&gt;<mark>calculator</mark>&lt;/b&gt;"
        inside = client.get(f"/api/v1/conversations/{chat}/search", query_string={"q": "calculator"}, headers=headers)
        assert [m["body"] for m in inside.json["items"]] == ["Bring your <b>calculator</b>"]
        refused = client.get("/api/v1/search", query_string={"q": "🧮"}, headers=headers)
        assert refused.status_code == 422
        assert refused.json["error"]["code"] == "validation_failed"
        stranger = {"Authorization": f"Bearer {issue_token(db, CY)}"}
        hidden = client.get(f"/api/v1/conversations/{chat}/search", query_string={"q": "x"}, headers=stranger)
        assert hidden.status_code == 404
    finally:
        server.stop(wait=False)

"""Conversation rules as plain functions."""

from __future__ import annotations

import pytest

from services.conversations import domain
from shared.errors import AppError


def test_a_message_may_hold_up_to_ten_thousand_characters() -> None:
    assert domain.check_body("x" * 10_000) == "x" * 10_000
    with pytest.raises(AppError) as info:
        domain.check_body("x" * 10_001)
    assert info.value.code == "validation_failed"


def test_an_empty_message_needs_a_file() -> None:
    for empty in ["", "   \n", None]:
        with pytest.raises(AppError):
            domain.check_body(empty)
    assert domain.check_body("", has_attachments=True) == ""


def test_a_message_must_be_text() -> None:
    with pytest.raises(AppError):
        domain.check_body(42)


def test_web_links_are_found_with_their_place_in_the_text() -> None:
    links = domain.find_links("See https://example.org/a?b=1, or www.school.org. Mail me@school.org")
    assert [(link["url"], link["text"]) for link in links] == [
        ("https://example.org/a?b=1", "https://example.org/a?b=1"),
        ("http://www.school.org", "www.school.org"),
    ]
    assert links[0]["start"] == 4 and links[0]["end"] == 29


def test_the_preview_is_one_line_and_short() -> None:
    assert domain.preview("Hello\n\nthere   you") == "Hello there you"
    long = domain.preview("word " * 100)
    assert len(long) <= domain.PREVIEW_CHARS and long.endswith("…")


def test_the_pair_key_is_the_same_whoever_starts() -> None:
    assert domain.pair_key("a", "b") == domain.pair_key("b", "a")
    assert domain.pair_key("a", "bc") != domain.pair_key("ab", "c")


def test_recipients_are_typed_and_unique() -> None:
    assert domain.parse_recipients([{"type": "user", "id": "u1"}]) == [domain.Recipient("user", "u1")]
    for bad in [
        [],
        None,
        "u1",
        [{"type": "user"}],
        [{"type": "robot", "id": "x"}],
        [{"type": "user", "id": "u1"}, {"type": "user", "id": "u1"}],
        [{"type": "user", "id": "u", "x": 1}],
    ]:
        with pytest.raises(AppError) as info:
            domain.parse_recipients(bad)
        assert info.value.code == "validation_failed"


def test_a_conversation_without_a_name_is_called_after_the_others() -> None:
    assert domain.display_name(None, ["Ann Lee"], 1) == "Ann Lee"
    assert domain.display_name(None, ["Ann Lee", "Bo Kim"], 2) == "Ann Lee and Bo Kim"
    assert domain.display_name(None, ["A", "B", "C"], 5) == "A, B, C and 2 others"
    assert domain.display_name("Chess club", ["A"], 1) == "Chess club"


def test_a_reused_client_id_must_carry_the_same_request() -> None:
    first = domain.request_hash("message", "c1", "hello")
    domain.idempotent_replay(first, domain.request_hash("message", "c1", "hello"))
    with pytest.raises(AppError) as info:
        domain.idempotent_replay(first, domain.request_hash("message", "c1", "other"))
    assert info.value.code == "idempotency_conflict"


def test_own_messages_never_make_the_unread_count_negative() -> None:
    assert domain.unread(10, 7) == 3
    assert domain.unread(7, 10) == 0

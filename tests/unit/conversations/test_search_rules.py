"""Search rules with no database: what a query may be, cursor positions and kinds, time windows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.conversations import search
from shared.errors import AppError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("homework", "homework"),
        ("  field   trip \n", "field trip"),
        ("🍕 pizza", "🍕 pizza"),
        ("Привет", "Привет"),
        ("日本語", "日本語"),
        ("3", "3"),
        ("x" * search.MAX_QUERY_CHARS, "x" * search.MAX_QUERY_CHARS),
    ],
)
def test_a_query_with_a_letter_or_digit_is_kept_with_its_spaces_tidied(raw: str, expected: str) -> None:
    assert search.check_query(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "Type something to search for."),
        ("", "Type something to search for."),
        (" \t\n", "Type something to search for."),
        ("😀", "Search for words or numbers: emojis and symbols cannot be searched."),
        ("👍🏽 🎉", "Search for words or numbers: emojis and symbols cannot be searched."),
        ("!?.,;:-", "Search for words or numbers: emojis and symbols cannot be searched."),
        ("♥ ☺ ★", "Search for words or numbers: emojis and symbols cannot be searched."),
        ("___", "Search for words or numbers: emojis and symbols cannot be searched."),
        (12, "The search must be text."),
        (["homework"], "The search must be text."),
    ],
)
def test_blank_emoji_only_symbol_only_and_non_text_queries_are_refused(raw: Any, message: str) -> None:
    with pytest.raises(AppError) as info:
        search.check_query(raw)
    assert info.value.code == "validation_failed"
    assert info.value.message == message
    assert info.value.details["field"] == "q"


def test_a_query_over_the_length_limit_is_refused_after_tidying_spaces() -> None:
    assert search.check_query("a" + " " * 500 + "b") == "a b"
    with pytest.raises(AppError) as info:
        search.check_query("x" * (search.MAX_QUERY_CHARS + 1))
    assert info.value.details["max_length"] == search.MAX_QUERY_CHARS


def test_cursor_kinds_differ_by_scope_and_query() -> None:
    kinds = {search.cursor_kind(scope, q) for scope in ("all", "c-1", "c-2") for q in ("lab", "Lab", "lab report")}
    assert len(kinds) == 9
    assert search.cursor_kind("all", "lab") == search.cursor_kind("all", "lab")


def test_cursor_positions_parse_or_are_invalid_cursors() -> None:
    at, conversation_id = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4()
    assert search.seq_position(None) is None
    assert search.seq_position([42]) == 42
    assert search.activity_position(None) is None
    after = search.After(at, conversation_id, 2)
    assert search.activity_position(after.position()) == after
    for bad in ([], [1, 2], ["x"], [None]):
        with pytest.raises(AppError) as info:
            search.seq_position(bad)
        assert info.value.code == "invalid_cursor"
    for bad in (
        [],
        [at.isoformat(), str(conversation_id)],
        ["yesterday", str(conversation_id), 0],
        [at.isoformat(), "x", 0],
        [at.isoformat(), str(conversation_id), -1],
        [at.isoformat(), str(conversation_id), len(search.WINDOW_HOURS) + 1],
        [at.isoformat(), str(conversation_id), "1"],
        [at.isoformat(), str(conversation_id), True],
        ["2025-01-02T03:04:05", str(conversation_id), 0],
        [1, 2, 3],
    ):
        with pytest.raises(AppError) as info:
            search.activity_position(bad)
        assert info.value.code == "invalid_cursor", bad


def test_few_matches_are_read_from_the_index_a_small_history_is_scanned_and_the_rest_by_recent_windows() -> None:
    assert search.choose_plan(search.FEW_MATCHES, 10**9) == "index"
    assert search.choose_plan(search.FEW_MATCHES + 1, search.SMALL_VOLUME) == "scan"
    assert search.choose_plan(search.FEW_MATCHES + 1, search.SMALL_VOLUME + 1) == "windows"


def test_when_no_window_holds_a_page_the_cheaper_of_all_matches_and_all_messages_is_read() -> None:
    assert search.last_resort(10_000, 50_000) == "index"
    assert search.last_resort(50_000, 10_000) == "scan"


def test_windows_widen_from_the_anchor_and_a_page_may_start_at_a_wider_one() -> None:
    anchor = datetime(2025, 6, 1, tzinfo=UTC)
    steps = search.windows(anchor)
    assert [number for number, _ in steps] == list(range(len(search.WINDOW_HOURS)))
    assert steps[0][1] == anchor - timedelta(hours=search.WINDOW_HOURS[0])
    bounds = [since for _, since in steps]
    assert bounds == sorted(bounds, reverse=True)
    assert search.windows(anchor, 2) == steps[2:]
    assert search.windows(anchor, len(search.WINDOW_HOURS)) == []

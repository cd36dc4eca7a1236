"""Report rules as plain functions: what may be reported, who closes a report, the audit log's filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.moderation import domain
from shared.errors import AppError

REPORT = {"reporter_id": "s1", "state": "open", "recipients": [{"user_id": "t1"}]}


def code(call: Any) -> str:
    with pytest.raises(AppError) as info:
        call()
    return info.value.code


@pytest.mark.parametrize(
    ("message_id", "conversation_id", "ok"),
    [("m", None, True), (None, "c", True), (None, None, False), ("m", "c", False), ("", None, False), (5, None, False)],
)
def test_a_report_points_at_exactly_one_message_or_conversation(
    message_id: Any, conversation_id: Any, ok: bool
) -> None:
    if ok:
        assert domain.check_target(message_id, conversation_id) in (("m", None), (None, "c"))
    else:
        assert code(lambda: domain.check_target(message_id, conversation_id)) == "validation_failed"


@pytest.mark.parametrize("raw", [None, "", "   ", 3, ["x"], "x" * 1001])
def test_a_reason_is_required_text_of_reasonable_length(raw: Any) -> None:
    assert code(lambda: domain.check_reason(raw)) == "validation_failed"


def test_a_reason_is_kept_trimmed() -> None:
    assert domain.check_reason("  He keeps calling me names \n") == "He keeps calling me names"


def test_only_the_reporter_withdraws_and_only_a_recipient_resolves_an_open_report() -> None:
    domain.check_withdraw(REPORT, "s1")
    domain.check_resolve(REPORT, "t1")
    assert code(lambda: domain.check_withdraw(REPORT, "t1")) == "forbidden"
    assert code(lambda: domain.check_resolve(REPORT, "s1")) == "forbidden"


@pytest.mark.parametrize(
    ("state", "message"),
    [("withdrawn", "This report was withdrawn."), ("resolved", "This report was already resolved.")],
)
def test_a_closed_report_cannot_be_acted_on_again(state: str, message: str) -> None:
    closed = {**REPORT, "state": state}
    for check, who in ((domain.check_withdraw, "s1"), (domain.check_resolve, "t1")):
        with pytest.raises(AppError) as info:
            check(closed, who)
        assert (info.value.code, info.value.message) == ("not_allowed", message)


def test_audit_filters_are_checked_and_times_read_as_utc() -> None:
    filters = domain.audit_filters(
        {"actor_id": "t1", "action": "message.deleted", "since": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00"}
    )
    assert filters["since"] == datetime(2026, 11, 1, tzinfo=UTC) and filters["until"].tzinfo is not None
    assert domain.audit_filters({"conversation_id": "6f1c2a3e-0000-4000-8000-000000000000"})
    for bad in (
        {"action": "everything"},
        {"since": "last week"},
        {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        {"report_id": "not-a-uuid"},
        {"actor_id": ["t1"]},
    ):
        assert code(lambda bad=bad: domain.audit_filters(bad)) == "validation_failed"


def test_the_state_filter_accepts_the_states_and_all() -> None:
    assert domain.check_state_filter("open") == "open"
    assert domain.check_state_filter("all") is None and domain.check_state_filter(None) is None
    assert code(lambda: domain.check_state_filter("closed")) == "validation_failed"

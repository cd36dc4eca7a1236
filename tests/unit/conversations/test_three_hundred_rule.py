"""The seed's decision matrix (section 7.3), one test per row, plus overlaps and the sender."""

from __future__ import annotations

import pytest

from services.conversations.domain import Group, choose_mode, decide
from shared.errors import AppError

course = Group("course", "class-1", 25)
big_course = Group("course", "class-2", 320)


def test_one_person_is_a_direct_conversation_with_no_choice() -> None:
    decision = decide(1, [], 1)
    assert (decision.outcome, decision.modes, decision.error) == ("direct", (), None)
    assert choose_mode(decision, None) == "direct"
    assert choose_mode(decision, "individual") == "direct"


def test_two_or_more_people_offer_group_or_individual() -> None:
    decision = decide(2, [], 2)
    assert (decision.outcome, decision.modes, decision.error) == ("choice", ("group", "individual"), None)
    assert choose_mode(decision, "individual") == "individual"
    with pytest.raises(AppError) as info:
        choose_mode(decision, None)
    assert info.value.code == "validation_failed"


def test_a_course_of_at_most_300_offers_group_or_individual() -> None:
    decision = decide(0, [Group("course", "c", 300)], 300)
    assert (decision.outcome, decision.modes, decision.error) == ("choice", ("group", "individual"), None)


def test_a_course_of_more_than_300_goes_to_its_course_conversation_only() -> None:
    decision = decide(0, [big_course], 320)
    assert (decision.outcome, decision.modes, decision.error) == ("course_conversation", (), None)
    assert choose_mode(decision, "individual") == "group_conversation"


def test_a_large_project_goes_to_its_project_conversation_only() -> None:
    assert decide(0, [Group("project", "p", 301)], 301).outcome == "project_conversation"


@pytest.mark.parametrize(("people", "groups"), [(1, [big_course]), (0, [big_course, course])])
def test_a_course_of_more_than_300_with_other_recipients_is_refused(people: int, groups: list[Group]) -> None:
    decision = decide(people, groups, 340)
    assert (decision.outcome, decision.modes) == ("refused", ())
    assert decision.error is not None and decision.error.code == "too_many_recipients"
    with pytest.raises(AppError) as info:
        choose_mode(decision, "group")
    assert info.value.code == "too_many_recipients"


def test_more_than_300_people_together_offer_the_choice_but_fail_on_sending() -> None:
    decision = decide(5, [Group("course", "a", 200), Group("course", "b", 200)], 390)
    assert decision.modes == ("group", "individual")
    assert decision.error is not None and decision.error.code == "too_many_recipients"
    assert decision.error.details == {"unique_count": 390, "limit": 300}
    for mode in ("group", "individual"):
        with pytest.raises(AppError):
            choose_mode(decision, mode)


def test_overlapping_courses_count_each_person_once() -> None:
    # Two courses of 200 that share 150 people reach 250: under the limit.
    decision = decide(0, [Group("course", "a", 200), Group("course", "b", 200)], 250)
    assert decision.error is None


def test_the_sender_alone_is_no_recipient() -> None:
    decision = decide(0, [], 0)
    assert decision.outcome == "refused"
    assert decision.error is not None and decision.error.code == "validation_failed"


def test_the_preview_is_plain_data() -> None:
    assert decide(0, [big_course], 320).to_dict() == {
        "unique_count": 320,
        "modes": [],
        "outcome": "course_conversation",
        "error": None,
    }


def test_group_mode_for_a_lone_small_course_means_its_own_conversation() -> None:
    assert choose_mode(decide(0, [course], 25), "group") == "group_conversation"
    assert choose_mode(decide(0, [course], 25), "individual") == "individual"
    assert choose_mode(decide(1, [course], 26), "group") == "group"
    assert choose_mode(decide(0, [course, Group("project", "p", 5)], 28), "group") == "group"

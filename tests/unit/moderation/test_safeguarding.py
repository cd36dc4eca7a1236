"""Safeguarding phrases: how a school's list is checked, and where its phrases are found."""

from __future__ import annotations

from typing import Any

import pytest

from services.moderation import safeguarding
from services.moderation.safeguarding import MAX_PHRASE_CHARS, MAX_PHRASES, check_phrases, compile_phrases, normalize
from shared.errors import AppError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", "hello"),
        ("Café", "cafe"),
        ("NAÏVE", "naive"),
        ("Ångström", "angstrom"),
        ("Straße", "strasse"),
        ("ＫＩＬＬ", "kill"),  # full-width letters
        ("ﬁne", "fine"),  # ligature
        ("DON’T", "don't"),
        ("don‘t ʼem", "don't 'em"),
        ("Ёжик", "ежик"),
        ("Άλφα", "αλφα"),
        ("İstanbul", "istanbul"),
    ],
)
def test_normalize_drops_case_accents_and_typographic_apostrophes(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("phrases", "text", "expected"),
    [
        # case
        (["kill"], "I will KILL you", ["kill"]),
        (["KILL"], "i will kill you", ["KILL"]),
        (["Kill"], "kIlL", ["Kill"]),
        # accents, both ways
        (["café"], "meet at the CAFE", ["café"]),
        (["cafe"], "meet at the Café", ["cafe"]),
        (["naive"], "so naïve", ["naive"]),
        (["Ångström"], "angstrom", ["Ångström"]),
        (["straße"], "STRASSE", ["straße"]),
        (["strasse"], "Straße", ["strasse"]),
        # whole words only
        (["kill"], "skill", []),
        (["kill"], "killer", []),
        (["kill"], "kill_switch", []),
        (["kill"], "kill2", []),
        (["kill"], "Kill!", ["kill"]),
        (["kill"], "kill.", ["kill"]),
        (["kill"], "(kill)", ["kill"]),
        (["kill"], '"kill", he said', ["kill"]),
        (["kill"], "kill-switch", ["kill"]),
        (["kill"], "kill", ["kill"]),
        (["kill"], "...kill...", ["kill"]),
        (["kill"], "café-kill", ["kill"]),
        (["kill"], "ékill", []),
        (["kill"], "killé", []),
        # multi-word phrases across spaces and line breaks
        (["hurt myself"], "I want to hurt myself", ["hurt myself"]),
        (["hurt myself"], "HURT   myself", ["hurt myself"]),
        (["hurt myself"], "hurt\nmyself", ["hurt myself"]),
        (["hurt myself"], "hurt \r\n\t myself", ["hurt myself"]),
        (["hurt myself"], "hurt\u00a0myself", ["hurt myself"]),
        (["hurt   myself"], "hurt myself", ["hurt   myself"]),
        (["hurt myself"], "hurt myselfish", []),
        (["hurt myself"], "unhurt myself", []),
        (["hurt myself"], "hurtmyself", []),
        (["hurt myself"], "hurt, myself", []),
        (["hurt myself"], "hurt my self", []),
        # apostrophes
        (["don't"], "DON'T do it", ["don't"]),
        (["don't"], "Don’t do it", ["don't"]),
        (["don’t"], "don't", ["don’t"]),
        (["don't"], "dont", []),
        (["don't"], "don t", []),
        (["'em"], "get 'em now", ["'em"]),
        # phrases starting or ending in non-word characters
        (["c++"], "I like C++.", ["c++"]),
        (["c++"], "I like c++x", []),
        (["#tag"], "see #TAG", ["#tag"]),
        (["#tag"], "see x#tag", []),
        # non-Latin scripts
        (["убить"], "Я хочу УБИТЬ", ["убить"]),
        (["убить"], "убитый", []),
        (["ёж"], "ЕЖ!", ["ёж"]),
        (["ёж"], "ёжик", []),
        (["θάνατος"], "ΘΑΝΑΤΟΣ.", ["θάνατος"]),
        (["θάνατος"], "θανατος", ["θάνατος"]),
        (["死ね"], "お前は 死ね !", ["死ね"]),
        (["قتل"], "أريد قتل", ["قتل"]),
        (["किताब"], "यह किताब है", ["किताब"]),
        (["किताब"], "किताबें", []),  # a vowel sign after the phrase keeps the word going
        (["कि"], "किताब", []),
        # digits and full-width forms
        (["42"], "the answer is 42.", ["42"]),
        (["42"], "4242", []),
        (["kill"], "ＫＩＬＬ", ["kill"]),
        # several phrases: list order, each once, overlaps included
        (
            ["knife", "hurt myself", "kill"],
            "Kill, kill with a knife. I will hurt\nmyself",
            ["knife", "hurt myself", "kill"],
        ),
        (["zebra", "apple"], "apple zebra apple", ["zebra", "apple"]),
        (["hurt myself", "hurt", "myself"], "hurt myself", ["hurt myself", "hurt", "myself"]),
        (["hurt", "hurt myself"], "hurt myselfish", ["hurt"]),
        (["kill", "killer"], "a killer", ["killer"]),
        (["kill", "Kill", "KÍLL"], "kill", ["kill", "Kill", "KÍLL"]),
        (["knife", "gun"], "nothing to see here", []),
        # nothing to find
        ([], "kill hurt myself", []),
        (["kill"], "", []),
    ],
)
def test_find_whole_words_ignoring_case_and_accents(phrases: list[str], text: str, expected: list[str]) -> None:
    assert compile_phrases(phrases).find(text) == expected


def test_a_matcher_keeps_its_phrases() -> None:
    assert compile_phrases(["a", "b"]).phrases == ("a", "b")
    assert compile_phrases([]).phrases == ()


def test_nested_phrases_still_compile() -> None:
    phrases = [" ".join(["a"] * count) for count in range(1, 51)]  # "a", "a a", ... up to 99 characters
    assert compile_phrases(phrases).find("a a a") == phrases[:3]


def test_phrases_that_grow_when_normalized_still_compile() -> None:
    # "ﷺ" decomposes to 18 characters: a 100-character phrase is 1,800 once normalized.
    phrases = check_phrases(["ﷺ" * 100, *("ﷺ" * count + "x" for count in range(1, 100))])
    assert compile_phrases(phrases).find("ﷺﷺx, " + "ﷺ" * 100) == [phrases[0], "ﷺﷺx"]


def test_hundreds_of_nested_phrases_still_compile() -> None:
    phrases = ["a" * count for count in range(1, 700)]  # too deep a tree for `re`: a flat alternation
    assert compile_phrases(phrases).find("aaa, aaaaa") == ["aaa", "aaaaa"]


def test_many_phrases_in_a_long_message() -> None:
    phrases = [f"word{index} phrase{index}" for index in range(MAX_PHRASES)]
    text = ("filler " * 1400) + "WORD499\nphrase499 and word7 phrase7"
    assert compile_phrases(phrases).find(text) == ["word7 phrase7", "word499 phrase499"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], []),
        (["kill"], ["kill"]),
        (["  hurt \n\t myself  "], ["hurt myself"]),
        (["Café", "cafe", "CAFÉ", "knife"], ["Café", "knife"]),
        (["hurt myself", "hurt  myself", "HURT\nMYSELF"], ["hurt myself"]),
        (["don't", "don’t"], ["don't"]),
        (["c++", "#tag", "убить"], ["c++", "#tag", "убить"]),
        (["x" * MAX_PHRASE_CHARS], ["x" * MAX_PHRASE_CHARS]),
        ([" " + "x" * MAX_PHRASE_CHARS + " "], ["x" * MAX_PHRASE_CHARS]),
        (["a" * MAX_PHRASE_CHARS for _ in range(MAX_PHRASES)], ["a" * MAX_PHRASE_CHARS]),
        ([f"p{index}" for index in range(MAX_PHRASES)], [f"p{index}" for index in range(MAX_PHRASES)]),
    ],
)
def test_check_phrases_cleans_the_list(raw: list[str], expected: list[str]) -> None:
    assert check_phrases(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message", "index"),
    [
        (None, "The phrases must be a list of words or phrases.", None),
        ("kill", "The phrases must be a list of words or phrases.", None),
        ({"kill": True}, "The phrases must be a list of words or phrases.", None),
        (("kill",), "The phrases must be a list of words or phrases.", None),
        (["x"] * (MAX_PHRASES + 1), f"A school can keep at most {MAX_PHRASES} words or phrases.", None),
        (["kill", 42], "Each phrase must be text.", 1),
        ([None], "Each phrase must be text.", 0),
        ([["kill"]], "Each phrase must be text.", 0),
        (["kill", ""], "A phrase cannot be empty.", 1),
        (["  \n\t "], "A phrase cannot be empty.", 0),
        (["x" * (MAX_PHRASE_CHARS + 1)], f"A phrase can be at most {MAX_PHRASE_CHARS} characters.", 0),
        (["ok", "a " * 51], f"A phrase can be at most {MAX_PHRASE_CHARS} characters.", 1),
        (["!!!"], "A phrase must contain at least one letter or number.", 0),
        (["kill", "... ?"], "A phrase must contain at least one letter or number.", 1),
        (["😡"], "A phrase must contain at least one letter or number.", 0),
    ],
)
def test_check_phrases_refusals(raw: Any, message: str, index: int | None) -> None:
    with pytest.raises(AppError) as info:
        check_phrases(raw)
    error = info.value
    assert error.code == "validation_failed"
    assert error.status == 422
    assert error.message == message
    assert error.details["field"] == "phrases"
    assert error.details.get("index") == index


def test_the_limits() -> None:
    assert safeguarding.MAX_PHRASES == 500
    assert safeguarding.MAX_PHRASE_CHARS == 100

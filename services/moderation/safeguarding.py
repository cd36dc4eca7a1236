"""Safeguarding flags as pure rules: a school's list of words and phrases, and finding them in a message.

A message that holds any of its school's phrases gets an automatic report. Phrases and messages are
compared in one normal form (:func:`normalize`): compatibility-decomposed, accents dropped, case-folded,
typographic apostrophes made plain. So "Café" finds "cafe", "STRASSE" finds "straße", "don't" finds
"DON’T". A phrase is found only as whole words: "kill" is in "Kill!" but not in "skill" or "killer",
and the words of a phrase may be apart by any run of spaces or line breaks, nothing else.

All phrases of a school are compiled into one regular expression (:func:`compile_phrases`), so a
message is read once however long the list is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from shared.errors import validation

MAX_PHRASES = 500
MAX_PHRASE_CHARS = 100

# Typographic apostrophes (and look-alikes people type for one) read as the plain one. The acute
# accent is mapped before decomposition, which would otherwise make it a space and a combining mark.
_APOSTROPHES = "\u2018\u2019\u201b\u02bc\u2032\u00b4\uff07"
_WHITESPACE = re.compile(r"\s+")
# Every combining mark beyond the BMP lies in this span (historic scripts, musical notation, Adlam);
# emoji and the CJK extensions lie outside it, so most messages never need the slow path.
_ASTRAL_MARK_SPAN = re.compile("[\U000101fd-\U0001e94a]")


def _plain_apostrophes(text: str) -> str:
    # A few str.replace calls: str.translate with a table is far slower on non-ASCII text.
    for apostrophe in _APOSTROPHES:
        if apostrophe in text:
            text = text.replace(apostrophe, "'")
    return text


def _has_astral(text: str) -> bool:
    """Whether `text` has characters beyond the BMP (emoji, historic scripts); cheaper than a regex scan."""
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def _drop_astral_marks(text: str) -> str:
    """`text` without the combining marks beyond the BMP, which `_combining_marks` leaves."""
    if not _has_astral(text) or not _ASTRAL_MARK_SPAN.search(text):
        return text
    return "".join(char for char in text if not unicodedata.combining(char))


@functools.cache
def _combining_marks() -> re.Pattern[str]:
    """Runs of the combining marks of the Basic Multilingual Plane (those with a combining class).

    Built once, on first use (~30 ms). Marks beyond the BMP are left to `_drop_astral_marks`: a
    character class holding them would be searched range by range, slowing every message.
    """
    points = [point for point in range(0x0300, 0x10000) if unicodedata.combining(chr(point))]
    return re.compile(f"[{_char_class(points)}]+")


def _char_class(points: list[int]) -> str:
    """The body of a regex character class holding exactly `points` (sorted), as ranges."""
    parts: list[str] = []
    index = 0
    while index < len(points):
        end = index
        while end + 1 < len(points) and points[end + 1] == points[end] + 1:
            end += 1
        first, last = chr(points[index]), chr(points[end])
        parts.append(re.escape(first) if first == last else f"{re.escape(first)}-{re.escape(last)}")
        index = end + 1
    return "".join(parts)


def normalize(text: str) -> str:
    """The form phrases and messages are compared in: NFKD, no combining marks, case-folded, plain apostrophes."""
    if text.isascii():
        return text.casefold()  # already decomposed, unaccented, and without typographic apostrophes
    text = unicodedata.normalize("NFKD", _plain_apostrophes(text)).casefold()
    # Case folding can build characters that decompose again ("İ" folds to "i" and a dot above).
    text = _combining_marks().sub("", unicodedata.normalize("NFKD", text))
    return _plain_apostrophes(_drop_astral_marks(text))


def _key(phrase: str) -> str:
    """A phrase's normal form with each run of whitespace as one space: how phrases are told apart."""
    return " ".join(normalize(phrase).split())


def _is_word(char: str) -> bool:
    """Part of a word: a letter, digit or underscore of any script (as `\\w`), or a mark joined to one."""
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


def _is_mark(char: str) -> bool:
    """A mark joined to a letter (a Devanagari vowel sign): part of a word, though `\\w` says not."""
    return not char.isascii() and unicodedata.category(char).startswith("M")


def check_phrases(raw: Any) -> list[str]:
    """A school's phrase list from an admin, cleaned: stripped, inner whitespace as one space, no repeats.

    Repeats are judged in the normal form ("Café" repeats "cafe") and the first spelling is kept.
    Refuses with ``validation_failed`` on the field ``phrases``, naming the phrase's index.
    """
    if not isinstance(raw, list):
        raise validation("The phrases must be a list of words or phrases.", field="phrases")
    if len(raw) > MAX_PHRASES:
        raise validation(
            f"A school can keep at most {MAX_PHRASES} words or phrases.",
            field="phrases",
            max=MAX_PHRASES,
            count=len(raw),
        )
    cleaned: list[str] = []
    seen: set[str] = set()
    for index, phrase in enumerate(raw):
        if not isinstance(phrase, str):
            raise validation("Each phrase must be text.", field="phrases", index=index)
        phrase = " ".join(phrase.split())
        if not phrase:
            raise validation("A phrase cannot be empty.", field="phrases", index=index)
        if len(phrase) > MAX_PHRASE_CHARS:
            raise validation(
                f"A phrase can be at most {MAX_PHRASE_CHARS} characters.",
                field="phrases",
                index=index,
                max=MAX_PHRASE_CHARS,
            )
        key = _key(phrase)
        if not any(char.isalnum() for char in key):
            raise validation("A phrase must contain at least one letter or number.", field="phrases", index=index)
        if key not in seen:
            seen.add(key)
            cleaned.append(phrase)
    return cleaned


def _alternative(key: str) -> str:
    """The regex for one key: its characters literally, its spaces as any run of whitespace."""
    return r"\s+".join(map(re.escape, key.split(" ")))


def _trie_pattern(keys: Sequence[str]) -> str:
    """One regex matching any of `keys`, as a tree of shared prefixes trying the longest first.

    A plain alternation of 500 phrases is tried phrase by phrase at every word start; the tree reads
    each character once. A space in a key stands for any run of whitespace. At each node the longer
    phrases come first (greedy ``?``), so the longest phrase starting at a place is the one matched.
    Groups nest only where phrases part or end, so a long phrase alone nests nothing.
    """
    root: dict[str, dict[str, Any]] = {}
    for key in keys:
        node = root
        for char in key:
            node = node.setdefault(char, {})
        node[""] = {}  # a phrase ends here

    def token(char: str) -> str:
        return r"\s+" if char == " " else re.escape(char)

    def emit(node: dict[str, dict[str, Any]]) -> str:
        chain: list[str] = []
        children = sorted((char, child) for char, child in node.items() if char)
        while len(children) == 1 and "" not in node:  # one way on: no group needed
            char, node = children[0]
            chain.append(token(char))
            children = sorted((char, child) for char, child in node.items() if char)
        if not children:
            return "".join(chain)
        branches = "|".join(token(char) + emit(child) for char, child in children)
        return "".join(chain) + "(?:" + branches + (")?" if "" in node else ")")

    return emit(root)


def _compile(keys: Sequence[str]) -> re.Pattern[str]:
    r"""The pattern finding the longest of `keys` at each word start, matches free to overlap.

    The lookahead lets matches overlap: "hurt myself" and "myself" are both in "hurt myself". `\w`
    leaves out marks joined to a letter (Devanagari vowel signs): `Matcher.find` checks those.
    """
    try:
        return re.compile(rf"(?<!\w)(?=({_trie_pattern(keys)})(?!\w))")
    except RecursionError:
        # Hundreds of phrases each a prefix of the next nest too deep for `re`: a plain
        # alternation, longest first, finds the same, only slower.
        flat = "|".join(map(_alternative, sorted(keys, key=len, reverse=True)))
        return re.compile(rf"(?<!\w)(?=({flat})(?!\w))")


class Matcher:
    """Finds a school's phrases in a message; build it with :func:`compile_phrases`."""

    def __init__(self, phrases: Sequence[str]) -> None:
        self._phrases = tuple(phrases)
        # Each normal form to the places in the list of the phrases that have it.
        self._places: dict[str, list[int]] = {}
        for place, phrase in enumerate(self._phrases):
            key = _key(phrase)
            if key:
                self._places.setdefault(key, []).append(place)
        # Each normal form to the places of the shorter phrases found wherever it is: its prefixes that
        # end before a non-word character ("hurt" in "hurt myself").
        self._shorter: dict[str, list[int]] = {
            key: [
                place
                for cut, char in enumerate(key)
                if cut and not _is_word(char)
                for place in self._places.get(key[:cut], ())
            ]
            for key in self._places
        }
        self._pattern = _compile(list(self._places)) if self._places else None

    @property
    def phrases(self) -> tuple[str, ...]:
        return self._phrases

    def find(self, text: str) -> list[str]:
        """The phrases found in `text`: original spelling, in list order, each once."""
        if self._pattern is None or not text:
            return []
        text = normalize(text)
        found: set[int] = set()
        for match in self._pattern.finditer(text):
            # The regex saw no `\w` on either side; a mark there still means the word goes on.
            start, end = match.span(1)
            if start and _is_mark(text[start - 1]):
                continue
            # The longest phrase that starts here; any shorter one that does too is a prefix of it.
            longest = _WHITESPACE.sub(" ", match.group(1))
            if end == len(text) or not _is_mark(text[end]):
                found.update(self._places.get(longest, ()))
            found.update(self._shorter.get(longest, ()))
        # dict.fromkeys keeps the first of a spelling listed twice.
        return list(dict.fromkeys(self._phrases[place] for place in sorted(found)))


def compile_phrases(phrases: Sequence[str]) -> Matcher:
    """One matcher for a school's phrases; with none, a matcher that never finds anything."""
    return Matcher(phrases)

"""What may be sent, judged by content, and what a file is called."""

from __future__ import annotations

import pytest

from services.attachments import domain
from shared.errors import AppError

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(56)
PE = b"MZ" + bytes(100)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(PDF, "application/pdf"), (b"Plain words.\n", "text/plain"), (ELF, None), (PE, "application/x-dosexec")],
)
def test_the_type_comes_from_the_content(content: bytes, expected: str | None) -> None:
    sniffed = domain.sniff(content)
    if expected is not None:
        assert sniffed == expected
    assert not (content in (ELF, PE) and domain.matches(sniffed, domain.DEFAULT_ALLOWED))


@pytest.mark.parametrize(
    "content", [ELF, PE, b"#!/bin/sh\necho hi\n", b"<html><script>alert(1)</script></html>", b"<?php echo 1; ?>\n"]
)
def test_executables_scripts_and_pages_are_refused_whatever_they_are_called(content: bytes) -> None:
    with pytest.raises(AppError) as refused:
        domain.check_file("report.pdf", len(content), domain.sniff(content), domain.DEFAULT_ALLOWED)
    assert refused.value.code == "unsupported_file_type"
    assert refused.value.message == "Sorry, you can't send report.pdf"


def test_documents_pass_and_an_empty_file_does_not() -> None:
    domain.check_file("a.pdf", len(PDF), domain.sniff(PDF), domain.DEFAULT_ALLOWED)
    with pytest.raises(AppError) as empty:
        domain.check_file("a.txt", 0, "application/x-empty", domain.DEFAULT_ALLOWED)
    assert empty.value.code == "validation_failed" and empty.value.message == "a.txt is empty."


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\homework.docx", "homework.docx"),
        ("notes\x00.txt", "notes.txt"),
        ("line\nbreak\r.txt", "linebreak.txt"),
        ("  spaced.pdf  ", "spaced.pdf"),
        ("Cafe\u0301.txt", "Café.txt"),
        ("\u202eexe.txt", "exe.txt"),
    ],
)
def test_names_lose_folders_and_control_characters(raw: str, clean: str) -> None:
    assert domain.clean_name(raw) == clean


@pytest.mark.parametrize("raw", [None, "", "   ", "..", "../", "/", "\x00\x01", 42])
def test_a_name_that_is_nothing_is_refused(raw: object) -> None:
    with pytest.raises(AppError) as refused:
        domain.clean_name(raw)
    assert refused.value.code == "validation_failed"


def test_a_very_long_name_is_shortened_keeping_its_extension() -> None:
    name = domain.clean_name("x" * 1000 + ".pdf")
    assert len(name) <= domain.MAX_NAME_CHARS and name.endswith(".pdf")

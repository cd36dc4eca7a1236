"""The attachment rules: which files may be sent (judged by their content), their names, how they are served."""

from __future__ import annotations

import fnmatch
import unicodedata
from typing import Any

import magic

from shared.config import Settings
from shared.errors import AppError, validation

MAX_FILE_BYTES = 20 * 1024 * 1024
# libmagic decides from the start of a file; office documents (zip containers) need a little room.
SNIFF_BYTES = 256 * 1024
MAX_NAME_CHARS = 255

# The allow-lists are settings (ATTACHMENT_TYPES, ATTACHMENT_INLINE_TYPES); these are their defaults.
DEFAULT_ALLOWED = Settings().attachment_types
DEFAULT_INLINE = Settings().attachment_inline_types


def sniff(head: bytes) -> str:
    """The content type libmagic reads from the first bytes of a file."""
    return magic.from_buffer(head, mime=True) or "application/octet-stream"


def matches(content_type: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, p) for p in patterns)


def refused(name: str) -> AppError:
    return AppError("unsupported_file_type", f"Sorry, you can't send {name}", {"name": name})


def clean_name(raw: Any) -> str:
    """A file name fit to show and to save: no folders, no control characters, at most 255 characters.

    A name that is nothing but folders or dots, or not text at all, is refused.
    """
    if not isinstance(raw, str):
        raise validation("Every file needs a name.", field="name")
    # Whatever came before the last separator is a folder of the sender's machine.
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = unicodedata.normalize("NFC", name).strip().strip(".").strip()
    if not name:
        raise validation("Every file needs a name.", field="name")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 16 else ""
        name = name[: MAX_NAME_CHARS - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name


def check_file(name: str, size: int, content_type: str, allowed: tuple[str, ...]) -> None:
    """Refuse an empty file, or one whose real type is not on the allow-list."""
    if size <= 0:
        raise AppError("validation_failed", f"{name} is empty.", {"name": name, "field": "file"})
    if size > MAX_FILE_BYTES:
        raise AppError("file_too_large", f"{name} is larger than 20 MB.", {"name": name})
    if not matches(content_type, allowed):
        raise refused(name)

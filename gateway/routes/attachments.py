"""Files (F19, F20): uploads streamed part by part into the blob store, downloads streamed back out.

An upload is never held whole in memory: the multipart body is decoded as it is read, and each
file part flows straight into the blob store. Downloads are served with headers that keep a
browser from running or sniffing anything, and honour a single byte range.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Event, Field, File, MultipartDecoder, Preamble, State

from gateway.web import call, settings
from shared.blobs import BlobNotFound, BlobStore, BlobTooLarge, blob_store, new_key
from shared.errors import AppError, not_found, validation

bp = Blueprint("attachments", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# Room for a preamble or one part's headers; the decoder's buffer never holds more than this plus a chunk.
MAX_HEADER_BYTES = 64 * 1024
FILE_FIELD = "file"
# The longest file name put in a header (names are at most 255 characters; percent-encoding triples them).
MAX_HEADER_NAME_CHARS = 200
_SAFE_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\"-]+)*")


# --- Multipart, decoded as it is read ---------------------------------------------------------------


class MultipartError(ValueError):
    """The body is not multipart/form-data we can read."""


class MultipartTruncated(MultipartError):
    """The body ended before the closing boundary."""


_PENDING_SUFFIX = re.compile(rb"-|[ \t]*")
# A backslash, with the character after it when the two make an RFC 9110 escape (\\ or \").
_BACKSLASH = re.compile(rb'\\[\\"]?')


def _keep_backslashes(data: bytes) -> bytes:
    """Header bytes in which a backslash that escapes nothing stands for itself.

    Browsers, curl and urllib3 send a file name as the HTML standard's form encoding says: quotes
    as %22, backslashes as they are. Werkzeug reads every backslash as an escape and drops it, so
    `C:\\a\\b.png` would lose its folders and arrive as `C:ab.png`. Doubling each backslash that
    is not already `\\\\` or `\\"` keeps it, and leaves names escaped the RFC 9110 way as they were."""
    return _BACKSLASH.sub(lambda m: m.group() if len(m.group()) == 2 else b"\\\\", data)


class _Decoder(MultipartDecoder):
    """Werkzeug's decoder with three repairs: part headers that are not UTF-8 are read as ISO-8859-1
    instead of refused; a backslash in a file name that escapes nothing is kept (`_keep_backslashes`);
    and a read that ends a few bytes into a boundary no longer adds a stray CR to the file before
    it (werkzeug 3.1.9 releases the CR of "\\r\\n--boundary-" as data)."""

    def _parse_headers(self, data: bytes | bytearray) -> Headers:
        data = bytes(data)
        try:
            data.decode()
        except UnicodeDecodeError:
            data = data.decode("latin-1").encode()
        return super()._parse_headers(_keep_backslashes(data))

    def _last_partial_boundary_index(self, data: bytes | bytearray) -> int:
        """Where the bytes that may still become a boundary begin: `len(data)` when none may.

        A boundary not yet complete is a line break, then a prefix of "--boundary", or all of it
        followed by "-" or padding; past its line break it holds no CR or LF, so only the last line
        break in the data can start one."""
        last = max(data.rfind(b"\r"), data.rfind(b"\n"))
        if last < 0:
            return len(data)
        start = last - 1 if data[last : last + 1] == b"\n" and data[last - 1 : last] == b"\r" else last
        rest = bytes(data[last + 1 :])
        delimiter = b"--" + self.boundary
        if delimiter.startswith(rest) or (
            rest.startswith(delimiter) and _PENDING_SUFFIX.fullmatch(rest[len(delimiter) :])
        ):
            return start
        return len(data)


@dataclass
class Part:
    """One part of the body: its field name, its file name (None for a plain field) and its data."""

    name: str | None
    filename: str | None
    headers: Headers
    _reader: MultipartReader = field(repr=False)
    _number: int = field(repr=False)

    def chunks(self) -> Iterator[bytes]:
        """The part's data as it arrives; valid only until the next part is asked for."""
        return self._reader._data(self._number)


class MultipartReader:
    """Pull adapter over the sans-IO decoder: `parts()` yields parts in order, and iterating a part's
    `chunks()` reads just enough of the body for its next piece. The body is read once, front to back,
    `chunk_size` bytes at a time; nothing is buffered beyond one chunk and one part's headers.

    `read(n)` returns up to n bytes, b"" at the end. Errors: `MultipartTruncated` when the body stops
    early, `MultipartError` when it is not valid multipart; whatever `read` raises passes through.
    """

    def __init__(self, read: Callable[[int], bytes], boundary: bytes, *, chunk_size: int = CHUNK_BYTES) -> None:
        if not boundary or len(boundary) > 200:
            raise MultipartError("The multipart boundary is missing or too long.")
        self._read = read
        self._chunk_size = chunk_size
        self._decoder = _Decoder(boundary, max_form_memory_size=chunk_size + MAX_HEADER_BYTES)
        self._ended = False  # the body has been read to its end
        self._number = 0  # the current part, counted from 1
        self._in_data = False  # the current part's data is not yet all read

    def parts(self) -> Iterator[Part]:
        while True:
            self._skip_data()
            if self._decoder.state == State.EPILOGUE:
                # The closing boundary has been read; whatever follows it is ignored, and not read.
                return
            event = self._event()
            if isinstance(event, Preamble):
                continue
            if isinstance(event, Epilogue):
                return
            if not isinstance(event, (File, Field)):  # pragma: no cover - the decoder's states rule it out
                raise MultipartError(f"Unexpected {type(event).__name__} in the body.")
            self._number += 1
            self._in_data = True
            yield Part(
                name=event.name,
                filename=event.filename if isinstance(event, File) else None,
                headers=event.headers,
                _reader=self,
                _number=self._number,
            )

    def _data(self, number: int) -> Iterator[bytes]:
        if number != self._number:
            raise RuntimeError("This part's data is gone: a later part has been read.")
        while self._in_data:
            event = self._event()
            if not isinstance(event, Data):  # pragma: no cover - the decoder's states rule it out
                raise MultipartError(f"Unexpected {type(event).__name__} in a part's data.")
            if not event.more_data:
                self._in_data = False
            if event.data:
                yield event.data

    def _skip_data(self) -> None:
        for _ in self._data(self._number):
            pass

    def _event(self) -> Event:
        while True:
            try:
                event = self._decoder.next_event()
            except ValueError as exc:  # includes a header that cannot be decoded
                if self._ended:
                    raise MultipartTruncated("The body ended too soon.") from None
                raise MultipartError(str(exc)) from None
            if event is not NEED_DATA:
                return event
            chunk = self._read(self._chunk_size)
            if not chunk:
                self._ended = True
            try:
                self._decoder.receive_data(chunk or None)
            except RequestEntityTooLarge:
                raise MultipartError("A part's headers are too long.") from None


# --- Downloads: ranges and names --------------------------------------------------------------------


class RangeNotSatisfiable(Exception):
    """A well-formed range that lies wholly outside the file."""


_RANGE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)", re.IGNORECASE)
_MULTI_RANGE = re.compile(r"bytes\s*=.*,", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range `header` asks for, as (start, end) with end inclusive and clipped to the
    file; None to send the whole file (no header, another unit, several ranges, or a malformed one,
    which RFC 9110 lets a server ignore). Raises RangeNotSatisfiable when no byte of it exists."""
    if not header:
        return None
    header = header.strip()
    if _MULTI_RANGE.match(header):
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if first and last:
        start, end = int(first), int(last)
        if end < start:
            return None
    elif first:
        start, end = int(first), size - 1
    elif last:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        start, end = max(0, size - suffix), size - 1
    else:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


def _shorten(name: str, limit: int) -> str:
    """At most `limit` characters, cutting the stem and keeping a short extension."""
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= 16:
        return stem[: limit - len(extension) - 1] + "." + extension
    return name[:limit]


def _clean_for_header(name: str) -> str:
    """The name with control characters dropped and path separators replaced; "download" if empty."""
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Zl", "Zp"})
    name = name.replace("/", "_").replace("\\", "_").strip()
    return _shorten(name, MAX_HEADER_NAME_CHARS) or "download"


def _ascii_fallback(name: str) -> str:
    """The name for clients that ignore `filename*`: accents dropped, other non-ASCII and quotes as "_"."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    return "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in folded)


def content_disposition(name: str, *, inline: bool = False) -> str:
    """`attachment` (or `inline`) with an ASCII `filename` and the exact UTF-8 `filename*` (RFC 6266)."""
    name = _clean_for_header(name)
    encoded = quote(name.encode("utf-8", "replace"), safe="")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"


def _content_type(value: Any) -> str:
    if isinstance(value, str) and _SAFE_CONTENT_TYPE.fullmatch(value.strip()):
        return value.strip()
    return "application/octet-stream"


# --- Routes -----------------------------------------------------------------------------------------


@dataclass
class _Uploads:
    """What one upload request has made so far, so a failure can take all of it back."""

    store: BlobStore
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, part: Part) -> None:
        name = part.filename or ""
        key = new_key()
        try:
            # A put that fails, for whatever reason, leaves nothing stored.
            size = self.store.put(key, part.chunks(), max_bytes=MAX_FILE_BYTES)
        except BlobTooLarge:
            raise AppError("file_too_large", f"{name} is larger than 20 MB.", {"name": name}) from None
        try:
            item = call("attachments", "attachments.register", {"key": key, "name": name, "size": size})
        except BaseException:
            # A refused file's blob is already gone; after a timeout the service may or may not have
            # the row, but an id the client never learns cannot be used, and the blob must not linger.
            self._delete(key)
            raise
        self.items.append(item)

    def undo(self) -> None:
        if not self.items:
            return
        try:
            call("attachments", "attachments.discard", {"ids": [item["id"] for item in self.items]})
        except Exception:
            log.exception("could not discard %d uploads of a failed request", len(self.items))

    def _delete(self, key: str) -> None:
        try:
            self.store.delete(key)  # idempotent: a blob already gone is no error
        except Exception:
            log.exception("could not delete blob %s of a failed upload", key)


def _store() -> BlobStore:
    """The app's blob store, made once (an S3 store holds a client worth reusing)."""
    store = current_app.extensions.get("blob_store")
    if store is None:
        store = current_app.extensions["blob_store"] = blob_store(settings())
    return store


def _boundary() -> bytes:
    if request.mimetype != "multipart/form-data":
        raise AppError("malformed_request", "Send the files as multipart/form-data.")
    boundary = request.mimetype_params.get("boundary", "")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise AppError("malformed_request", "The multipart boundary is not valid.") from None


def _receive(uploads: _Uploads, reader: MultipartReader, max_files: int) -> None:
    for part in reader.parts():
        if part.name != FILE_FIELD:
            raise validation(f'Send each file as a part named "{FILE_FIELD}".', field=part.name)
        if part.filename is None:
            raise validation("Every file needs a file name.", field=FILE_FIELD)
        if len(uploads.items) >= max_files:
            raise validation(f"You can send at most {max_files} files at a time.", max_files=max_files)
        uploads.add(part)
    if not uploads.items:
        raise validation("Choose at least one file.", field=FILE_FIELD)


@bp.post("/attachments")
def upload() -> Any:
    """Upload files (multipart/form-data, one or more `file` parts, each at most 20 MiB).

    Answers 201 `{"items": [{id, name, size, content_type}, ...]}` to use as a message's
    `attachment_ids`. All or nothing: when one file is refused (`unsupported_file_type`,
    `file_too_large`), none of them is kept."""
    s = settings()
    # This route streams its body and has its own limits, per file and file count, instead of the
    # gateway's cap on request bodies; the total stays bounded all the same.
    request.max_content_length = s.max_upload_files * (MAX_FILE_BYTES + MAX_HEADER_BYTES) + MAX_HEADER_BYTES
    uploads = _Uploads(_store())
    try:
        try:
            reader = MultipartReader(request.stream.read, _boundary())
            _receive(uploads, reader, s.max_upload_files)
        except BaseException:
            uploads.undo()
            raise
    except (MultipartTruncated, ClientDisconnected):
        raise AppError("malformed_request", "The upload was cut off before its end.") from None
    except MultipartError:
        raise AppError("malformed_request", "The upload is not valid multipart/form-data.") from None
    return {"items": uploads.items}, 201


def _range_not_satisfiable(size: int) -> Response:
    error = AppError("malformed_request", "That part of the file does not exist.", {"size": size})
    response = jsonify({"error": error.to_dict()})
    response.status_code = 416
    response.headers["Content-Range"] = f"bytes */{size}"
    response.headers["Accept-Ranges"] = "bytes"
    return response


@bp.get("/attachments/<attachment_id>")
def download(attachment_id: str) -> Response:
    """Download a file sent in a conversation the caller takes part in.

    Served as a download (`Content-Disposition: attachment`) unless it is safe to show inline;
    a single `Range: bytes=...` is answered with 206."""
    meta = call("attachments", "attachments.open", {"id": attachment_id})
    store = _store()
    try:
        size = store.size(meta["key"])
        status = 200
        start, end = 0, size - 1
        if "If-Range" not in request.headers:  # no validators here, so an If-Range never matches
            try:
                wanted = parse_range(request.headers.get("Range"), size)
            except RangeNotSatisfiable:
                return _range_not_satisfiable(size)
            if wanted is not None:
                status = 206
                start, end = wanted
        # HEAD gets the headers only, so the blob is not opened for it.
        chunks = store.read(meta["key"], start, end) if size and request.method != "HEAD" else iter(())
    except BlobNotFound:
        log.error("attachment %s has no blob", attachment_id)
        raise not_found("attachment") from None
    response = Response(chunks, status=status, direct_passthrough=True)
    response.headers["Content-Type"] = _content_type(meta.get("content_type"))
    response.headers["Content-Length"] = str(end - start + 1)
    response.headers["Content-Disposition"] = content_disposition(
        str(meta.get("name") or ""), inline=bool(meta.get("inline"))
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Accept-Ranges"] = "bytes"
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response

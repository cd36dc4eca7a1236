"""The gateway's side of attachments: multipart bodies decoded as they stream in, byte ranges, download names,
and the upload route's all-or-nothing bookkeeping against an in-memory blob store and a stand-in service."""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient

from gateway.app import create_app
from gateway.routes import attachments as routes
from gateway.routes.attachments import (
    MultipartError,
    MultipartReader,
    MultipartTruncated,
    RangeNotSatisfiable,
    content_disposition,
    parse_range,
)
from shared.auth import issue_token
from shared.blobs import BlobNotFound, BlobTooLarge
from shared.config import Settings
from shared.errors import AppError

BOUNDARY = b"----form-boundary-7MA4YWxkTrZu0gW"


def part(name: str | None, filename: bytes | None, data: bytes, *, extra: bytes = b"") -> bytes:
    disposition = b"Content-Disposition: form-data"
    if name is not None:
        disposition += b'; name="' + name.encode() + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    return b"--" + BOUNDARY + b"\r\n" + disposition + b"\r\n" + extra + b"Content-Type: x/y\r\n\r\n" + data + b"\r\n"


def multipart(*parts: bytes, epilogue: bytes = b"") -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n" + epilogue


def reads(body: bytes, sizes: Iterable[int]) -> Callable[[int], bytes]:
    """A `read(n)` over `body` that hands out at most the next of `sizes` bytes per call."""
    stream = io.BytesIO(body)
    sizes = iter(sizes)
    return lambda n: stream.read(min(n, next(sizes, n)))


def decode(read: Callable[[int], bytes], *, chunk_size: int = 64 * 1024) -> list[tuple[str | None, str | None, bytes]]:
    reader = MultipartReader(read, BOUNDARY, chunk_size=chunk_size)
    return [(p.name, p.filename, b"".join(p.chunks())) for p in reader.parts()]


# Bytes that look like the start of a boundary, a lone CR or LF, and data ending in a line break.
TRICKY = b"line\r\n--" + BOUNDARY[:-3] + b"\r\n--" + BOUNDARY + b"X\r\n\r\r\n\n-" + b"\r\n"
FILES = [
    ("file", "notes.txt", b"hello"),
    ("file", "empty.bin", b""),
    ("file", "tricky.dat", TRICKY),
    ("file", "bigger.bin", bytes(range(256)) * 40),
]
BODY = multipart(*(part(n, f.encode(), d) for n, f, d in FILES))
SMALL_FILES = FILES[:3]
SMALL_BODY = multipart(*(part(n, f.encode(), d) for n, f, d in SMALL_FILES))


# --- The multipart stream ------------------------------------------------------------------------------


def test_several_files_come_out_whole_and_in_order() -> None:
    assert decode(io.BytesIO(BODY).read) == FILES


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64, 1000])
def test_any_read_size_gives_the_same_parts(chunk_size: int) -> None:
    assert decode(io.BytesIO(BODY).read, chunk_size=chunk_size) == FILES


def test_a_split_anywhere_in_the_body_gives_the_same_parts() -> None:
    # Every place a read can end: inside headers, line breaks, data and each boundary.
    for cut in range(1, len(SMALL_BODY)):
        assert decode(reads(SMALL_BODY, [cut])) == SMALL_FILES, cut


def test_a_read_ending_inside_a_boundary_adds_nothing_to_the_file() -> None:
    # werkzeug 3.1.9 on its own gives b"ab\r" here: the boundary's CR leaks into the data.
    body = multipart(part("file", b"a.txt", b"ab"))
    cut = body.index(b"\r\n--" + BOUNDARY) + len(BOUNDARY) + 5
    assert decode(reads(body, [cut])) == [("file", "a.txt", b"ab")]


def test_short_reads_of_uneven_sizes_give_the_same_parts() -> None:
    for sizes in ([1, 2, 3], [5, 1], [13, 1, 1, 40], [len(BOUNDARY) + 3, 1]):
        assert decode(reads(BODY, itertools.cycle(sizes))) == FILES, sizes


def test_a_big_file_streams_in_pieces_no_larger_than_a_read() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    reader = MultipartReader(io.BytesIO(multipart(part("file", b"big.bin", data))).read, BOUNDARY, chunk_size=4096)
    (only,) = list(itertools.islice(reader.parts(), 1))
    pieces = list(only.chunks())
    assert b"".join(pieces) == data
    assert len(pieces) > 200
    assert max(len(p) for p in pieces) <= 4096


def test_the_body_is_read_once_front_to_back_and_not_past_the_closing_boundary() -> None:
    body = multipart(part("file", b"a.txt", b"abc"), epilogue=b"ignored")
    stream = io.BytesIO(body)
    reader = MultipartReader(stream.read, BOUNDARY, chunk_size=4)
    assert [(p.filename, b"".join(p.chunks())) for p in reader.parts()] == [("a.txt", b"abc")]
    assert stream.tell() <= len(body) - len(b"ignored") + 4


def test_a_part_whose_data_is_not_read_is_skipped() -> None:
    reader = MultipartReader(io.BytesIO(BODY).read, BOUNDARY, chunk_size=16)
    assert [p.filename for p in reader.parts()] == [f for _, f, _ in FILES]


def test_a_parts_data_is_gone_once_the_next_part_is_read() -> None:
    reader = MultipartReader(io.BytesIO(BODY).read, BOUNDARY)
    parts = reader.parts()
    first = next(parts)
    second = next(parts)
    assert b"".join(second.chunks()) == b""
    with pytest.raises(RuntimeError):
        list(first.chunks())


def test_a_truncated_body_is_noticed_wherever_it_stops() -> None:
    closing = SMALL_BODY.rindex(b"--" + BOUNDARY + b"--") + len(BOUNDARY) + 4
    for cut in range(closing):
        with pytest.raises(MultipartTruncated):
            decode(reads(SMALL_BODY[:cut], [7]))
    assert decode(io.BytesIO(SMALL_BODY[:closing]).read) == SMALL_FILES  # the last line break is optional


def test_a_truncated_file_fails_while_its_data_is_read() -> None:
    body = part("file", b"cut.bin", b"x" * 1000)[:-200]
    reader = MultipartReader(io.BytesIO(body).read, BOUNDARY, chunk_size=100)
    (cut,) = list(itertools.islice(reader.parts(), 1))
    chunks = cut.chunks()
    assert next(chunks)
    with pytest.raises(MultipartTruncated):
        list(chunks)


def test_a_part_without_a_file_name_is_a_plain_field() -> None:
    body = multipart(part("file", None, b"not a file"), part(None, b"x.txt", b"x"))
    assert decode(io.BytesIO(body).read) == [("file", None, b"not a file"), (None, "x.txt", b"x")]


def test_file_names_are_passed_on_as_they_came() -> None:
    body = multipart(
        part("file", "ünï 日本.pdf".encode(), b"1"),
        part("file", b"..\\\\..\\\\evil/../x.exe", b"2"),  # backslashes escaped in the quoted name
        part("file", b"caf\xe9.txt", b"3"),  # ISO-8859-1, not UTF-8
        part("file", b"", b"4"),
    )
    names = [f for _, f, _ in decode(io.BytesIO(body).read)]
    assert names == ["ünï 日本.pdf", "..\\..\\evil/../x.exe", "café.txt", ""]


def test_an_encoded_file_name_is_decoded() -> None:
    header = b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\n"
    body = b"--" + BOUNDARY + b"\r\n" + header + b"data\r\n--" + BOUNDARY + b"--\r\n"
    assert decode(io.BytesIO(body).read) == [("file", "€ rates.txt", b"data")]


@pytest.mark.parametrize(
    "body",
    [
        b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--" + BOUNDARY + b"--\r\n",
        part("file", b"a", b"x", extra=b"X-Long: " + b"h" * 200_000 + b"\r\n"),
    ],
    ids=["no content-disposition", "endless headers"],
)
def test_a_body_that_is_not_multipart_is_refused(body: bytes) -> None:
    with pytest.raises(MultipartError):
        decode(io.BytesIO(body).read)


def test_a_body_with_no_boundary_at_all_ends_too_soon() -> None:
    with pytest.raises(MultipartTruncated):
        decode(io.BytesIO(b"just some bytes").read)
    with pytest.raises(MultipartTruncated):
        decode(io.BytesIO(b"").read)


def test_an_empty_form_has_no_parts() -> None:
    assert decode(io.BytesIO(multipart()).read) == []


# --- Ranges --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=10-10", (10, 10)),
        ("bytes=990-2000", (990, 999)),  # clipped to the file
        ("bytes=500-", (500, 999)),
        ("bytes=0-", (0, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),  # more than the file: all of it
        ("Bytes = 1 - 2", (1, 2)),
        ("  bytes=999-999  ", (999, 999)),
    ],
)
def test_a_single_range_is_served(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-1",  # backwards
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-",
        "bytes=1.5-2",
        "items=0-10",
        "0-10",
        "bytes 0-10",
        "bytes=0-10, 20-30",  # several ranges: the whole file
        "bytes=-1,-1",
    ],
)
def test_anything_else_gets_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000)])
def test_a_range_outside_the_file_cannot_be_served(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-1"])
def test_no_range_of_an_empty_file_can_be_served(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 0)


# --- Download names ------------------------------------------------------------------------------------


def disposition_names(header: str) -> tuple[str, str, str]:
    kind, fallback, encoded = header.split("; ")
    assert fallback.startswith('filename="') and fallback.endswith('"')
    assert encoded.startswith("filename*=UTF-8''")
    return kind, fallback[len('filename="') : -1], unquote(encoded[len("filename*=UTF-8''") :], errors="strict")


def test_a_plain_name() -> None:
    assert content_disposition("report 2024.pdf") == (
        "attachment; filename=\"report 2024.pdf\"; filename*=UTF-8''report%202024.pdf"
    )


def test_inline_files_say_so() -> None:
    assert content_disposition("photo.png", inline=True).startswith('inline; filename="photo.png"; ')


def test_non_ascii_names_are_exact_in_filename_star_and_folded_in_the_fallback() -> None:
    kind, fallback, exact = disposition_names(content_disposition("Übung für Schüler 日本.pdf"))
    assert (kind, exact) == ("attachment", "Übung für Schüler 日本.pdf")
    assert fallback == "Ubung fur Schuler __.pdf"


@pytest.mark.parametrize(
    ("name", "fallback", "exact"),
    [
        ('say "hi".txt', "say _hi_.txt", 'say "hi".txt'),
        ("back\\slash;semi,comma=eq.txt", "back_slash;semi,comma=eq.txt", "back_slash;semi,comma=eq.txt"),
        ("100%.txt", "100_.txt", "100%.txt"),
        ("../../etc/passwd", ".._.._etc_passwd", ".._.._etc_passwd"),
        ("evil\r\nSet-Cookie: x=1.txt", "evilSet-Cookie: x=1.txt", "evilSet-Cookie: x=1.txt"),
        ("tab\there\u202egnp.exe", "tabheregnp.exe", "tabheregnp.exe"),
        ("", "download", "download"),
        ("\x00\x01", "download", "download"),
        ("bad\udcffsurrogate.txt", "badsurrogate.txt", "badsurrogate.txt"),
    ],
)
def test_names_are_made_safe_for_a_header(name: str, fallback: str, exact: str) -> None:
    header = content_disposition(name)
    assert all(" " <= ch <= "~" for ch in header)
    assert disposition_names(header)[1:] == (fallback, exact)


def test_very_long_names_are_cut_but_keep_their_extension() -> None:
    for name in ["a" * 1000 + ".docx", "日" * 255 + ".pdf"]:
        header = content_disposition(name)
        _, fallback, exact = disposition_names(header)
        assert exact.endswith(".docx" if name.endswith("docx") else ".pdf")
        assert len(exact) <= 200 and len(fallback) <= 200
        assert len(header) < 2500  # well inside a proxy's 4 KiB buffer for response headers
    _, _, exact = disposition_names(content_disposition("x" * 300))
    assert exact == "x" * 200


# --- The routes, with an in-memory blob store and a stand-in attachments service --------------------


class MemoryStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> int:
        data = b""
        for chunk in chunks:
            data += chunk
            if len(data) > max_bytes:
                raise BlobTooLarge(key)
        self.blobs[key] = data
        return len(data)

    def size(self, key: str) -> int:
        if key not in self.blobs:
            raise BlobNotFound(key)
        return len(self.blobs[key])

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        data = self.blobs[key] if key in self.blobs else None
        if data is None:
            raise BlobNotFound(key)
        end = len(data) - 1 if end is None else end
        return iter([data[start : end + 1]])

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def keys(self) -> list[str]:
        return list(self.blobs)


class Service:
    """Registers any file whose content does not start with "EXE"; remembers what it holds."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rows: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def __call__(self, service: str, method: str, params: dict[str, Any]) -> Any:
        assert service == "attachments"
        self.calls.append(method)
        if method == "attachments.register":
            if self.store.blobs[params["key"]].startswith(b"EXE"):
                self.store.delete(params["key"])
                raise AppError("unsupported_file_type", f"Sorry, you can't send {params['name']}")
            row = {"id": f"att-{len(self.rows) + 1}", "name": params["name"], "size": params["size"]}
            self.rows[row["id"]] = {**row, "content_type": "text/plain", "key": params["key"]}
            return {**row, "content_type": "text/plain"}
        if method == "attachments.discard":
            for id_ in params["ids"]:
                self.store.delete(self.rows.pop(id_)["key"])
            return {}
        if method == "attachments.open":
            if params["id"] not in self.rows:
                raise AppError("not_found", "No such attachment.")
            return {**self.rows[params["id"]], "inline": False}
        raise AssertionError(method)


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings(), max_upload_files=4, rpc_timeout_seconds=0.2)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    memory = MemoryStore()
    monkeypatch.setattr(routes, "blob_store", lambda settings: memory)
    return memory


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, store: MemoryStore) -> Service:
    stand_in = Service(store)
    monkeypatch.setattr(routes, "call", stand_in)
    return stand_in


@pytest.fixture
def client(settings: Settings) -> FlaskClient:
    client = create_app(settings).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(settings, 'user-s-001')}"
    return client


def post(client: FlaskClient, body: bytes) -> Any:
    content_type = "multipart/form-data; boundary=" + BOUNDARY.decode()
    return client.post(
        "/api/v1/attachments", input_stream=io.BytesIO(body), content_length=len(body), content_type=content_type
    )


def test_uploads_are_stored_and_registered(client: FlaskClient, store: MemoryStore, service: Service) -> None:
    response = post(client, BODY)
    assert response.status_code == 201, response.json
    assert [item["name"] for item in response.json["items"]] == [f for _, f, _ in FILES]
    assert sorted(store.blobs.values()) == sorted(d for _, _, d in FILES)


def test_uploads_are_not_held_to_the_json_body_limit(client: FlaskClient, store: MemoryStore, service: Service) -> None:
    data = b"x" * (3 * 1024 * 1024)
    assert post(client, multipart(part("file", b"big.txt", data))).status_code == 201
    assert list(store.blobs.values()) == [data]
    # Every other route keeps the limit.
    response = client.post("/api/v1/conversations", data=b"{" * (2 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (multipart(part("file", b"a.txt", b"a"), part("file", b"run.exe", b"EXE!")), 422, "unsupported_file_type"),
        (
            multipart(part("file", b"a.txt", b"a"), part("file", b"huge.bin", b"x" * (20 * 1024 * 1024 + 1))),
            413,
            "file_too_large",
        ),
        (multipart(*[part("file", f"{i}.txt".encode(), b"a") for i in range(5)]), 422, "validation_failed"),
        (multipart(part("file", b"a.txt", b"a"), part("other", b"b.txt", b"b")), 422, "validation_failed"),
        (multipart(part("file", b"a.txt", b"a"), part("file", None, b"b")), 422, "validation_failed"),
        (multipart(part("file", b"a.txt", b"a"), part("file", b"b.txt", b"b"))[:-30], 400, "malformed_request"),
        (multipart(), 422, "validation_failed"),
        (b"", 400, "malformed_request"),
    ],
    ids=["refused type", "too large", "too many", "other part", "no file name", "truncated", "no files", "empty"],
)
def test_a_failed_upload_leaves_nothing_behind(
    client: FlaskClient, store: MemoryStore, service: Service, body: bytes, status: int, code: str
) -> None:
    response = post(client, body)
    assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert store.blobs == {}
    assert service.rows == {}


def test_a_file_too_large_is_named(client: FlaskClient, store: MemoryStore, service: Service) -> None:
    response = post(client, multipart(part("file", b"movie.mp4", b"x" * (20 * 1024 * 1024 + 1))))
    assert response.json["error"]["message"] == "movie.mp4 is larger than 20 MB."
    assert response.json["error"]["details"] == {"name": "movie.mp4"}
    assert service.calls == []


def test_an_upload_must_be_multipart(client: FlaskClient, store: MemoryStore, service: Service) -> None:
    response = client.post("/api/v1/attachments", json={"file": "x"})
    assert (response.status_code, response.json["error"]["code"]) == (400, "malformed_request")


def test_uploads_need_a_token(settings: Settings) -> None:
    response = create_app(settings).test_client().post("/api/v1/attachments", data=BODY)
    assert response.status_code == 401


def test_a_download_is_served_safely(client: FlaskClient, store: MemoryStore, service: Service) -> None:
    (item,) = post(client, multipart(part("file", 'résumé \\"v2\\".txt'.encode(), b"0123456789"))).json["items"]
    response = client.get(f"/api/v1/attachments/{item['id']}")
    assert response.status_code == 200
    assert response.data == b"0123456789"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"resume _v2_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.txt"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Accept-Ranges"] == "bytes"
    head = client.head(f"/api/v1/attachments/{item['id']}")
    assert (head.status_code, head.data, head.headers["Content-Length"]) == (200, b"", "10")


def test_a_download_honours_one_range(client: FlaskClient, store: MemoryStore, service: Service) -> None:
    (item,) = post(client, multipart(part("file", b"digits.txt", b"0123456789"))).json["items"]
    url = f"/api/v1/attachments/{item['id']}"
    for header, body in [("bytes=2-4", b"234"), ("bytes=7-", b"789"), ("bytes=-2", b"89")]:
        response = client.get(url, headers={"Range": header})
        assert (response.status_code, response.data) == (206, body)
        assert response.headers["Content-Length"] == str(len(body))
    assert client.get(url, headers={"Range": "bytes=2-4"}).headers["Content-Range"] == "bytes 2-4/10"
    assert client.get(url, headers={"Range": "bytes=0-1,3-4"}).status_code == 200
    assert client.get(url, headers={"Range": "bytes=2-4", "If-Range": '"x"'}).status_code == 200
    refused = client.get(url, headers={"Range": "bytes=10-"})
    assert refused.status_code == 416
    assert refused.headers["Content-Range"] == "bytes */10"


def test_a_download_the_caller_may_not_see_is_not_found(
    client: FlaskClient, store: MemoryStore, service: Service
) -> None:
    response = client.get("/api/v1/attachments/att-404")
    assert (response.status_code, response.json["error"]["code"]) == (404, "not_found")

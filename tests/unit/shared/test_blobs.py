"""The blob store: the behaviour every store shares (BlobStoreContract), run here on LocalBlobStore.

tests/integration/shared/test_blobs.py runs the same contract on S3BlobStore against a moto
S3 server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.blobs import (
    PART_SIZE,
    READ_CHUNK,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    LocalBlobStore,
    S3BlobStore,
    blob_store,
    new_key,
)
from shared.config import Settings

MiB = 1024 * 1024

Leftovers = Callable[[], list[str]]

BAD_KEYS = [
    "",
    "../../etc/passwd",
    "0" * 31,
    "0" * 33,
    "A" * 32,  # upper case
    "g" * 32,
    "0" * 31 + "/",
    "0" * 32 + "\n",
    "/" + "0" * 31,
    "0123456789abcdef-0123456789abcde",
]


class Boom(Exception):
    pass


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _put(store: BlobStore, data: bytes, chunk: int = READ_CHUNK) -> str:
    key = new_key()
    assert store.put(key, _pieces(data, chunk), max_bytes=len(data)) == len(data)
    return key


def _patterned(n_chunks: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """Distinct chunks made one at a time, so the whole stream never exists in memory."""
    for i in range(n_chunks):
        yield i.to_bytes(4, "big") * (chunk // 4)


class BlobStoreContract:
    """Behaviour every BlobStore has. A subclass provides the fixtures `store`, `leftovers`
    (everything physically stored: blobs, temporary files, unfinished uploads) and
    `memory_budget` (bytes a 20 MiB put and read may peak at)."""

    def test_a_blob_round_trips_whatever_its_chunking(self, store: BlobStore) -> None:
        data = os.urandom(200_000)
        key = new_key()
        assert store.put(key, iter([data[:1], b"", data[1:70_000], data[70_000:]]), max_bytes=len(data)) == len(data)
        assert store.size(key) == len(data)
        assert store.keys() == [key]
        chunks = list(store.read(key))
        assert b"".join(chunks) == data
        assert all(0 < len(c) <= READ_CHUNK for c in chunks)

    def test_bytes_like_chunks_are_accepted(self, store: BlobStore) -> None:
        key = new_key()
        assert store.put(key, [bytearray(b"abc"), memoryview(b"def")], max_bytes=6) == 6
        assert b"".join(store.read(key)) == b"abcdef"

    def test_head_is_the_first_n_bytes(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 4
        key = _put(store, data)
        assert store.head(key, 8) == data[:8]
        assert store.head(key, 1) == data[:1]
        assert store.head(key, 0) == b""
        assert store.head(key, len(data)) == data
        assert store.head(key, len(data) + 100) == data

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (0, 0),  # first byte
            (149_999, 149_999),  # last byte
            (149_999, None),  # last byte, open-ended
            (77, 77),  # a single byte
            (0, None),
            (0, 149_999),
            (1, None),
            (READ_CHUNK - 1, READ_CHUNK),  # across a chunk boundary
            (10, 100_000),
            (100, 10**9),  # an end past the blob stops at the blob's end
        ],
    )
    def test_a_range_is_inclusive(self, store: BlobStore, start: int, end: int | None) -> None:
        data = os.urandom(150_000)
        key = _put(store, data)
        chunks = list(store.read(key, start, end))
        assert b"".join(chunks) == data[start : None if end is None else end + 1]
        assert all(0 < len(c) <= READ_CHUNK for c in chunks)

    def test_a_range_starting_at_or_past_the_end_is_empty(self, store: BlobStore) -> None:
        key = _put(store, b"0123456789")
        assert list(store.read(key, 10)) == []
        assert list(store.read(key, 10, 20)) == []
        assert list(store.read(key, 50)) == []

    def test_impossible_ranges_are_refused(self, store: BlobStore) -> None:
        key = _put(store, b"0123456789")
        with pytest.raises(ValueError):
            store.read(key, -1)
        with pytest.raises(ValueError):
            store.read(key, 5, 4)

    def test_a_zero_byte_blob(self, store: BlobStore) -> None:
        for chunks in ([], [b""], [b"", b""]):
            key = new_key()
            assert store.put(key, iter(chunks), max_bytes=0) == 0
            assert store.size(key) == 0
            assert store.head(key, 10) == b""
            assert store.head(key, 0) == b""
            assert list(store.read(key)) == []
            assert list(store.read(key, 0, 0)) == []
            assert key in store.keys()

    def test_exactly_max_bytes_is_fine(self, store: BlobStore) -> None:
        data = os.urandom(10_000)
        key = new_key()
        assert store.put(key, _pieces(data, 999), max_bytes=10_000) == 10_000
        assert b"".join(store.read(key)) == data

    def test_one_byte_over_max_bytes_is_refused_and_leaves_nothing(
        self, store: BlobStore, leftovers: Leftovers
    ) -> None:
        key = new_key()
        with pytest.raises(BlobTooLarge):
            store.put(key, _pieces(os.urandom(10_001), 1000), max_bytes=10_000)
        assert leftovers() == []
        with pytest.raises(BlobNotFound):
            store.size(key)

    def test_too_large_stops_reading_the_stream_at_once(self, store: BlobStore, leftovers: Leftovers) -> None:
        taken = 0

        def endless() -> Iterator[bytes]:
            nonlocal taken
            while True:
                taken += 1
                yield b"x" * 1000

        with pytest.raises(BlobTooLarge):
            store.put(new_key(), endless(), max_bytes=5000)
        assert taken == 6
        assert leftovers() == []

    def test_too_large_after_whole_parts_were_stored_leaves_nothing(
        self, store: BlobStore, leftovers: Leftovers
    ) -> None:
        # More than one S3 part arrives before the limit is crossed.
        with pytest.raises(BlobTooLarge):
            store.put(new_key(), _patterned(9 * MiB // READ_CHUNK + 1), max_bytes=9 * MiB)
        assert leftovers() == []

    @pytest.mark.parametrize("fail_after", [0, 100, 9 * MiB], ids=["at-once", "early", "after-a-part"])
    def test_a_failing_stream_leaves_nothing(self, store: BlobStore, leftovers: Leftovers, fail_after: int) -> None:
        def failing() -> Iterator[bytes]:
            yield from _pieces(b"y" * fail_after, MiB)
            raise Boom

        key = new_key()
        with pytest.raises(Boom):
            store.put(key, failing(), max_bytes=100 * MiB)
        assert leftovers() == []
        with pytest.raises(BlobNotFound):
            store.head(key, 1)

    def test_a_blob_is_invisible_until_complete(self, store: BlobStore) -> None:
        key = new_key()
        seen = []

        def watched() -> Iterator[bytes]:
            for chunk in _pieces(b"z" * (9 * MiB), 3 * MiB):
                yield chunk
                seen.append(store.keys())
                with pytest.raises(BlobNotFound):
                    store.size(key)

        assert store.put(key, watched(), max_bytes=9 * MiB) == 9 * MiB
        assert seen == [[], [], []]
        assert store.size(key) == 9 * MiB

    def test_exactly_one_part_round_trips(self, store: BlobStore) -> None:
        data = os.urandom(PART_SIZE)
        key = _put(store, data, chunk=MiB)
        assert store.size(key) == PART_SIZE
        assert hashlib.sha256(b"".join(store.read(key))).digest() == hashlib.sha256(data).digest()
        assert b"".join(store.read(key, PART_SIZE - 2)) == data[-2:]

    def test_a_missing_blob_is_not_found_by_the_call_itself(self, store: BlobStore) -> None:
        key = new_key()
        with pytest.raises(BlobNotFound):
            store.head(key, 10)
        with pytest.raises(BlobNotFound):
            store.head(key, 0)
        with pytest.raises(BlobNotFound):
            store.size(key)
        with pytest.raises(BlobNotFound):
            store.read(key)  # raised before any iteration
        with pytest.raises(BlobNotFound):
            store.read(key, 5, 10)

    def test_delete_is_idempotent(self, store: BlobStore, leftovers: Leftovers) -> None:
        key = _put(store, b"bye")
        other = _put(store, b"stay")
        store.delete(key)
        store.delete(key)
        store.delete(new_key())
        with pytest.raises(BlobNotFound):
            store.size(key)
        assert store.keys() == [other]
        store.delete(other)
        assert leftovers() == []

    def test_keys_lists_every_blob(self, store: BlobStore) -> None:
        assert store.keys() == []
        made = sorted(_put(store, bytes([i])) for i in range(3))
        assert store.keys() == made

    @pytest.mark.parametrize("bad", BAD_KEYS)
    def test_bad_keys_are_refused_everywhere(self, store: BlobStore, leftovers: Leftovers, bad: str) -> None:
        with pytest.raises(ValueError):
            store.put(bad, [b"data"], max_bytes=10)
        with pytest.raises(ValueError):
            store.head(bad, 1)
        with pytest.raises(ValueError):
            store.size(bad)
        with pytest.raises(ValueError):
            store.read(bad)
        with pytest.raises(ValueError):
            store.delete(bad)
        assert leftovers() == []

    def test_a_key_that_is_not_a_string_is_refused(self, store: BlobStore) -> None:
        with pytest.raises(ValueError):
            store.size(b"0" * 32)  # type: ignore[arg-type]

    def test_twenty_mib_stream_in_and_out_in_little_memory(self, store: BlobStore, memory_budget: int) -> None:
        n_chunks = 20 * MiB // READ_CHUNK
        key = new_key()
        expected = hashlib.sha256()

        def upload() -> Iterator[bytes]:
            for chunk in _patterned(n_chunks):
                expected.update(chunk)
                yield chunk
            expected.update(b"!")
            yield b"!"

        store.keys()  # warm up: connections, bucket, lazily loaded client parts
        tracemalloc.start()
        try:
            assert store.put(key, upload(), max_bytes=20 * MiB + 1) == 20 * MiB + 1
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            got = hashlib.sha256()
            for chunk in store.read(key):
                got.update(chunk)
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert got.digest() == expected.digest()
        assert put_peak < memory_budget, f"put peaked at {put_peak / MiB:.1f} MiB"
        assert read_peak < memory_budget, f"read peaked at {read_peak / MiB:.1f} MiB"


def local_leftovers(root: Path) -> list[str]:
    """Every file under the store's directory, temporary ones included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        return tmp_path / "var" / "blobs"

    @pytest.fixture
    def store(self, root: Path) -> LocalBlobStore:
        return LocalBlobStore(root)

    @pytest.fixture
    def leftovers(self, root: Path) -> Leftovers:
        return lambda: local_leftovers(root)

    @pytest.fixture
    def memory_budget(self) -> int:
        return MiB

    def test_the_directory_is_created_on_demand(self, store: LocalBlobStore, root: Path) -> None:
        assert not root.exists()
        assert store.keys() == []
        with pytest.raises(BlobNotFound):
            store.size(new_key())
        key = _put(store, b"hello")
        assert (root / key).read_bytes() == b"hello"
        assert local_leftovers(root) == [key]  # no temporary file left

    def test_keys_ignores_other_files(self, store: LocalBlobStore, root: Path) -> None:
        key = _put(store, b"hello")
        (root / ".upload-abandoned").write_bytes(b"half")
        (root / "README").write_text("not a blob")
        (root / ("0" * 32 + ".bak")).write_text("not a blob")
        assert store.keys() == [key]

    def test_an_open_read_survives_a_delete(self, store: LocalBlobStore) -> None:
        data = os.urandom(3 * READ_CHUNK)
        key = _put(store, data)
        chunks = store.read(key)
        first = next(chunks)
        store.delete(key)
        assert first + b"".join(chunks) == data

    def test_a_read_abandoned_early_can_be_closed(self, store: LocalBlobStore) -> None:
        key = _put(store, os.urandom(3 * READ_CHUNK))
        chunks = store.read(key)
        next(chunks)
        chunks.close()  # type: ignore[attr-defined]
        assert list(chunks) == []

    def test_a_put_replaces_the_blob_whole(self, store: LocalBlobStore) -> None:
        key = _put(store, b"first version")
        assert store.put(key, [b"second"], max_bytes=100) == 6
        assert b"".join(store.read(key)) == b"second"

    def test_negative_limits_are_refused(self, store: LocalBlobStore, root: Path) -> None:
        with pytest.raises(ValueError):
            store.put(new_key(), [b""], max_bytes=-1)
        with pytest.raises(ValueError):
            store.head(_put(store, b"x"), -1)


def test_new_keys_are_fresh_hex() -> None:
    keys = {new_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)


def test_blob_store_follows_the_settings(tmp_path: Path) -> None:
    local = blob_store(dataclasses.replace(Settings(), blob_store="local", blob_dir=str(tmp_path)))
    assert isinstance(local, LocalBlobStore)
    assert local.root == tmp_path
    s3 = blob_store(
        dataclasses.replace(
            Settings(), blob_store="s3", s3_bucket="b1", s3_endpoint_url="http://127.0.0.1:9", s3_region="eu-west-1"
        )
    )
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.region) == ("b1", "eu-west-1")
    with pytest.raises(ValueError):
        blob_store(dataclasses.replace(Settings(), blob_store="ftp"))


def test_blob_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BLOB_STORE", "BLOB_DIR", "S3_ENDPOINT_URL", "S3_BUCKET", "S3_REGION"):
        monkeypatch.delenv(name, raising=False)
    default = Settings.from_env()
    assert (default.blob_store, default.blob_dir, default.s3_bucket, default.s3_region) == (
        "local",
        "var/blobs",
        "school-im",
        "us-east-1",
    )
    monkeypatch.setenv("BLOB_STORE", "s3")
    monkeypatch.setenv("BLOB_DIR", "/srv/blobs")
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("S3_BUCKET", "attachments")
    monkeypatch.setenv("S3_REGION", "eu-central-1")
    s = Settings.from_env()
    assert (s.blob_store, s.blob_dir, s.s3_endpoint_url, s.s3_bucket, s.s3_region) == (
        "s3",
        "/srv/blobs",
        "http://minio:9000",
        "attachments",
        "eu-central-1",
    )


def test_s3_parts_must_be_big_enough_for_s3() -> None:
    with pytest.raises(ValueError):
        S3BlobStore("b", "http://127.0.0.1:9", part_size=MiB)

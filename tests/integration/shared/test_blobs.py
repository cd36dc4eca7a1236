"""The blob store contract on both stores, S3BlobStore talking HTTP to a real moto S3 server.

The moto server runs in a child process (tests/support/s3.py): moto keeps every object (and
joins every multipart upload) in memory, which in this process would swamp the tracemalloc
measurement of the store's own streaming.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.blobs import PART_SIZE, BlobStore, LocalBlobStore, S3BlobStore, blob_store, new_key
from shared.config import Settings
from tests.support.s3 import aws_test_env, moto_server, s3_client, s3_leftovers
from tests.unit.shared.test_blobs import BlobStoreContract, Leftovers, MiB, local_leftovers


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, and nothing from this machine's AWS configuration."""
    aws_test_env(monkeypatch, tmp_path)


@pytest.fixture
def s3(moto_endpoint: str, aws_env: None) -> Any:
    """A plain client to look at the bucket behind the store's back."""
    return s3_client(moto_endpoint)


@dataclasses.dataclass
class Backend:
    store: BlobStore
    leftovers: Leftovers
    memory_budget: int


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "blobs"
        return Backend(LocalBlobStore(root), lambda: local_leftovers(root), MiB)
    moto_endpoint = request.getfixturevalue("moto_endpoint")
    s3 = request.getfixturevalue("s3")
    bucket = f"test-{uuid.uuid4().hex[:12]}"  # each test creates its own bucket on first use
    # One part in memory, plus what the HTTP stack and tracemalloc itself hold.
    return Backend(S3BlobStore(bucket, moto_endpoint), lambda: s3_leftovers(s3, bucket), PART_SIZE + 3 * MiB)


class TestBlobStores(BlobStoreContract):
    @pytest.fixture
    def store(self, backend: Backend) -> BlobStore:
        return backend.store

    @pytest.fixture
    def leftovers(self, backend: Backend) -> Leftovers:
        return backend.leftovers

    @pytest.fixture
    def memory_budget(self, backend: Backend) -> int:
        return backend.memory_budget


def test_the_bucket_is_made_in_its_region_on_first_use(moto_endpoint: str, s3: Any) -> None:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(bucket, moto_endpoint, "eu-central-1")
    key = new_key()
    store.put(key, [b"hello"], max_bytes=5)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-central-1"
    # A second store (another process) finds the bucket there and shares its blobs.
    again = S3BlobStore(bucket, moto_endpoint, "eu-central-1")
    assert again.head(key, 10) == b"hello"


def test_blob_store_from_settings_talks_to_s3(moto_endpoint: str, s3: Any) -> None:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    settings = dataclasses.replace(Settings(), blob_store="s3", s3_endpoint_url=moto_endpoint, s3_bucket=bucket)
    store = blob_store(settings)
    key = new_key()
    store.put(key, [b"abc", b"def"], max_bytes=6)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"abcdef"


def test_large_blobs_go_up_in_parts(moto_endpoint: str, s3: Any) -> None:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(bucket, moto_endpoint)
    key = new_key()
    size = 2 * PART_SIZE + 1
    assert store.put(key, [*(b"p" * MiB for _ in range(size // MiB)), b"q"], max_bytes=size) == size
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    assert head["ETag"].endswith('-3"')  # a multipart ETag names its part count
    assert store.head(key, 1) == b"p"
    assert b"".join(store.read(key, size - 2)) == b"pq"

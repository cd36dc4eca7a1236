"""The blob store for file attachments: bytes never travel over RabbitMQ.

The gateway streams an upload into the store under a fresh key (`new_key`), the attachments
service reads the head of a blob to sniff its type, and downloads stream ranges out of it.
Two stores behave the same: `LocalBlobStore` (files in a directory, for development and
single-machine installs) and `S3BlobStore` (any S3-compatible object store), chosen by
BLOB_STORE.

Neither ever holds a whole blob in memory: `put` consumes the upload chunk by chunk (the S3
store buffers at most one 8 MiB part) and `read` yields chunks of at most 64 KiB. A `put`
that fails for any reason, too large included, leaves nothing behind, and a reader never
sees a partial blob. Keys are exactly what `new_key` makes (32 lowercase hex digits); any
other key raises ValueError before anything is touched, so a key can never name a path.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from shared.config import Settings

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

READ_CHUNK = 64 * 1024
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3 refuses smaller parts, except the last one

_KEY = re.compile(r"[0-9a-f]{32}")


class BlobTooLarge(Exception):
    """More than max_bytes arrived; what was written is already removed."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"blob exceeds {max_bytes} bytes")
        self.max_bytes = max_bytes


class BlobNotFound(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"no blob {key}")
        self.key = key


@runtime_checkable
class BlobStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> int:
        """Store the stream under key and return its size.

        Raises BlobTooLarge as soon as more than max_bytes have arrived. On that or any other
        exception nothing is left stored under key.
        """
        ...

    def head(self, key: str, n: int) -> bytes:
        """The first n bytes (fewer if the blob is shorter)."""
        ...

    def size(self, key: str) -> int: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes start..end inclusive (end None or past the blob: to its end), in chunks of at most 64 KiB.

        BlobNotFound is raised by the call itself, before any chunk. A start at or past the
        end of the blob yields nothing. Close the iterator when abandoning it early.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is fine."""
        ...

    def keys(self) -> list[str]:
        """Every stored key (for cleanup and tests)."""
        ...


def new_key() -> str:
    return uuid.uuid4().hex


def blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "local":
        return LocalBlobStore(Path(settings.blob_dir))
    if settings.blob_store == "s3":
        return S3BlobStore(settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region)
    raise ValueError(f"BLOB_STORE must be 'local' or 's3', not {settings.blob_store!r}")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a blob key: {key!r}")
    return key


def _check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError(f"range start {start} is negative")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before its start {start}")


def _check_limit(max_bytes: int) -> None:
    if max_bytes < 0:
        raise ValueError(f"max_bytes {max_bytes} is negative")


class _Chunks(Iterator[bytes]):
    """Chunks of at most READ_CHUNK bytes from an open stream, closing it when done.

    A plain iterator rather than a generator so the stream is open (and the blob known to
    exist) as soon as read() returns, and close() releases it even if nothing was read.
    """

    def __init__(self, stream: Any, remaining: int | None) -> None:
        self._stream = stream
        self._remaining = remaining

    def __next__(self) -> bytes:
        if self._stream is None:
            raise StopIteration
        want = READ_CHUNK if self._remaining is None else min(READ_CHUNK, self._remaining)
        data = self._stream.read(want) if want > 0 else b""
        if not data:
            self.close()
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def __del__(self) -> None:
        self.close()


class LocalBlobStore:
    """Blobs as files named by their key in one directory (created on demand).

    An upload goes to a hidden temporary file in the same directory, is flushed to disk and
    then renamed into place, so a reader sees the whole blob or none of it. A process killed
    mid-upload can leave a `.upload-*` file behind; keys() ignores it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> int:
        path = self._path(key)
        _check_limit(max_bytes)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        total = 0
        try:
            with open(fd, "wb") as f:
                for chunk in chunks:
                    total += len(chunk)
                    if total > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._sync_dir()
        return total

    def _sync_dir(self) -> None:
        """Make the rename itself durable (best effort: not every platform can fsync a directory)."""
        with contextlib.suppress(OSError):
            fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open(self, key: str) -> IO[bytes]:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def head(self, key: str, n: int) -> bytes:
        if n < 0:
            raise ValueError(f"n {n} is negative")
        with self._open(key) as f:
            return f.read(n)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        _check_key(key)
        _check_range(start, end)
        # The open file keeps reading the same blob even if it is deleted meanwhile.
        f = self._open(key)
        f.seek(start)
        return _Chunks(f, None if end is None else end - start + 1)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _KEY.fullmatch(n))


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _is_missing(err: ClientError) -> bool:
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or _error_code(err) in {"NoSuchKey", "NotFound", "404", "NoSuchBucket"}


class S3BlobStore:
    """Blobs as objects named by their key in one S3 bucket (created on first use if missing).

    Credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
    a profile, an instance role). endpoint_url names an S3-compatible service (MinIO, Ceph,
    moto); empty means AWS itself. Small blobs go up in one PutObject, larger ones as a
    multipart upload of part_size parts, buffering one part at a time; a failed or too-large
    upload is aborted. Uploads that die with their process stay as incomplete multipart
    uploads: give the bucket an AbortIncompleteMultipartUpload lifecycle rule.
    """

    def __init__(
        self,
        bucket: str,
        endpoint_url: str = "",
        region: str = "us-east-1",
        *,
        part_size: int = PART_SIZE,
    ) -> None:
        import boto3
        from botocore.config import Config

        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.region = region
        self.part_size = part_size
        config = Config(
            region_name=region,
            signature_version="s3v4",
            # S3-compatible services are addressed by path; AWS picks its own style.
            s3={"addressing_style": "path"} if endpoint_url else None,
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=60,
            # Newer botocore adds CRC trailers to every upload, which several S3-compatible
            # services reject; only send checksums where the API requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A session of its own: the default session is not safe to share between threads,
        # a client is.
        self._client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)
        self._bucket_ready = False
        self._lock = threading.Lock()

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        from botocore.exceptions import ClientError

        with self._lock:
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as err:
                if not _is_missing(err):
                    raise
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    self._client.create_bucket(**kwargs)
                except ClientError as create_err:
                    if _error_code(create_err) != "BucketAlreadyOwnedByYou":
                        raise
            self._bucket_ready = True

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> int:
        _check_key(key)
        _check_limit(max_bytes)
        self._ensure_bucket()
        part_size = self.part_size
        buffer = bytearray()
        total = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        committing = False
        try:
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                total += len(view)
                if total > max_bytes:
                    raise BlobTooLarge(max_bytes)
                while view:
                    # Fill the buffer to exactly one part, so a full part is sent as is, uncopied.
                    take = part_size - len(buffer)
                    buffer += view[:take]
                    view = view[take:]
                    if len(buffer) == part_size:
                        if upload_id is None:
                            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
                        parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer))
                        buffer = bytearray()
            committing = True
            if upload_id is None:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
            else:
                if buffer:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer))
                del buffer
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self._discard(key, upload_id, committing)
            raise
        return total

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytearray) -> dict[str, Any]:
        response = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _discard(self, key: str, upload_id: str | None, committing: bool) -> None:
        """Best-effort cleanup after a failed put; the put's own exception is what matters."""
        from botocore.exceptions import BotoCoreError, ClientError

        if upload_id is not None:
            with contextlib.suppress(BotoCoreError, ClientError):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        if committing:
            # The final request may have succeeded before its answer was lost.
            with contextlib.suppress(BotoCoreError, ClientError):
                self._client.delete_object(Bucket=self.bucket, Key=key)

    def _get(self, key: str, byte_range: str | None) -> Any:
        """The GetObject body, or None when the range starts past the end of the blob."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range is not None:
            kwargs["Range"] = byte_range
        try:
            return self._client.get_object(**kwargs)["Body"]
        except ClientError as err:
            if _error_code(err) == "InvalidRange":  # the object exists; the range is past its end
                return None
            if _is_missing(err):
                raise BlobNotFound(key) from None
            raise

    def head(self, key: str, n: int) -> bytes:
        _check_key(key)
        if n < 0:
            raise ValueError(f"n {n} is negative")
        self._ensure_bucket()
        if n == 0:
            self.size(key)
            return b""
        body = self._get(key, f"bytes=0-{n - 1}")
        if body is None:
            return b""
        with contextlib.closing(body):
            return body.read()

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        _check_key(key)
        self._ensure_bucket()
        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as err:
            if _is_missing(err):
                raise BlobNotFound(key) from None
            raise

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        _check_key(key)
        _check_range(start, end)
        self._ensure_bucket()
        if start == 0 and end is None:
            byte_range = None
        else:
            byte_range = f"bytes={start}-{'' if end is None else end}"
        body = self._get(key, byte_range)
        return _Chunks(body, 0 if body is None else None)

    def delete(self, key: str) -> None:
        _check_key(key)
        self._ensure_bucket()
        self._client.delete_object(Bucket=self.bucket, Key=key)

    def keys(self) -> list[str]:
        self._ensure_bucket()
        found: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            found.extend(o["Key"] for o in page.get("Contents", ()) if _KEY.fullmatch(o["Key"]))
        return sorted(found)

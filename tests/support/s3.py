"""A real S3 endpoint for tests: moto's S3 server over HTTP, in a child process.

The server runs in its own process: moto keeps every object (and joins every multipart upload)
in memory, which inside the test process would swamp memory measurements, and a system under
test (other processes) reaches it over HTTP just the same.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

_MOTO = textwrap.dedent(
    """
    import sys
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # runs until the test closes our stdin (or dies)
    server.stop()
    """
)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server on a free port, running while the block runs; its endpoint URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        pytest.fail(f"moto server did not start: {proc.communicate()[1]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def aws_test_env(monkeypatch: pytest.MonkeyPatch, scratch: Path) -> None:
    """Dummy credentials, and nothing from this machine's AWS configuration.

    Set in os.environ, so processes started meanwhile inherit them too; the monkeypatch
    restores everything when it is undone.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(scratch / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def s3_client(endpoint: str) -> Any:
    """A plain client to look at a bucket behind the store's back."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )


def s3_leftovers(s3: Any, bucket: str) -> list[str]:
    """Every object in the bucket, blob or not, and every unfinished multipart upload."""
    try:
        objects = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        uploads = [f"upload:{u['Key']}" for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    except ClientError as err:
        if err.response["Error"]["Code"] == "NoSuchBucket":
            return []
        raise
    return sorted(objects + uploads)

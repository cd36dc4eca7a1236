"""A lean asyncio HTTP/1.1 client for load generators: one short-lived connection per request.

The gateway runs gunicorn's sync workers, which close the connection after every answer, so
there is no keep-alive to pool: a request is connect, write, read to end of file. Written on
asyncio's Protocol API (no streams, no dependency) because the school-day benchmark must stay
under 5 % of a core per 1,000 simulated users; `http.client` in threads or `requests` cost
several times more per call.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any, cast


@dataclass(slots=True)
class Answer:
    """One request's outcome: `status` 0 when no answer came (refused, reset, timed out)."""

    status: int
    body: bytes
    started: float  # time.perf_counter() before the connect
    seconds: float
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Exchange(asyncio.Protocol):
    """Write one request, gather the answer until the server closes."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self.request = request
        self.done = done
        self.chunks: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are transports.
        self.transport = cast(asyncio.Transport, transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is not None and not self.chunks:
            self.done.set_exception(exc)
        else:
            self.done.set_result(b"".join(self.chunks))


class Http:
    """Requests against one host, at most `concurrency` in flight (the rest wait their turn,
    and the wait counts in their time: the clock starts when the caller asks)."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, concurrency: int = 512) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._host_header = f"Host: {host}:{port}\r\n"

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        started = time.perf_counter()
        head = [f"{method} {path} HTTP/1.1\r\n", self._host_header, "Connection: close\r\n"]
        if token:
            head.append(f"Authorization: Bearer {token}\r\n")
        if body is not None:
            head.append(f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n")
        request = ("".join(head) + "\r\n").encode() + (body or b"")
        loop = asyncio.get_running_loop()
        async with self._slots:
            done: asyncio.Future[bytes] = loop.create_future()
            transport: asyncio.BaseTransport | None = None
            try:
                async with asyncio.timeout(self.timeout):
                    transport, _ = await loop.create_connection(lambda: _Exchange(request, done), self.host, self.port)
                    raw = await done
            except TimeoutError:
                return Answer(0, b"", started, time.perf_counter() - started, f"timeout after {self.timeout:.0f}s")
            except OSError as exc:
                return Answer(0, b"", started, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            finally:
                if transport is not None:
                    transport.close()
        seconds = time.perf_counter() - started
        return _parse(raw, started, seconds)

    async def get(self, path: str, token: str | None = None) -> Answer:
        return await self.request("GET", path, token=token)

    async def post(self, path: str, token: str, payload: dict[str, Any]) -> Answer:
        return await self.request("POST", path, token=token, body=json.dumps(payload, separators=(",", ":")).encode())

    async def upload(self, path: str, token: str, name: str, content: bytes, content_type: str) -> Answer:
        """multipart/form-data with one `file` part."""
        boundary = os.urandom(12).hex()
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return await self.request(
            "POST", path, token=token, body=body, content_type=f"multipart/form-data; boundary={boundary}"
        )


def _parse(raw: bytes, started: float, seconds: float) -> Answer:
    end = raw.find(b"\r\n\r\n")
    if not raw.startswith(b"HTTP/1.") or end < 0:
        return Answer(0, b"", started, seconds, f"malformed answer: {raw[:80]!r}")
    status = int(raw[9:12])
    head = raw[:end].lower()
    body = raw[end + 4 :]
    if b"transfer-encoding: chunked" in head:
        body = _dechunk(body)
    return Answer(status, body, started, seconds)


def _dechunk(data: bytes) -> bytes:
    out, i = [], 0
    while True:
        eol = data.find(b"\r\n", i)
        if eol < 0:
            break
        size = int(data[i:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[eol + 2 : eol + 2 + size])
        i = eol + 2 + size + 2
    return b"".join(out)

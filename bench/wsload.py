"""A lean Socket.IO load generator: thousands of clients in one asyncio process.

python-socketio's Client spends a thread (and a websocket-client) per connection, which
does not get near 5,000 connections on one core. This speaks just enough of the protocols
for a receiving client, straight on asyncio's Protocol API, with no dependency:

- WebSocket (RFC 6455) client handshake and framing: masked client frames; unmasked,
  possibly fragmented server frames; ping -> pong; close. With `deflate`, the handshake offers
  permessage-deflate (RFC 7692) as every browser does, and compressed server messages are
  inflated (the client's own frames go uncompressed, which the extension allows).
- Engine.IO v4 over the websocket transport only: `0{...}` open, `2` ping -> `3` pong,
  `1` close, `4...` message.
- Socket.IO v5 on the default namespace: `40{"token": ...}` to connect with auth, `40{sid}`
  connected, `44{...}` refused, `42[...]` events, `41` disconnect.

Events are handed to `on_event(client, arrived_at, text)` as the raw `42[...]` text with the
`time.perf_counter()` of the read that brought them, before any parsing: callers look for
what identifies their message in the text, so the exact payload shape does not matter.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

OnEvent = Callable[["Client", float, str], None]

_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ConnectRefused(Exception):
    """The server answered the Socket.IO CONNECT with an error (`44{...}`) or a bad handshake."""


def _mask(payload: bytes) -> bytes:
    """A masked client frame body: 4 random key bytes, then the payload XORed with them."""
    key = os.urandom(4)
    n = len(payload)
    if n == 0:
        return key
    repeated = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
    return key + masked


def encode_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + _mask(payload)


@dataclass(eq=False)
class Client(asyncio.Protocol):
    """One Socket.IO client connection; `index` is the caller's own number for it."""

    index: int
    host: str
    port: int
    path: str
    token: str
    on_event: OnEvent
    user_id: str = ""
    deflate: bool = False  # offer permessage-deflate, as browsers do
    connected: asyncio.Future[str] | None = None  # resolves to the Socket.IO sid
    transport: asyncio.Transport | None = None
    closed: bool = False
    close_reason: str = ""
    pings: int = 0
    events: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _handshaken: bool = False
    _fragments: list[bytes] = field(default_factory=list)
    _fragment_op: int = 0
    _fragment_compressed: bool = False
    _inflater: Any = None  # a zlib decompressor once the server accepted permessage-deflate

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are transports.
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{self.path}/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.deflate else "")
            + "\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()  # first: the arrival time of whatever this read holds
        buf = self._buffer
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if b" 101 " not in status:
                self._fail(f"websocket handshake refused: {status.decode(errors='replace')}")
                return
            if b"permessage-deflate" in head:
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self._handshaken = True
        self._parse(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = self.close_reason or (f"connection lost: {exc!r}" if exc else "closed by server")
        if self.connected is not None and not self.connected.done():
            self.connected.set_exception(ConnectRefused(self.close_reason))

    # --- framing ---------------------------------------------------------------------------

    def _parse(self, now: float) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length = b1 & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                offset = 10
            mask_key = b""
            if b1 & 0x80:  # servers must not mask, but be lenient
                if len(buf) < offset + 4:
                    return
                mask_key = bytes(buf[offset : offset + 4])
                offset += 4
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if mask_key:
                repeated = (mask_key * (length // 4 + 1))[:length]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(length, "big")
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode >= 0x8:  # control frames are never fragmented
                self._control(opcode, payload)
                continue
            if opcode != _OP_CONT:
                self._fragment_op = opcode
                self._fragment_compressed = bool(b0 & 0x40)  # RSV1: a compressed message
                self._fragments = []
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                self._fragments = []
                if self._fragment_compressed and self._inflater is not None:
                    message = self._inflater.decompress(message + b"\x00\x00\xff\xff")
                if self._fragment_op == _OP_TEXT:
                    self._engineio(now, message.decode())

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_PING:
            self._write(_OP_PONG, payload)
        elif opcode == _OP_CLOSE:
            if not self.closed:
                self.closed = True
                self.close_reason = "websocket close from server"
                self._write(_OP_CLOSE, payload[:2])
            if self.transport is not None:
                self.transport.close()

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self._write(_OP_TEXT, text.encode())

    # --- Engine.IO v4 / Socket.IO v5 -------------------------------------------------------

    def _engineio(self, now: float, text: str) -> None:
        kind = text[:1]
        if kind == "4":  # message: a Socket.IO packet
            sio = text[1:2]
            if sio == "2":  # event, the hot path
                self.events += 1
                self.on_event(self, now, text[1:])
            elif sio == "0":
                if self.connected is not None and not self.connected.done():
                    sid = json.loads(text[2:] or "{}").get("sid", "")
                    self.connected.set_result(sid)
            elif sio == "4":
                self._fail(f"connect refused: {text[2:300]}")
            elif sio == "1":
                self._fail("disconnected by server (Socket.IO)")
        elif kind == "2":  # ping: answer at once, or the server drops us after ping_timeout
            self.pings += 1
            self.send_text("3" + text[1:])
        elif kind == "0":  # open: now connect the default namespace with the token
            self.send_text("40" + json.dumps({"token": self.token}, separators=(",", ":")))
        elif kind == "1":
            self._fail("closed by server (Engine.IO)")

    def _fail(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
        if self.connected is not None and not self.connected.done():
            self.connected.set_exception(ConnectRefused(reason))
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        """A polite goodbye (Socket.IO disconnect, websocket close), then the TCP close."""
        if self.transport is None or self.transport.is_closing():
            self.closed = True
            return
        if not self.closed:
            self.send_text("41")
            self._write(_OP_CLOSE, (1000).to_bytes(2, "big"))
        self.closed = True
        self.close_reason = self.close_reason or "closed by client"
        self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def alive(self) -> bool:
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and self.connected is not None
            and self.connected.done()
            and self.connected.exception() is None
        )


async def connect(client: Client, timeout: float) -> Client:
    """Open TCP, upgrade to websocket, connect the namespace with the token; raises on failure."""
    loop = asyncio.get_running_loop()
    client.connected = loop.create_future()
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: client, client.host, client.port)
            await client.connected
    except BaseException:
        client.abort()
        raise
    return client


@dataclass
class ConnectResult:
    connected: list[Client]
    failed: list[tuple[int, str]]  # (index, reason)
    gave_up_at: int | None  # index after which no more attempts were made
    seconds: float  # the whole attempt, failures' timeouts included
    last_connected_s: float  # from the start until the last successful connect


async def connect_many(
    clients: list[Client], *, concurrency: int, timeout: float, give_up_after_failures: int
) -> ConnectResult:
    """Connect `clients` with at most `concurrency` handshakes in flight.

    Once `give_up_after_failures` have failed, no new attempts start (a server that has
    stopped accepting would otherwise cost `timeout` per remaining client).
    """
    semaphore = asyncio.Semaphore(concurrency)
    ok: list[Client] = []
    failed: list[tuple[int, str]] = []
    gave_up_at: int | None = None
    started = time.perf_counter()
    last_ok = started

    async def one(client: Client) -> None:
        nonlocal last_ok
        try:
            await connect(client, timeout)
            ok.append(client)
            last_ok = time.perf_counter()
        except TimeoutError:
            failed.append((client.index, f"no connect within {timeout:.0f}s"))
        except (ConnectRefused, OSError) as exc:
            failed.append((client.index, str(exc) or type(exc).__name__))
        finally:
            semaphore.release()

    tasks = []
    for client in clients:
        await semaphore.acquire()
        if len(failed) >= give_up_after_failures:
            semaphore.release()
            gave_up_at = client.index
            break
        tasks.append(asyncio.create_task(one(client)))
    await asyncio.gather(*tasks)
    ok.sort(key=lambda c: c.index)
    return ConnectResult(ok, failed, gave_up_at, time.perf_counter() - started, last_ok - started)


MESSAGE_CREATED = '2["message.created"'


class Arrivals:
    """First arrival per (message tag, client index) of `message.created` events whose text holds
    a tag matching `tag`; a second arrival at the same client counts as a duplicate."""

    def __init__(self, tag: re.Pattern[str]) -> None:
        self.tag = tag
        self.at: dict[str, dict[int, float]] = {}
        self.duplicates = 0
        self.other_events = 0

    def on_event(self, client: Client, now: float, packet: str) -> None:
        match = self.tag.search(packet) if packet.startswith(MESSAGE_CREATED) else None
        if match is None:
            self.other_events += 1
            return
        seen = self.at.setdefault(match.group(0), {})
        if client.index in seen:
            self.duplicates += 1
        else:
            seen[client.index] = now

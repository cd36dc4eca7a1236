"""Divert AMQP publishes to one exchange into another, in the byte stream a TcpProxy forwards.

Why not simply bind an exclusive `x-max-length: 0, x-overflow: reject-publish` queue to the
system's events exchange: the broker then nacks every publish, so the relays keep their rows,
but it still routes each nacked message to every other queue bound there (measured on 3.10:
the nacked message sat in the durable queue beside the rejecting one). Consumers, the sync
log and realtime would get every event during the "block", and a test could no longer tell
whether what was made then reached people afterwards. A policy with `max-length: 0` on the
system's queues routes nothing, but applying it drops the messages they hold.

So the proxy rewrites the exchange of each `basic.publish` to the events exchange into a
diversion exchange where only a rejecting queue is bound: the broker nacks, nothing is
routed anywhere, RPC (default exchange) and everything else pass untouched, and confirms
stay in step (the broker still counts every publish). Parsing follows AMQP 0-9-1: an 8-byte
protocol header, then frames of type(1) channel(2) size(4) payload(size) 0xCE.
"""

from __future__ import annotations

import struct
import threading

from tests.support.tcpproxy import StreamFilter

FRAME_METHOD = 1
FRAME_END = 0xCE
BASIC_PUBLISH = (60, 40)
HEADER = struct.Struct(">BHI")


class PublishDiverter:
    """Shared by every connection of a proxy; `divert(a, b)` starts rewriting, `stop()` ends it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[bytes, bytes] = {}
        self.diverted = 0  # publishes rewritten so far

    def divert(self, exchange: str, into: str) -> None:
        with self._lock:
            self._routes = {**self._routes, exchange.encode(): into.encode()}

    def stop(self) -> None:
        with self._lock:
            self._routes = {}

    def stream(self) -> StreamFilter:
        """A filter for one client connection (it keeps that connection's partial frames)."""
        return _Stream(self)

    def _route(self, exchange: bytes) -> bytes | None:
        routes = self._routes
        return routes.get(exchange) if routes else None


class _Stream:
    def __init__(self, diverter: PublishDiverter) -> None:
        self.diverter = diverter
        self.buffer = bytearray()
        self.header_seen = False
        self.passthrough = False

    def __call__(self, data: bytes) -> bytes:
        if self.passthrough:
            return data
        self.buffer += data
        out = bytearray()
        if not self.header_seen:
            if len(self.buffer) < 8:
                return b""
            out += self.buffer[:8]
            del self.buffer[:8]
            self.header_seen = True
        while len(self.buffer) >= HEADER.size:
            kind, channel, size = HEADER.unpack_from(self.buffer)
            end = HEADER.size + size + 1
            if len(self.buffer) < end:
                break
            frame = bytes(self.buffer[:end])
            del self.buffer[:end]
            if frame[-1] != FRAME_END:
                # Not AMQP as we know it: forward the rest untouched rather than guess.
                out += frame + self.buffer
                self.buffer.clear()
                self.passthrough = True
                break
            if kind == FRAME_METHOD and size >= 7:
                frame = self._rewrite(channel, frame)
            out += frame
        return bytes(out)

    def _rewrite(self, channel: int, frame: bytes) -> bytes:
        payload = frame[HEADER.size : -1]
        if struct.unpack_from(">HH", payload) != BASIC_PUBLISH:
            return frame
        length = payload[6]
        exchange = payload[7 : 7 + length]
        into = self.diverter._route(exchange)
        if into is None:
            return frame
        with self.diverter._lock:
            self.diverter.diverted += 1
        payload = payload[:6] + bytes([len(into)]) + into + payload[7 + length :]
        return HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + bytes([FRAME_END])

"""The Socket.IO server: authenticated connections in per-user rooms, fed by the event bus.

Nothing here depends on eventlet: the async mode is `settings.realtime_async_mode`, and
python-socketio runs the same code on eventlet, gevent or threads (asyncio, `aiohttp`, is
`realtime.async_server`, built from the same parts).
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

import socketio

from realtime.feed import Feed
from realtime.routing import Delivery, user_room
from shared.auth import bearer, verify_token
from shared.config import Settings
from shared.errors import AppError
from shared.health import WSGIApp, health_app, loops_ready

log = logging.getLogger(__name__)

# A dead client must be gone within a minute. On websocket it is dropped when nothing has
# come from it for ping_interval + ping_timeout (python-engineio's read timeout): 40s by
# default. On long-polling only python-engineio's sweep notices the missing pong, visiting
# each connection once per ping_timeout, so up to ping_interval + 2 * ping_timeout: 55s.
# The values are settings (REALTIME_PING_INTERVAL, REALTIME_PING_TIMEOUT).
# REALTIME_MAX_PENDING_PACKETS: packets waiting to be written to one connection before it
# is dropped as too slow.
# python-engineio queues every outgoing packet per connection, unbounded, until that
# connection's writer has put it on the wire; a client that stops reading would otherwise
# grow this process without limit. Counted in packets because the queue's length is free
# to read on every emit, its bytes are not. One event is one packet, mostly 1-2 KB (the
# largest message, 10,000 characters, is tens of KB once JSON-escaped), so 1,000 is ~1-2 MB
# per slow connection and far more backlog than a client that keeps up ever has: one that
# far behind is better served by reconnecting and catching up with GET /api/v1/sync. The
# writer may hold one more batch it already took from the queue, so the worst case per
# connection is about twice this.
# Sent to every client when consuming resumes after the bus was unreachable: sync from your cursor.
RESYNC = "resync"
# The event a connection dropped by the server gets just before it closes, in API.md's error shape.
DISCONNECT_REASON = "disconnect_reason"
# How often connections whose token has expired are closed: at most this late.
EXPIRY_SWEEP_SECONDS = 5
# Clients send nothing but the connect packet, so a large frame is only ever abuse.
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024


def close_now(sio: socketio.Server, eio_sid: str) -> None:
    """Close a connection without waiting for its queue to drain.

    Not `eio.disconnect()`: it waits until the writer has sent everything, which a client that
    does not read never lets happen. The writer sends what is queued (a reason), then closes.
    """
    connection = sio.eio.sockets.pop(eio_sid, None)
    if connection is not None:
        connection.close(wait=False, abort=False)


class _Server(socketio.Server):
    """python-socketio, but a malformed packet costs its sender the connection, not a traceback.

    Left alone, python-socketio logs every unparseable packet as an ERROR with a full
    traceback, so any client could flood the log. This hooks its (private, stable since
    5.0) packet entry point; python-socketio is pinned below 6 in pyproject.toml.
    """

    def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("realtime: dropping client %s after a malformed packet: %.200r", eio_sid, exc)
            close_now(self, eio_sid)


def _without_deflate(websocket: type) -> type:
    """python-engineio's websocket class for a threaded mode, never agreeing to permessage-deflate.

    Browsers always offer it, and eventlet accepts: each connection then keeps a zlib compressor
    from its first packet on, ~90 KB (measured: 148 KB per connection instead of 56 KB), to save
    a little on packets of 1-2 KB. Agreeing to nothing is always allowed (RFC 7692).
    """
    if not hasattr(websocket, "_negotiate_permessage_deflate"):
        return websocket  # a server that does not compress (threading: simple-websocket)

    class NoDeflate(websocket):  # type: ignore[misc, valid-type]
        def _negotiate_permessage_deflate(self, extensions: Any) -> None:
            return None

    return NoDeflate


_DEFAULTS = Settings()


def allow_open_files(wanted: int) -> None:
    """One file per connection: raise the soft limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a silent client lives and how far behind one may fall."""

    ping_interval: float = _DEFAULTS.realtime_ping_interval
    ping_timeout: float = _DEFAULTS.realtime_ping_timeout
    max_pending_packets: int = _DEFAULTS.realtime_max_pending_packets

    def __post_init__(self) -> None:
        if self.ping_interval <= 0 or self.ping_timeout <= 0 or self.max_pending_packets <= 0:
            raise ValueError(f"realtime limits must be positive: {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.realtime_ping_interval, settings.realtime_ping_timeout, settings.realtime_max_pending_packets
        )


class Backpressure:
    """Drops the connections of a room that have fallen too far behind, before more is queued for them.

    Reads python-engineio's per-connection queue (`Socket.queue`, the same in every async
    mode) without changing how python-socketio emits. A dropped connection loses its
    unwritten backlog at once, gets `disconnect_reason` and then a closed transport, which
    Socket.IO clients answer by reconnecting; GET /api/v1/sync fills the gap. A
    long-polling client cannot fetch anything from a closed session, so it only sees its
    next poll refused, and reconnects just the same.
    """

    def __init__(self, sio: socketio.Server | socketio.AsyncServer, max_pending: int) -> None:
        self._sio = sio
        self._max_pending = max_pending
        self._reason = AppError(
            "too_slow",
            "The connection fell too far behind; reconnect and catch up with GET /api/v1/sync.",
            {"max_pending_packets": max_pending},
        ).to_dict()

    def check(self, members: dict[str, str]) -> list[str]:
        """Before an emit to a room's `members` (sid -> eio sid): drop each with more than
        `max_pending` packets unwritten; the eio sids of the connections kept."""
        sockets = self._sio.eio.sockets
        kept = []
        # A snapshot, one or two entries: on threads a connection may come or go meanwhile.
        for sid, eio_sid in tuple(members.items()):
            connection = sockets.get(eio_sid)
            if connection is not None and connection.queue.qsize() > self._max_pending:
                self._drop(sid, eio_sid, connection)
            else:
                kept.append(eio_sid)
        return kept

    def _drop(self, sid: str, eio_sid: str, connection: Any) -> None:
        if connection.closing or connection.closed:
            return
        discarded = self._discard_backlog(connection.queue)
        log.warning(
            "realtime: dropping %s, too slow: %d packets were not yet written (limit %d)",
            sid,
            discarded,
            self._max_pending,
        )
        self._tell_and_close(sid, eio_sid)

    def _tell_and_close(self, sid: str, eio_sid: str) -> None:
        """Queue `disconnect_reason` behind nothing (the backlog is gone), then close."""
        self._sio.emit(DISCONNECT_REASON, self._reason, to=sid)
        close_now(self._sio, eio_sid)

    def _discard_backlog(self, queue: Any) -> int:
        """Empty the queue of what the writer has not taken yet; how many packets that was."""
        empty = self._sio.eio.get_queue_empty_exception()
        discarded = 0
        while True:
            try:
                packet = queue.get_nowait()
            except empty:
                return discarded
            queue.task_done()
            if packet is None:
                # python-engineio's "closing" marker for the writer: keep it.
                queue.put_nowait(None)
                return discarded
            discarded += 1


class Expiry:
    """When each connection's token runs out, so the connection can be closed then."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def track(self, sid: str, expires_at: int) -> None:
        self._until[sid] = expires_at

    def forget(self, sid: str) -> None:
        self._until.pop(sid, None)

    def expired(self, now: float) -> list[str]:
        """The connections whose token has expired (forgotten as they are returned)."""
        gone = [sid for sid, until in self._until.items() if until <= now]
        for sid in gone:
            del self._until[sid]
        return gone


@dataclass
class RealtimeServer:
    settings: Settings
    sio: socketio.Server
    feed: Feed
    app: WSGIApp
    expiry: Expiry
    running: bool = False

    @property
    def ready(self) -> bool:
        return self.feed.ready

    def start(self) -> None:
        self.running = True
        self.feed.start(self.sio.start_background_task)
        self.sio.start_background_task(self._close_expired)

    def _close_expired(self) -> None:
        # One sweep for every connection: a sleeping task per connection would outlive most of them.
        while self.running:
            self.sio.sleep(EXPIRY_SWEEP_SECONDS)
            for sid in self.expiry.expired(time.time()):
                self.sio.disconnect(sid)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming, then python-socketio's own tasks; call before stopping the web server."""
        self.running = False
        self.feed.stop(timeout)
        self.sio.shutdown()


def token_from(environ: dict[str, Any], auth: Any) -> str | None:
    """The token in `auth={"token": ...}`, else in an `Authorization: Bearer` header."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return bearer(environ.get("HTTP_AUTHORIZATION"))


def admit(settings: Settings, environ: Any, auth: Any) -> dict[str, Any]:
    """The session of a connecting client, or the refusal python-socketio sends back to it."""
    try:
        identity = verify_token(settings, token_from(environ, auth))
    except AppError as exc:
        raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict()) from None
    return {"user_id": identity.user_id, "expires_at": identity.expires_at}


def log_serving(queue: str, host: str, port: int, mode: str, limits: Limits) -> None:
    log.info(
        "realtime: serving on %s:%d (%s), consuming %s (ping %gs + %gs, at most %d packets pending per connection)",
        host,
        port,
        mode,
        queue,
        limits.ping_interval,
        limits.ping_timeout,
        limits.max_pending_packets,
    )


def _register_handlers(sio: socketio.Server, settings: Settings, expiry: Expiry) -> None:
    @sio.on("connect")
    def connect(sid: str, environ: Any = None, auth: Any = None, *_: Any) -> None:
        # python-socketio also dispatches a client-sent event named "connect" here: ignore it.
        if sio.manager.is_connected(sid, "/"):
            return
        session = admit(settings, environ, auth)
        sio.save_session(sid, session)
        sio.enter_room(sid, user_room(session["user_id"]))
        expiry.track(sid, session["expires_at"])

    register_leaving(sio, expiry)


def register_leaving(sio: socketio.Server | socketio.AsyncServer, expiry: Expiry) -> None:
    """What both async modes do alike: forget a connection that left, drop what clients send."""

    @sio.on("disconnect")
    def disconnect(sid: str, *_: Any) -> None:
        expiry.forget(sid)

    @sio.on("*")
    def ignore(event: Any, sid: str, *args: Any) -> None:
        # Clients have nothing to say yet; whatever they send is dropped, never fatal.
        return None


def server_options(limits: Limits) -> dict[str, Any]:
    """python-socketio's options, the same in every async mode."""
    return {
        # Clients are served by the gateway, on another origin.
        "cors_allowed_origins": "*",
        "ping_interval": limits.ping_interval,
        "ping_timeout": limits.ping_timeout,
        "max_http_buffer_size": MAX_CLIENT_MESSAGE_BYTES,
        "logger": False,
        "engineio_logger": False,
    }


def user_connections(sio: socketio.Server | socketio.AsyncServer, user_id: str) -> dict[str, str] | None:
    """The user's connections to this process (sid -> eio sid), if any."""
    return sio.manager.rooms.get("/", {}).get(user_room(user_id))


def create_server(settings: Settings, limits: Limits | None = None) -> RealtimeServer:
    """Build the server; nothing touches the network until `start()` and the WSGI server."""
    limits = limits or Limits.from_settings(settings)
    sio = _Server(async_mode=settings.realtime_async_mode, **server_options(limits))
    websocket = sio.eio._async.get("websocket")
    if websocket is not None:
        sio.eio._async = {**sio.eio._async, "websocket": _without_deflate(websocket)}
    expiry = Expiry()
    _register_handlers(sio, settings, expiry)
    backpressure = Backpressure(sio, limits.max_pending_packets)

    def emit(delivery: Delivery) -> None:
        """Queue the ready-made packet on each of the user's connections (as `sio.emit` would, minus
        encoding it again for each), after dropping any connection that has fallen too far behind."""
        members = user_connections(sio, delivery.user_id)
        for eio_sid in backpressure.check(members) if members else ():
            sio.eio.send(eio_sid, delivery.packet)

    def here(user_id: str) -> bool:
        """Whether this process holds a connection of the user (else it has nothing to do for them)."""
        return bool(user_connections(sio, user_id))

    def resync() -> None:
        # Events may have been lost while the bus was away: every client catches up with /sync.
        sio.emit(RESYNC, {"reason": "bus_reconnected"})

    feed = Feed(settings, emit, here, on_resume=resync, pause=lambda: sio.sleep(0))

    def readiness() -> tuple[bool, dict[str, Any]]:
        ready, report = loops_ready()
        return ready and feed.ready, report

    app = socketio.WSGIApp(sio, health_app(readiness), socketio_path=settings.socketio_path)
    return RealtimeServer(settings=settings, sio=sio, feed=feed, app=app, expiry=expiry)

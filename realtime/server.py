"""The Socket.IO server: authenticated connections in per-user rooms, fed by the event bus.

Nothing here depends on eventlet: the async mode is `settings.realtime_async_mode`, and
python-socketio runs the same code on eventlet, gevent or threads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import socketio

from realtime.feed import Feed
from realtime.health import WSGIApp, health_app
from realtime.routing import Delivery, user_room
from shared.auth import bearer, verify_token
from shared.config import Settings
from shared.errors import AppError

log = logging.getLogger(__name__)

# A dead client is dropped after at most ping_interval + ping_timeout = 45s.
PING_INTERVAL = 25
PING_TIMEOUT = 20
# How often connections whose token has expired are closed: at most this late.
EXPIRY_SWEEP_SECONDS = 5
# Clients send nothing but the connect packet, so a large frame is only ever abuse.
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024


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
            self.eio.disconnect(eio_sid)


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


def _register_handlers(sio: socketio.Server, settings: Settings, expiry: Expiry) -> None:
    @sio.on("connect")
    def connect(sid: str, environ: Any = None, auth: Any = None, *_: Any) -> None:
        # python-socketio also dispatches a client-sent event named "connect" here: ignore it.
        if sio.manager.is_connected(sid, "/"):
            return
        try:
            identity = verify_token(settings, token_from(environ, auth))
        except AppError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict()) from None
        sio.save_session(sid, {"user_id": identity.user_id, "expires_at": identity.expires_at})
        sio.enter_room(sid, user_room(identity.user_id))
        expiry.track(sid, identity.expires_at)

    @sio.on("disconnect")
    def disconnect(sid: str, *_: Any) -> None:
        expiry.forget(sid)

    @sio.on("*")
    def ignore(event: Any, sid: str, *args: Any) -> None:
        # Clients have nothing to say yet; whatever they send is dropped, never fatal.
        return None


def create_server(settings: Settings) -> RealtimeServer:
    """Build the server; nothing touches the network until `start()` and the WSGI server."""
    sio = _Server(
        async_mode=settings.realtime_async_mode,
        # Clients are served by the gateway, on another origin.
        cors_allowed_origins="*",
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        max_http_buffer_size=MAX_CLIENT_MESSAGE_BYTES,
        logger=False,
        engineio_logger=False,
    )
    expiry = Expiry()
    _register_handlers(sio, settings, expiry)

    def emit(delivery: Delivery) -> None:
        sio.emit(delivery.event, delivery.payload, to=user_room(delivery.user_id))

    def here(user_id: str) -> bool:
        """Whether this process holds a connection of the user (else it has nothing to do for them)."""
        return bool(sio.manager.rooms.get("/", {}).get(user_room(user_id)))

    feed = Feed(settings, emit, here)
    app = socketio.WSGIApp(sio, health_app(lambda: feed.ready), socketio_path=settings.socketio_path)
    return RealtimeServer(settings=settings, sio=sio, feed=feed, app=app, expiry=expiry)

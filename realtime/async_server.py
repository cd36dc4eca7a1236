"""The Socket.IO server on asyncio (REALTIME_ASYNC_MODE=aiohttp): the same events, auth, rooms,
limits and health as `realtime.server`, on python-socketio's AsyncServer under aiohttp.

A connection is a few small tasks instead of eventlet's three green threads and WSGI handler,
which is most of what it costs. The event bus consumer (kombu, blocking) keeps its own thread;
every emit it makes is carried out on the event loop, and an event is acked only after the loop
has queued it on every connection it goes to (`LoopHandoff`), as on eventlet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import engineio
import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

from realtime.feed import Feed
from realtime.routing import EVENT_PACKET, Delivery, user_room
from realtime.server import (
    DISCONNECT_REASON,
    EXPIRY_SWEEP_SECONDS,
    RESYNC,
    Backpressure,
    Expiry,
    Limits,
    admit,
    register_leaving,
    server_options,
    user_connections,
)
from shared.config import Settings
from shared.errors import AppError
from shared.health import WSGIApp, health_app, loops_ready

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long the consumer thread waits for the loop to carry out one batch of emits. The loop only
# queues packets, so this is never near; past it the event is not acked and comes again.
HANDOFF_TIMEOUT_SECONDS = 30.0


def send_now(sio: socketio.AsyncServer, eio_sid: str, text: str) -> None:
    """Queue a Socket.IO packet on a connection, as `eio.send` does, without a coroutine per packet
    (the queue is unbounded: `put_nowait` never waits). On the event loop only."""
    connection = sio.eio.sockets.get(eio_sid)
    if connection is not None and not connection.closed:
        connection.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=text))


_closing: set[asyncio.Task[Any]] = set()  # the loop keeps only weak references to tasks


def close_soon(sio: socketio.AsyncServer, eio_sid: str) -> None:
    """`server.close_now` on asyncio: gone from the server at once, closed by a task (the writer sends
    what is queued, then closes). On the event loop only."""
    connection = sio.eio.sockets.pop(eio_sid, None)
    if connection is not None:
        task = asyncio.ensure_future(_close(connection))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


async def _close(connection: Any) -> None:
    await connection.close(wait=False, abort=False)
    # python-engineio's threaded close ends the writer (which then closes the websocket) with this
    # marker; its asyncio close leaves that to the client, which a client that stopped reading never does.
    connection.queue.put_nowait(None)


# Engine.IO v4 packet types, the first character of every text frame: open, close, ping, pong,
# message, upgrade, noop.
_ENGINEIO_PACKET_TYPES = "0123456"


def _event_packet(event: str, data: Any) -> str:
    return EVENT_PACKET + json.dumps([event, data], separators=(",", ":"))


class _WebSocket(eio_aiohttp.WebSocket):
    """python-engineio's aiohttp websocket without permessage-deflate: browsers always offer it, and
    each compressed connection would hold zlib state of a few hundred KB for packets of 1-2 KB."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def wait(self) -> str | bytes:
        """The next frame; a text frame that is no Engine.IO packet ends the connection as a closed
        socket does (python-engineio would log a traceback for each, and keep the socket open)."""
        data = await super().wait()
        if isinstance(data, str) and (not data or data[0] not in _ENGINEIO_PACKET_TYPES):
            log.warning("realtime: dropping a client after a malformed Engine.IO packet: %.200r", data)
            raise OSError("malformed Engine.IO packet")
        return data


class PacketQueue:
    """A connection's queue of packets for its writer, as python-engineio uses it: unbounded, one reader.

    asyncio.Queue holds four deques (760 bytes each, empty or not: waiting getters, waiting
    putters, joiners and the items), and python-engineio waits on its `get()` coroutine through
    `wait_for`, which wraps it in a task of its own: together a fifth of what an idle connection
    costs. Nothing ever waits to put on an unbounded queue, and only the writer (or a poll) waits
    to get, so this keeps the items and the waiting getters, hands `get()` out as a bare future
    (which `wait_for` awaits as it is), and makes the joiners' future only while one waits.
    """

    __slots__ = ("_items", "_getters", "_unfinished", "_joined")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._getters: list[asyncio.Future[Any]] = []
        self._unfinished = 0
        self._joined: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        while self._getters:
            getter = self._getters.pop(0)
            # A getter given up on (cancelled by wait_for's timeout) takes nothing.
            if not getter.done():
                getter.set_result(item)
                return
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def get(self) -> asyncio.Future[Any]:
        """A future of the next item (awaitable as asyncio.Queue.get() is)."""
        future = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self._items.popleft())
        else:
            self._getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joined is not None:
            if not self._joined.done():
                self._joined.set_result(None)
            self._joined = None

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        if self._joined is None:
            self._joined = asyncio.get_running_loop().create_future()
        # Shielded: one joiner cancelled must not cancel the others' wait.
        await asyncio.shield(self._joined)


def _ping(connection: AsyncSocket) -> None:
    """python-engineio's `AsyncSocket._send_ping` after its sleep (its timeout check has nothing to
    check then: the pong that scheduled this cleared `last_ping`)."""
    if not connection.closing and not connection.closed:
        connection.last_ping = time.time()
        connection.queue.put_nowait(eio_packet.Packet(eio_packet.PING))


class _EngineIO(engineio.AsyncServer):
    # REALTIME_MAX_CONNECTIONS: eventlet's WSGI server stops accepting past it; aiohttp has no such
    # bound, so a new session past it is refused (503) and the client retries, or tries the next URL.
    max_connections: int | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._async = {**self._async, "websocket": _WebSocket}

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        request = args[0]
        full = self.max_connections is not None and len(self.sockets) >= self.max_connections
        if full and "sid" not in request.query:
            error = AppError("unavailable", "This realtime process is full; try again or another one.")
            return web.json_response({"error": error.to_dict()}, status=503)
        return await super().handle_request(*args, **kwargs)

    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue:
        return PacketQueue()

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # python-engineio pings each connection from a task of its own that sleeps ping_interval: a
        # task, its coroutine and its context per connection, held all the time. A timer does the same.
        if getattr(target, "__func__", None) is AsyncSocket._send_ping and not args and not kwargs:
            return asyncio.get_running_loop().call_later(self.ping_interval, _ping, target.__self__)
        return super().start_background_task(target, *args, **kwargs)


class _AsyncServer(socketio.AsyncServer):
    """python-socketio on asyncio, but a malformed packet costs its sender the connection (see
    `realtime.server._Server`)."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _EngineIO

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("realtime: dropping client %s after a malformed packet: %.200r", eio_sid, exc)
            close_soon(self, eio_sid)


class _AsyncBackpressure(Backpressure):
    """`Backpressure` on the event loop: telling and closing are queued, never awaited mid-emit."""

    _sio: socketio.AsyncServer

    def _tell_and_close(self, sid: str, eio_sid: str) -> None:
        send_now(self._sio, eio_sid, _event_packet(DISCONNECT_REASON, self._reason))
        close_soon(self._sio, eio_sid)


class LoopHandoff:
    """The feed's emits, made on the consumer thread, carried out on the event loop in batches.

    `emit` only collects; `flush` hands what was collected to the loop and returns once the loop has
    queued all of it (or raises what it raised), so the consumer's ack comes after the emits.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, emit: Callable[[Delivery], None]) -> None:
        self._loop = loop
        self._emit = emit
        self._pending: list[Delivery] = []

    def emit(self, delivery: Delivery) -> None:
        self._pending.append(delivery)

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            self.call(lambda: self._emit_all(batch))

    def _emit_all(self, batch: list[Delivery]) -> None:
        for delivery in batch:
            self._emit(delivery)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop and wait for its result; from any thread but the loop's."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # noqa: BLE001  (handed back to the waiting thread)
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result(HANDOFF_TIMEOUT_SECONDS)


def _spawn_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, name="realtime-feed", daemon=True)
    thread.start()
    return thread


def health_route(app: WSGIApp) -> Callable[[web.Request], Any]:
    """`shared.health`'s WSGI app answering aiohttp requests (the same bodies, statuses and 404)."""

    async def handle(request: web.Request) -> web.Response:
        environ = {"PATH_INFO": request.path, "REQUEST_METHOD": request.method}
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer.update(status=int(status.split()[0]), headers=headers)

        body = b"".join(app(environ, start_response))
        return web.Response(body=body, status=answer["status"], headers=answer["headers"])

    return handle


def _register_handlers(sio: socketio.AsyncServer, settings: Settings, expiry: Expiry) -> None:
    @sio.on("connect")
    async def connect(sid: str, environ: Any = None, auth: Any = None, *_: Any) -> None:
        # python-socketio also dispatches a client-sent event named "connect" here: ignore it.
        if sio.manager.is_connected(sid, "/"):
            return
        session = admit(settings, environ, auth)
        await sio.save_session(sid, session)
        await sio.enter_room(sid, user_room(session["user_id"]))
        expiry.track(sid, session["expires_at"])

    register_leaving(sio, expiry)


@dataclass
class AsyncRealtimeServer:
    settings: Settings
    sio: socketio.AsyncServer
    feed: Feed
    app: web.Application
    expiry: Expiry
    running: bool = False
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def ready(self) -> bool:
        return self.feed.ready

    def start(self) -> None:
        """On the event loop: consume in a thread, sweep expired tokens in a task."""
        self.running = True
        self.feed.start(_spawn_thread)
        self._tasks.add(asyncio.ensure_future(self._close_expired()))

    async def _close_expired(self) -> None:
        # One sweep for every connection: a sleeping task per connection would outlive most of them.
        while self.running:
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)
            for sid in self.expiry.expired(time.time()):
                await self.sio.disconnect(sid)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming, then python-socketio's own tasks; call before stopping the web server."""
        self.running = False
        for task in self._tasks:
            task.cancel()
        # Stopping the consumer blocks (it waits for its thread), and that thread may be waiting on this loop.
        await asyncio.get_running_loop().run_in_executor(None, self.feed.stop, timeout)
        await self.sio.shutdown()


def create_async_server(
    settings: Settings, loop: asyncio.AbstractEventLoop, limits: Limits | None = None
) -> AsyncRealtimeServer:
    """Build the server on `loop`; nothing touches the network until `start()` and the web server."""
    limits = limits or Limits.from_settings(settings)
    sio = _AsyncServer(async_mode="aiohttp", **server_options(limits))
    sio.eio.max_connections = settings.realtime_max_connections
    expiry = Expiry()
    _register_handlers(sio, settings, expiry)
    backpressure = _AsyncBackpressure(sio, limits.max_pending_packets)

    def emit(delivery: Delivery) -> None:
        """On the loop: queue the ready-made packet on each of the user's connections, after dropping
        any that has fallen too far behind (as `realtime.server` does)."""
        members = user_connections(sio, delivery.user_id)
        for eio_sid in backpressure.check(members) if members else ():
            send_now(sio, eio_sid, delivery.packet)

    def here(user_id: str) -> bool:
        """Whether this process holds a connection of the user (read from the consumer thread, as on threads)."""
        return bool(user_connections(sio, user_id))

    handoff = LoopHandoff(loop, emit)

    def resync() -> None:
        # Events may have been lost while the bus was away: every client catches up with /sync.
        asyncio.run_coroutine_threadsafe(sio.emit(RESYNC, {"reason": "bus_reconnected"}), loop).result(
            HANDOFF_TIMEOUT_SECONDS
        )

    feed = Feed(settings, handoff.emit, here, on_resume=resync, pause=handoff.flush, flush=handoff.flush)

    def readiness() -> tuple[bool, dict[str, Any]]:
        ready, report = loops_ready()
        return ready and feed.ready, report

    app = web.Application()
    sio.attach(app, socketio_path=settings.socketio_path)
    app.router.add_route("*", "/{path:.*}", health_route(health_app(readiness)))
    return AsyncRealtimeServer(settings=settings, sio=sio, feed=feed, app=app, expiry=expiry)

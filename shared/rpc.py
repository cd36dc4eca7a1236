"""Request/reply over RabbitMQ: one durable work queue per service, direct reply-to, deadlines.

Request body: {"method", "params", "caller"}; headers carry the absolute deadline.
Reply body: {"ok": true, "result": ...} or {"ok": false, "error": {code, message, details}}.
A server skips requests whose deadline has passed (the caller gave up on them); a client
drops late replies by correlation id. Scaling a service = more consumers on its queue.
"""

from __future__ import annotations

import json
import logging
import queue
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import amqp
from kombu import Consumer, Producer, Queue
from kombu.exceptions import OperationalError

from shared.bus import CONNECT_TIMEOUT, QueueConsumer, broker_connection, connect_once
from shared.config import Settings
from shared.errors import AppError
from shared.supervise import start_thread, unavailable

log = logging.getLogger(__name__)

REPLY_TO = "amq.rabbitmq.reply-to"
DEADLINE_HEADER = "x-deadline"


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified identity of whoever the gateway is acting for."""

    user_id: str


Method = Callable[[Caller | None, dict[str, Any]], Any]


def user_of(caller: Caller | None) -> str:
    """The signed-in user a call acts for; `unauthenticated` when it acts for nobody."""
    if caller is None:
        raise AppError("unauthenticated", "Sign in to continue.")
    return caller.user_id


def service_unavailable(service: str) -> AppError:
    """`unavailable` (503): the service, the broker or its database is away for now; retry shortly."""
    return AppError("unavailable", "The service is unavailable. Try again.", {"service": service})


def _encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


class _RpcWorker(QueueConsumer):
    def __init__(self, settings: Settings, service: str, methods: dict[str, Method], index: int = 0) -> None:
        super().__init__(settings, f"rpc {service} {index}")
        self.service = service
        self.methods = methods
        self.queue = Queue(settings.rpc_queue(service), durable=True)

    def consumers(self, channel: Any) -> list[Consumer]:
        self.queue(channel).declare()
        return [Consumer(channel, queues=[self.queue], on_message=self._on_message, prefetch_count=1)]

    def _on_message(self, message: Any) -> None:
        props = message.properties
        reply_to = props.get("reply_to")
        correlation_id = props.get("correlation_id")
        deadline = (message.headers or {}).get(DEADLINE_HEADER)
        try:
            if isinstance(deadline, (int, float)) and time.time() > deadline:
                return  # the caller has given up; doing the work now would only surprise it
            reply = self._dispatch(message.body)
            if reply_to:
                Producer(message.channel).publish(
                    _encode(reply),
                    exchange="",
                    routing_key=reply_to,
                    correlation_id=correlation_id,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=1,
                )
        finally:
            message.ack()

    def _dispatch(self, body: bytes | str) -> dict[str, Any]:
        try:
            request = json.loads(body)
            method = self.methods.get(request["method"])
            params = request.get("params") or {}
            raw_caller = request.get("caller")
            caller = Caller(user_id=str(raw_caller["user_id"])) if raw_caller else None
            if not isinstance(params, dict):
                raise TypeError("params must be an object")
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": AppError("malformed_request", f"Malformed request: {exc}").to_dict()}
        if method is None:
            return {"ok": False, "error": AppError("not_found", f"No method {request['method']!r}.").to_dict()}
        try:
            return {"ok": True, "result": method(caller, params)}
        except AppError as exc:
            return {"ok": False, "error": exc.to_dict()}
        except Exception as exc:  # noqa: BLE001  (a bug must answer the caller and keep the worker alive)
            if unavailable(exc):
                # The database is away (restarting, unreachable): the caller should retry, not report a bug.
                log.warning("rpc %s: %s: unavailable: %s", self.service, request.get("method"), exc)
                return {"ok": False, "error": service_unavailable(self.service).to_dict()}
            log.exception("rpc %s: %s failed", self.service, request.get("method"))
            return {"ok": False, "error": AppError("internal", "Something went wrong.").to_dict()}


class RpcServer:
    """`threads` workers, each with its own connection (kombu connections are not thread-safe)."""

    def __init__(
        self, settings: Settings, service: str, methods: dict[str, Method], *, threads: int | None = None
    ) -> None:
        count = threads or settings.rpc_threads
        self.workers = [_RpcWorker(settings, service, methods, i) for i in range(count)]
        self.threads: list[threading.Thread] = []

    def start(self, *, wait: float | None = 10.0) -> RpcServer:
        """Start the workers; with `wait`, until all of them consume (TimeoutError if not)."""
        for i, worker in enumerate(self.workers):
            self.threads.append(start_thread(worker.run, f"rpc-{worker.service}-{i}"))
        for worker in self.workers:
            if wait is not None and not worker.ready.wait(wait):
                raise TimeoutError(f"rpc server {worker.service} did not start")
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Stop taking requests; with `wait`, until every worker has finished the one in hand."""
        for worker in self.workers:
            worker.stop()
        if wait:
            for thread in self.threads:
                thread.join(timeout=5)


class _ReplyChannel:
    """A connection with a consumer on direct reply-to, used by one thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self.conn = broker_connection(settings.amqp_url, io_timeout=CONNECT_TIMEOUT)
        # One attempt, no hidden retries: a request waiting seconds for a broker that is away holds
        # a gateway worker for nothing; its caller is told to retry instead.
        connect_once(self.conn)
        self.channel = self.conn.channel()
        self.replies: dict[str, dict[str, Any]] = {}
        self.waiting: str | None = None
        # The reply consumer must be consuming (no-ack) on this channel before any request is sent.
        self.consumer = Consumer(
            self.channel,
            queues=[Queue(REPLY_TO, no_ack=True, no_declare=True)],
            on_message=self._on_reply,
            no_ack=True,
        )
        self.consumer.consume()
        self.producer = Producer(self.channel)

    def _on_reply(self, message: Any) -> None:
        correlation_id = message.properties.get("correlation_id")
        if correlation_id == self.waiting:
            self.replies[correlation_id] = json.loads(message.body)
        # Anything else is a reply to a call that already timed out: dropped.

    def alive(self) -> bool:
        """Whether this idle connection still works: the broker closed it if its socket has news.

        An idle reply connection receives nothing but late replies (dropped) and the broker's
        farewell when it went away; one `select` tells, before a request is trusted to it.
        """
        try:
            sock = self.conn.connection.sock
            if not select.select([sock], [], [], 0)[0]:
                return True
            self.conn.drain_events(timeout=0)
        except TimeoutError:
            return True  # there was nothing whole to read after all
        except Exception:  # noqa: BLE001  (closed, reset, or a farewell frame: not usable)
            return False
        return True

    def close(self) -> None:
        try:
            self.conn.release()
        except Exception:  # noqa: BLE001  (closing a broken connection; nothing to save)
            pass


class BrokerAway(OperationalError):
    """Raised without trying: the broker did not answer a probe, and has not answered one since."""


class RpcClient:
    """Thread-safe RPC client: a pool of reply channels, a deadline on every call."""

    # How long the probe waits for the broker's handshake, and between its attempts.
    PROBE_TIMEOUT = 1.0
    PROBE_PAUSE = 0.2

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: queue.LifoQueue[_ReplyChannel] = queue.LifoQueue()
        self._lock = threading.Lock()
        # Set while the broker is known not to answer: calls then fail at once, holding nobody.
        self._broker_away = threading.Event()
        self._probing = False
        self._away_since = 0.0

    def _suspect_broker(self, *, refused: bool) -> None:
        """Find out whether the broker answers, in the background.

        `refused`: a connect failed, so the broker is away: calls fail at once from now on. Else a
        call got no answer in time, which a slow service explains as well as a broker gone silent
        (a network black hole): calls go on as before unless the probe cannot reach the broker.
        """
        with self._lock:
            if refused:
                self._mark_away("a connection to the broker failed")
            if self._probing:
                return
            self._probing = True
        start_thread(self._probe, "rpc-broker-probe")

    def _mark_away(self, why: str) -> None:
        if not self._broker_away.is_set():
            self._away_since = time.monotonic()
            self._broker_away.set()
            log.warning("rpc client: %s; calls fail at once (503) until the broker answers", why)

    def _probe(self) -> None:
        while True:
            conn = broker_connection(self.settings.amqp_url, io_timeout=self.PROBE_TIMEOUT)
            try:
                connect_once(conn)
                break
            except Exception as exc:  # noqa: BLE001  (still away; try again shortly)
                with self._lock:
                    self._mark_away(f"the broker does not answer ({exc})")
                time.sleep(self.PROBE_PAUSE)
            finally:
                try:
                    conn.release()
                except Exception:  # noqa: BLE001  (closing a failed connection; nothing to save)
                    pass
        with self._lock:
            self._probing = False
            if self._broker_away.is_set():
                self._broker_away.clear()
                log.warning("rpc client: the broker answers again after %.1f s", time.monotonic() - self._away_since)

    def _take(self) -> _ReplyChannel:
        if self._broker_away.is_set():
            raise BrokerAway("the broker has not answered lately")
        while True:
            try:
                channel = self._pool.get_nowait()
            except queue.Empty:
                break
            if channel.alive():
                return channel
            channel.close()
        try:
            return _ReplyChannel(self.settings)
        except Exception:
            self._suspect_broker(refused=True)
            raise

    @contextmanager
    def _channel(self) -> Iterator[_ReplyChannel]:
        channel = self._take()
        healthy = False
        try:
            yield channel
            healthy = True
        finally:
            if healthy:
                self._pool.put(channel)
            else:
                channel.close()

    def call(
        self,
        service: str,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        caller: Caller | str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The method's result; raises the service's AppError, or `unavailable` when no answer comes in time."""
        timeout = timeout if timeout is not None else self.settings.rpc_timeout_seconds
        caller_id = caller.user_id if isinstance(caller, Caller) else caller
        body = _encode(
            {"method": method, "params": params or {}, "caller": {"user_id": caller_id} if caller_id else None}
        )
        correlation_id = str(uuid.uuid4())
        deadline = time.time() + timeout
        try:
            with self._channel() as rc:
                rc.waiting = correlation_id
                rc.producer.publish(
                    body,
                    exchange="",
                    routing_key=self.settings.rpc_queue(service),
                    reply_to=REPLY_TO,
                    correlation_id=correlation_id,
                    headers={DEADLINE_HEADER: deadline},
                    expiration=timeout,  # the broker drops it if nobody takes it in time
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=1,
                )
                while correlation_id not in rc.replies:
                    remaining = deadline - time.time()
                    if remaining <= 0:
                        raise TimeoutError()
                    rc.conn.drain_events(timeout=remaining)
                reply = rc.replies.pop(correlation_id)
                rc.waiting = None
        except TimeoutError:
            self._suspect_broker(refused=False)
            log.warning("rpc %s %s: no answer within %.1f s", service, method, timeout)
            raise AppError(
                "unavailable", "The service did not answer in time. Try again.", {"service": service}
            ) from None
        except (OSError, amqp.exceptions.AMQPError, OperationalError) as exc:
            # The broken channel was discarded on the way out of the `with`; the others in the pool
            # are checked before their next use. Failing fast was told once, when it began.
            if not isinstance(exc, BrokerAway):
                log.warning("rpc %s %s: unavailable: %r", service, method, exc)
            raise service_unavailable(service) from exc
        if reply.get("ok"):
            return reply.get("result")
        raise AppError.from_dict(reply.get("error") or {})

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

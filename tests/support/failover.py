"""A Python Socket.IO client that survives losing its realtime process, as real clients must.

It connects to the first realtime URL that answers; when the connection drops it moves on
to the next URL (round robin, with back-off) and catches up with `GET /sync` from the
cursor of the last event it applied; it catches up the same way when realtime says `resync`.
Events pushed while it catches up wait and are applied after, so it applies every change once
and in order: nothing lost, nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import socketio

log = logging.getLogger(__name__)


class FailoverClient:
    # How long a catch-up keeps trying while the API is away (None: as long as a reconnect, `retry_for`).
    catch_up_for: float | None = None
    CATCH_UP_PAUSE = 0.3

    def __init__(
        self,
        urls: list[str],
        api: str,
        token: Callable[[], str],
        *,
        socketio_path: str = "socket.io",
        retry_for: float = 30.0,
    ) -> None:
        self.urls, self.api, self.token = list(urls), api, token
        self.socketio_path = socketio_path
        self.retry_for = retry_for
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.connected_to: list[str] = []  # every URL it has been connected to, in order
        self.cursor: str | None = None
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._catching_up = False
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._client: socketio.Client | None = None
        self._next = 0
        self._closing = False
        self.http = requests.Session()

    # Life ---------------------------------------------------------------------------------

    def start(self) -> FailoverClient:
        self.cursor = self._get("/sync")["cursor"]
        self._connect()
        return self

    def close(self) -> None:
        self._closing = True
        if self._client is not None:
            self._client.disconnect()

    def _connect(self) -> None:
        deadline, delay = time.monotonic() + self.retry_for, 0.1
        while not self._closing:
            url = self.urls[self._next % len(self.urls)]
            self._next += 1
            client = socketio.Client(reconnection=False)
            client.on("*", self._pushed)
            client.on("disconnect", lambda *_: self._lost())
            try:
                with self._lock:
                    self._catching_up = True
                client.connect(
                    url,
                    auth={"token": self.token()},
                    transports=["websocket"],
                    socketio_path=self.socketio_path,
                    wait_timeout=5,
                )
            except socketio.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._client = client
            self.connected_to.append(url)
            self._catch_up()
            return

    def _lost(self) -> None:
        if not self._closing:
            # Not from the event thread of the dead connection: reconnecting blocks.
            threading.Thread(target=self._connect, daemon=True).start()

    # Events -------------------------------------------------------------------------------

    def _pushed(self, event: str, data: Any = None) -> None:
        if event == "resync":
            # The realtime process lost events with its queue (the broker went away): catch up from
            # the last applied cursor, as after a reconnect. Not from the event thread: it blocks.
            with self._lock:
                self._catching_up = True
            threading.Thread(target=self._catch_up, daemon=True).start()
            return
        if not isinstance(data, dict) or "event_id" not in data:
            return
        with self._lock:
            if self._catching_up:
                self._held.append((event, data))
                return
            self._apply(event, data)

    def _apply(self, event: str, data: dict[str, Any]) -> None:
        # Caller holds the lock.
        if data.get("cursor"):
            self.cursor = data["cursor"]
        if data["event_id"] in self._seen:
            return
        self._seen.add(data["event_id"])
        self.applied.append((event, data))

    def _catch_up(self) -> None:
        """Everything since the last applied event, then whatever was pushed meanwhile.

        The API may be briefly unavailable (a fault being recovered from): keep trying, as a client does.
        """
        deadline = time.monotonic() + (self.catch_up_for or self.retry_for)
        while True:
            try:
                page = self._get("/sync", since=self.cursor)
            except requests.RequestException:
                if self._closing:
                    return
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.CATCH_UP_PAUSE)
                continue
            with self._lock:
                for change in page["changes"]:
                    self._apply(change["event"], change)
                self.cursor = page["cursor"]
                if not page["has_more"]:
                    held, self._held = self._held, []
                    for event, data in held:
                        self._apply(event, data)
                    self._catching_up = False
                    return

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(
            f"{self.api}{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def message_ids(self, event: str = "message.created") -> list[str]:
        with self._lock:
            return [data["message"]["id"] for name, data in self.applied if name == event]

"""What a Socket.IO client was pushed, in order, to wait for and look through."""

from __future__ import annotations

import queue
from collections.abc import Iterable
from typing import Any

import socketio


class Inbox:
    def __init__(self, client: socketio.Client, names: Iterable[str]) -> None:
        self.client = client
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        for name in names:
            client.on(name, lambda data, name=name: self.events.put((name, data)))

    def next(self, name: str, where: Any = lambda data: True, timeout: float = 10.0) -> dict[str, Any]:
        """The next pushed `name` event that satisfies `where` (earlier others are skipped)."""
        while True:
            got, data = self.events.get(timeout=timeout)
            if got == name and where(data):
                return data

    def seen(self, wait: float = 0.5) -> list[tuple[str, dict[str, Any]]]:
        """Everything pushed until nothing more comes for `wait` seconds."""
        found = []
        try:
            while True:
                found.append(self.events.get(timeout=wait))
        except queue.Empty:
            return found

    def names(self, wait: float = 0.5) -> list[str]:
        return [name for name, _ in self.seen(wait)]

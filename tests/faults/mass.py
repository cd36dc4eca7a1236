"""A mass message to watch through a fault: queued, delivered once to everyone, its progress pushed to its sender."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from shared.auth import issue_token
from tests.faults.conftest import MASS_SENDER, Rig, insist
from tests.support.load import Listener
from tests.support.mass import deliveries


@dataclass
class MassJob:
    rig: Rig
    job: dict[str, Any]
    sender: Listener
    waited_s: float | None = None  # how long `check` waited for the job to complete and its sender to hear

    @classmethod
    def queue(cls, rig: Rig, *, org_id: str, roles: list[str], body: str) -> MassJob:
        token = issue_token(rig.settings, MASS_SENDER)
        sender = Listener(rig.sys.realtime_urls, rig.sys.api, lambda: token, socketio_path=rig.settings.socketio_path)
        sender.start()
        http, job = rig.session(MASS_SENDER), {"org_id": org_id, "roles": roles, "body": body}
        response = insist(lambda: http.post(f"{rig.sys.api}/mass-messages", json=job, timeout=15))
        assert response.status_code == 202, response.text
        return cls(rig, response.json(), sender)

    @property
    def id(self) -> str:
        return self.job["id"]

    def state(self) -> dict[str, Any]:
        response = self.rig.session(MASS_SENDER).get(f"{self.rig.sys.api}/mass-messages/{self.id}", timeout=15)
        response.raise_for_status()
        return response.json()

    def pushed_states(self) -> list[str]:
        with self.sender._lock:
            return [
                data["job"]["state"]
                for name, data in self.sender.applied
                if name == "mass_message.progress" and data["job"]["id"] == self.id
            ]

    def check(self, timeout: float = 60.0) -> list[str]:
        """Completed, each recipient once, and the sender told so by push or /sync; what is wrong, if anything."""
        deadline = time.monotonic() + timeout
        done: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                done = self.state()
            except Exception:  # noqa: BLE001  (a fault may still be settling; the deadline decides)
                done = {}
            if done.get("state") == "completed" and "completed" in self.pushed_states():
                break
            time.sleep(0.3)
        self.waited_s = round(timeout - (deadline - time.monotonic()), 2)
        problems = []
        if done.get("state") != "completed":
            problems.append(f"mass message {self.id} is {done.get('state')!r}, not completed, after {timeout}s: {done}")
        elif done["delivered"] + done["skipped"] != done["audience"] or done["failed"]:
            problems.append(f"mass message {self.id} counts do not add up: {done}")
        else:
            rows, people, messages = deliveries(self.rig.settings, done["conversation_id"])
            if not rows == people == done["delivered"] or messages != 1:
                problems.append(
                    f"mass message {self.id}: {rows} participant rows, {people} people, {messages} messages "
                    f"for {done['delivered']} delivered"
                )
        if "completed" not in self.pushed_states():
            problems.append(f"the sender of mass message {self.id} was never told it completed: {self.pushed_states()}")
        return problems

    def close(self) -> None:
        self.sender.close()

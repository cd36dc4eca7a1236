"""What moderation costs and how fast it acts.

- Matching: one school's 500-phrase safeguarding list against messages of 200 and 10,000
  characters (plain and accented), in process.
- Every message goes past the safeguarding lists: with a 500-phrase list on every school,
  1:1 messages at a fixed rate through the whole system, with the moderation process's CPU
  per message beside the rest (bench.latency's open-loop phase).
- A report, from `POST /reports` to the staff member reading the conversation through it.
- A flagged message, from its send to `report.created` on the safeguarding lead's socket.

Figures go to bench/results/moderation-<time>.json and to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import string
import time
from datetime import UTC, datetime
from typing import Any

import requests
import socketio

from bench.latency import Receivers, open_pairs, run_phase
from bench.measure import bench_settings, stats, write_report
from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from services.moderation.safeguarding import MAX_PHRASES, compile_phrases
from shared.auth import issue_token
from shared.db import drop_database

DISTRICT_ADMIN, SCHOOL_ADMIN = "user-a-000", "user-a-002"
SCHOOLS = ("org-school-1", "org-school-2")
# Two students of Math 9B and its teacher (see tests/e2e/test_moderation.py).
PUPIL, CLASSMATE, TEACHER = "user-s-0001", "user-s-0013", "user-t-001"


def phrases(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(count * 2)]
    return [" ".join(words[i : i + rng.randint(1, 3)]) for i in range(count)]


def matching(repeat: int = 200) -> dict[str, Any]:
    matcher = compile_phrases(phrases(MAX_PHRASES))
    rng = random.Random(3)
    plain = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(2500))
    accented = plain.replace("e", "é").replace("a", "å")
    found: dict[str, Any] = {}
    for name, text in (("plain", plain), ("accented", accented)):
        for size in (200, 10_000):
            sample = text[:size]
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                matcher.find(sample)
                times.append((time.perf_counter() - start) * 1000)
            found[f"{name}_{size}_chars_ms"] = stats(times)
    return found


def http(settings: Any, user: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {issue_token(settings, user)}"
    return session


def report_to_access(api: str, settings: Any, rounds: int) -> dict[str, Any]:
    """From the report's POST to the staff member's first successful read of the conversation."""
    pupil, classmate, teacher = (http(settings, u) for u in (PUPIL, CLASSMATE, TEACHER))
    created = pupil.post(
        f"{api}/conversations", json={"recipients": [{"type": "user", "id": CLASSMATE}], "body": "hi"}, timeout=10
    )
    cid = created.json()["conversation"]["id"]
    timings, post_ms = [], []
    for i in range(rounds):
        mid = pupil.post(f"{api}/conversations/{cid}/messages", json={"body": f"rude {i}"}, timeout=10).json()["id"]
        start = time.perf_counter()
        made = classmate.post(
            f"{api}/reports", json={"message_id": mid, "to_user_id": TEACHER, "reason": "rude"}, timeout=10
        )
        post_ms.append((time.perf_counter() - start) * 1000)
        if made.status_code != 201:
            raise RuntimeError(made.text)
        while teacher.get(f"{api}/conversations/{cid}/messages", timeout=10).status_code != 200:
            time.sleep(0.005)
        timings.append((time.perf_counter() - start) * 1000)
        classmate.post(f"{api}/reports/{made.json()['id']}/withdraw", timeout=10)
    return {"rounds": rounds, "post_ms": stats(post_ms), "report_to_read_ms": stats(timings)}


def flag_to_report(api: str, settings: Any, realtime: str, rounds: int) -> dict[str, Any]:
    """From a flagged message's send to report.created on the safeguarding lead's socket."""
    arrived: queue.Queue[float] = queue.Queue()
    lead = socketio.Client(reconnection=False)
    lead.on("report.created", lambda data: arrived.put(time.perf_counter()))
    lead.connect(realtime, auth={"token": issue_token(settings, SCHOOL_ADMIN)}, transports=["websocket"])
    pupil = http(settings, PUPIL)
    cid = pupil.post(
        f"{api}/conversations", json={"recipients": [{"type": "user", "id": CLASSMATE}], "body": "hey"}, timeout=10
    ).json()["conversation"]["id"]
    timings = []
    try:
        for i in range(rounds):
            start = time.perf_counter()
            pupil.post(f"{api}/conversations/{cid}/messages", json={"body": f"I will hurt myself {i}"}, timeout=10)
            timings.append((arrived.get(timeout=15) - start) * 1000)
    finally:
        lead.disconnect()
    return {"rounds": rounds, "send_to_report_created_ms": stats(timings)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.moderation")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "moderation", "cores": os.cpu_count(), "matching": matching()}
    print(json.dumps(report["matching"]))

    settings = bench_settings("benchmod")
    for name in DEFINITIONS:
        drop_database(settings.database_url(name))
    setup(settings)
    stack = Stack(settings).start(realtime_ports=[settings.realtime_port], log_dir=None)
    api = f"http://127.0.0.1:{settings.gateway_port}/api/v1"
    realtime = f"http://127.0.0.1:{settings.realtime_port}"
    receivers = Receivers()
    try:
        stack.wait_ready([f"http://127.0.0.1:{settings.gateway_port}/readyz", f"{realtime}/readyz"])
        admin = http(settings, DISTRICT_ADMIN)
        listed = [*phrases(MAX_PHRASES - 1), "hurt myself"]
        for school in SCHOOLS:
            saved = admin.put(f"{api}/admin/safeguarding/{school}", json={"phrases": listed}, timeout=30)
            if saved.status_code != 200:
                raise RuntimeError(saved.text)
        leads = http(settings, SCHOOL_ADMIN).put(
            f"{api}/admin/safeguarding/org-school-2", json={"phrases": listed, "lead_ids": [SCHOOL_ADMIN]}, timeout=30
        )
        if leads.status_code != 200:
            raise RuntimeError(leads.text)
        pairs = open_pairs(settings, api, realtime, receivers, args.pairs)
        run_phase(stack, api, pairs, receivers, 50, 200, "warmup")
        report["messages_past_500_phrase_lists"] = run_phase(
            stack, api, pairs, receivers, args.rate, args.messages, "listed"
        )
        print(json.dumps(report["messages_past_500_phrase_lists"]))
        report["report"] = report_to_access(api, settings, args.rounds)
        print(json.dumps(report["report"]))
        report["safeguarding_flag"] = flag_to_report(api, settings, realtime, args.rounds)
        print(json.dumps(report["safeguarding_flag"]))
    finally:
        receivers.close()
        stack.stop()
        delete_topology(settings)
    report["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = write_report("moderation", report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()

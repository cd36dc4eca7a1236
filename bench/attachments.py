"""File attachments through the gateway: upload and download throughput, and the gateway's memory.

Starts the system as `make run` does (own namespace, databases and a temporary blob directory),
then, over HTTP against the gateway:

1. uploads one 20 MiB file (a WAV header and random samples, so the attachments service accepts
   it as audio/x-wav) five times: MB/s, median of 5 (MB = 10^6 bytes), and the gateway's user and
   system CPU and minor page faults per upload; then five times more with chunked encoding;
2. downloads it five times (MB/s, median of 5) and asks for byte ranges (206, timed);
3. uploads ten 20 MiB files at once, twice, while sampling the resident memory (RSS) of every
   gateway process (the gunicorn master and its workers, found through /proc) every ~20 ms:
   peak growth of the sum over the baseline taken just before, and per process; CPU per
   process (bench.measure.Meter) over the same stretch; the load generator's own CPU.

Request bodies are streamed from a generator over the one 20 MiB buffer (memoryview slices,
nothing copied) with Content-Length, as a browser sends a form (and, in step 1, also with
chunked transfer encoding). Downloads are read into a preallocated buffer and compared.
To say where the time goes, the same multipart body is also decoded in this process by the
gateway's own MultipartReader (no sockets), and 20 MiB is written and fsynced into the blob
directory's file system, as the blob store does.

Figures go to bench/results/attachments-<time>.json and to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import io
import json
import os
import shutil
import statistics
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Meter, bench_settings, process_table, write_report
from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from shared.auth import issue_token
from shared.db import drop_database

MIB = 1024 * 1024
MB = 1_000_000
FILE_BYTES = 20 * MIB
SEND_CHUNK = 256 * 1024  # what the generator hands to the socket at a time
USER = "user-t-001"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


# --- The file and its multipart body ----------------------------------------------------------------


def wav_file(size: int) -> bytes:
    """`size` bytes: a valid 16-bit stereo PCM WAV header, then random samples."""
    header = (
        b"RIFF"
        + struct.pack("<I", size - 8)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
        + b"data"
        + struct.pack("<I", size - 44)
    )
    return header + os.urandom(size - len(header))


@dataclasses.dataclass(frozen=True)
class Body:
    """One multipart/form-data body around `payload`, produced piece by piece without copying it."""

    payload: bytes
    name: str
    boundary: str = dataclasses.field(default_factory=lambda: "bench" + uuid.uuid4().hex)

    @property
    def head(self) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{self.name}"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()

    @property
    def tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def length(self) -> int:
        return len(self.head) + len(self.payload) + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def pieces(self, chunk: int = SEND_CHUNK) -> Iterator[bytes | memoryview]:
        yield self.head
        view = memoryview(self.payload)
        for i in range(0, len(view), chunk):
            yield view[i : i + chunk]
        yield self.tail


# --- HTTP -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Gateway:
    host: str
    port: int
    token: str

    def upload(self, body: Body, *, chunked: bool = False) -> tuple[float, dict[str, Any]]:
        """(seconds, the created item); raises on anything but 201."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": body.content_type}
        if not chunked:
            headers["Content-Length"] = str(body.length)
        start = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            # Without Content-Length, http.client sends an iterable with chunked transfer encoding.
            conn.request("POST", "/api/v1/attachments", body.pieces(), headers, encode_chunked=chunked)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        seconds = time.perf_counter() - start
        if response.status != 201:
            raise RuntimeError(f"upload answered {response.status}: {raw[:300]!r}")
        return seconds, json.loads(raw)["items"][0]

    def download(
        self, attachment_id: str, into: bytearray, byte_range: str | None = None
    ) -> tuple[float, int, int, dict[str, str]]:
        """(seconds, status, bytes read into `into`, headers)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if byte_range:
            headers["Range"] = byte_range
        view = memoryview(into)
        start = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request("GET", f"/api/v1/attachments/{attachment_id}", headers=headers)
            response = conn.getresponse()
            got = 0
            while got < len(view):
                n = response.readinto(view[got:])
                if not n:
                    break
                got += n
            extra = response.read()  # anything past the buffer (there should be none)
        finally:
            conn.close()
        seconds = time.perf_counter() - start
        if extra:
            raise RuntimeError(f"download sent {len(extra)} bytes more than expected")
        return seconds, response.status, got, dict(response.getheaders())


def mbps(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds / MB, 1)


def summary(values: list[float], digits: int = 1) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "all": [round(v, digits) for v in values],
    }


# --- Gateway processes and their memory -------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/<pid>/task/*/children, else a scan of /proc)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        return found
    except OSError:
        return [p for p, (parent, _, _) in process_table().items() if parent == pid]


def memory(pid: int) -> tuple[int, int] | None:
    """(resident bytes, resident anonymous bytes) of a live process, from /proc/<pid>/statm."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    resident, shared = int(fields[1]) * _PAGE, int(fields[2]) * _PAGE
    return resident, resident - shared


def gateway_counters(master: int) -> dict[str, float]:
    """User CPU, system CPU (seconds) and minor page faults of the gunicorn master and its workers, summed."""
    totals = {"user_s": 0.0, "sys_s": 0.0, "minor_faults": 0.0}
    for pid in [master, *children(master)]:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        totals["minor_faults"] += int(fields[7])
        totals["user_s"] += int(fields[11]) / _TICK
        totals["sys_s"] += int(fields[12]) / _TICK
    return totals


def timed_uploads(gw: Gateway, master: int, payload: bytes, count: int, *, chunked: bool) -> dict[str, Any]:
    """`count` uploads one after another: MB/s, and what the gateway spent on each."""
    before = gateway_counters(master)
    times, items = [], []
    for i in range(count):
        seconds, item = gw.upload(Body(payload, f"{'chunked' if chunked else 'single'}-{i}.wav"), chunked=chunked)
        times.append(seconds)
        items.append(item)
    after = gateway_counters(master)
    spent = {k: (after[k] - before[k]) / count for k in before}
    return {
        "mb_per_s": summary([mbps(FILE_BYTES, t) for t in times]),
        "seconds": summary(times, 3),
        "gateway_per_upload": {
            "user_cpu_ms": round(spent["user_s"] * 1000),
            "system_cpu_ms": round(spent["sys_s"] * 1000),
            # Each fault is a fresh 4 KiB page: memory the process got from the kernel, touched, gave back.
            "minor_page_faults": round(spent["minor_faults"]),
            "fresh_pages_mb": round(spent["minor_faults"] * _PAGE / MB, 1),
        },
        "items": items,
    }


def cpu_seconds(pid: int) -> float | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class RssSampler:
    """Samples the RSS of the gunicorn master and each worker every `interval` seconds, in a thread."""

    def __init__(self, master: int, interval: float = 0.02) -> None:
        self.master = master
        self.interval = interval
        self.samples: list[tuple[float, dict[int, tuple[int, int]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.thread_cpu_s = 0.0

    def pids(self) -> list[int]:
        return [self.master, *sorted(children(self.master))]

    def sample(self) -> dict[int, tuple[int, int]]:
        out = {}
        for pid in self.pids():
            mem = memory(pid)
            if mem is not None:
                out[pid] = mem
        return out

    def _run(self) -> None:
        started = time.thread_time()
        next_at = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.sample()))
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.perf_counter()
        self.thread_cpu_s = time.thread_time() - started

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory_report(baseline: dict[int, tuple[int, int]], sampler: RssSampler, master: int) -> dict[str, Any]:
    def role(pid: int) -> str:
        return "master" if pid == master else f"worker {pid}"

    pids = sorted(set(baseline) | {p for _, s in sampler.samples for p in s})
    per: dict[str, Any] = {}
    for pid in pids:
        series = [s[pid] for _, s in sampler.samples if pid in s]
        base = baseline.get(pid)
        if not series:
            continue
        peak_rss = max(m[0] for m in series)
        peak_anon = max(m[1] for m in series)
        per[role(pid)] = {
            "baseline_rss_mb": round(base[0] / MB, 1) if base else None,
            "peak_rss_mb": round(peak_rss / MB, 1),
            "peak_growth_mb": round((peak_rss - base[0]) / MB, 1) if base else None,
            "peak_anon_growth_mb": round((peak_anon - base[1]) / MB, 1) if base else None,
            "end_growth_mb": round((series[-1][0] - base[0]) / MB, 1) if base else None,
            "new_process": base is None,
        }
    base_total = sum(m[0] for m in baseline.values())
    base_anon = sum(m[1] for m in baseline.values())
    totals = [(t, sum(m[0] for m in s.values()), sum(m[1] for m in s.values())) for t, s in sampler.samples]
    peak = max(totals, key=lambda x: x[1])
    gaps = [(b[0] - a[0]) * 1000 for a, b in zip(sampler.samples, sampler.samples[1:], strict=False)]
    return {
        "baseline_total_rss_mb": round(base_total / MB, 1),
        "peak_total_rss_mb": round(peak[1] / MB, 1),
        "peak_total_growth_mb": round((peak[1] - base_total) / MB, 1),
        "peak_total_anon_growth_mb": round((max(t[2] for t in totals) - base_anon) / MB, 1),
        "end_total_growth_mb": round((totals[-1][1] - base_total) / MB, 1),
        "peak_at_s": round(peak[0] - sampler.samples[0][0], 2),
        "samples": len(sampler.samples),
        "sample_interval_ms": {
            "median": round(statistics.median(gaps), 1) if gaps else None,
            "max": round(max(gaps), 1) if gaps else None,
        },
        "per_process": per,
        # The sum over time, thinned to ~100 points, for a plot.
        "total_growth_mb_over_time": [
            [round(t - totals[0][0], 2), round((r - base_total) / MB, 1)]
            for t, r, _ in totals[:: max(1, len(totals) // 100)]
        ],
    }


# --- Phases -----------------------------------------------------------------------------------------


def parallel_uploads(stack: Stack, gw: Gateway, payload: bytes, count: int, label: str) -> dict[str, Any]:
    master = stack.processes["gateway"].pid
    bodies = [Body(payload, f"{label}-{i}.wav") for i in range(count)]
    barrier = threading.Barrier(count + 1)
    times: list[float] = [0.0] * count
    errors: list[str] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            times[i], _ = gw.upload(bodies[i])
        except Exception as exc:  # noqa: BLE001  (counted and reported)
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let the gateway settle after the threads start; nothing is sent yet
    sampler = RssSampler(master)
    baseline = sampler.sample()
    worker_cpu_before = {pid: cpu_seconds(pid) for pid in baseline}
    with sampler:
        time.sleep(0.1)  # a few samples of the baseline
        meter = Meter(stack)
        started = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        used = meter.read()
        time.sleep(0.1)
    worker_cpu = {}
    for pid, before in worker_cpu_before.items():
        after = cpu_seconds(pid)
        if before is not None and after is not None:
            worker_cpu["master" if pid == master else f"worker {pid}"] = round(after - before, 2)
    done = [t for t in times if t]
    total = FILE_BYTES * len(done)
    return {
        "uploads": count,
        "ok": len(done),
        "errors": errors,
        "wall_s": round(wall, 2),
        "aggregate_mb_per_s": mbps(total, wall) if done else None,
        "per_upload_s": summary(done, 2) if done else None,
        "memory": memory_report(baseline, sampler, master),
        "cpu": {
            **used,
            "gateway_cpu_s_per_process": worker_cpu,
            "rss_sampler_thread_cpu_s": round(sampler.thread_cpu_s, 3),
            "stack_cpu_s_per_uploaded_mb": {
                name: round(s / (total / MB), 4) for name, s in {**used["stack_cpu_s"], **used["server_cpu_s"]}.items()
            }
            if done
            else None,
        },
    }


def reference_costs(payload: bytes, blob_dir: Path) -> dict[str, Any]:
    """What parts of an upload cost on their own, in this process: decoding the multipart body with
    the gateway's reader, and writing + fsyncing 20 MiB into the blob directory's file system."""
    from gateway.routes.attachments import CHUNK_BYTES, MultipartReader

    body = Body(payload, "reference.wav")
    raw = b"".join(bytes(p) for p in body.pieces())
    decode = []
    for _ in range(3):
        stream = io.BytesIO(raw)
        t0, c0 = time.perf_counter(), time.process_time()
        reader = MultipartReader(stream.read, body.boundary.encode())
        got = 0
        for part in reader.parts():
            for chunk in part.chunks():
                got += len(chunk)
        decode.append((time.perf_counter() - t0, time.process_time() - c0))
        if got != len(payload):
            raise RuntimeError(f"reference decode gave {got} bytes, not {len(payload)}")
    writes = []
    view = memoryview(payload)
    for _ in range(3):
        path = blob_dir / f".reference-{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            for i in range(0, len(view), CHUNK_BYTES):
                f.write(view[i : i + CHUNK_BYTES])
            t1 = time.perf_counter()
            f.flush()
            os.fsync(f.fileno())
        t2 = time.perf_counter()
        path.unlink()
        writes.append((t1 - t0, t2 - t1))
    decode_s = statistics.median(d[0] for d in decode)
    return {
        "multipart_decode_20mib_ms": round(decode_s * 1000, 1),
        "multipart_decode_mb_per_s": mbps(len(payload), decode_s),
        "multipart_decode_cpu_ms": round(statistics.median(d[1] for d in decode) * 1000, 1),
        "disk_write_20mib_ms": round(statistics.median(w[0] for w in writes) * 1000, 1),
        "disk_fsync_20mib_ms": round(statistics.median(w[1] for w in writes) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.attachments")
    parser.add_argument("--repeats", type=int, default=5, help="timed single uploads and downloads")
    parser.add_argument("--parallel", type=int, default=10, help="uploads at once in the memory phase")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the parallel phase")
    args = parser.parse_args()

    run_started = time.perf_counter()
    blob_dir = Path(tempfile.mkdtemp(prefix="attbench-blobs-"))
    settings = dataclasses.replace(bench_settings("attbench"), blob_dir=str(blob_dir))
    stack = Stack(settings)
    gw = Gateway("127.0.0.1", settings.gateway_port, issue_token(settings, USER))
    payload = wav_file(FILE_BYTES)
    report: dict[str, Any] = {}
    try:
        for name in DEFINITIONS:
            drop_database(settings.database_url(name))
        # No roster needed: uploads, and the uploader's own downloads, ask nobody about people.
        setup(settings, demo=False)
        stack.start(realtime_ports=[settings.realtime_port], log_dir=None)
        stack.wait_ready(
            [f"http://127.0.0.1:{settings.gateway_port}/readyz", f"http://127.0.0.1:{settings.realtime_port}/readyz"]
        )
        startup_s = time.perf_counter() - run_started

        # Warm-up: a few small uploads at once, so every gateway worker has served one.
        small = payload[: 2 * MIB]
        warm = [threading.Thread(target=gw.upload, args=(Body(small, f"warm-{i}.wav"),)) for i in range(8)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()

        # 1. Uploads, one at a time: with Content-Length (as browsers send forms), then chunked.
        master = stack.processes["gateway"].pid
        meter = Meter(stack)
        single = timed_uploads(gw, master, payload, args.repeats, chunked=False)
        up_cpu = meter.read()
        item = single.pop("items")[0]
        if item["size"] != FILE_BYTES or item["content_type"] != "audio/x-wav":
            raise RuntimeError(f"unexpected upload result: {item}")
        chunked = timed_uploads(gw, master, payload, args.repeats, chunked=True)
        chunked_items = chunked.pop("items")
        if any(i["size"] != FILE_BYTES for i in chunked_items):
            raise RuntimeError(f"unexpected chunked upload result: {chunked_items}")

        # 2. Downloads of the first, whole and in ranges.
        buffer = bytearray(FILE_BYTES)
        meter = Meter(stack)
        down_times = []
        for _ in range(args.repeats):
            buffer[:] = bytes(FILE_BYTES)
            seconds, status, got, headers = gw.download(item["id"], buffer)
            if status != 200 or got != FILE_BYTES or buffer != payload:
                raise RuntimeError(f"download: status {status}, {got} bytes, intact {buffer == payload}")
            down_times.append(seconds)
        down_cpu = meter.read()
        ranges = {}
        middle = FILE_BYTES // 2
        for label, header, first, last in [
            ("1 MiB from the middle", f"bytes={middle}-{middle + MIB - 1}", middle, middle + MIB - 1),
            ("last 64 KiB (suffix)", "bytes=-65536", FILE_BYTES - 65536, FILE_BYTES - 1),
            ("open-ended, last 1000 bytes", f"bytes={FILE_BYTES - 1000}-", FILE_BYTES - 1000, FILE_BYTES - 1),
        ]:
            into = bytearray(last - first + 1)
            timings = []
            for _ in range(args.repeats):
                seconds, status, got, headers = gw.download(item["id"], into, header)
                expected_range = f"bytes {first}-{last}/{FILE_BYTES}"
                if status != 206 or got != len(into) or headers.get("Content-Range") != expected_range:
                    raise RuntimeError(f"range {header}: {status}, {got} bytes, {headers.get('Content-Range')}")
                if into != payload[first : last + 1]:
                    raise RuntimeError(f"range {header}: wrong bytes")
                timings.append(seconds * 1000)
            ranges[label] = {"range": header, "status": 206, "bytes": len(into), "ms": summary(timings, 1)}
        _, unsat_status, _, unsat_headers = gw.download(item["id"], bytearray(4096), f"bytes={FILE_BYTES}-")

        # 3. Parallel uploads, with the gateway's memory sampled.
        rounds = [parallel_uploads(stack, gw, payload, args.parallel, f"parallel{r + 1}") for r in range(args.rounds)]
        stored = [p for p in blob_dir.iterdir()]
        expected_blobs = 8 + 2 * args.repeats + sum(r["ok"] for r in rounds)
        report = {
            "benchmark": "attachments",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "gateway_workers": settings.gateway_workers,
            "gateway_worker_class": "gunicorn sync",
            "file_bytes": FILE_BYTES,
            "file_type": item["content_type"],
            "startup_s": round(startup_s, 1),
            "upload": {
                **single,
                "chunked_transfer_encoding": chunked,
                "cpu": up_cpu,
                "cpu_s_per_upload": {
                    name: round(s / args.repeats, 3)
                    for name, s in {**up_cpu["stack_cpu_s"], **up_cpu["server_cpu_s"]}.items()
                },
            },
            "download": {
                "mb_per_s": summary([mbps(FILE_BYTES, t) for t in down_times]),
                "seconds": summary(down_times, 3),
                "ranges": ranges,
                "unsatisfiable_range": {
                    "status": unsat_status,
                    "content_range": unsat_headers.get("Content-Range"),
                },
                "cpu": down_cpu,
                "cpu_s_per_download": {
                    name: round(s / args.repeats, 3)
                    for name, s in {**down_cpu["stack_cpu_s"], **down_cpu["server_cpu_s"]}.items()
                },
            },
            "parallel_uploads": rounds,
            "blob_dir": {
                "files": len(stored),
                "expected": expected_blobs,
                "temporary_files_left": sum(1 for p in stored if p.name.startswith(".upload-")),
            },
            "reference": reference_costs(payload, blob_dir),
        }
    finally:
        stack.stop()
        delete_topology(settings)
        for name in DEFINITIONS:
            drop_database(settings.database_url(name))
        shutil.rmtree(blob_dir, ignore_errors=True)
    report["total_run_s"] = round(time.perf_counter() - run_started, 1)
    out = write_report("attachments", report)
    print_summary(report)
    print(f"written to {out}")


def print_summary(r: dict[str, Any]) -> None:
    up, down = r["upload"], r["download"]
    workers = f"{r['gateway_workers']} {r['gateway_worker_class']} workers"
    print(f"\nAttachments bench, {r['cores']} cores, gateway: {workers}")
    print(f"file: {r['file_bytes'] / MIB:.0f} MiB {r['file_type']}  (MB = 10^6 bytes)")
    for label, u in (("upload:   ", up), ("  chunked:", up["chunked_transfer_encoding"])):
        g = u["gateway_per_upload"]
        rate = u["mb_per_s"]
        print(
            f"{label} {rate['median']} MB/s median of {len(rate['all'])} (min {rate['min']}, max {rate['max']}); "
            f"gateway per upload: user {g['user_cpu_ms']} ms, system {g['system_cpu_ms']} ms, "
            f"{g['minor_page_faults']} page faults ({g['fresh_pages_mb']} MB of fresh pages)"
        )
    print("  CPU s per upload: " + ", ".join(f"{k} {v}" for k, v in up["cpu_s_per_upload"].items() if v))
    print(
        f"download:  {down['mb_per_s']['median']} MB/s median of {len(down['mb_per_s']['all'])} "
        f"(min {down['mb_per_s']['min']}, max {down['mb_per_s']['max']})"
    )
    print("  CPU s per download: " + ", ".join(f"{k} {v}" for k, v in down["cpu_s_per_download"].items() if v))
    for label, rng in down["ranges"].items():
        print(f"  range {label} ({rng['range']}): 206, median {rng['ms']['median']} ms")
    u = down["unsatisfiable_range"]
    print(f"  range past the end: {u['status']} {u['content_range']}")
    for i, p in enumerate(r["parallel_uploads"], 1):
        m, c = p["memory"], p["cpu"]
        print(
            f"parallel round {i}: {p['ok']}/{p['uploads']} x 20 MiB in {p['wall_s']} s "
            f"= {p['aggregate_mb_per_s']} MB/s, each {p['per_upload_s']['min']}-{p['per_upload_s']['max']} s"
        )
        print(
            f"  gateway RSS: baseline {m['baseline_total_rss_mb']} MB, peak growth {m['peak_total_growth_mb']} MB "
            f"(anonymous {m['peak_total_anon_growth_mb']} MB; aim < 50), {m['samples']} samples every "
            f"{m['sample_interval_ms']['median']} ms (max gap {m['sample_interval_ms']['max']} ms)"
        )
        for name, v in m["per_process"].items():
            if v["new_process"]:
                print(f"    {name:>13}: started during the uploads, peak {v['peak_rss_mb']} MB")
                continue
            print(
                f"    {name:>13}: {v['baseline_rss_mb']} -> peak {v['peak_rss_mb']} MB "
                f"({v['peak_growth_mb']:+}, anon {v['peak_anon_growth_mb']:+}, at end {v['end_growth_mb']:+})"
            )
        cpu = {**c["stack_cpu_s"], **c["server_cpu_s"]}
        print(
            "  CPU s: "
            + ", ".join(f"{k} {v}" for k, v in cpu.items() if v)
            + f"; gateway per process: {c['gateway_cpu_s_per_process']}"
        )
        print(
            f"  generator CPU {c['generator_cpu_s']} s ({c['generator_share_of_one_core']:.0%} of a core; "
            f"sampler {c['rss_sampler_thread_cpu_s']} s); machine busy {c['machine_busy_share']:.0%}, "
            f"other processes {c['other_processes_cpu_s']} s"
        )
    ref = r["reference"]
    print(
        f"reference, in-process: multipart decode of 20 MiB {ref['multipart_decode_20mib_ms']} ms "
        f"({ref['multipart_decode_mb_per_s']} MB/s); write {ref['disk_write_20mib_ms']} ms + fsync "
        f"{ref['disk_fsync_20mib_ms']} ms"
    )
    b = r["blob_dir"]
    print(f"blob dir: {b['files']} files (expected {b['expected']}), {b['temporary_files_left']} temporary left")
    print(f"whole run {r['total_run_s']} s (startup {r['startup_s']} s)")


if __name__ == "__main__":
    main()

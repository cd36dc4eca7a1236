"""The latency benchmark for an earlier commit and for this code, one after the other, on one machine.

Machines here differ by up to 2x from day to day, so a figure means something only beside
another taken in the same run. This checks the named commit out into a temporary worktree,
runs `bench.latency` there (this tree's benchmark code, that commit's system), then runs it
here, and prints one table:
per rate, p50 / p99 from send to the recipient's socket, the rate achieved, and CPU per
message summed over every process (with the processes that spend most of it).

    python -m bench.sidebyside --against 3a4b711 --rates 10,60,100

Figures go to bench/results/sidebyside-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import write_report

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def run_latency(tree: Path, args: list[str]) -> dict[str, Any]:
    """`bench.latency` of the code in `tree`, run from there; its report (the last JSON file it wrote)."""
    results = tree / "bench" / "results"
    before = set(results.glob("latency-*.json")) if results.exists() else set()
    # `python -m` puts the working directory first on sys.path: the tree's own code runs, and so do
    # the processes it starts (deploy.local starts them from the tree it was imported from).
    subprocess.run([sys.executable, "-m", "bench.latency", *args], cwd=tree, check=True)
    written = sorted(set(results.glob("latency-*.json")) - before)
    if not written:
        raise RuntimeError(f"bench.latency in {tree} wrote no report")
    return json.loads(written[-1].read_text())


def phase_row(label: str, phase: dict[str, Any]) -> dict[str, Any]:
    cpu = phase.get("cpu_ms_per_message") or {}
    top = sorted(cpu.items(), key=lambda kv: -kv[1])[:4]
    return {
        "code": label,
        "rate": phase["target_rate"],
        "achieved": phase["achieved_rate"],
        "p50_ms": phase["latency_ms"]["p50"],
        "p99_ms": phase["latency_ms"]["p99"],
        "lost": phase["lost"],
        "http_errors": phase["http_errors"],
        "cpu_ms_per_message": round(sum(cpu.values()), 2) if cpu else None,
        "top_cpu": ", ".join(f"{name} {ms}" for name, ms in top),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| code | rate | achieved | p50 ms | p99 ms | lost | errors | CPU ms/msg | most CPU (ms/msg) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["rate"], r["code"] != rows[0]["code"])):
        lines.append(
            f"| {r['code']} | {r['rate']:g} | {r['achieved']} | {r['p50_ms']} | {r['p99_ms']} | {r['lost']} "
            f"| {r['http_errors']} | {r['cpu_ms_per_message']} | {r['top_cpu']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.sidebyside")
    parser.add_argument("--against", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--rates", default="10,60,100,150,200,250,300")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    passed = ["--rates", args.rates, "--messages", str(args.messages), "--pairs", str(args.pairs)]

    earlier = _git("rev-parse", "--short", args.against)
    current = _git("rev-parse", "--short", "HEAD") + ("+changes" if _git("status", "--porcelain") else "")
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sidebyside-") as tmp:
        tree = Path(tmp) / earlier
        _git("worktree", "add", "--detach", str(tree), earlier)
        # Both runs use this tree's benchmark code (how it waits, what it counts), each against
        # its own system: only the code under test differs.
        shutil.copytree(ROOT / "bench", tree / "bench", dirs_exist_ok=True, ignore=shutil.ignore_patterns("results"))
        try:
            reports[earlier] = run_latency(tree, passed)
        finally:
            _git("worktree", "remove", "--force", str(tree))
    reports[current] = run_latency(ROOT, passed)

    rows = [phase_row(label, phase) for label, report in reports.items() for phase in report["phases"]]
    summary = {
        "benchmark": "latency_side_by_side",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "earlier": earlier,
        "current": current,
        "ceiling_msgs_per_s": {label: report.get("ceiling_msgs_per_s") for label, report in reports.items()},
        "rows": rows,
        "reports": reports,
    }
    out = write_report("sidebyside", summary)
    print(f"\n{summary['at']}, {summary['cores']} cores; ceilings: {summary['ceiling_msgs_per_s']}")
    print(table(rows))
    print(f"written to {out}")


if __name__ == "__main__":
    main()

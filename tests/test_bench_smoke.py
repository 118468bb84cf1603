"""bench/run end to end on a tiny scale: it starts, drives a resque-compat worker, and prints
the JSON shape the dev script and BENCHMARKS.md rely on. No speed is asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "bench" / "run"
SCENARIOS = ("nofork", "enqueue", "enqueue_batch", "cmds_per_job", "mail")
# nofork: also resque-compat's --prefetch row; mail: async and threads
ROWS = ("nofork", "nofork_prefetch", "enqueue", "enqueue_batch", "cmds_per_job", "mail", "mail_threads")


def test_bench_run_json_shape() -> None:
    done = subprocess.run(
        [
            str(RUN),
            "--quick",
            "--scale",
            "0.1",
            "--only",
            "resque-compat",
            "--scenarios",
            ",".join(SCENARIOS),
            "--json",
        ],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert {"machine", "rows", "targets", "skipped", "quick"} <= set(result)
    rows = result["rows"]
    assert [r["scenario"] for r in rows] == list(ROWS), rows
    for row in rows:
        assert row["system"] == "resque-compat"
        assert "error" not in row, row
        assert "jobs_per_s" in row
    by_name = {r["scenario"]: r for r in rows}
    assert by_name["nofork"]["jobs_per_s"] > 0
    assert by_name["nofork_prefetch"]["jobs_per_s"] > 0 and "--prefetch 64" in by_name["nofork_prefetch"]["mode"]
    assert by_name["enqueue_batch"]["jobs"] >= 500
    assert by_name["cmds_per_job"]["cmds_per_job"] > 0
    for mail in (by_name["mail"], by_name["mail_threads"]):  # one process, every slot registered, memory sampled
        assert mail["processes"] == 1, mail
        assert mail["registered"] == mail["at_once"], mail
        assert mail["rss_mb"] > 0 and mail["per_gb"] > 0, mail
    assert all(t["status"] in ("met", "missed", "n/a") for t in result["targets"])

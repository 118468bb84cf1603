"""``bench/run``: resque-compat beside the peers, on one private Redis, in one run.

Scenario by scenario, every available system runs on the same freshly flushed Redis, so the
numbers in one table were taken under the same conditions. Progress goes to stderr; the
table (or with ``--json`` one JSON object) to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from resque_bench import report, systems
from resque_bench.cache import BENCH_DIR, PeerUnavailable
from resque_bench.measure import BenchError
from resque_bench.scenarios import SCENARIOS, Context, Row, Sizes
from resque_bench.systems import Unsupported
from resque_compat.testing.redis_server import RedisServer


def _version(argv: list[str]) -> str:
    if not shutil.which(argv[0]):
        return "-"
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "-"


def machine(server: RedisServer) -> dict[str, Any]:
    cpu = "-"
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis": str(server.client().info("server").get("redis_version")),
        "node": _version(["node", "--version"]),
        "ruby": _version(["ruby", "--version"]),
        "php": _version(["php", "--version"]),
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small runs: the whole bench in about a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--only", help=f"comma-separated systems ({', '.join(s.name for s in systems.ALL)})")
    ap.add_argument("--scenarios", help=f"comma-separated scenarios ({', '.join(SCENARIOS)})")
    ap.add_argument("--scale", type=float, default=1.0, help="make every run this many times as long")
    ap.add_argument("--save", action="store_true", help="also write the JSON to bench/results/<time>.json")
    return ap.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = (Sizes.quick() if args.quick else Sizes.full()).scaled(args.scale)
    wanted = [s for s in (args.scenarios or ",".join(SCENARIOS)).split(",") if s]
    for name in wanted:
        if name not in SCENARIOS:
            raise SystemExit(f"bench: unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    started = time.monotonic()
    with RedisServer() as server:
        present: list[systems.System] = []
        skipped: list[dict[str, str]] = []
        for cls in systems.select([s for s in args.only.split(",") if s] if args.only else None):
            system = cls(server.port)
            try:
                log(f"bench: preparing {system.name}")
                system.prepare()
                present.append(system)
            except PeerUnavailable as exc:
                log(f"bench: skipping {system.name}: {exc}")
                skipped.append({"system": system.name, "reason": str(exc)})
        info = machine(server)
        ctx = Context(server.client(), sizes)
        rows: list[Row] = []
        for name in wanted:
            for system in present:
                t0 = time.monotonic()
                try:
                    got = SCENARIOS[name](ctx, system)
                except Unsupported as exc:
                    skipped.append({"system": system.name, "scenario": name, "reason": str(exc)})
                    continue
                except (BenchError, subprocess.SubprocessError, OSError) as exc:
                    got = [{"system": system.name, "scenario": name, "jobs_per_s": None, "error": str(exc)}]
                for row in got:
                    log(
                        f"bench: {name:<14} {system.name:<14} {report.cell(row):>24}  ({time.monotonic() - t0:.1f} s)"
                        + (f"  {row['error']}" if "error" in row else "")
                    )
                rows.extend(got)
        info["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    found = report.targets(rows)
    result = {
        "machine": info,
        "quick": args.quick,
        "seconds": round(time.monotonic() - started, 1),
        "rows": rows,
        "targets": report.as_json(found),
        "skipped": skipped,
    }
    if args.save:
        out = BENCH_DIR / "results" / time.strftime("%Y%m%d-%H%M%S.json")
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        log(f"bench: wrote {out}")
    if args.json:
        print(json.dumps(result))
    else:
        names = [s.name for s in present]
        print(report.table(rows, names))
        print()
        if mail := report.mail_table(rows):
            print(mail)
            print()
        print(report.targets_text(found))
        if skipped:
            print("\nnot measured:")
            for s in skipped:
                print(f"  {s['system']}{' ' + s['scenario'] if 'scenario' in s else ''}: {s['reason']}")
        print(f"\n{info['cpus']} CPUs ({info['cpu']}), Redis {info['redis']}, Python {info['python']}; "
              f"{result['seconds']} s{' (--quick)' if args.quick else ''}; load average "
              f"{info['load_avg_1m_before']} before, {info['load_avg_1m_after']} after")  # fmt: skip
        if max(info["load_avg_1m_before"], info["load_avg_1m_after"]) > 1.0:
            print("warning: the machine was busy with other work; the numbers are lower than on an idle machine")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

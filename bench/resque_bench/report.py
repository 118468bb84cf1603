"""Turning rows into the table, the ratios, the mail scenario's memory table and the target
checks of issues 7 and 16."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from resque_bench.scenarios import Row

OURS = "resque-compat"
THROUGHPUT = (
    "nofork", "nofork_prefetch", "fork", "fork_batch", "pool", "enqueue", "enqueue_batch", "io_sleep50", "mail",
    "mail_threads",
)  # fmt: skip
MAIL = ("mail", "mail_threads")


def _find(rows: list[Row], system: str, scenario: str) -> Row | None:
    return next((r for r in rows if r["system"] == system and r["scenario"] == scenario and "error" not in r), None)


def cell(row: Row | None) -> str:
    if row is None:
        return "-"
    if "error" in row:
        return "error"
    if "per_gb" in row:
        return f"{row['jobs_per_s']:,.0f}/s, {row['rss_mb']:,.0f} MB"
    if "p50_ms" in row:
        return f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} ms"
    if "rss_mb" in row:
        return f"{row['rss_mb']:.1f} MB"
    if "cmds_per_job" in row:
        return f"{row['cmds_per_job']:.2f}"
    if "us_per_job" in row:
        return f"{row['jobs_per_s']:,.0f}/s ({row['us_per_job']:.0f} us)"
    return f"{row['jobs_per_s']:,.0f}/s" + ("*" if row.get("timed_out_with_unfinished") else "")


def scenario_order(rows: list[Row]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["scenario"] not in seen:
            seen.append(r["scenario"])
    return seen


def table(rows: list[Row], systems: list[str]) -> str:
    """Scenarios down, systems across; latency cells are p50 / p99."""
    header = ["scenario", *systems]
    body = [[s, *(cell(_lookup(rows, sys_, s)) for sys_ in systems)] for s in scenario_order(rows)]
    ratios = []
    for s in scenario_order(rows):
        ours = _find(rows, OURS, s)
        if s not in THROUGHPUT and not s.startswith("backlog_"):
            continue
        line = [f"{s} (x)"]
        for sys_ in systems:
            peer = _find(rows, sys_, s)
            ok = ours and peer and ours["jobs_per_s"] and peer["jobs_per_s"] and sys_ != OURS
            line.append(f"{ours['jobs_per_s'] / peer['jobs_per_s']:.1f}x" if ok else "")  # type: ignore[index]
        ratios.append(line)
    out = _format([header, *body])
    if any(r.get("timed_out_with_unfinished") for r in rows):
        out += "\n* timed out before its last job: the rate over the jobs it finished"
    if ratios and any(any(c for c in r[1:]) for r in ratios):
        out += f"\n\n{OURS} / peer, jobs/s:\n" + _format([header, *ratios])
    return out


def _lookup(rows: list[Row], system: str, scenario: str) -> Row | None:
    return next((r for r in rows if r["system"] == system and r["scenario"] == scenario), None)


def _format(grid: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in grid]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def mail_table(rows: list[Row]) -> str:
    """The mail rows with their memory: processes, peak RSS (and PSS) and jobs/s per GB of RSS."""
    found = [r for r in rows if r["scenario"] in MAIL]
    if not found:
        return ""
    best = _best_peer_per_gb(rows)
    grid = [["system", "how", "procs", "jobs/s", "of ideal", "peak RSS", "peak PSS", "jobs/s per GB", "x best peer"]]
    for r in found:
        if "error" in r:
            grid.append([r["system"], r.get("mode", ""), "", "error", "", "", "", "", ""])
            continue
        ratio = f"{r['per_gb'] / best[1]:.1f}x" if r["system"] == OURS and best and r["per_gb"] else ""
        grid.append([
            r["system"], r["mode"], str(r["processes"]), f"{r['jobs_per_s']:,.1f}",
            f"{r['efficiency']:.0%}", f"{r['rss_mb']:,.1f} MB", f"{r['pss_mb']:,.1f} MB",
            f"{r['per_gb']:,.0f}" if r["per_gb"] else "-", ratio,
        ])  # fmt: skip
    measured = next((r for r in found if "error" not in r), None)
    size = "jobs waiting on I/O"
    if measured:
        size = f"{measured['jobs']:,} jobs each waiting {measured['wait_s']:g} s on I/O"
    head = (f"mail: {size}, pushed at once to registered workers; jobs/s = jobs / (last finish - push); "
            f"RSS and PSS: peak of the process tree's sum")  # fmt: skip
    return head + "\n" + _format(grid)


def _best_peer_per_gb(rows: list[Row], *, one_per_process: bool = False) -> tuple[str, float] | None:
    """The peer with the most jobs/s per GB in the mail scenario (``one_per_process``: among
    those running one job per process, i.e. every peer but node-resque's MultiWorker)."""
    peers = [(r["system"], r["per_gb"]) for r in rows
             if r["scenario"] in MAIL and r["system"] != OURS and "error" not in r and r.get("per_gb")
             and (not one_per_process or r["processes"] >= r["at_once"])]  # fmt: skip
    return max(peers, key=lambda p: p[1], default=None)


@dataclass(frozen=True)
class Target:
    name: str
    value: str
    status: str  # "met", "missed", "n/a"
    detail: str = ""
    issue: int = 7


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


def targets(rows: list[Row]) -> list[Target]:
    """Issues 7's and 16's targets, each against the peers measured in the same run."""

    def value(system: str, scenario: str, field: str = "jobs_per_s") -> float | None:
        row = _find(rows, system, scenario)
        return None if row is None else row.get(field)

    def check(ok: bool | None, value_: float | None) -> str:
        return _status(None if value_ is None else ok)

    def peers(scenario: str, field: str) -> str:
        found = [r for r in rows if r["scenario"] == scenario and r["system"] != OURS and r.get(field) is not None]
        return ", ".join(f"{r['system']} {_num(r[field], '')}" for r in found)

    out: list[Target] = []
    ours, node = value(OURS, "nofork"), value("node-resque", "nofork")
    x_node = ours / node if ours and node else None
    out.append(
        Target(
            "no-fork >= 10,000 jobs/s and >= 3x node-resque",
            _num(ours, "/s"),
            check(ours is not None and ours >= 10_000 and (x_node is None or x_node >= 3), ours),
            f"{x_node:.1f}x node-resque" if x_node else peers("nofork", "jobs_per_s"),
        )
    )
    out.append(
        Target(
            "no-fork >= 3x node-resque in the same run",
            f"{x_node:.2f}x" if x_node else "-",
            _status(None if x_node is None else x_node >= 3),
            f"{_num(ours, '/s')} vs node-resque {_num(node, '/s')}",
            16,
        )
    )
    ahead = value(OURS, "nofork_prefetch")
    x_ahead = ahead / node if ahead and node else None
    out.append(
        Target(
            "no-fork --prefetch 64 >= 3x node-resque in the same run",
            f"{x_ahead:.2f}x" if x_ahead else "-",
            _status(None if x_ahead is None else x_ahead >= 3),
            f"{_num(ahead, '/s')} vs node-resque {_num(node, '/s')}",
            16,
        )
    )
    ours, ruby = value(OURS, "fork_batch"), value("ruby-resque", "fork")
    out.append(
        Target(
            "--jobs-per-fork 100 >= 2x Ruby's fork per job",
            _num(ours, "/s"),
            _status(None if ours is None or ruby is None else ours >= 2 * ruby),
            f"{ours / ruby:.1f}x ruby-resque fork ({_num(ruby, '/s')})" if ours and ruby else "needs both rows",
            16,
        )
    )
    for scenario, how in (("mail", "async def jobs"), ("mail_threads", "threads")):
        row = _find(rows, OURS, scenario)
        out.append(
            Target(
                f"mail, {how}: >= 180 jobs/s from 1 process under 150 MB",
                _num(row["jobs_per_s"] if row else None, "/s"),
                _status(None if row is None else (
                    row["jobs_per_s"] >= 180 and row["processes"] == 1 and row["rss_mb"] < 150)),
                f"{row['processes']} process(es), peak RSS {row['rss_mb']:.0f} MB, {row['efficiency']:.0%} of ideal"
                if row else "needs the row",
                16,
            )
        )  # fmt: skip
    best = _best_peer_per_gb(rows)
    per_process = _best_peer_per_gb(rows, one_per_process=True)
    ours_gb = max((r["per_gb"] for r in rows if r["system"] == OURS and r["scenario"] in MAIL
                   and "error" not in r and r.get("per_gb")), default=None)  # fmt: skip
    x_best = ours_gb / best[1] if ours_gb and best else None
    detail = f"{x_best:.1f}x {best[0]}'s {best[1]:,.0f}" if x_best and best else "needs a peer's mail row"
    if ours_gb and per_process and per_process != best:
        detail += (
            f"; {ours_gb / per_process[1]:.0f}x {per_process[0]}'s {per_process[1]:,.0f} (best one-job-per-process)"
        )
    out.append(
        Target(
            "mail: >= 10x the best peer's jobs/s per GB of RSS",
            _num(ours_gb, "/s/GB"),
            _status(None if x_best is None else x_best >= 10),
            detail,
            16,
        )
    )
    ours, ruby = value(OURS, "fork"), value("ruby-resque", "fork")
    out.append(
        Target(
            "fork per job >= 2x Ruby fork (>= 700/s without Ruby)",
            _num(ours, "/s"),
            check(ours is not None and ours >= (2 * ruby if ruby else 700.0), ours),
            f"{ours / ruby:.1f}x ruby-resque" if ours and ruby else peers("fork", "jobs_per_s"),
        )
    )
    cmds = value(OURS, "cmds_per_job", "cmds_per_job")
    out.append(
        Target(
            "<= 2 Redis commands per job",
            _num(cmds, ""),
            check(cmds is not None and cmds <= 2, cmds),
            peers("cmds_per_job", "cmds_per_job"),
        )
    )
    for scenario, floor in (("enqueue", 15_000), ("enqueue_batch", 100_000)):
        ours = value(OURS, scenario)
        best = max((r["jobs_per_s"] for r in rows if r["scenario"] == scenario and r["system"] != OURS
                    and r.get("jobs_per_s")), default=None)  # fmt: skip
        out.append(
            Target(
                f"{scenario.replace('_', ' ')} >= {floor:,}/s",
                _num(ours, "/s"),
                check(ours is not None and ours >= floor, ours),
                f"{ours / best:.1f}x the fastest peer" if ours and best else "",
            )
        )
    p50 = value(OURS, "latency_block", "p50_ms")
    out.append(
        Target(
            "blocking enqueue->start p50 <= 1 ms",
            _num(p50, " ms"),
            check(p50 is not None and p50 <= 1.0, p50),
            peers("latency_block", "p50_ms"),
        )
    )
    rss = value(OURS, "idle_rss", "rss_mb")
    out.append(
        Target(
            "idle worker RSS <= 30 MB",
            _num(rss, " MB"),
            check(rss is not None and rss <= 30, rss),
            peers("idle_rss", "rss_mb"),
        )
    )
    small = _find(rows, OURS, "backlog_1k")
    large = next((r for r in rows if r["system"] == OURS and r["scenario"].startswith("backlog_")
                  and r["scenario"] != "backlog_1k" and "error" not in r), None)  # fmt: skip
    if small and large:
        growth = large["us_per_job"] / small["us_per_job"]
        out.append(
            Target(
                f"per-job cost flat, 1k vs {large['queued']:,} queued",
                f"{growth:.2f}x",
                _status(growth <= 1.15),
                f"{small['us_per_job']} -> {large['us_per_job']} us/job",
            )
        )
    else:
        out.append(Target("per-job cost flat, 1k vs 1M queued", "-", "n/a"))
    return out


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.2f}{unit}"


#: what bounds each target's number on this kind of machine (BENCHMARKS.md has the measurements)
LIMITS: dict[str, tuple[str, str]] = {
    "no-fork >= 3x": (
        "no-fork vs node-resque",
        "one cycle round trip per job: worker CPU (~70 us) and Redis (~35 us) take turns, plus two "
        "wake-ups; only several jobs per round trip (prefetch) lets them overlap",
    ),
    "no-fork --prefetch": (
        "no-fork --prefetch 64 vs node-resque",
        "one wait per 64 jobs: worker CPU per job (~35-40 us of Python) and Redis (~22-27 us) overlap "
        "on 2 cores shared with the bench's own Redis",
    ),
    "--jobs-per-fork": (
        "--jobs-per-fork",
        "fork and the child's exit paid once per 100 jobs; per job the cycle round trip and the job "
        "frames on the pipe to and from the child",
    ),
    "mail, async": (
        "mail, async jobs/s",
        "ideal = slots / wait = 200/s; a whole wave ending at once queues 200 cycle calls through one GIL",
    ),
    "mail, threads": ("mail, threads jobs/s", "as async, and 200 threads take turns on the GIL"),
    "mail: >= 10x": (
        "mail per GB",
        "a Python process with redis-py is ~35 MB before its first slot: ~100x the one-job-per-process "
        "peers per GB, ~2x node-resque's single process",
    ),
    "no-fork >= 10,000": ("no-fork jobs/s", "as no-fork above; one loopback round trip alone is 30-75 us here"),
    "fork per job": (
        "fork per job",
        "fork() of a ~37 MB Python process (page tables, copy-on-write): ~30 % more CPU per job than "
        "Ruby's; ahead of Ruby only when a core is free to overlap the child's exit",
    ),
    "<= 2 Redis": (
        "commands per job",
        "Ruby's per-job bookkeeping is 4 calls (pop, worker SET, 2 INCRBY), counted inside the script",
    ),
    "enqueue >=": ("enqueue", "one round trip per job on one connection (redis-benchmark -c 1: ~13,000 RPUSH/s here)"),
    "enqueue batch": ("enqueue batch", "1,000 jobs per round trip: bounded by packing and Redis's RPUSH"),
    "blocking enqueue": ("blocking latency", "BLMOVE is woken inside Redis's event loop: one loopback hop"),
    "idle worker RSS": ("idle RSS", "`import redis` alone is 30 MB (it imports asyncio, ssl, logging)"),
    "per-job cost flat": ("backlog", "popping from a list's head is O(1) at any depth"),
}


def targets_text(found: list[Target]) -> str:
    """Issue 16's targets first, then issue 7's; below, what limits each number."""
    ordered = sorted(found, key=lambda t: -t.issue)
    grid = [["issue", "target", "resque-compat", "status", "against the peers"]]
    grid += [[str(t.issue), t.name, t.value, t.status, t.detail] for t in ordered]
    lines = [_format(grid), "", "what limits each number:"]
    for t in ordered:
        found_limit = next((lim for prefix, lim in LIMITS.items() if t.name.startswith(prefix)), None)
        if found_limit:
            lines.append(f"  {found_limit[0]}: {found_limit[1]}")
    return "\n".join(lines)


def as_json(found: list[Target]) -> list[dict[str, Any]]:
    return [asdict(t) for t in found]

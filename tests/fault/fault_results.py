"""The fault suite's results table: per scenario, faults tried and where every job ended.

Each scenario fills a :class:`ScenarioResult` (fixture ``fault_result``); at the end of the
session the table is written to ``tests/artifacts/fault-results.md`` and ``.json`` and
printed. A scenario's assertions run after it has recorded its counts, so a failing
scenario still shows what it lost.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

COLUMNS = ("faults", "jobs", "completed", "failed", "requeued", "refused", "lost", "doubled", "completed_failed")
#: column titles where the field name is not the title
TITLES = {"completed_failed": "completed but recorded failed"}


@dataclass
class ScenarioResult:
    """Counts for one scenario.

    ``jobs``: jobs whose enqueue was acknowledged (or that were seeded into Redis);
    ``completed`` / ``failed`` (in a failure list with their full payload) / ``requeued``
    (back on a queue): where they ended; ``refused``: enqueue calls that raised a clear
    error and wrote nothing; ``lost``: acknowledged jobs found nowhere; ``doubled``: jobs
    that ran or were stored more than once where that is not allowed; ``completed_failed``:
    jobs that completed and were also recorded as failed (a pruner or a lost write taking a
    finished job for a dead one; must be 0); ``recovery``: per fault, seconds from the kill to
    the job being out of the dead worker's hands (in ``failed``, or back on its queue).
    """

    scenario: str
    test: str
    faults: int = 0
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    requeued: int = 0
    refused: int = 0
    lost: int = 0
    doubled: int = 0
    completed_failed: int = 0
    recovery: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: str = "not run"
    seconds: float = 0.0

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def accounted(self) -> int:
        return self.completed + self.failed + self.requeued

    def recovery_cell(self) -> str:
        """``p50 / max`` seconds, or empty when the scenario measures no recovery."""
        if not self.recovery:
            return ""
        return f"{statistics.median(self.recovery):.2f} / {max(self.recovery):.2f}"


class ResultsTable:
    """Every scenario of the session, in run order."""

    def __init__(self) -> None:
        self.rows: list[ScenarioResult] = []

    def new(self, scenario: str, test: str) -> ScenarioResult:
        row = ScenarioResult(scenario, test)
        self.rows.append(row)
        return row

    def markdown(self) -> str:
        titles = [TITLES.get(c, c) for c in COLUMNS]
        head = "| scenario | " + " | ".join(titles) + " | recovery s (p50 / max) | result | notes |"
        rule = "|" + "---|" * (len(COLUMNS) + 4)
        lines = [head, rule]
        for row in self.rows:
            cells = [str(getattr(row, c)) for c in COLUMNS]
            lines.append(
                f"| {row.scenario} | " + " | ".join(cells)
                + f" | {row.recovery_cell()} | {row.outcome} | {'; '.join(row.notes)} |"
            )  # fmt: skip
        totals = [str(sum(getattr(row, c) for row in self.rows)) for c in COLUMNS]
        every = [s for row in self.rows for s in row.recovery]
        overall = f"{statistics.median(every):.2f} / {max(every):.2f}" if every else ""
        lines.append("| **total** | " + " | ".join(totals) + f" | {overall} | | |")
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        md = directory / "fault-results.md"
        js = directory / "fault-results.json"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        md.write_text(
            f"# Fault suite results ({stamp})\n\n"
            "jobs: acknowledged or seeded; failed: in a failure list with the full payload; "
            "refused: enqueue raised a clear error and wrote nothing; lost: acknowledged and found nowhere; "
            "completed but recorded failed: must be 0; recovery: seconds from a kill -9 to the job being "
            "out of the dead worker's hands (in failed, or back on its queue).\n\n" + self.markdown()
        )
        totals = {c: sum(getattr(row, c) for row in self.rows) for c in COLUMNS}
        js.write_text(
            json.dumps({"generated": stamp, "totals": totals, "scenarios": [asdict(r) for r in self.rows]}, indent=2)
            + "\n"
        )
        return md, js


#: The session's table (one pytest process, one table).
TABLE = ResultsTable()

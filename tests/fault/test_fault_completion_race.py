"""kill -9 of a forking worker in the instant its job completes (the job's last act kills it):
the child has finished, the worker has not recorded it. The child waits until its worker has
recorded the outcome, so when the worker dies first the child records the job itself: never a
completed job in ``failed`` as a pruner's DirtyExit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_results import ScenarioResult
from worker_farm import Farm

KILLS = int(os.environ.get("FAULT_KILLS", "30"))
LAST_ACT = str(Path(__file__).with_name("last_act_jobs.py"))


@pytest.mark.scenario("kill -9 worker as its forked job completes")
@pytest.mark.parametrize("batch", [False, True], ids=["fork-per-job", "jobs-per-fork"])
def test_worker_killed_as_its_job_completes(farm: Farm, fault_result: ScenarioResult, batch: bool) -> None:
    per_round = 3
    rounds = max(1, KILLS // per_round)
    tags = [f"z{i}" for i in range(rounds * per_round)]
    farm.enqueue(tags, class_name="LastActJob")
    mode = ["-i", LAST_ACT, "--fork", *(["--jobs-per-fork", "100"] if batch else [])]
    for _ in range(rounds):
        workers = [farm.start(*mode) for _ in range(per_round)]
        for proc in workers:
            proc.wait(60)  # its job killed it
            fault_result.faults += 1
    farm.drain(*mode)
    acc = farm.record(tags, fault_result, victims=set(tags), reliable=False, retries_allowed=False)
    details = farm.log_tail() if acc.lost or acc.failed else ""
    assert not acc.lost, f"lost: {sorted(acc.lost)}\n{details}"
    assert fault_result.doubled == 0, details
    assert not acc.failed, {t: (f.exception, f.error) for t, f in acc.failed.items()}
    assert acc.completed == set(tags)

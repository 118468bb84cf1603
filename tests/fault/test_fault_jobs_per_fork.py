"""``--jobs-per-fork``: kill -9 the batch child mid-batch and the worker mid-batch, with the
same nothing-lost accounting as fork per job (``test_fault_worker.py``). "Mid-batch": the
killed child has already run an earlier job of its batch."""

from __future__ import annotations

import functools
import os
import signal

import pytest
from fault_results import ScenarioResult
from waiting import wait_for
from worker_farm import Farm

KILLS = int(os.environ.get("FAULT_KILLS", "30"))
BATCH = ("--fork", "--jobs-per-fork", "100")


class BatchWatch:
    """Which tags each job child has run, from the jobs' own ``fault:running`` records."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.ran: dict[int, set[str]] = {}

    def mid_batch(self, parents: set[int], victims: set[str]) -> tuple[str, int, int] | None:
        """(tag, child pid, worker pid) of a job running in a child of ``parents`` that already
        ran another job."""
        for tag, (pid, ppid) in self.farm.running().items():
            self.ran.setdefault(pid, set()).add(tag)
            if ppid in parents and tag not in victims and len(self.ran[pid]) > 1:
                return tag, pid, ppid
        return None


@pytest.mark.scenario("kill -9 jobs-per-fork child mid-batch")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_kill_batch_child_mid_batch(farm: Farm, fault_result: ScenarioResult, reliable: bool) -> None:
    tags = [f"b{i}" for i in range(2 * KILLS + 10)]
    farm.enqueue(tags, seconds=0.2)
    worker = farm.start(*BATCH, *(["--reliable"] if reliable else []))
    watch = BatchWatch(farm)
    victims: set[str] = set()
    for _ in range(KILLS):
        tag, child, _ = wait_for(
            lambda: watch.mid_batch({worker.pid}, victims), interval=0.01, what="a batch child's second job"
        )
        os.kill(child, signal.SIGKILL)
        victims.add(tag)
        fault_result.faults += 1
    farm.wait_idle(tags)
    assert farm.stop(worker) == 0
    farm.assert_accounted(tags, fault_result, victims, reliable=False)
    acc = farm.account(tags)
    for tag in victims:  # as fork per job: the worker saw its child die, a DirtyExit failure
        assert acc.failed[tag].exception == "Resque::DirtyExit"
        assert "SIGKILL" in acc.failed[tag].error


@pytest.mark.scenario("kill -9 jobs-per-fork worker mid-batch")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_kill_worker_mid_batch(farm: Farm, fault_result: ScenarioResult, reliable: bool) -> None:
    per_round = 3
    rounds = max(1, KILLS // per_round)
    tags = [f"m{i}" for i in range(rounds * per_round * 3 + 10)]
    farm.enqueue(tags, seconds=0.3)
    mode = [*BATCH, *(["--reliable"] if reliable else [])]
    watch = BatchWatch(farm)
    victims: set[str] = set()
    for _ in range(rounds):
        workers = {proc.pid: proc for proc in (farm.start(*mode) for _ in range(per_round))}
        while workers:
            check = functools.partial(watch.mid_batch, set(workers), victims)
            tag, _, parent = wait_for(check, interval=0.01, what="a worker's second job")
            farm.kill(parent)
            del workers[parent]
            victims.add(tag)
            fault_result.faults += 1
    farm.drain(*mode)
    fault_result.note(f"{len(victims)} distinct job(s) held by a killed worker's batch child")
    farm.assert_accounted(tags, fault_result, victims, reliable)
    acc = farm.account(tags)
    if reliable:
        failed = {t: (f.exception, f.error) for t, f in acc.failed.items()}
        assert not failed, f"reliable mode requeues, it does not fail: {failed}\n{farm.log_tail()}"
        assert all(tag in acc.completed for tag in victims)
    else:
        # the batch child outlives its worker and records the job itself, unless a pruner took
        # it first (a DirtyExit failure, as Ruby's)
        for tag in victims:
            assert tag in acc.completed or acc.failed[tag].exception == "Resque::DirtyExit"

"""``work --prefetch K`` (no fork): K jobs per reservation, one pipelined call per job.

A reservation moves up to K items of the first non-empty queue into the worker's in-flight
list (``PREFETCH_STEP`` "reserve") and starts the first. After that, each job's end and the
next job's start are one call ("next") sent without waiting for its reply; the replies are
read in bulk before the next reservation or anything else, so Redis sees every per-job write
(``worker:<id>``, stats, failure record, status) in the same order as one call per job, and
the worker waits once per batch instead of once per job. The unstarted rest goes back to the
head of its queue (``PREFETCH_RETURN``) before a control check, a pause, a stop, or a job
that needs its own scripts (a retry policy, a release). A dead worker's list is recovered by
our pruner (``pruning.claim_job``): the started job failed (reliable: requeued), the rest
requeued in order. Talks to Redis directly: the hot-path exception in resque_compat/store/__init__.py.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from redis.exceptions import NoScriptError

from resque_compat.failures import failure_list_name
from resque_compat.protocol import Keys
from resque_compat.protocol.cycle import CycleKeys, CycleQueues
from resque_compat.protocol.keys import FAILED_LIST
from resque_compat.protocol.records import encode_json
from resque_compat.protocol.scripts import PREFETCH_RETURN, PREFETCH_STEP
from resque_compat.resp import bulk
from resque_compat.worker.cycle import Cycle, Finish


def _plain_success(finish: Finish) -> bool:
    return finish.failure is None and finish.release_item is None and finish.status_key is None and not finish.forget


def pipelinable(finish: Finish | None) -> bool:
    """An end the step script records (not a release, which goes through the cycle)."""
    return finish is None or finish.release_item is None


class Prefetch:
    """The prefetched jobs of one worker and the calls that start them."""

    def __init__(self, cycle: Cycle, keys: Keys, worker_id: str, size: int, *, reliable: bool) -> None:
        self.cycle = cycle
        self.keys = keys
        self.size = size
        self.reliable = reliable
        self.cycle_keys = CycleKeys.for_worker(keys, worker_id)
        self.ahead: deque[tuple[str, bytes]] = deque()  #: reserved, not started, in order
        self.unread = 0  #: pipelined calls whose replies are not read yet
        self.processed = -1  #: the last per-worker processed count Redis returned
        self._steady: dict[tuple[bool, str, str], bytes] = {}
        self._sha = self._load()
        self._return_sha = str(cycle.redis.script_load(PREFETCH_RETURN))

    def _load(self) -> str:
        return str(self.cycle.redis.script_load(PREFETCH_STEP))

    def _pack(self, finish: Finish | None, start: str, extra: bytes, queues: CycleQueues | None) -> bytes:
        k = self.cycle_keys
        end, end_item, end_arg, status = b"", b"", b"", b""
        list_key, status_key = k.worker, k.worker
        if finish is not None:
            end = b"ok"
            if finish.failure is not None:
                end, end_item = b"fail", finish.failure
                name = failure_list_name(self.cycle.failure_backend, finish.queue)
                list_key = self.keys.failed_list(name)
                end_arg = b"" if name == FAILED_LIST else name.encode()
            elif finish.forget:
                list_key, end_arg = finish.forget, b"1"
            if finish.status_key is not None and finish.status is not None:
                status_key, status = finish.status_key, finish.status
        keys = [
            k.worker, k.processed, k.processed_by_worker, k.failed, k.failed_by_worker, k.inflight,
            list_key, k.failed_queues, status_key, *(queues.keys if queues is not None else ()),
        ]  # fmt: skip
        argv = [
            end, end_item, end_arg, status, b"1" if self.reliable else b"", self.cycle.run_at().encode(),
            start.encode(), extra, *(queues.names_json if queues is not None else ()),
        ]  # fmt: skip
        words = [bulk(self._sha), bulk(len(keys)), *(bulk(w) for w in keys), *(bulk(w) for w in argv)]
        return b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + len(keys) + len(argv)) + b"".join(words)

    def step(self, finish: Finish | None, queue: str, item: bytes) -> None:
        """Record ``finish`` and start ``item`` (the head of the in-flight list); not waited for.

        A plain success's call is the same bytes for every job of a queue within a second
        (``run_at``), so it is packed once and resent."""
        del item  # the script takes it from the in-flight list; the worker holds the same bytes
        if finish is None or _plain_success(finish):
            key = (finish is not None, queue, self.cycle.run_at())
            packed = self._steady.get(key)
            if packed is None:
                if len(self._steady) > 8:
                    self._steady.clear()
                packed = self._steady[key] = self._pack(finish, "next", encode_json(queue), None)
        else:
            packed = self._pack(finish, "next", encode_json(queue), None)
        self.cycle.wire.send(packed)
        self.unread += 1

    def reserve(self, finish: Finish | None, queues: CycleQueues) -> tuple[str, bytes] | None:
        """Record ``finish`` and reserve up to K jobs (one wait); the first is started."""
        self.drain()
        packed = self._pack(finish, "reserve", str(self.size).encode(), queues)
        try:
            reply = self.cycle.wire.call([packed])
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: the call never ran
            self._sha = self._load()
            self._steady.clear()
            reply = self.cycle.wire.call([self._pack(finish, "reserve", str(self.size).encode(), queues)])
        self._note(reply)
        if int(reply[0]) != 1:
            return None
        queue = queues.names[int(reply[2]) - 1]
        self.ahead.extend((queue, bytes(item)) for item in reply[4:])
        return queue, bytes(reply[3])

    def drain(self) -> None:
        """Read the replies of every pipelined call (a script error in one is raised after all)."""
        error: Exception | None = None
        while self.unread:
            self.unread -= 1
            try:
                self._note(self.cycle.wire.read())
            except NoScriptError as exc:  # cannot happen after a reservation loaded it; kept total
                error = exc
        if error is not None:
            raise error

    def give_back(self) -> int:
        """Read what is pending, then put the unstarted rest back at the head of its queue."""
        self.drain()
        if not self.ahead:
            return 0
        queue = self.ahead[0][0]
        n = len(self.ahead)
        self.ahead.clear()
        keys = [self.cycle_keys.inflight, self.keys.queue(queue)]
        words = [bulk(self._return_sha), bulk(2), *(bulk(w) for w in keys), bulk(str(n))]
        return int(self.cycle.wire.call([b"*%d\r\n$7\r\nEVALSHA\r\n" % (len(words) + 1), *words]))

    def _note(self, reply: Any) -> None:
        processed = int(reply[1])
        if processed >= 0:
            self.processed = processed

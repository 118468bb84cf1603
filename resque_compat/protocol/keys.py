"""Every Redis key name of the Resque family, in one place.

Ruby Resque namespaces keys through redis-namespace (``resque`` gives ``resque:queues``);
php-resque's ``PREFIX`` does the same with a trailing colon added unless already present,
and an empty prefix means none. Both conventions map onto :class:`Keys`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Any, Final

from resque_compat.protocol.rubyfmt import ruby_join, sha1_hex


def glob_escape(text: str) -> str:
    """``text`` matched literally in a KEYS / SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


#: Ruby Resque's namespace when none is configured (``resque:queues`` ...)
DEFAULT_NAMESPACE: Final = "resque"

#: the failure list every backend but RedisMultiQueue writes to; always listed, even when empty
FAILED_LIST: Final = "failed"


class Stat(StrEnum):
    """Resque's counters (``stat:<name>``, and ``stat:<name>:<worker>`` per worker)."""

    PROCESSED = "processed"
    FAILED = "failed"


#: a SCAN pattern for every namespace's ``queues`` set (``doctor`` looks for other namespaces)
ANY_QUEUES_SET = "*queues"


def namespace_of_queues_set(key: str) -> str | None:
    """The namespace whose ``queues`` set ``key`` is (``""`` for none); None for another key
    that ends so (``failed_queues``)."""
    if not key.endswith("queues") or key.endswith("failed_queues"):
        return None
    return key[: -len("queues")].rstrip(":")


def normalize_namespace(namespace: str) -> str:
    """Return the literal key prefix for a namespace (``resque`` -> ``resque:``)."""
    if not namespace or namespace.endswith(":"):
        return namespace
    return namespace + ":"


def hash_tag(namespace: str) -> str | None:
    """The Redis Cluster hash tag every key of ``namespace`` carries (``{resque}`` -> ``resque``),
    or None. Redis hashes only the text between a key's first ``{`` and the next ``}`` when that
    is not empty; the braces must close inside the namespace, or a queue name would pick the slot."""
    prefix = normalize_namespace(namespace)
    start = prefix.find("{")
    end = prefix.find("}", start + 1)
    if start < 0 or end < 0 or end == start + 1:
        return None
    return prefix[start + 1 : end]


class Keys:
    """Key builder for one namespace. Cheap to keep around; hot keys are cached."""

    __slots__ = ("__dict__", "namespace", "prefix")

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.prefix = normalize_namespace(namespace)
        #: the namespace without its trailing colon, as Ruby's ``Resque.redis.namespace``
        self.namespace = self.prefix[:-1] if self.prefix.endswith(":") else self.prefix

    def __repr__(self) -> str:
        return f"Keys({self.namespace!r})"

    def key(self, name: str) -> str:
        """Namespace an arbitrary key name."""
        return self.prefix + name

    def strip(self, key: str) -> str:
        """Remove the namespace from a key Redis returned (KEYS, BLPOP)."""
        return key[len(self.prefix) :] if key.startswith(self.prefix) else key

    def pattern(self, name_prefix: str = "") -> str:
        """A SCAN pattern for every key of this namespace starting with ``name_prefix``."""
        return glob_escape(self.prefix + name_prefix) + "*"

    # -- queues -----------------------------------------------------------------
    @cached_property
    def queues(self) -> str:
        return self.prefix + "queues"

    def queue(self, name: str) -> str:
        return self.prefix + "queue:" + name

    @staticmethod
    def queue_name_key(name: str) -> str:
        """``queue:<name>`` without the namespace (as the raw key browser and messages name it)."""
        return "queue:" + name

    def queue_name(self, key: str) -> str | None:
        """The queue a ``queue:<name>`` key (as BLPOP returns it) belongs to; None for another key."""
        head = self.prefix + "queue:"
        return key[len(head) :] if key.startswith(head) else None

    # -- workers ----------------------------------------------------------------
    @cached_property
    def workers(self) -> str:
        return self.prefix + "workers"

    def worker(self, worker_id: str) -> str:
        """``worker:<id>``: JSON of the job in hand; absent while idle."""
        return self.prefix + "worker:" + worker_id

    @staticmethod
    def worker_name_key(worker_id: str) -> str:
        """``worker:<id>`` without the namespace (as the raw key browser names it)."""
        return "worker:" + worker_id

    def worker_started(self, worker_id: str) -> str:
        return self.prefix + "worker:" + worker_id + ":started"

    @cached_property
    def heartbeat(self) -> str:
        return self.prefix + "workers:heartbeat"

    @cached_property
    def prune_lock(self) -> str:
        return self.prefix + "pruning_dead_workers_in_progress"

    @cached_property
    def pause_all(self) -> str:
        return self.prefix + "pause-all-workers"

    def node_worker_ping(self, name: str) -> str:
        """node-resque's liveness key (``worker:ping:<host:pid>``); read only."""
        return self.prefix + "worker:ping:" + name

    # -- stats ------------------------------------------------------------------
    def stat(self, name: str, worker_id: str | None = None) -> str:
        """``stat:processed`` / ``stat:failed``, or their per-worker forms."""
        key = self.prefix + "stat:" + name
        return key if worker_id is None else key + ":" + worker_id

    # -- failures ---------------------------------------------------------------
    @cached_property
    def failed(self) -> str:
        return self.prefix + FAILED_LIST

    @cached_property
    def failed_queues(self) -> str:
        return self.prefix + "failed_queues"

    def failed_list(self, name: str) -> str:
        """A failure list by its name in ``failed_queues`` (``failed`` or ``<q>_failed``)."""
        return self.prefix + name

    @staticmethod
    def failed_queue_name(queue: str) -> str:
        """The name RedisMultiQueue gives the failures of one queue."""
        return queue + "_failed"

    @staticmethod
    def is_failed_queue_name(name: str) -> bool:
        """Whether ``name`` has the form RedisMultiQueue gives a failure list (``<queue>_failed``)."""
        return name.endswith("_failed")

    # -- job status (php-resque) -----------------------------------------------
    def status(self, job_id: str, prefix: str = "") -> str:
        """``job:<id>:status``, or the resque/php-resque fork's ``job:<prefix>_<id>:status``."""
        name = f"{prefix}_{job_id}" if prefix else job_id
        return self.prefix + "job:" + name + ":status"

    def job_pid(self, job_id: str) -> str:
        """resque/php-resque's ``job:<id>:pid``."""
        return self.prefix + "job:" + job_id + ":pid"

    # -- resque-scheduler -------------------------------------------------------
    @cached_property
    def delayed_schedule(self) -> str:
        return self.prefix + "delayed_queue_schedule"

    def delayed(self, timestamp: int) -> str:
        return self.prefix + self.delayed_member(timestamp)

    def delayed_at(self, member: bytes) -> bytes:
        """``delayed:<ts>`` for a schedule member exactly as stored (bytes read back from Redis)."""
        return self.prefix.encode() + self.delayed_member_of(member)

    @staticmethod
    def delayed_member(timestamp: int) -> str:
        """What ``timestamps:<json>`` sets hold: ``delayed:<ts>`` *without* the namespace."""
        return f"delayed:{timestamp}"

    @staticmethod
    def delayed_member_of(member: bytes) -> bytes:
        """:meth:`delayed_member` for a schedule member exactly as stored."""
        return b"delayed:" + member

    @staticmethod
    def parse_delayed_member(member: str) -> int | None:
        """The timestamp of a ``timestamps:`` set member (``delayed:<ts>``); None when it is not one."""
        ts = member[len("delayed:") :] if member.startswith("delayed:") else ""
        return int(ts) if ts.lstrip("-").isdigit() else None

    def timestamps(self, item_json: str) -> str:
        return self.prefix + "timestamps:" + item_json

    def timestamps_of(self, item: bytes) -> bytes:
        """:meth:`timestamps` for an item's stored bytes (which need not be UTF-8)."""
        return (self.prefix + "timestamps:").encode() + item

    @cached_property
    def timestamps_pattern(self) -> str:
        """SCAN pattern matching every ``timestamps:<item>`` set."""
        return self.pattern("timestamps:")

    @cached_property
    def last_enqueued_at(self) -> str:
        return self.prefix + "delayed:last_enqueued_at"

    @cached_property
    def persistent_schedules(self) -> str:
        return self.prefix + "persistent_schedules"

    @cached_property
    def schedules_changed(self) -> str:
        return self.prefix + "schedules_changed"

    def scheduler_master_lock(self, lock_prefix: str = "") -> str:
        """resque-scheduler namespaces this key twice: ``resque:resque:resque_scheduler_master_lock``."""
        inner = f"{self.namespace}:{lock_prefix + ':' if lock_prefix else ''}resque_scheduler_master_lock"
        return self.prefix + inner

    @cached_property
    def node_scheduler_leader_lock(self) -> str:
        """node-resque's scheduler lock: a different key, so it never excludes resque-scheduler."""
        return self.prefix + "resque_scheduler_leader_lock"

    # -- resque-retry -----------------------------------------------------------
    @staticmethod
    def retry_name(class_name: str, args: list[Any]) -> str:
        """resque-retry's ``redis_retry_key``: ``resque-retry:<Class>[:<sha1 of args.join('-')>]``,
        no digest when the join is empty, whitespace removed from the whole name."""
        joined = ruby_join(args, "-")
        name = f"resque-retry:{class_name}" + (f":{sha1_hex(joined)}" if joined else "")
        return "".join(name.split())

    def retry_attempts(self, retry_name: str) -> str:
        """The attempt counter: ``-1`` before the first run, then 0, 1, 2 ..."""
        return self.prefix + retry_name

    def retry_failure(self, retry_name: str) -> str:
        """MultipleWithRetrySuppression's latest suppressed failure (``failure-resque-retry:...``)."""
        return self.prefix + "failure-" + retry_name

    # -- resque-status ----------------------------------------------------------
    def resque_status(self, uuid: str) -> str:
        """``status:<uuid>``: resque-status's JSON record of one job."""
        return self.prefix + "status:" + uuid

    @cached_property
    def resque_statuses(self) -> str:
        """``_statuses``: uuids by enqueue time (a zset), as resque-status's web tab lists them."""
        return self.prefix + "_statuses"

    @cached_property
    def resque_status_kill(self) -> str:
        """``_kill``: uuids asked to stop at their next progress report."""
        return self.prefix + "_kill"

    # -- resque-compat's own keys (invisible to peers) ---------------------------
    def inflight(self, worker_id: str) -> str:
        """Reliable mode: the job a worker holds, moved here atomically from its queue."""
        return self.prefix + "compat:inflight:" + worker_id

    @cached_property
    def inflight_pattern(self) -> str:
        """A SCAN pattern for every worker's in-flight list."""
        return self.pattern("compat:inflight:")

    def inflight_worker(self, key: str) -> str | None:
        """The worker an in-flight list belongs to; None for another key."""
        head = self.inflight("")
        return key[len(head) :] if key.startswith(head) else None

    @cached_property
    def delayed_rejected(self) -> str:
        """Delayed items no peer could enqueue (no class or queue), kept aside by the mover."""
        return self.prefix + "compat:delayed:rejected"

    @cached_property
    def pending_retries(self) -> str:
        """A hash: retry name -> the pending retry (what, where, when), for ``resque-compat retries``."""
        return self.prefix + "compat:retries"

    def worker_state(self, worker_id: str) -> str:
        """A resque-compat worker's paused/stopping state and job classes (``WorkerState``),
        expiring unless its heartbeat refreshes it."""
        return self.prefix + "compat:state:" + worker_id

    @cached_property
    def schedule_next(self) -> str:
        """Hash: schedule name -> epoch seconds of its next run, as the master scheduler has it."""
        return self.prefix + "compat:schedule_next"

    def control(self, worker_id: str) -> str:
        """Commands (pause, resume, stop) for one resque-compat worker, from any host."""
        return self.prefix + "compat:control:" + worker_id

    # -- history (resque-compat's sampler; see resque_compat/history.py) ------------------
    def history(self, tier: str) -> str:
        """A capped list of samples, newest first, one per ``tier`` step (minute, tenmin, hour)."""
        return self.prefix + "compat:history:" + tier

    @cached_property
    def history_state(self) -> str:
        """Hash: the last bucket each tier recorded, and how far failures were counted by class."""
        return self.prefix + "compat:history:state"

    @cached_property
    def history_classes(self) -> str:
        """Hash: failures counted per job class by samplers (cumulative, a bounded set of classes)."""
        return self.prefix + "compat:history:classes"

    def history_lock(self, minute: int) -> str:
        """Taken with SET NX by the one sampler that records this minute (epoch minute)."""
        return self.prefix + "compat:history:lock:" + str(minute)

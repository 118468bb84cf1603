"""``resque-compat work``: a resident worker with Resque's semantics, beside Ruby and PHP workers."""

from resque_compat.worker.concurrent import ConcurrentWorker
from resque_compat.worker.config import WorkerConfig, WorkerConfigError
from resque_compat.worker.hooks import WorkerHooks, worker_hooks
from resque_compat.worker.runner import Job, TermException
from resque_compat.worker.worker import Worker

__all__ = [
    "ConcurrentWorker",
    "Job",
    "TermException",
    "Worker",
    "WorkerConfig",
    "WorkerConfigError",
    "WorkerHooks",
    "worker_hooks",
]

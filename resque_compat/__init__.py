"""resque-compat: the Resque job-queue protocol in Python, byte for byte.

Python workers run jobs that Ruby Resque, php-resque and node-resque enqueue, and the other
way round, in one Redis.
"""

from resque_compat.client import QueuedJob, Resque, WorkerInfo
from resque_compat.jobs.retry import Retry
from resque_compat.protocol import JobStatus
from resque_compat.registry import DontPerform, JobRegistry, UnknownJobError, default_registry, job

__version__ = "0.1.0"

__all__ = [
    "DontPerform",
    "JobRegistry",
    "JobStatus",
    "QueuedJob",
    "Resque",
    "Retry",
    "UnknownJobError",
    "WorkerInfo",
    "__version__",
    "default_registry",
    "job",
]

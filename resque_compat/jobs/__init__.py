"""What a job may declare beyond its code: a retry policy, and resque-status progress."""

from resque_compat.jobs.retry import Retry

__all__ = ["Retry"]

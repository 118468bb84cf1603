"""Delayed and recurring jobs on resque-scheduler's Redis layout, and the scheduler daemon.

Interoperates with resque-scheduler 5.0 (Ruby), php-resque-scheduler and node-resque: see
``delayed`` (the API), ``mover`` (atomic moves), ``lock`` (the master lock), ``recurring`` and
``cron`` (schedules), ``daemon`` (the loop) and ``command`` (the CLI).
"""

from resque_compat.scheduler.cron import CronError, CronExpression, parse_cron
from resque_compat.scheduler.daemon import Scheduler
from resque_compat.scheduler.delayed import DelayedJob, DelayedQueue, enqueue_delayed
from resque_compat.scheduler.lock import MasterLock
from resque_compat.scheduler.mover import Mover, MoveResult
from resque_compat.scheduler.recurring import (
    Recurring,
    RecurringSchedule,
    ScheduleError,
    ScheduleStore,
    load_schedule_file,
    parse_duration,
)

__all__ = [
    "CronError",
    "CronExpression",
    "DelayedJob",
    "DelayedQueue",
    "MasterLock",
    "MoveResult",
    "Mover",
    "Recurring",
    "RecurringSchedule",
    "ScheduleError",
    "ScheduleStore",
    "Scheduler",
    "enqueue_delayed",
    "load_schedule_file",
    "parse_cron",
    "parse_duration",
]

"""CLI: ``scheduler`` (the daemon), ``schedule list|add|remove`` and ``delayed …`` inspection."""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import click

from resque_compat import humantime
from resque_compat.cliutil import (
    CliContext,
    confirm,
    emit_json,
    fail,
    handle_errors,
    hide_secrets_from_title,
    parse_json,
    pass_cli,
    progress,
    short,
    table,
    yes_option,
)
from resque_compat.envvars import help_epilog
from resque_compat.logs import LOG_FORMATS, SCHEDULER_TEXT, setup
from resque_compat.protocol import ScheduleEntry
from resque_compat.scheduler.daemon import DEFAULT_INTERVAL, Scheduler
from resque_compat.scheduler.delayed import DelayedQueue
from resque_compat.scheduler.lock import DEFAULT_TIMEOUT
from resque_compat.scheduler.mover import DEFAULT_BATCH
from resque_compat.scheduler.recurring import Recurring, ScheduleError, ScheduleStore, load_schedule_file, next_run


def _when(ts: float) -> str:
    """A delayed timestamp as a time; one out of range (a peer's bug) is shown as unknown."""
    moment = humantime.parse(ts)
    return humantime.iso(moment) if moment else "(unknown time)"


# -- scheduler --------------------------------------------------------------------------


@click.command(epilog=help_epilog("scheduler"))
@click.option("--interval", type=float, default=DEFAULT_INTERVAL, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="One pass (lead, move what is due), then exit.")
@click.option(
    "--schedule", "schedule_file", type=click.Path(dir_okay=False), help="Recurring schedule file (YAML/JSON)."
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=DEFAULT_BATCH, show_default=True, help="Items per atomic move."
)
@click.option(
    "--lock-timeout",
    type=click.IntRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Master lock TTL (s).",
)
@click.option(
    "--dynamic/--no-dynamic", default=True, show_default=True, help="Reload schedules named in schedules_changed."
)
@click.option("-v", "--verbose", is_flag=True, help="Log every pass's work (DEBUG). [env: VERBOSE, VVERBOSE]")
@click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), envvar="LOG_FORMAT", default="text", show_default=True,
    help="Log lines as text or JSON (one object per line).",
)  # fmt: skip
@pass_cli
@handle_errors
def scheduler(  # noqa: PLR0917 - one parameter per option
    cli: CliContext,
    interval: float,
    once: bool,
    schedule_file: str | None,
    batch: int,
    lock_timeout: int,
    dynamic: bool,
    verbose: bool,
    log_format: str,
) -> None:
    """Move due delayed jobs onto their queues and run recurring schedules.

    Leads through resque-scheduler's master lock, so it can replace a Ruby resque-scheduler or
    run beside one (only one of them leads at a time). QUIT/TERM/INT finish the pass and exit.
    """
    if interval <= 0 or not math.isfinite(interval):
        fail("--interval must be a positive number of seconds", 2)
    # resque-scheduler: INFO by default, VERBOSE (here also VVERBOSE) turns on DEBUG
    verbose = verbose or bool(os.environ.get("VERBOSE") or os.environ.get("VVERBOSE"))
    setup(log_format, logging.DEBUG if verbose else logging.INFO, text_format=SCHEDULER_TEXT)
    hide_secrets_from_title("scheduler", cli.redis_shown)
    try:
        daemon = Scheduler(
            cli.resque, interval=interval, batch=batch, schedule_file=schedule_file,
            lock_timeout=lock_timeout, dynamic=dynamic,
        )  # fmt: skip
    except ScheduleError as exc:
        fail(str(exc), 2)
    with daemon.signals():
        if once:
            result = daemon.run_pass()
            daemon.release()
            summary = {"master": result.master, "moved": result.moved.moved, "rejected": result.moved.rejected}
            if cli.json:
                emit_json(summary)
            elif not result.master:
                click.echo(f"not master ({daemon.lock.holder() or 'nobody'} holds the lock): nothing moved")
            else:
                click.echo(f"moved {result.moved.moved} delayed job(s)")
            return
        logging.getLogger("resque_compat.scheduler").info(
            "starting on %s (namespace %r), interval %gs, batch %d", cli.redis_shown, cli.resque.keys.namespace,
            interval, batch,
        )  # fmt: skip
        daemon.run()


# -- schedule ---------------------------------------------------------------------------


@click.group()
def schedule() -> None:
    """Recurring schedules in persistent_schedules (resque-scheduler's format)."""


@schedule.command("list")
@click.option("--schedule", "schedule_file", type=click.Path(dir_okay=False), help="Also show this file's schedules.")
@pass_cli
@handle_errors
def schedule_list(cli: CliContext, schedule_file: str | None) -> None:
    """Every schedule with its timing, job, next run and last run."""
    try:
        recurring = Recurring(cli.resque, load_schedule_file(schedule_file) if schedule_file else {})
    except ScheduleError as exc:
        fail(str(exc), 2)
    recurring.load()
    last = recurring.store.last_enqueued_at()
    published = recurring.store.published_next()
    now = time.time()
    rows = []
    for name, s in sorted(recurring.schedules.items()):
        nxt, how = next_run(s, published.get(name), last.get(name), now)
        rows.append({
            "name": name, "class": s.class_name, "queue": s.queue, "args": s.args, "timing": s.timing,
            "description": s.description, "source": s.source, **humantime.json_fields("next", nxt),
            "next_from": how, **humantime.json_fields("last", last.get(name)),
        })  # fmt: skip
    if cli.json:
        emit_json(rows)
        return
    table(
        ["NAME", "TIMING", "CLASS", "QUEUE", "ARGS", "SOURCE", "NEXT", "LAST"],
        [[r["name"], r["timing"], r["class"], r["queue"], short(r["args"], 30), r["source"],
          _next_shown(r["next"], r["next_from"]), r["last"]] for r in rows],
        empty="(no schedules)",
    )  # fmt: skip


def _next_shown(when: str | None, how: str) -> str:
    if when is None:
        return "when a scheduler loads it"
    return when if how in ("scheduler", "cron") else f"{when} (last run + every)"


@schedule.command("add")
@click.argument("name")
@click.option("--cron", help="Cron line (5 or 6 fields, optional zone).")
@click.option("--every", help="Interval: 30s, 5m, 1h30m, 1d ...")
@click.option("--class", "class_name", required=True, help="Job class.")
@click.option("--queue", required=True, help="Queue to push to.")
@click.option("--args", "args_json", help="Job arguments as JSON (an array; a scalar or object becomes one argument).")
@click.option("--description", help="Free text shown by schedule list and resque-web.")
@pass_cli
@handle_errors
def schedule_add(  # noqa: PLR0917 - one parameter per option
    cli: CliContext,
    name: str,
    cron: str | None,
    every: str | None,
    class_name: str,
    queue: str,
    args_json: str | None,
    description: str | None,
) -> None:
    """Create or replace a persistent schedule (picked up by the master scheduler)."""
    if (cron is None) == (every is None):
        fail("give exactly one of --cron and --every", 2)
    entry = ScheduleEntry(class_=class_name)
    if cron is not None:
        entry.cron = cron
    if every is not None:
        entry.every = every
    entry.queue = queue
    if args_json is not None:
        entry.args = parse_json(args_json, "--args")
    if description:
        entry.description = description
    try:
        ScheduleStore(cli.resque).set(name, entry)
    except ScheduleError as exc:
        fail(str(exc), 2)
    if cli.json:
        emit_json({"name": name, **entry.to_dict()})
    else:
        click.echo(f"schedule {name} saved")


@schedule.command("remove")
@click.argument("name")
@yes_option
@pass_cli
@handle_errors
def schedule_remove(cli: CliContext, name: str, yes: bool) -> None:
    """Delete a persistent schedule."""
    store = ScheduleStore(cli.resque)
    if store.stored_entry(name) is None:
        fail(f"no persistent schedule named {name!r}", 1)
    confirm(f"Delete schedule {name}?", yes)
    if not store.remove(name):
        fail(f"no persistent schedule named {name!r}", 1)
    click.echo(f"schedule {name} removed")


# -- delayed ----------------------------------------------------------------------------


@click.group()
def delayed() -> None:
    """Inspect and manage delayed jobs (resque-scheduler's delayed_queue_schedule)."""


@delayed.command("list")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--count", type=click.IntRange(min=1), default=50, show_default=True)
@pass_cli
@handle_errors
def delayed_list(cli: CliContext, start: int, count: int) -> None:
    """Timestamps with delayed jobs, soonest first."""
    dq = DelayedQueue(cli.resque)
    page = dq.timestamps(start, count)
    if cli.json:
        emit_json({
            "total": dq.timestamp_count(),
            "timestamps": [{"timestamp": t, **humantime.json_fields("at", t), "jobs": n} for t, n in page],
        })  # fmt: skip
        return
    table(["TIMESTAMP", "AT", "JOBS"], [[t, _when(t), n] for t, n in page], empty="(no delayed jobs)")


@delayed.command("show")
@click.argument("timestamp", type=int)
@pass_cli
@handle_errors
def delayed_show(cli: CliContext, timestamp: int) -> None:
    """The jobs at one timestamp."""
    jobs = DelayedQueue(cli.resque).jobs_at(timestamp)
    if not jobs:
        raise LookupError(f"no delayed jobs at {timestamp} ({humantime.show(timestamp)})")
    if cli.json:
        emit_json([{"class": j.class_name, "queue": j.queue, "args": j.args, "raw": j.raw.decode(errors="replace")}
                    for j in jobs])  # fmt: skip
        return
    table(
        ["CLASS", "QUEUE", "ARGS"],
        [[j.class_name or f"(unreadable: {j.problem})", j.queue, short(j.args)] for j in jobs],
    )


@delayed.command("count")
@pass_cli
@handle_errors
def delayed_count(cli: CliContext) -> None:
    """How many delayed jobs there are."""
    n = DelayedQueue(cli.resque).count()
    if cli.json:
        emit_json({"count": n})
    else:
        click.echo(n)


def _args_list(args_json: str) -> list[Any]:
    args = parse_json(args_json, "ARGS_JSON")
    if not isinstance(args, list):
        raise ValueError("ARGS_JSON must be a JSON array of arguments")  # noqa: TRY004 - user input
    return args


@delayed.command("remove")
@click.argument("queue")
@click.argument("class_name", metavar="CLASS")
@click.argument("args_json", metavar="[ARGS_JSON]", required=False, default="[]")
@yes_option
@pass_cli
@handle_errors
def delayed_remove(cli: CliContext, queue: str, class_name: str, args_json: str, yes: bool) -> None:
    """Remove every delayed copy of one exact job (any peer's encoding)."""
    args = _args_list(args_json)
    confirm(f"Remove every delayed {class_name} {args_json} on {queue}?", yes)
    n = DelayedQueue(cli.resque).remove(queue, class_name, *args)
    emit_json({"removed": n}) if cli.json else click.echo(f"removed {n} delayed job(s)")


@delayed.command("remove-where")
@click.argument("class_name", metavar="CLASS")
@click.option("--queue", help="Only items for this queue.")
@click.option("--args-contains", "contains_json", help="JSON value that must be one of the args, or "
              "an object whose pairs must all be in one object arg.")  # fmt: skip
@yes_option
@pass_cli
@handle_errors
def delayed_remove_where(
    cli: CliContext, class_name: str, queue: str | None, contains_json: str | None, yes: bool
) -> None:
    """Remove delayed jobs of CLASS, optionally filtered by queue and arguments."""
    wanted = parse_json(contains_json, "--args-contains") if contains_json is not None else None
    confirm(f"Remove the matching delayed {class_name} jobs?", yes)
    dq = DelayedQueue(cli.resque)

    def select(_: str, args: list[Any]) -> bool:
        return wanted is None or any(_contains(arg, wanted) for arg in args)

    jobs = [j for j in dq.find(select, class_name) if queue is None or j.queue == queue]
    n = sum(dq.remove_at(j.timestamp, j.raw) for j in {(j.timestamp, j.raw): j for j in jobs}.values())
    emit_json({"removed": n}) if cli.json else click.echo(f"removed {n} delayed job(s)")


def _contains(arg: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict) and isinstance(arg, dict):
        return all(k in arg and arg[k] == v for k, v in wanted.items())
    return bool(arg == wanted)


@delayed.command("enqueue-now")
@click.argument("timestamp", type=int)
@pass_cli
@handle_errors
def delayed_enqueue_now(cli: CliContext, timestamp: int) -> None:
    """Move every job at TIMESTAMP onto its queue now."""
    result = DelayedQueue(cli.resque).enqueue_timestamp_now(timestamp)
    if cli.json:
        emit_json({"moved": result.moved, "rejected": result.rejected})
    else:
        click.echo(f"moved {result.moved} delayed job(s)")


@delayed.command("clear")
@yes_option
@pass_cli
@handle_errors
def delayed_clear(cli: CliContext, yes: bool) -> None:
    """Delete every delayed job (resque-scheduler's reset_delayed_queue)."""
    dq = DelayedQueue(cli.resque)
    total = dq.timestamp_count()
    confirm(f"Delete every delayed job ({total} timestamps)?", yes)
    with progress(cli, total, "clearing delayed jobs") as advance:
        n = dq.clear(advance)
    emit_json({"timestamps": n}) if cli.json else click.echo(f"cleared {n} timestamp(s)")

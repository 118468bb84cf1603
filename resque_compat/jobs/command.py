"""``resque-compat retries`` and ``resque-compat statuses``: pending retries and resque-status
records, for operators (the dashboard shows the same)."""

from __future__ import annotations

import click

from resque_compat.cliutil import CliContext, emit_json, handle_errors, pass_cli, table
from resque_compat.jobs.progress import STATUS_FILTERS


@click.group(invoke_without_command=True)
@pass_cli
@handle_errors
def retries(cli: CliContext) -> None:
    """Pending retries (jobs with a Retry policy): attempt, where they wait, and the next run."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    entries = cli.resque.retries.entries()
    if cli.json:
        emit_json([e.as_dict() for e in entries])
        return
    rows = []
    for e in entries:
        d = e.as_dict()
        if e.entry is None:
            rows.append((e.name, "-", "-", "-", "-", f"unreadable: {e.problem}"))
            continue
        runs = d["runs"] or "∞"
        rows.append((e.name, d["class"], d["queue"], f"{d['attempt']} of {runs}", d["next_run_at"], d["error"]))
    table(["NAME", "CLASS", "QUEUE", "NEXT ATTEMPT", "NEXT RUN AT", "LAST ERROR"], rows, "(no pending retries)")


@retries.command("now")
@click.argument("name")
@pass_cli
@handle_errors
def retries_now(cli: CliContext, name: str) -> None:
    """Run a delayed retry now: move it from the delayed queue to its queue (NAME from the list)."""
    cli.resque.retries.retry_now(name)
    emit_json({"ok": True, "retried": name}) if cli.json else click.echo(f"queued {name} now")


@retries.command("give-up")
@click.argument("name")
@pass_cli
@handle_errors
def retries_give_up(cli: CliContext, name: str) -> None:
    """Stop retrying: drop the pending retry, reset its counter, record its last failure."""
    cli.resque.retries.give_up(name)
    emit_json({"ok": True, "gave_up": name}) if cli.json else click.echo(f"gave up {name}; its failure is in failed")


@click.command()
@click.option(
    "--start", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many (newest first)."
)
@click.option("--count", type=click.IntRange(min=1), default=50, show_default=True, help="How many.")
@click.option(
    "--clear", type=click.Choice(STATUS_FILTERS), help="Remove records instead: all, or those completed/failed/killed."
)
@pass_cli
@handle_errors
def statuses(cli: CliContext, start: int, count: int, clear: str | None) -> None:
    """resque-status records listed in _statuses (what its web tab shows), newest first."""
    store = cli.resque.statuses
    if clear is not None:
        removed = store.clear(None if clear == "all" else clear)
        emit_json({"removed": removed}) if cli.json else click.echo(f"removed {removed} status record(s)")
        return
    records = store.records(start, start + count - 1)
    if cli.json:
        emit_json({"total": store.count(), "statuses": [r.json_with_pct() for r in records]})
        return
    rows = [
        (r.uuid, r.name if isinstance(r.name, str) else "-", r.state or "-", f"{r.pct_complete}%",
         r.message if isinstance(r.message, str) else "")
        for r in records
    ]  # fmt: skip
    table(["UUID", "NAME", "STATUS", "DONE", "MESSAGE"], rows, "(no statuses)")

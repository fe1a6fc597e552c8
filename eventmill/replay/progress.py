"""Progress for long replays: a rich bar with rate and ETA on a terminal, plain periodic
lines otherwise (CI logs), and the summary table at the end."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from eventmill.replay.report import ReplayReport

PLAIN_EVERY_S = 5.0


class ProgressDisplay:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.last_line = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.0f}/s"), TimeRemainingColumn(), console=self.console,
            )
            self.bar.start()
            self.task = self.bar.add_task("replay", total=None, rate=0.0)
        return self

    def update(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done, total=total, rate=done / elapsed)
        elif time.monotonic() - self.last_line >= PLAIN_EVERY_S or done == total:
            self.last_line = time.monotonic()
            self.console.print(f"replay: {done}/{total} done, {done / elapsed:.0f}/s", highlight=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def print_summary(console: Console, report: ReplayReport) -> None:
    summary = report.summary()
    table = Table(title=f"replay into {report.function} ({report.mode} mode)")
    for column in ("events", "succeeded", "failed", "retried", "sent to DLQ", "filtered", "skipped", "events/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right")
    durations = summary["durationMs"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    table.add_row(
        str(summary["events"]), str(summary["succeeded"]), str(summary["failed"]), str(summary["retried"]),
        str(summary["sentToDlq"]), str(summary["filtered"]), str(summary["skippedBad"]), f"{summary['eventsPerSecond']:.1f}",
        fmt(durations["p50"]), fmt(durations["p95"]), fmt(durations["p99"]),
    )
    if console.is_terminal:
        console.print(table)
    console.print(
        "summary: " + " ".join(f"{name}={summary[key]}" for name, key in (
            ("events", "events"), ("succeeded", "succeeded"), ("failed", "failed"), ("retried", "retried"),
            ("sent_to_dlq", "sentToDlq"), ("filtered", "filtered"), ("skipped", "skippedBad"), ("events/s", "eventsPerSecond"),
        )) + " " + " ".join(f"{q}_ms={fmt(v)}" for q, v in durations.items()),
        highlight=False, soft_wrap=True,
    )
    for outcome in report.failed[:20]:
        error = outcome.error if isinstance(outcome.error, dict) else {"errorMessage": outcome.error}
        console.print(f"failed: {outcome.origin} {outcome.request_id} {outcome.condition} {error.get('errorType', '')}: {error.get('errorMessage', '')}", highlight=False, markup=False)
    if len(report.failed) > 20:
        console.print(f"... and {len(report.failed) - 20} more failures")

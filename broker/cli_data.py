"""The data commands of `eventmill`: our DLQ (list/show/redrive/purge), `replay` and `record`.
Kept apart from broker/cli.py (process and function commands) so each file has one job."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.table import Table

from broker.cli_base import DataDir, RedisUrl, connect, err, fail, instance_url, out
from broker.instance import default_data_dir, read_instance
from broker.settings import Settings

dlq_app = typer.Typer(help="Our own DLQ: every discarded async event.", no_args_is_help=True)


@dlq_app.command("list")
def dlq_list(function: Annotated[Optional[str], typer.Argument()] = None, redis_url: RedisUrl = None, data_dir: DataDir = None) -> None:
    """DLQ entries (all functions, or one)."""
    from broker.registry import function_names
    from broker.results import dlq_get, dlq_ids

    client, keys = connect(redis_url, data_dir)
    names = [function] if function else function_names(client, keys)
    table = Table("function", "requestId", "condition", "attempts", "error")
    for name in names:
        for rid in dlq_ids(client, keys, name):
            record = dlq_get(client, keys, rid) or {}
            error = record.get("error") or {}
            table.add_row(name, rid, str(record.get("condition")), str(record.get("attempts")), f"{error.get('errorType', '')}: {error.get('errorMessage', '')}"[:60])
    out.print(table)


@dlq_app.command("show")
def dlq_show(request_id: str, redis_url: RedisUrl = None, data_dir: DataDir = None) -> None:
    """One DLQ record as JSON."""
    from broker.results import dlq_get

    client, keys = connect(redis_url, data_dir)
    record = dlq_get(client, keys, request_id)
    if record is None:
        raise fail(f"no DLQ record {request_id}")
    sys.stdout.write(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode() + "\n")


@dlq_app.command("redrive")
def dlq_redrive(
    function: str,
    request_id: Annotated[Optional[list[str]], typer.Option("--id", help="Only these request ids")] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Replay DLQ'd events through the async path (new request ids) and wait for them;
    the same machinery as `eventmill replay --from-dlq`. Exit 1 if any failed again."""
    from eventmill.replay import ReplayError
    from eventmill.replay.api import replay as run_replay
    from eventmill.replay.progress import print_summary

    url = instance_url(redis_url, data_dir)
    try:
        report = run_replay(function, redis_url=url, prefix=os.environ.get("EVENTMILL_PREFIX", "em:"), from_dlq=request_id or True)
    except ReplayError as exc:
        raise fail(str(exc)) from None
    out.print(f"redriven {len(report.outcomes)} event(s) of {function}")
    print_summary(out, report)
    if not report.ok:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(function: str, redis_url: RedisUrl = None, data_dir: DataDir = None) -> None:
    """Delete every DLQ entry of a function."""
    from broker.results import dlq_ids, dlq_remove

    client, keys = connect(redis_url, data_dir)
    removed = dlq_remove(client, keys, function, dlq_ids(client, keys, function))
    out.print(f"purged {removed} record(s) of {function}")



def replay(
    files: Annotated[list[str], typer.Argument(help="JSON Lines, JSON, AWS Records events, directories, - for stdin; .gz ok")] = [],  # noqa: B006
    function: Annotated[str, typer.Option("--function", "-f", help="Function to replay into")] = "",
    mode: Annotated[str, typer.Option(help="event (async path), sync, or batch")] = "event",
    source: Annotated[Optional[str], typer.Option(help="batch mode: sqs, kinesis or dynamodb")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="batch mode: records per batch")] = None,
    mapping: Annotated[Optional[str], typer.Option(help="batch mode: CreateEventSourceMapping fields as JSON, e.g. '{\"BisectBatchOnFunctionError\": true}'")] = None,
    max_receive_count: Annotated[int, typer.Option(help="batch mode, SQS: receives before a failing message counts as moved to the DLQ")] = 1,
    concurrency: Annotated[int, typer.Option(help="sync mode: invocations in flight")] = 1,
    rate: Annotated[Optional[str], typer.Option(help="Events per second, e.g. 50/s")] = None,
    speed: Annotated[Optional[float], typer.Option(help="Replay with the original timestamps' spacing divided by X")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N events")] = None,
    filter: Annotated[Optional[str], typer.Option("--filter", help="A FilterCriteria pattern (JSON)")] = None,
    ordered: Annotated[bool, typer.Option(help="Keep order per partition key / message group")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed lines instead of refusing the run")] = False,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write one JSON line per event with its outcome")] = None,
    only_failed: Annotated[Optional[Path], typer.Option(help="Replay only the failures of a previous --out file")] = None,
    from_dlq: Annotated[bool, typer.Option(help="Replay the function's events from eventmill's own DLQ (then removed from it)")] = False,
    allow_failures: Annotated[bool, typer.Option(help="Exit 0 even when events failed")] = False,
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Replay recorded events through a function with live semantics; exit 0 only if all succeeded."""
    from eventmill.replay import ReplayError
    from eventmill.replay.api import replay as run_replay
    from eventmill.replay.progress import ProgressDisplay, print_summary

    if not function:
        raise fail("--function is required")
    if not files and only_failed is None and not from_dlq:
        raise fail("give at least one input file (or - for stdin), --only-failed, or --from-dlq")
    per_second = None
    if rate:
        try:
            per_second = float(rate.removesuffix("/s"))
        except ValueError:
            raise fail(f"--rate must look like 50/s, got {rate!r}") from None
    criteria = json_option("--filter", filter)
    mapping_fields = json_option("--mapping", mapping)
    url = instance_url(redis_url, data_dir)
    with ProgressDisplay(err) as display:
        try:
            report = run_replay(
                function, files, mode=mode, redis_url=url, prefix=os.environ.get("EVENTMILL_PREFIX", "em:"),
                concurrency=concurrency, rate=per_second, speed=speed, limit=limit, filter=criteria, ordered=ordered,
                skip_bad=skip_bad, only_failed=only_failed, out=out_file, source=source, batch_size=batch_size,
                mapping=mapping_fields, max_receive_count=max_receive_count, from_dlq=from_dlq, progress=display.update,
            )
        except (ReplayError, FileNotFoundError, ValueError) as exc:
            display.stop()
            raise fail(str(exc)) from None
    print_summary(out, report)
    if not report.ok and not allow_failures:
        raise typer.Exit(1)


def record(
    source: Annotated[str, typer.Option("--source", help="SQS queue URL/ARN, Kinesis stream ARN or DynamoDB stream ARN")],
    out_file: Annotated[Path, typer.Option("--out", help="JSON Lines file to write (replay takes it unchanged)")],
    limit: Annotated[Optional[int], typer.Option(help="Stop after N records")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after S seconds (default: when the source is idle for 2 s)")] = None,
    peek: Annotated[bool, typer.Option(help="SQS: release each message again (visibility 0) instead of consuming it")] = False,
    position: Annotated[str, typer.Option(help="Streams: TRIM_HORIZON, LATEST or AT_TIMESTAMP")] = "TRIM_HORIZON",
    timestamp: Annotated[Optional[float], typer.Option(help="Streams: epoch seconds for AT_TIMESTAMP")] = None,
    aws_endpoint: Annotated[Optional[str], typer.Option("--aws-endpoint", envvar="EVENTMILL_AWS_ENDPOINT", help="Emulator endpoint (default: the running instance's)")] = None,
    aws: Annotated[str, typer.Option("--aws", help="'instance' (the running eventmill's emulator) or 'real'")] = "instance",
    data_dir: DataDir = None,
) -> None:
    """Capture records from a live source into JSON Lines for `eventmill replay`."""
    import asyncio

    from pollers.record import RecordOptions
    from pollers.record import record as run_record

    if position not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
        raise fail("--position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP")
    endpoint = aws_endpoint
    if endpoint is None and aws != "real":
        info = read_instance(data_dir or default_data_dir())
        if info is None or not info["aws_endpoint"]:
            raise fail("no emulator endpoint: pass --aws-endpoint URL, --aws real, or start `eventmill up`")
        endpoint = info["aws_endpoint"]
    settings = Settings(redis_url="", aws_endpoint=endpoint)
    options = RecordOptions(source=source, out=out_file, limit=limit, duration_s=duration, peek=peek, position=position, timestamp=timestamp)
    try:
        count = asyncio.run(run_record(settings, options))
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # botocore errors: one line, not a traceback
        raise fail(f"{type(exc).__name__}: {exc}") from None
    out.print(f"recorded {count} record(s) to {out_file}")


def json_option(name: str, raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise fail(f"{name} is not JSON: {exc}") from None


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
    app.command()(replay)
    app.command()(record)

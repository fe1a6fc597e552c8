"""The `eventmill` command line. Commands find the running instance through the data dir
(instance.json written by `eventmill up`) or --redis-url; errors are one line, exit 1."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import redis
import typer
from rich.console import Console
from rich.table import Table

from broker import client as em_client
from broker.errors import LambdaError
from broker.instance import default_data_dir, read_instance
from broker.keys import Keys
from broker.settings import Settings

app = typer.Typer(help="eventmill: Lambda-style functions in nsjail sandboxes, fed with Lambda's delivery semantics.", no_args_is_help=True, pretty_exceptions_enable=False)
dlq_app = typer.Typer(help="Our own DLQ: every discarded async event.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
out = Console()
err = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Instance data dir [default: ./.eventmill or $EVENTMILL_DATA_DIR]")]
RedisUrl = Annotated[Optional[str], typer.Option("--redis-url", envvar="EVENTMILL_REDIS_URL", help="Use this Redis instead of the instance in the data dir")]


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def instance_url(redis_url: str | None, data_dir: Path | None) -> str:
    url = redis_url
    if not url:
        directory = data_dir or default_data_dir()
        try:
            info = read_instance(directory)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if info is None:
            raise fail(f"no running eventmill found in {directory} (start one with `eventmill up`, or pass --redis-url)")
        url = info["redis_url"]
    return url


def connect(redis_url: str | None, data_dir: Path | None) -> tuple[redis.Redis, Keys]:
    url = instance_url(redis_url, data_dir)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise fail(f"cannot reach Redis at {url}: {exc}") from None
    return client, Keys(os.environ.get("EVENTMILL_PREFIX", "em:"))


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Lambda API port")] = 8570,
    host: Annotated[str, typer.Option(help="Bind address for the API")] = "127.0.0.1",
    data_dir: DataDir = None,
    redis_url: Annotated[Optional[str], typer.Option("--redis-url", help="Use an existing Redis instead of starting one")] = None,
    aws_endpoint: Annotated[Optional[str], typer.Option("--aws-endpoint", help="An existing emulator (moto, LocalStack...)")] = None,
    aws: Annotated[str, typer.Option("--aws", help="'embedded' (start moto) or 'real' (standard credential chain)")] = "embedded",
    aws_port: Annotated[int, typer.Option(help="Port of the embedded moto server")] = 8571,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    fsync: Annotated[str, typer.Option(help="Redis AOF fsync: everysec or always")] = "everysec",
    config: Annotated[Path, typer.Option(help="Functions to register at start")] = Path("eventmill.yaml"),
    sandbox: Annotated[str, typer.Option(help="nsjail, or none (no isolation; warns)")] = "nsjail",
    log_format: Annotated[str, typer.Option(help="text or json (JSON lines)")] = "text",
) -> None:
    """Start Redis, the AWS emulator, the Lambda API and workers; Ctrl-C stops them all."""
    from broker.logsetup import configure
    from broker.up import UpOptions, run_up

    if fsync not in ("everysec", "always"):
        raise fail("--fsync must be everysec or always")
    if aws not in ("embedded", "real"):
        raise fail("--aws must be embedded or real")
    if sandbox not in ("nsjail", "none"):
        raise fail("--sandbox must be nsjail or none")
    configure(log_format)
    _check_sandbox(sandbox)
    opts = UpOptions(
        data_dir=data_dir or default_data_dir(), host=host, port=port, redis_url=redis_url, aws_endpoint=aws_endpoint,
        aws_real=aws == "real", aws_port=aws_port, workers=workers, fsync=fsync, config=config, sandbox=sandbox,
        log_format=log_format,
    )
    try:
        run_up(opts, announce=lambda line: out.print(line, highlight=False, soft_wrap=True))
    except (LambdaError, OSError, RuntimeError) as exc:
        raise fail(str(exc)) from None


def _check_sandbox(mode: str) -> None:
    from sandbox import SandboxUnavailable, find_nsjail

    if mode == "none":
        err.print("[yellow]warning:[/yellow] --sandbox none: functions run as plain processes with NO isolation")
        return
    try:
        find_nsjail()
    except SandboxUnavailable as exc:
        raise fail(str(exc)) from None


@app.command()
def worker(
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty")] = False,
    sandbox: Annotated[Optional[str], typer.Option(envvar="EVENTMILL_SANDBOX", help="nsjail or none")] = None,
    log_format: Annotated[str, typer.Option(help="text or json")] = "text",
) -> None:
    """Run one worker process (scale out by running more, on any host sharing Redis)."""
    from broker.logsetup import configure
    from invoker.worker import run_worker

    configure(log_format)
    url = instance_url(redis_url, data_dir)
    settings = Settings(redis_url=url, sandbox_mode=sandbox or "nsjail", **({"data_dir": data_dir} if data_dir else {}))
    _check_sandbox(settings.sandbox_mode)
    run_worker(settings, burst=burst)


@app.command()
def pollers(
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
    log_format: Annotated[str, typer.Option(help="text or json")] = "text",
) -> None:
    """Run one pollers process: reads event source mappings' sources and invokes their functions (scale out by running more)."""
    from broker.logsetup import configure
    from pollers.runner import run_pollers

    configure(log_format)
    url = instance_url(redis_url, data_dir)
    run_pollers(Settings(redis_url=url, **({"data_dir": data_dir} if data_dir else {})))


def read_payload(payload: str | None) -> bytes:
    if payload is None:
        return b"{}"
    if payload == "-":
        return sys.stdin.buffer.read()
    if payload.startswith("@"):
        try:
            return Path(payload[1:]).read_bytes()
        except OSError as exc:
            raise fail(f"cannot read payload file: {exc}") from None
    return payload.encode()


@app.command()
def invoke(
    function: str,
    payload: Annotated[Optional[str], typer.Option(help="JSON text, @file, or - for stdin")] = None,
    async_: Annotated[bool, typer.Option("--async", help="InvocationType=Event: returns the request id at once")] = False,
    log: Annotated[bool, typer.Option("--log", help="Print the invocation log tail (START/END/REPORT) to stderr")] = False,
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Invoke a function, synchronously by default."""
    client, keys = connect(redis_url, data_dir)
    body = read_payload(payload)
    try:
        if async_:
            out.print(orjson.dumps({"StatusCode": 202, "RequestId": em_client.invoke_async(client, keys, function, body)}).decode())
            return
        reply = em_client.invoke_sync(client, keys, function, body, log_type="Tail" if log else "None")
    except LambdaError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    if log and reply.log_result:
        err.print(base64.b64decode(reply.log_result).decode(errors="replace"), highlight=False, markup=False, soft_wrap=True)
    sys.stdout.write(reply.payload.decode(errors="replace") + "\n")
    if reply.function_error:
        raise typer.Exit(1)


@app.command()
def results(
    function: str,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    limit: Annotated[Optional[int], typer.Option(help="Only the last N")] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Results of a function's invocations, oldest first."""
    from broker.results import list_results

    client, keys = connect(redis_url, data_dir)
    records = list_results(client, keys, function, limit)
    if json:
        for record in records:
            sys.stdout.write(orjson.dumps(record).decode() + "\n")
        return
    table = Table("requestId", "status", "attempts", "duration ms", "payload / error")
    for r in records:
        shown = r["payload"] if r["status"] == "success" else r["error"]
        table.add_row(r["requestId"], r["status"], str(r["attempts"]), f"{r['duration']:.2f}", orjson.dumps(shown).decode()[:80])
    out.print(table)


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


@app.command()
def apply(path: Annotated[Path, typer.Argument()] = Path("eventmill.yaml"), redis_url: RedisUrl = None, data_dir: DataDir = None) -> None:
    """Register (or update) the functions declared in eventmill.yaml."""
    from broker.deploy import apply_project

    client, keys = connect(redis_url, data_dir)
    if not path.exists():
        raise fail(f"{path} does not exist")
    try:
        names = apply_project(client, keys, (data_dir or default_data_dir()).resolve(), path)
    except LambdaError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    out.print(f"applied: {', '.join(names) or '(none)'}")


@app.command()
def status(
    json: Annotated[bool, typer.Option("--json")] = False,
    redis_url: RedisUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Functions, queue depth, in flight, retries pending, DLQ counts and metrics."""
    from broker.registry import function_names
    from broker.status import queue_depths, read_metrics

    client, keys = connect(redis_url, data_dir)
    depths = queue_depths(client, keys)
    metrics = read_metrics(client, keys)
    functions: dict[str, Any] = {}
    for name in function_names(client, keys):
        m = metrics.get(f"fn:{name}", {})
        functions[name] = {
            "dlq": int(client.zcard(keys.dlq(name))),
            **{k: (round(v, 3) if isinstance(v, float) and not v.is_integer() else int(v)) for k, v in m.items()},
        }
    mappings = {scope[4:]: {k: round(v, 3) for k, v in m.items()} for scope, m in metrics.items() if scope.startswith("esm:")}
    if json:
        sys.stdout.write(orjson.dumps({"queues": depths, "functions": functions, "mappings": mappings}).decode() + "\n")
        return
    out.print("queues: " + "  ".join(f"{k}={v}" for k, v in depths.items()), highlight=False, soft_wrap=True)
    table = Table("function", "Invocations", "Errors", "Throttles", "Concurrent", "AsyncReceived", "Dropped", "DLQ", "avg ms")
    for name, m in functions.items():
        count = m.get("Duration:count", 0) or 0
        avg = (m.get("Duration:sum", 0) / count) if count else 0
        table.add_row(name, *(str(m.get(k, 0)) for k in ("Invocations", "Errors", "Throttles", "ConcurrentExecutions", "AsyncEventsReceived", "AsyncEventsDropped", "dlq")), f"{avg:.2f}")
    out.print(table)
    if mappings:
        esm = Table("mapping", "Polled", "Filtered", "Batches", "avg size", "Invoked", "FailedItems", "Deleted", "Returned", "avg lag ms")
        for uid, m in mappings.items():
            size = m.get("BatchSize:sum", 0) / (m.get("BatchSize:count") or 1)
            lag = m.get("Lag:sum", 0) / (m.get("Lag:count") or 1)
            esm.add_row(uid, *(str(int(m.get(k, 0))) for k in ("Polled", "Filtered", "Batches")), f"{size:.1f}",
                        *(str(int(m.get(k, 0))) for k in ("Invoked", "FailedItems", "Deleted", "Returned")), f"{lag:.0f}")
        out.print(esm)


@app.command()
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
    criteria = None
    if filter:
        try:
            criteria = orjson.loads(filter)
        except orjson.JSONDecodeError as exc:
            raise fail(f"--filter is not JSON: {exc}") from None
    mapping_fields = None
    if mapping:
        try:
            mapping_fields = orjson.loads(mapping)
        except orjson.JSONDecodeError as exc:
            raise fail(f"--mapping is not JSON: {exc}") from None
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


@app.command()
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

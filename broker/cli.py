"""The `eventmill` command line. Commands find the running instance through the data dir
(instance.json written by `eventmill up`) or --redis-url; errors are one line, exit 1."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.table import Table

from broker import client as em_client
from broker.cli_base import DataDir, RedisUrl, connect, err, fail, instance_url, out
from broker.cli_data import register as register_data_commands
from broker.errors import LambdaError
from broker.instance import default_data_dir
from broker.settings import Settings

app = typer.Typer(help="eventmill: Lambda-style functions in nsjail sandboxes, fed with Lambda's delivery semantics.", no_args_is_help=True, pretty_exceptions_enable=False)


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
    for scope, m in metrics.items():
        if scope.startswith("shard:"):
            uid, _, shard = scope[6:].partition("/")
            mappings.setdefault(uid, {}).setdefault("shards", {})[shard] = {k: round(v, 3) for k, v in m.items()}
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
            if "Polled" not in m:
                continue  # a stream mapping: see the streams table
            size = m.get("BatchSize:sum", 0) / (m.get("BatchSize:count") or 1)
            lag = m.get("Lag:sum", 0) / (m.get("Lag:count") or 1)
            esm.add_row(uid, *(str(int(m.get(k, 0))) for k in ("Polled", "Filtered", "Batches")), f"{size:.1f}",
                        *(str(int(m.get(k, 0))) for k in ("Invoked", "FailedItems", "Deleted", "Returned")), f"{lag:.0f}")
        out.print(esm)
        streams = Table("mapping / shard", "Batches", "Retries", "Bisections", "Discarded", "OnFailure", "IteratorAge ms", "Backlog")
        for uid, m in mappings.items():
            if "shards" not in m and "Polled" in m:
                continue
            age = m.get("IteratorAge:sum", 0) / (m.get("IteratorAge:count") or 1)
            streams.add_row(uid, *(str(int(m.get(k, 0))) for k in ("Batches", "Retries", "Bisections", "DiscardedRecords", "OnFailureDeliveries")),
                            f"{age:.0f} (avg)", str(int(m.get("EstimatedBacklog", 0))))
            for shard, g in sorted(m.get("shards", {}).items()):
                streams.add_row(f"  {shard}", "", "", "", "", "", f"{g.get('ShardIteratorAge', 0):.0f}", str(int(g.get("ShardBacklog", 0))))
        if streams.row_count:
            out.print(streams)


register_data_commands(app)




def main() -> None:
    app()


if __name__ == "__main__":
    main()

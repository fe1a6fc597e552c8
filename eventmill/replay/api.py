"""`replay()`: the one entry point shared by `eventmill replay` and users' test suites."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson
import redis.asyncio as aredis

from broker.errors import LambdaError
from broker.instance import default_data_dir, read_instance
from broker.keys import Keys
from broker.registry import Registry
from broker.settings import Settings
from eventmill.replay.inputs import BadLine, Item, items_of, read_inputs
from eventmill.replay.report import Outcome, ReplayReport, failed_events
from eventmill.replay.runner import EventRun, Pacing, Progress, run_sync

MODES = ("event", "sync", "batch")


class ReplayError(Exception):
    """Input or setup problems found before anything was sent."""


def _bad_lines_message(bad: list[BadLine]) -> str:
    shown = "\n".join(f"  {b.origin}: {b.error}" for b in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    return f"{len(bad)} malformed line(s); nothing was sent (use --skip-bad to send the rest):\n{shown}{more}"


def load_items(
    inputs: Sequence[str | Path] | None = None, *, events: Iterable[Any] | None = None, only_failed: Path | None = None,
    skip_bad: bool = False,
) -> tuple[list[Item], list[str]]:
    items: list[Item] = []
    skipped: list[str] = []
    if inputs:
        read = read_inputs(str(p) for p in inputs)
        if read.bad and not skip_bad:
            raise ReplayError(_bad_lines_message(read.bad))
        items.extend(read.items)
        skipped = [f"{b.origin}: {b.error}" for b in read.bad]
    if events is not None:
        for index, event in enumerate(events):
            items.extend(items_of(event, f"<events>[{index}]"))
    if only_failed is not None:
        for origin, event in failed_events(only_failed):
            items.extend(items_of(event, origin))
    return items, skipped


def _filter(items: list[Item], criteria: dict[str, Any] | None) -> tuple[list[Item], list[Item]]:
    if not criteria:
        return items, []
    from pollers.filtering import FilterCriteriaError, FilterSet, dynamodb_filter_view, kinesis_filter_view, sqs_filter_view

    try:
        filters = FilterSet.parse(criteria if "Filters" in criteria else {"Filters": [{"Pattern": orjson.dumps(criteria).decode()}]})
    except FilterCriteriaError as exc:
        raise ReplayError(f"--filter: {exc}") from None
    views = {"sqs": sqs_filter_view, "kinesis": kinesis_filter_view, "dynamodb": dynamodb_filter_view}
    kept, dropped = [], []
    for item in items:
        view = views[item.source](item.event) if item.source in views else item.event
        (kept if isinstance(view, dict) and filters.matches(view) else dropped).append(item)
    return kept, dropped


def _endpoints(redis_url: str | None, aws_endpoint: str | None, data_dir: Path | None) -> tuple[str, str | None]:
    """Redis URL and AWS endpoint: given, else the running instance's (EVENTMILL_AWS_ENDPOINT
    is the fallback endpoint when only a Redis URL is given)."""
    info = read_instance(data_dir or default_data_dir()) if not redis_url or aws_endpoint is None else None
    if not redis_url:
        if info is None:
            raise ReplayError(f"no running eventmill found in {data_dir or default_data_dir()} (start one with `eventmill up`, or pass redis_url)")
        redis_url = info["redis_url"]
    if aws_endpoint is None:
        aws_endpoint = (info["aws_endpoint"] if info else None) or os.environ.get("EVENTMILL_AWS_ENDPOINT") or None
    return redis_url, aws_endpoint


async def replay_async(
    function: str, inputs: Sequence[str | Path] | None = None, *, events: Iterable[Any] | None = None, mode: str = "event",
    redis_url: str | None = None, data_dir: Path | None = None, prefix: str = "em:", concurrency: int = 1,
    rate: float | None = None, speed: float | None = None, limit: int | None = None, filter: dict[str, Any] | None = None,
    ordered: bool = False, skip_bad: bool = False, only_failed: Path | None = None, out: Path | None = None,
    source: str | None = None, batch_size: int | None = None, mapping: dict[str, Any] | None = None,
    aws_endpoint: str | None = None, max_receive_count: int = 1, from_dlq: Sequence[str] | bool = False,
    progress: Progress | None = None,
) -> ReplayReport:
    if mode not in MODES:
        raise ReplayError(f"mode must be one of {', '.join(MODES)}")
    items, skipped = load_items(inputs, events=events, only_failed=only_failed, skip_bad=skip_bad)
    url, endpoint = _endpoints(redis_url, aws_endpoint, data_dir)
    client = aredis.Redis.from_url(url)
    keys = Keys(prefix)
    dlq_ids: list[str] = []
    if from_dlq:
        dlq_items, dlq_ids = await _dlq_items(client, keys, function, None if from_dlq is True else list(from_dlq))
        items.extend(dlq_items)
    if limit is not None:
        items = items[:limit]
        dlq_ids = [rid for rid in dlq_ids if any(i.origin == f"dlq:{rid}" for i in items)]
    items, dropped = _filter(items, filter)
    try:
        config = await Registry(client, keys).find(function)
        if config is None:
            raise ReplayError(f"function {function} does not exist")
        started = time.monotonic()
        pacing = Pacing(rate=rate, speed=speed)
        if mode == "event":
            outcomes = await EventRun(client, keys, function, items, pacing, ordered, progress).run()
        elif mode == "sync":
            outcomes = await run_sync(client, keys, function, items, timeout_s=config.timeout_s + 60, concurrency=1 if ordered else concurrency, pacing=pacing, progress=progress)
        else:
            from eventmill.replay.batch import run_batches

            settings = Settings(redis_url=url, prefix=prefix, aws_endpoint=endpoint)
            try:
                outcomes = await run_batches(
                    client, keys, config, items, source=source, batch_size=batch_size, mapping=mapping,
                    settings=settings, progress=progress, max_receive_count=max_receive_count,
                )
            except LambdaError as exc:
                raise ReplayError(f"batch mode: {exc.code}: {exc.message}") from None
        elapsed = time.monotonic() - started
        if dlq_ids:
            # Every event was accepted again (failures are in the DLQ anew, under new ids).
            async with client.pipeline(transaction=True) as pipe:
                pipe.zrem(keys.dlq(function), *dlq_ids)
                pipe.delete(*[keys.dlq_record(rid) for rid in dlq_ids])
                await pipe.execute()
    finally:
        await client.aclose()
    base = len(outcomes)
    outcomes += [Outcome(index=base + i, origin=item.origin, request_id="", status="filtered", event=item.event) for i, item in enumerate(dropped)]
    report = ReplayReport(function, mode, outcomes, skipped, elapsed)
    if out is not None:
        report.write(out)
    return report


async def _dlq_items(client: aredis.Redis, keys: Keys, function: str, only: list[str] | None) -> tuple[list[Item], list[str]]:
    """Our own DLQ's events for `function` (all, or the given request ids), oldest first."""
    ids = only if only is not None else [r.decode() for r in await client.zrange(keys.dlq(function), 0, -1)]
    if not ids:
        return [], []
    raws = await client.mget([keys.dlq_record(rid) for rid in ids])
    items: list[Item] = []
    found: list[str] = []
    for rid, raw in zip(ids, raws):
        if raw is None:
            continue
        items.append(Item(f"dlq:{rid}", orjson.loads(raw)["event"]))
        found.append(rid)
    return items, found


def replay(function: str, inputs: Sequence[str | Path] | None = None, **options: Any) -> ReplayReport:
    """Replay files (or `events=[...]`) through `function`; see `replay_async` for options.

    Blocks until every event has its final outcome (retries and DLQ included in event
    mode) and returns the report; `report.ok` is True only if every event succeeded.
    """
    return asyncio.run(replay_async(function, inputs, **options))

"""Reading recorded events for replay: JSON Lines, a JSON event or list, AWS events with
`Records` (split into their records), directories of such files, stdin, gzip.

Every input is parsed completely before anything is sent, so a malformed line stops
the run with its file and line number instead of leaving it half-sent.
"""

from __future__ import annotations

import gzip
import io
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import orjson

RECORD_SOURCES = {"aws:sqs": "sqs", "aws:kinesis": "kinesis", "aws:dynamodb": "dynamodb", "aws:s3": "s3", "aws:sns": "sns"}


@dataclass(frozen=True)
class Item:
    """One event to replay, with where it came from and what ordering/timing it carries."""

    origin: str  # "file:line"
    event: Any
    source: str | None = None  # sqs | kinesis | dynamodb | s3 | sns when the item is a Lambda record
    timestamp: float | None = None
    order_key: str | None = None

    def payload(self) -> Any:
        """What the function receives in event/sync mode: a Lambda record arrives as the
        one-record event its source would send ({"Records": [record]}), anything else as is."""
        return {"Records": [self.event]} if self.source else self.event


@dataclass(frozen=True)
class BadLine:
    origin: str
    error: str


@dataclass
class Inputs:
    items: list[Item] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def record_source(value: Any) -> str | None:
    if isinstance(value, dict):
        return RECORD_SOURCES.get(value.get("eventSource") or value.get("EventSource") or "")
    return None


def _timestamp(record: dict[str, Any], source: str | None) -> float | None:
    try:
        if source == "sqs":
            return int(record["attributes"]["SentTimestamp"]) / 1000
        if source == "kinesis":
            return float(record["kinesis"]["approximateArrivalTimestamp"])
        if source == "dynamodb":
            return float(record["dynamodb"]["ApproximateCreationDateTime"])
        if source == "s3":
            return datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).timestamp()
        if source == "sns":
            return datetime.fromisoformat(record["Sns"]["Timestamp"].replace("Z", "+00:00")).timestamp()
        for key in ("time", "timestamp"):
            if key in record:
                value = record[key]
                return float(value) if isinstance(value, (int, float)) else datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _order_key(record: dict[str, Any], source: str | None) -> str | None:
    if source == "sqs":
        return (record.get("attributes") or {}).get("MessageGroupId")
    if source == "kinesis":
        return (record.get("kinesis") or {}).get("partitionKey")
    if source == "dynamodb":
        return orjson.dumps((record.get("dynamodb") or {}).get("Keys"), option=orjson.OPT_SORT_KEYS).decode()
    return None


def items_of(value: Any, origin: str) -> Iterable[Item]:
    """An AWS event with Records is split into its records; anything else is one event."""
    if isinstance(value, dict) and isinstance(value.get("Records"), list) and value["Records"] and record_source(value["Records"][0]):
        for index, record in enumerate(value["Records"]):
            source = record_source(record)
            yield Item(f"{origin}#Records[{index}]", record, source, _timestamp(record, source), _order_key(record, source))
        return
    source = record_source(value)
    stamp = _timestamp(value, source) if isinstance(value, dict) else None
    yield Item(origin, value, source, stamp, _order_key(value, source) if source else None)


def _open(path: Path | None) -> bytes:
    raw = sys.stdin.buffer.read() if path is None else path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=io.BytesIO(raw)).read()
    return raw


def _files(paths: Iterable[str]) -> Iterable[tuple[str, Path | None]]:
    for name in paths:
        if name == "-":
            yield "<stdin>", None
            continue
        path = Path(name)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                yield str(file), file
        elif path.exists():
            yield str(path), path
        else:
            raise FileNotFoundError(f"{name}: no such file or directory")


def read_inputs(paths: Iterable[str]) -> Inputs:
    inputs = Inputs()
    for name, path in _files(paths):
        raw = _open(path)
        text = raw.lstrip()
        whole = None
        if text[:1] in (b"[", b"{"):
            try:
                whole = orjson.loads(raw)
            except orjson.JSONDecodeError:
                whole = None  # not one JSON document: read as JSON Lines
        if whole is not None:
            values = whole if isinstance(whole, list) else [whole]
            for index, value in enumerate(values):
                inputs.items.extend(items_of(value, f"{name}[{index}]" if isinstance(whole, list) else name))
            continue
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                inputs.bad.append(BadLine(f"{name}:{number}", str(exc)))
                continue
            inputs.items.extend(items_of(value, f"{name}:{number}"))
    return inputs

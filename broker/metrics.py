"""Per-function and per-mapping metrics kept in Redis, named as CloudWatch names them.

Counters are HINCRBY fields; a distribution (Duration, AsyncEventAge) is three fields
`<name>:sum`, `<name>:count`, `<name>:max`. Redis holds them so every worker's numbers
add up and `eventmill status` / `GET /metrics` read one place.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from broker.keys import Keys

COUNTERS = (
    "Invocations", "Errors", "Throttles", "AsyncEventsReceived", "AsyncEventsDropped",
    "DeadLetterErrors", "DestinationDeliveryFailures",
)
DISTRIBUTIONS = ("Duration", "AsyncEventAge")
GAUGES = ("ConcurrentExecutions", "EstimatedBacklog", "ShardIteratorAge", "ShardBacklog", "ShardMillisBehindLatest")
LABELS = {"fn": ["function"], "esm": ["mapping"], "shard": ["mapping", "shard"]}


def incr(pipe: Any, keys: Keys, scope: str, name: str, by: int = 1) -> None:
    pipe.hincrby(keys.metrics(scope), name, by)
    pipe.sadd(keys.metric_scopes, scope)


def observe(pipe: Any, keys: Keys, scope: str, name: str, value: float) -> None:
    key = keys.metrics(scope)
    pipe.hincrbyfloat(key, f"{name}:sum", value)
    pipe.hincrby(key, f"{name}:count", 1)
    pipe.sadd(keys.metric_scopes, scope)


def decode(raw: Mapping[Any, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        out[key] = float(v)
    return out


class RedisMetricsCollector:
    """prometheus_client collector over a snapshot {scope: {field: value}} read from Redis."""

    def __init__(self, snapshot: Mapping[str, Mapping[str, float]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Any]:
        families: dict[str, Any] = {}
        for scope, fields in sorted(self.snapshot.items()):
            kind, _, name = scope.partition(":")
            labels = LABELS.get(kind, ["mapping"])
            values = name.split("/", len(labels) - 1)
            for field_name, value in sorted(fields.items()):
                base, _, part = field_name.partition(":")
                metric = f"eventmill_{_snake(base)}"
                if part:
                    if part != "sum":
                        continue
                    fam = families.setdefault(metric, SummaryMetricFamily(metric, f"{base} (sum and count)", labels=labels))
                    fam.add_metric(values, count_value=fields.get(f"{base}:count", 0.0), sum_value=value)
                elif base in GAUGES:
                    fam = families.setdefault(metric, GaugeMetricFamily(metric, base, labels=labels))
                    fam.add_metric(values, value)
                else:
                    fam = families.setdefault(metric, CounterMetricFamily(metric, base, labels=labels))
                    fam.add_metric(values, value)
        return list(families.values())


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def function_scope(name: str) -> str:
    return f"fn:{name}"

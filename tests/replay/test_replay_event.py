"""`eventmill replay` and the Python API against a running stack (real workers, nsjail)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from eventmill import replay
from tests.stack import ROOT, Stack

ECHO = """
def handler(event, context):
    if isinstance(event, dict) and "Records" in event:
        event = event["Records"][0]
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("bad event %s" % event.get("n"))
    return {"n": event.get("n") if isinstance(event, dict) else None}
"""


def write_jsonl(path: Path, events: list[object], bad_lines: dict[int, str] | None = None) -> Path:
    lines = [orjson.dumps(e).decode() for e in events]
    for index, text in sorted((bad_lines or {}).items()):
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(stack: Stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", "replay", *args, "--redis-url", stack.redis_url],
        env=stack.env(), cwd=str(ROOT), capture_output=True, text=True, timeout=timeout,
    )


def test_event_mode_all_succeed_results_file_and_exit_0(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    src = write_jsonl(tmp_path / "events.jsonl", [{"n": i} for i in range(200)])
    out = tmp_path / "results.jsonl"
    proc = cli(stack, str(src), "--function", "echo", "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(lines) == 200
    assert {line["status"] for line in lines} == {"success"}
    assert sorted(line["payload"]["n"] for line in lines) == list(range(200))
    assert all(line["requestId"] and line["attempts"] == 1 for line in lines)
    assert "summary: events=200 succeeded=200 failed=0" in proc.stdout and "events/s=" in proc.stdout


def test_malformed_lines_refused_before_sending_then_skipped(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    src = write_jsonl(tmp_path / "bad.jsonl", [{"n": i} for i in range(10)], {2: "{nope", 5: "[1,", 9: "x"})
    proc = cli(stack, str(src), "--function", "echo")
    assert proc.returncode == 1
    assert "3 malformed line(s)" in proc.stderr
    for number in (3, 6, 10):
        assert f"bad.jsonl:{number}:" in proc.stderr
    assert stack.metric("echo", "AsyncEventsReceived") == 0  # nothing was sent
    proc = cli(stack, str(src), "--function", "echo", "--skip-bad")
    assert proc.returncode == 0, proc.stderr
    assert stack.metric("echo", "AsyncEventsReceived") == 10
    assert "succeeded=10 failed=0" in proc.stdout and "skipped=3" in proc.stdout


def test_failures_exit_nonzero_and_only_failed_replays_just_those(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    stack.lambda_client.put_function_event_invoke_config(FunctionName="echo", MaximumRetryAttempts=0)
    events = [{"n": i, "fail": i % 4 == 0} for i in range(12)]
    src = write_jsonl(tmp_path / "mixed.jsonl", events)
    out = tmp_path / "first.jsonl"
    proc = cli(stack, str(src), "--function", "echo", "--out", str(out))
    assert proc.returncode == 1
    assert proc.stdout.count("failed: ") == 3
    first = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert sorted(line["event"]["n"] for line in first if line["status"] == "error") == [0, 4, 8]
    out2 = tmp_path / "second.jsonl"
    proc = cli(stack, "--only-failed", str(out), "--function", "echo", "--out", str(out2), "--allow-failures")
    assert proc.returncode == 0
    second = [orjson.loads(x) for x in out2.read_bytes().splitlines()]
    assert sorted(line["event"]["n"] for line in second) == [0, 4, 8]


def test_python_api_sync_mode_records_input_and_gzip(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    sqs_event = {"Records": [
        {"messageId": str(i), "body": "x", "attributes": {"SentTimestamp": str(1700000000000 + i)}, "eventSource": "aws:sqs", "n": i}
        for i in range(5)
    ]}
    gz = tmp_path / "records.json.gz"
    gz.write_bytes(gzip.compress(orjson.dumps(sqs_event)))
    report = replay("echo", [gz], mode="sync", concurrency=2, redis_url=stack.redis_url, prefix=stack.prefix)
    assert report.ok and report.succeeded == 5
    assert sorted(o.payload["n"] for o in report.outcomes) == list(range(5))  # one record per event, as {"Records": [r]}
    assert all(o.event["eventSource"] == "aws:sqs" for o in report.outcomes)


def test_filter_and_limit(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    src = write_jsonl(tmp_path / "f.jsonl", [{"n": i, "kind": "a" if i % 2 else "b"} for i in range(20)])
    report = replay("echo", [src], redis_url=stack.redis_url, prefix=stack.prefix, limit=10, filter={"kind": ["a"]})
    assert report.ok
    assert report.filtered == 5 and report.succeeded == 5
    assert sorted(o.payload["n"] for o in report.outcomes if o.status == "success") == [1, 3, 5, 7, 9]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_replay_100k_events_event_mode(stack: Stack, tmp_path: Path) -> None:
    """The issue's full count: 100,000 JSON Lines events through a no-op function."""
    stack.start_worker(2)
    stack.create_function("noop", "def handler(event, context):\n    return None\n")
    src = tmp_path / "big.jsonl"
    src.write_bytes(b"".join(orjson.dumps({"n": i}) + b"\n" for i in range(100_000)))
    out = tmp_path / "big-results.jsonl"
    # A bound, not a speed check: on 2 cores beside the other slow tests this takes minutes.
    proc = cli(stack, str(src), "--function", "noop", "--out", str(out), timeout=1000)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out, "rb") as f:
        assert sum(1 for _ in f) == 100_000
    assert "summary: events=100000 succeeded=100000 failed=0" in proc.stdout
    print(proc.stdout)


TIMED = """
import time
def handler(event, context):
    start = time.time()
    time.sleep(0.05)
    record = event["Records"][0]
    return {"group": record["attributes"]["MessageGroupId"], "n": int(record["body"]), "start": start, "end": time.time()}
"""


def test_ordered_keeps_per_group_order_with_parallel_workers(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker(2)
    stack.create_function("timed", TIMED)
    records = [
        {"messageId": f"m{i}", "body": str(i), "attributes": {"MessageGroupId": f"g{i % 2}", "SentTimestamp": "1700000000000"}, "eventSource": "aws:sqs"}
        for i in range(12)
    ]
    src = write_jsonl(tmp_path / "groups.jsonl", records)
    report = replay("timed", [src], redis_url=stack.redis_url, prefix=stack.prefix, ordered=True)
    assert report.ok
    by_group: dict[str, list[dict[str, float]]] = {}
    for outcome in report.outcomes:
        by_group.setdefault(outcome.payload["group"], []).append(outcome.payload)
    for runs in by_group.values():
        runs.sort(key=lambda r: r["start"])
        assert [r["n"] for r in runs] == sorted(r["n"] for r in runs)  # input order within the group
        assert all(a["end"] <= b["start"] for a, b in zip(runs, runs[1:]))  # one at a time per group
    # the two groups did run side by side: ordering is per key, not global
    g0, g1 = by_group["g0"], by_group["g1"]
    assert any(a["start"] < b["end"] and b["start"] < a["end"] for a in g0 for b in g1)


def test_rate_paces_submission(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    src = write_jsonl(tmp_path / "r.jsonl", [{"n": i} for i in range(10)])
    proc = cli(stack, str(src), "--function", "echo", "--rate", "10/s")
    assert proc.returncode == 0, proc.stderr
    finished = sorted(r["finishedAt"] for r in stack.results("echo"))
    # 10 events at 10/s are submitted over 0.9 s; unpaced they all finish within ~0.1 s
    assert len(finished) == 10 and finished[-1] - finished[0] >= 0.6


def test_replay_from_dlq_reruns_and_empties_it(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    stack.lambda_client.put_function_event_invoke_config(FunctionName="echo", MaximumRetryAttempts=0)
    for n in range(3):
        stack.lambda_client.invoke(FunctionName="echo", InvocationType="Event", Payload=orjson.dumps({"n": n, "fail": n == 1}))
    stack.wait_for(lambda: len(stack.dlq("echo")) == 1, what="one DLQ entry")
    old = stack.dlq("echo")[0]["requestId"]
    report = replay("echo", redis_url=stack.redis_url, prefix=stack.prefix, from_dlq=True)
    assert [o.origin for o in report.outcomes] == [f"dlq:{old}"]
    assert report.failed and report.outcomes[0].event == {"n": 1, "fail": True}
    # it failed again: in the DLQ once, under its new request id, the old entry gone
    entries = stack.dlq("echo")
    assert [e["requestId"] for e in entries] == [report.outcomes[0].request_id] != [old]

"""Tumbling windows (TumblingWindowInSeconds, SEMANTICS §36) end to end on moto Kinesis.

Windows are TumblingWindowInSeconds x EVENTMILL_TIME_SCALE (0.01 in tests), so 100 s is
a 1 s window; records are put just after a window boundary so they share one window.
"""

from __future__ import annotations

import json
import math
import signal
import time
from datetime import datetime, timezone
from typing import Any

from tests.pollers.stream_helpers import kinesis_mapping, make_stream, put_records
from tests.stack import Stack

# Returns {"count": n} as its state (plus 1 MB of padding after a {"big": true} record)
# and reports what it was given, so the tests can follow the state from call to call.
WINDOWED = """
import base64, json, time
def handler(event, context):
    start = time.time()
    state = dict(event.get("state") or {})
    items, big = [], False
    for r in event["Records"]:
        data = json.loads(base64.b64decode(r["kinesis"]["data"]))
        items.append([data["i"], r["kinesis"]["approximateArrivalTimestamp"]])
        big = big or bool(data.get("big"))
    new = {"count": state.get("count", 0) + len(items)}
    if big:
        new["pad"] = "x" * (1024 * 1024 + 16)
    return {"state": new, "seen": {
        "start": start, "window": event["window"], "final": event["isFinalInvokeForWindow"],
        "early": event["isWindowTerminatedEarly"], "shard": event["shardId"], "items": items,
        "state": {"count": state.get("count"), "pad": len(state.get("pad", ""))},
    }}
"""


def calls(stack: Stack, function: str) -> list[dict[str, Any]]:
    """What each successful invocation was given, in the order they ran."""
    out = [r["payload"]["seen"] for r in stack.results(function) if r["status"] == "success" and isinstance(r.get("payload"), dict)]
    return sorted(out, key=lambda seen: seen["start"])


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def after_boundary(size_s: float, within: float = 0.15) -> float:
    """Sleep until just after a multiple of `size_s` (epoch), so puts share one window."""
    while time.time() % size_s > within:
        time.sleep(0.01)
    return math.floor(time.time() / size_s) * size_s


def test_state_flows_within_a_window_and_the_final_invoke_closes_it(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("win", WINDOWED)
    name = em_prefix.rstrip(":") + "win"
    arn = make_stream(stack, name, 1)
    kinesis_mapping(stack, "win", arn, batch_size=2, tumbling_window_s=300)  # 3 s windows: six puts fit one on a loaded box
    stack.start_pollers()
    put_records(stack, name, 1, 1, start=100)  # warm the handler and the shard reader up
    stack.wait_for(lambda: any(c["final"] for c in calls(stack, "win")), timeout=20, what="the warm-up window to close")
    before = len(calls(stack, "win"))
    first = after_boundary(3.0, within=0.3)
    put_records(stack, name, 6, 1)
    stack.wait_for(lambda: sum(c["final"] for c in calls(stack, "win")[before:]) >= 1, timeout=20, what="the first window's final invoke")
    put_records(stack, name, 2, 1, start=6)  # the next window
    stack.wait_for(lambda: sum(c["final"] for c in calls(stack, "win")[before:]) >= 2, timeout=20, what="the second window's final invoke")

    runs = calls(stack, "win")[before:]
    window = {"start": iso(first), "end": iso(first + 3)}
    one = [c for c in runs if c["window"] == window]
    assert [i for c in one for i, _ in c["items"]] == [0, 1, 2, 3, 4, 5]
    assert all(first <= arrival < first + 3 for c in one for _, arrival in c["items"])  # aligned from arrival times
    assert one[0]["state"]["count"] is None  # a window starts with an empty state
    assert [c["state"]["count"] for c in one[1:]] == [sum(len(p["items"]) for p in one[:k + 1]) for k in range(len(one) - 1)]
    assert [c["final"] for c in one] == [False] * (len(one) - 1) + [True]
    assert one[-1]["state"]["count"] == 6 and one[-1]["start"] >= first + 3  # the final invoke comes after the end
    assert not any(c["early"] for c in runs)
    two = [c for c in runs if c["window"] != window]
    assert [i for c in two for i, _ in c["items"]] == [6, 7]
    assert two[0]["state"]["count"] is None and [c["final"] for c in two][-1] is True
    assert sum(c["final"] for c in two) == 1
    assert {c["shard"] for c in runs} == {"shardId-000000000000"}


def test_a_state_over_1_mb_ends_the_window_early(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("early", WINDOWED)
    name = em_prefix.rstrip(":") + "early"
    arn = make_stream(stack, name, 1)
    kinesis_mapping(stack, "early", arn, batch_size=1, tumbling_window_s=300)  # 3 s windows
    stack.start_pollers()
    first = after_boundary(3.0, within=0.5)
    put_records(stack, name, 3, 1, payload=lambda i: {"i": i, "big": i == 1})
    stack.wait_for(lambda: any(c["final"] for c in calls(stack, "early")), timeout=20, what="the final invoke")

    runs = calls(stack, "early")
    assert {json.dumps(c["window"]) for c in runs} == {json.dumps({"start": iso(first), "end": iso(first + 3)})}
    assert [([i for i, _ in c["items"]], c["state"]["count"], c["early"], c["final"]) for c in runs] == [
        ([0], None, False, False),
        ([1], 1, False, False),
        ([], 2, True, False),  # carries the oversize state, then the window goes on afresh
        ([2], None, False, False),
        ([], 1, False, True),
    ]
    assert runs[2]["state"]["pad"] > 1024 * 1024


def test_window_state_survives_kill_9(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("keep", WINDOWED)
    name = em_prefix.rstrip(":") + "keep"
    arn = make_stream(stack, name, 1)
    mapping = kinesis_mapping(stack, "keep", arn, batch_size=1, tumbling_window_s=300)  # 3 s windows
    [pollers] = stack.start_pollers()
    field = "shardId-000000000000/window/0"

    def stored_count() -> Any:
        raw = stack.redis.hget(stack.keys.stream_checkpoints(mapping.uuid), field)
        return raw and json.loads(raw)["state"].get("count")

    stack.wait_for(lambda: stack.redis.hlen(stack.keys.stream_lease_owners(mapping.uuid)), timeout=20, what="the shard lease")
    first = after_boundary(3.0, within=0.3)
    put_records(stack, name, 2, 1)
    stack.wait_for(lambda: stored_count() == 2, timeout=10, what="the state of two invocations to be stored")
    assert time.time() < first + 3  # killed mid-window
    pollers.send_signal(signal.SIGKILL)
    pollers.wait()
    stack.start_pollers()
    stack.wait_for(lambda: any(c["final"] for c in calls(stack, "keep")), timeout=30, what="the final invoke after the restart")
    put_records(stack, name, 1, 1, start=2)  # a later window starts empty
    stack.wait_for(lambda: any(c["items"] == [[2, c["items"][0][1]]] for c in calls(stack, "keep") if c["items"]), timeout=30, what="record 2")

    runs = calls(stack, "keep")
    window = {"start": iso(first), "end": iso(first + 3)}
    assert [([i for i, _ in c["items"]], c["state"]["count"], c["final"]) for c in runs if c["window"] == window] == [
        ([0], None, False), ([1], 1, False), ([], 2, True),  # the restarted poller closed it with the stored state
    ]
    later = [c for c in runs if c["window"] != window]
    assert later[0]["items"][0][0] == 2 and later[0]["state"]["count"] is None

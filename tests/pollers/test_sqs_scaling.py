"""How many batches of one SQS mapping run at once: grows with the backlog, capped by
ScalingConfig.MaximumConcurrency, and a throttled function leaves messages on the queue."""

from __future__ import annotations

from typing import Any

from pollers.scaling import Backoff, Scaler, concurrency_limit
from tests.pollers.helpers import add_mapping, esm_metric, make_queue, queue_depth, send_bodies
from tests.stack import Stack

SLOW = """
import time
def handler(event, context):
    start = time.time()
    time.sleep(0.25)
    return {"start": start, "end": time.time()}
"""


def most_at_once(results: list[dict[str, Any]]) -> int:
    """The largest number of handler runs whose [start, end) intervals overlap."""
    edges = sorted([(r["payload"]["start"], 1) for r in results] + [(r["payload"]["end"], -1) for r in results])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_scaler_grows_on_full_receives_and_shrinks_when_empty() -> None:
    scaler = Scaler(maximum=3)
    assert [scaler.after_receive(10, 10) for _ in range(4)] == [2, 3, 3, 3]
    assert scaler.after_receive(4, 10) == 3, "a partial receive holds the level"
    assert [scaler.after_receive(0, 10) for _ in range(3)] == [2, 1, 1]
    scaler.maximum = 1
    assert scaler.after_receive(10, 10) == 1


def test_limit_defaults_to_live_workers_and_stays_in_range() -> None:
    assert concurrency_limit(None, 3) == 3
    assert concurrency_limit(None, 0) == 1
    assert concurrency_limit(2, 50) == 2
    assert concurrency_limit(5000, 1) == 1000


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff(scale=0.5)
    assert [backoff.next_delay() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backlog_scales_out_to_maximum_concurrency(stack: Stack, em_prefix: str) -> None:
    stack.start_worker(3)
    stack.create_function("slow", SLOW, Timeout=10)
    capped_url, capped_arn, _ = make_queue(stack, em_prefix.rstrip(":") + "capped", visibility=30)
    open_url, open_arn, _ = make_queue(stack, em_prefix.rstrip(":") + "open", visibility=30)
    send_bodies(stack, capped_url, [str(n) for n in range(24)])
    add_mapping(stack, "slow", capped_arn, batch_size=1, scaling_max_concurrency=2)
    stack.start_pollers()
    stack.wait_for(lambda: queue_depth(stack, capped_url) == 0, timeout=60, what="capped queue drained")
    capped = stack.results("slow")
    assert len(capped) == 24
    assert most_at_once(capped) == 2, "MaximumConcurrency 2: two batches at once, never more"

    send_bodies(stack, open_url, [str(n) for n in range(24)])
    add_mapping(stack, "slow", open_arn, batch_size=1)
    stack.wait_for(lambda: queue_depth(stack, open_url) == 0, timeout=60, what="open queue drained")
    uncapped = [r for r in stack.results("slow") if r not in capped]
    assert len(uncapped) == 24
    assert most_at_once(uncapped) == 3, "no MaximumConcurrency: grows to the 3 live workers"


def test_throttled_function_leaves_messages_on_the_queue(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("held", "def handler(event, context):\n    return None\n")
    stack.lambda_client.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)
    url, arn, _ = make_queue(stack, em_prefix.rstrip(":") + "held", visibility=1)
    mapping = add_mapping(stack, "held", arn, batch_size=10)
    stack.start_pollers()
    send_bodies(stack, url, [str(n) for n in range(5)])
    stack.wait_for(lambda: esm_metric(stack, mapping, "Throttled") >= 2, timeout=30, what="throttled batches")
    assert queue_depth(stack, url) == 5, "a throttled batch deletes nothing"
    assert esm_metric(stack, mapping, "Deleted") == 0
    assert stack.results("held") == []
    stack.lambda_client.delete_function_concurrency(FunctionName="held")
    stack.wait_for(lambda: queue_depth(stack, url) == 0, timeout=60, what="drained once the throttle is lifted")
    bodies = sorted(r["body"] for res in stack.results("held") for r in res["event"]["Records"])
    assert bodies == [str(n) for n in range(5)]

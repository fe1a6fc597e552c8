"""FIFO queues: per-group order across batches, failures and two pollers processes."""

from __future__ import annotations

import collections

import pytest

from tests.pollers.helpers import add_mapping, make_queue, queue_depth
from tests.stack import Stack

# Fails, on its first receive, every message whose number is 3 mod 7, and (as Lambda's docs
# ask, SEMANTICS §14) every later message of the same group in the batch.
ORDERED = """
def handler(event, context):
    failed, stopped = [], set()
    for r in event["Records"]:
        group, n = r["attributes"]["MessageGroupId"], int(r["body"].split(":")[1])
        if group in stopped or (n % 7 == 3 and r["attributes"]["ApproximateReceiveCount"] == "1"):
            stopped.add(group)
            failed.append({"itemIdentifier": r["messageId"]})
    return {"batchItemFailures": failed}
"""


def run_fifo(stack: Stack, prefix: str, groups: int, per_group: int, wave: int) -> None:
    stack.start_worker(2)
    stack.create_function("ordered", ORDERED)
    url, arn, _ = make_queue(stack, prefix.rstrip(":") + "fifo", fifo=True, visibility=3)
    add_mapping(stack, "ordered", arn, batch_size=10, function_response_types=("ReportBatchItemFailures",))
    stack.start_pollers(2)
    sqs = stack.client("sqs")
    messages = [(f"g{g}", n) for n in range(per_group) for g in range(groups)]
    for start in range(0, len(messages), wave):
        chunk = messages[start : start + wave]
        for i in range(0, len(chunk), 10):
            entries = [{"Id": str(j), "MessageBody": f"{g}:{n}", "MessageGroupId": g} for j, (g, n) in enumerate(chunk[i : i + 10])]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        stack.wait_for(lambda: queue_depth(stack, url) == 0, timeout=180, interval=0.25, what="wave processed")  # see test_sqs.run_partial_failures
    stack.wait_for(lambda: queue_depth(stack, url) == 0, timeout=180, interval=0.5, what="queue drained")
    succeeded: dict[str, list[int]] = collections.defaultdict(list)
    sequence_numbers: list[int] = []
    for res in stack.results("ordered"):
        failed = {f["itemIdentifier"] for f in (res["payload"] or {}).get("batchItemFailures", [])}
        for r in res["event"]["Records"]:
            attrs = r["attributes"]
            assert {"SequenceNumber", "MessageGroupId", "MessageDeduplicationId"} <= set(attrs)
            sequence_numbers.append(int(attrs["SequenceNumber"]))
            if r["messageId"] not in failed:
                group, n = r["body"].split(":")
                succeeded[group].append(int(n))
    assert {g: order for g, order in succeeded.items()} == {f"g{g}": list(range(per_group)) for g in range(groups)}
    assert len(set(sequence_numbers)) == len(sequence_numbers)


def test_fifo_order_across_failures_and_pollers(stack: Stack, em_prefix: str) -> None:
    run_fifo(stack, em_prefix, groups=5, per_group=20, wave=100)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_fifo_order_full(stack: Stack, em_prefix: str) -> None:
    run_fifo(stack, em_prefix, groups=20, per_group=200, wave=200)

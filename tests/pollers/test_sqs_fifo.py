"""FIFO queues: per-group order across batches, failures and two pollers processes."""

from __future__ import annotations

import collections

import pytest

from tests.pollers.helpers import add_mapping, make_queue, queue_depth, send_entries
from tests.stack import Stack

# Fails, on its first receive, every message whose number is 3 mod FAIL_EVERY, and (as
# Lambda's docs ask, SEMANTICS §14) every later message of the same group in the batch.
ORDERED = """
FAIL_EVERY = @FAIL_EVERY@
def handler(event, context):
    failed, stopped = [], set()
    for r in event["Records"]:
        group, n = r["attributes"]["MessageGroupId"], int(r["body"].split(":")[1])
        if group in stopped or (n % FAIL_EVERY == 3 and r["attributes"]["ApproximateReceiveCount"] == "1"):
            stopped.add(group)
            failed.append({"itemIdentifier": r["messageId"]})
    return {"batchItemFailures": failed}
"""


def run_fifo(stack: Stack, prefix: str, groups: int, per_group: int, wave: int, visibility: int = 3, fail_every: int = 7) -> None:
    """The visibility timeout must outlast a batch on a loaded box: a head message that
    expires mid-batch is, correctly, delivered again, which a strict order check flags.
    Each failure holds its group for one visibility timeout (the failed head stays in
    flight, as on SQS), so a group's run takes at least per_group / fail_every timeouts."""
    stack.start_worker(2)
    stack.create_function("ordered", ORDERED.replace("@FAIL_EVERY@", str(fail_every)))
    url, arn, _ = make_queue(stack, prefix.rstrip(":") + "fifo", fifo=True, visibility=visibility)
    add_mapping(stack, "ordered", arn, batch_size=10, function_response_types=("ReportBatchItemFailures",))
    stack.start_pollers(2)
    messages = [(f"g{g}", n) for n in range(per_group) for g in range(groups)]
    for start in range(0, len(messages), wave):
        entries = [{"MessageBody": f"{g}:{n}", "MessageGroupId": g} for g, n in messages[start : start + wave]]
        send_entries(stack, url, entries, turn_arn=arn)
        stack.wait_for(lambda: queue_depth(stack, url) < wave // 2, timeout=180, interval=0.1, what="wave mostly processed")
    stack.wait_for(lambda: queue_depth(stack, url) == 0, timeout=180, interval=0.25, what="queue drained")
    succeeded: dict[str, list[int]] = collections.defaultdict(list)
    sequence_of: dict[str, set[int]] = collections.defaultdict(set)
    for res in stack.results("ordered"):
        failed = {f["itemIdentifier"] for f in (res["payload"] or {}).get("batchItemFailures", [])}
        for r in res["event"]["Records"]:
            attrs = r["attributes"]
            assert {"SequenceNumber", "MessageGroupId", "MessageDeduplicationId"} <= set(attrs)
            sequence_of[r["body"]].add(int(attrs["SequenceNumber"]))
            if r["messageId"] not in failed:
                group, n = r["body"].split(":")
                succeeded[group].append(int(n))
    broken = {}
    for g in range(groups):
        order = succeeded[f"g{g}"]
        if order != list(range(per_group)):
            at = next((i for i, (a, b) in enumerate(zip(order, range(per_group))) if a != b), min(len(order), per_group))
            broken[f"g{g}"] = (at, order[max(0, at - 3) : at + 5], len(order))
    assert not broken, f"group order broken (index, successes around it, count): {broken}"
    assert {body: seqs for body, seqs in sequence_of.items() if len(seqs) != 1} == {}, "a redelivery keeps its SequenceNumber"
    numbers = {body: next(iter(seqs)) for body, seqs in sequence_of.items()}
    assert len(set(numbers.values())) == len(numbers), "SequenceNumbers are unique"
    for g in range(groups):
        in_group = [numbers[f"g{g}:{n}"] for n in range(per_group)]
        assert in_group == sorted(in_group), f"SequenceNumbers grow in send order within g{g}"


def test_fifo_order_across_failures_and_pollers(stack: Stack, em_prefix: str) -> None:
    run_fifo(stack, em_prefix, groups=5, per_group=20, wave=100)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_fifo_order_full(stack: Stack, em_prefix: str) -> None:
    run_fifo(stack, em_prefix, groups=20, per_group=200, wave=200, visibility=6, fail_every=25)

"""Kinesis mappings end to end: real moto Kinesis, Redis, workers and pollers processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

import pytest

from tests.pollers.helpers import esm_metric

from tests.pollers.stream_helpers import (
    assert_key_order, assert_poison_onfailure, kinesis_mapping, make_stream, processed, put_records, recorder, seen_items,
)
from tests.stack import ROOT, Stack, zip_source


def _order_run(stack: Stack, em_prefix: str, shards: int, records: int, keys: int, timeout: float) -> None:
    stack.start_worker(2)
    stack.create_function("rec", recorder())
    name = em_prefix.rstrip(":") + "order"
    arn = make_stream(stack, name, shards)
    kinesis_mapping(stack, "rec", arn, parallelization_factor=10)
    stack.start_pollers()
    put = put_records(stack, name, records, keys)
    stack.wait_for(lambda: processed(stack, "rec") >= records, timeout=timeout, what="every record")
    assert seen_items(stack, "rec") == set(put)
    assert processed(stack, "rec") == records
    assert_key_order(stack, "rec")


def test_parallelization_keeps_per_key_order(stack: Stack, em_prefix: str) -> None:
    _order_run(stack, em_prefix, shards=2, records=1_000, keys=20, timeout=60)


@pytest.mark.slow
def test_parallelization_keeps_per_key_order_full_size(stack: Stack, em_prefix: str) -> None:
    _order_run(stack, em_prefix, shards=4, records=20_000, keys=200, timeout=240)


def _queue(stack: Stack, name: str) -> tuple[str, str]:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_poison_record_bisected_and_discarded_alone(stack: Stack, em_prefix: str) -> None:
    stack.start_worker(2)
    stack.create_function("poison", recorder(poison=(137,)))
    name = em_prefix.rstrip(":") + "poison"
    arn = make_stream(stack, name, 1)
    url, qarn = _queue(stack, name + "-fail")
    mapping = kinesis_mapping(
        stack, "poison", arn, bisect_batch_on_function_error=True, maximum_retry_attempts=2, on_failure_destination=qarn,
    )
    put = put_records(stack, name, 300, 10)
    stack.start_pollers()
    stack.wait_for(lambda: processed(stack, "poison") >= 299, timeout=60, what="all but the poison record")
    messages = stack.receive_all(url, expect=2, timeout=3)
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    assert_poison_onfailure(record, function="poison", shard_id="shardId-000000000000", poison_seq=str(put[137][1]), stream_arn=arn)
    assert seen_items(stack, "poison") == set(put) - {put[137]}
    assert processed(stack, "poison") == 299
    assert_key_order(stack, "poison")
    assert esm_metric(stack, mapping, "DiscardedRecords") == 1
    assert esm_metric(stack, mapping, "Bisections") >= 5
    assert esm_metric(stack, mapping, "OnFailureDeliveries") == 1
    assert esm_metric(stack, mapping, "Retries") == 2
    batches = esm_metric(stack, mapping, "Batches")
    assert batches >= 3 + 5 + 2 and esm_metric(stack, mapping, "IteratorAge:count") == batches
    _assert_exposed(stack, mapping.uuid)


def _assert_exposed(stack: Stack, uuid: str) -> None:
    """The mapping's stream metrics reach GET /metrics and `eventmill status --json`."""
    text = urllib.request.urlopen(stack.api.url + "/metrics", timeout=10).read().decode()
    for name in ("batches", "retries", "bisections", "discarded_records", "on_failure_deliveries", "iterator_age_sum", "iterator_age_count"):
        assert re.search(rf'^eventmill_{name}(_total)?{{mapping="{uuid}"}} [0-9.e+]+$', text, re.M), name
    proc = subprocess.run(
        [sys.executable, "-m", "broker.cli", "status", "--json"], env=stack.env(), cwd=str(ROOT), capture_output=True, timeout=60,
    )
    fields = json.loads(proc.stdout)["mappings"][uuid]
    assert {"Batches", "Retries", "Bisections", "DiscardedRecords", "OnFailureDeliveries", "IteratorAge:sum"} <= set(fields)
    shards = fields["shards"]
    assert shards and all({"ShardIteratorAge", "ShardBacklog", "ShardMillisBehindLatest"} <= set(g) for g in shards.values()), shards
    shard = sorted(shards)[0]
    for name in ("shard_iterator_age", "shard_backlog", "shard_millis_behind_latest"):
        assert re.search(rf'^eventmill_{name}{{mapping="{uuid}",shard="{shard}"}} [0-9.e+]+$', text, re.M), name


def test_record_age_expires_a_stuck_batch(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("stuck", recorder(poison=(3,)))
    name = em_prefix.rstrip(":") + "age"
    arn = make_stream(stack, name, 1)
    url, qarn = _queue(stack, name + "-fail")
    # A window (30 s x 0.01) so the five records of one PutRecords form one batch even when
    # a poll lands in the middle of moto's put.
    mapping = kinesis_mapping(
        stack, "stuck", arn, batch_size=5, maximum_batching_window_s=30, maximum_record_age_s=60, on_failure_destination=qarn,
    )
    stack.start_pollers()
    stack.wait_for(lambda: stack.redis.hlen(stack.keys.stream_lease_owners(mapping.uuid)), timeout=20, what="the shard lease")
    first = put_records(stack, name, 5, 1)
    [message] = stack.receive_all(url, expect=1, timeout=30)  # 60 s x time scale 0.01: expired after ~0.6 s
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert "responseContext" not in record
    assert record["KinesisBatchInfo"]["batchSize"] == 5
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == str(first[0][1])
    assert esm_metric(stack, mapping, "Retries") >= 1
    later = put_records(stack, name, 5, 1, start=10)
    stack.wait_for(lambda: processed(stack, "stuck") >= 5, timeout=30, what="the records after the stuck batch")
    assert seen_items(stack, "stuck") == set(later)


def test_infinite_retries_block_until_the_handler_is_fixed(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("flaky", recorder(poison=tuple(range(1000))))
    name = em_prefix.rstrip(":") + "inf"
    arn = make_stream(stack, name, 1)
    mapping = kinesis_mapping(stack, "flaky", arn, batch_size=10, maximum_retry_attempts=-1)
    put = put_records(stack, name, 50, 5)
    stack.start_pollers()
    stack.wait_for(lambda: esm_metric(stack, mapping, "Retries") >= 4, timeout=30, what="retries")
    assert processed(stack, "flaky") == 0
    stack.lambda_client.update_function_code(FunctionName="flaky", ZipFile=zip_source({"app.py": recorder()}))
    stack.wait_for(lambda: processed(stack, "flaky") >= 50, timeout=30, what="recovery")
    assert seen_items(stack, "flaky") == set(put)
    assert processed(stack, "flaky") == 50
    assert_key_order(stack, "flaky")
    assert esm_metric(stack, mapping, "DiscardedRecords") == 0


PARTIAL = """
import base64, json
def handler(event, context):
    failed = [r["kinesis"]["sequenceNumber"] for r in event["Records"]
              if json.loads(base64.b64decode(r["kinesis"]["data"]))["i"] in (5, 7)]
    return {"items": [int(r["kinesis"]["sequenceNumber"]) for r in event["Records"]],
            "batchItemFailures": [{"itemIdentifier": s} for s in failed]}
"""


def test_report_batch_item_failures_resume_at_the_lowest_failed_record(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("partial", PARTIAL)
    name = em_prefix.rstrip(":") + "partial"
    arn = make_stream(stack, name, 1)
    url, qarn = _queue(stack, name + "-fail")
    kinesis_mapping(
        stack, "partial", arn, batch_size=10, maximum_retry_attempts=1, on_failure_destination=qarn,
        function_response_types=("ReportBatchItemFailures",),
    )
    put = put_records(stack, name, 10, 1)
    stack.start_pollers()
    [message] = stack.receive_all(url, expect=1, timeout=30)
    record = json.loads(message["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["KinesisBatchInfo"]["batchSize"] == 5
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == str(put[5][1])
    runs = sorted((r["payload"]["items"] for r in stack.results("partial")), key=len, reverse=True)
    assert runs == [[s for _, s in put], [s for _, s in put[5:]]]

"""DynamoDB Streams mappings end to end against moto: INSERT / MODIFY / REMOVE with the
images AWS sends, in order per item, and the DynamoDB OnFailure record shape."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.pollers.helpers import add_mapping
from tests.pollers.stream_helpers import assert_key_order, processed, recorder
from tests.stack import Stack

ECHO = """
def handler(event, context):
    return {"records": event["Records"]}
"""

FAIL = """
def handler(event, context):
    raise RuntimeError("no")
"""


def _table(stack: Stack, name: str) -> str:
    ddb = stack.client("dynamodb")
    desc = ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(desc["TableDescription"]["LatestStreamArn"])


def _records(stack: Stack, fn: str) -> list[dict[str, Any]]:
    out = [r for res in stack.results(fn) if res["status"] == "success" for r in res["payload"]["records"]]
    return sorted(out, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))


def test_put_update_delete_arrive_as_insert_modify_remove(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("ddb", ECHO)
    name = em_prefix.rstrip(":") + "tbl"
    arn = _table(stack, name)
    add_mapping(stack, "ddb", arn, kind="dynamodb", starting_position="TRIM_HORIZON", batch_size=100)
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    ddb.update_item(TableName=name, Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}})
    stack.start_pollers()
    stack.wait_for(lambda: len(_records(stack, "ddb")) >= 3, timeout=30, what="three stream records")
    insert, modify, remove = _records(stack, "ddb")
    assert [r["eventName"] for r in (insert, modify, remove)] == ["INSERT", "MODIFY", "REMOVE"]
    for record in (insert, modify, remove):
        assert list(record) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"]
        assert (record["eventVersion"], record["eventSource"], record["eventSourceARN"]) == ("1.1", "aws:dynamodb", arn)
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        assert record["dynamodb"]["Keys"] == {"pk": {"S": "a"}}
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert insert["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "v": {"N": "1"}} and "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["v"] == {"N": "1"} and modify["dynamodb"]["NewImage"]["v"] == {"N": "2"}
    assert remove["dynamodb"]["OldImage"]["v"] == {"N": "2"} and "NewImage" not in remove["dynamodb"]


def test_order_per_item_with_parallelization(stack: Stack, em_prefix: str) -> None:
    stack.start_worker(2)
    stack.create_function("ddbord", recorder())
    name = em_prefix.rstrip(":") + "ord"
    arn = _table(stack, name)
    add_mapping(stack, "ddbord", arn, kind="dynamodb", starting_position="TRIM_HORIZON", batch_size=10, parallelization_factor=5)
    ddb = stack.client("dynamodb")
    for i in range(120):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"item{i % 12}"}, "v": {"N": str(i)}})
    stack.start_pollers()
    stack.wait_for(lambda: processed(stack, "ddbord") >= 120, timeout=60, what="every change")
    assert processed(stack, "ddbord") == 120
    assert_key_order(stack, "ddbord")


def test_onfailure_record_has_ddb_batch_info(stack: Stack, em_prefix: str) -> None:
    stack.start_worker()
    stack.create_function("ddbfail", FAIL)
    name = em_prefix.rstrip(":") + "fail"
    arn = _table(stack, name)
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name + "-q")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    add_mapping(stack, "ddbfail", arn, kind="dynamodb", starting_position="TRIM_HORIZON", batch_size=10,
                maximum_retry_attempts=1, on_failure_destination=qarn)
    stack.client("dynamodb").put_item(TableName=name, Item={"pk": {"S": "x"}})
    stack.start_pollers()
    [message] = stack.receive_all(url, expect=1, timeout=30)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == arn and info["shardId"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["approximateArrivalOfFirstRecord"])


def test_latest_restart_skips_older_records_and_keeps_new_ones(stack: Stack, em_prefix: str) -> None:
    """DynamoDB Streams has no AT_TIMESTAMP: a restart before the first checkpoint reads
    from TRIM_HORIZON and skips what arrived before LATEST was first resolved. Binary
    attributes arrive base64-encoded, as Lambda sends them."""
    import signal
    import time

    stack.start_worker()
    stack.create_function("ddblatest", ECHO)
    name = em_prefix.rstrip(":") + "latest"
    arn = _table(stack, name)
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=name, Item={"pk": {"S": "old"}})
    time.sleep(1.2)  # > LATEST_MARGIN_S (pollers/stream_shard.py) and DynamoDB's whole-second arrival times
    mapping = add_mapping(stack, "ddblatest", arn, kind="dynamodb", starting_position="LATEST", batch_size=100)
    [first] = stack.start_pollers()
    stack.wait_for(
        lambda: any(k.endswith(b"/start") for k in stack.redis.hkeys(stack.keys.stream_checkpoints(mapping.uuid))),
        timeout=20, what="LATEST to be resolved",
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    for key in ("a", "b"):
        ddb.put_item(TableName=name, Item={"pk": {"S": key}, "bin": {"B": b"\x00\x01"}})
    stack.start_pollers()
    stack.wait_for(lambda: len(_records(stack, "ddblatest")) >= 2, timeout=30, what="the items put while down")
    time.sleep(0.5)
    records = _records(stack, "ddblatest")
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["a", "b"]
    assert records[0]["dynamodb"]["NewImage"]["bin"] == {"B": "AAE="}

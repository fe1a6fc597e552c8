"""Lambda event filtering: rows taken from AWS's documented examples, each with a matching and a failing event.

Sources: Lambda DG "Lambda event filtering" (invocation-eventfiltering), "Using event filtering with a Kinesis /
DynamoDB event source" (with-kinesis-filtering, with-ddb-filtering), and the EventBridge user guide pages
"Content filtering in event patterns", "Arrays in event patterns", "Matching null values and empty strings".
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pollers.filtering import (
    FilterCriteriaError,
    FilterSet,
    dynamodb_filter_view,
    kinesis_filter_view,
    sqs_filter_view,
)


def criteria(*patterns: dict[str, Any] | str) -> dict[str, Any]:
    return {"Filters": [{"Pattern": p if isinstance(p, str) else json.dumps(p)} for p in patterns]}


def matches(pattern: dict[str, Any] | str, event: dict[str, Any]) -> bool:
    return FilterSet.parse(criteria(pattern)).matches(event)


def row(pattern: dict[str, Any] | str, event: dict[str, Any], expected: bool, id: str) -> Any:
    return pytest.param(pattern, event, expected, id=id)


OPERATOR_ROWS = [
    # DG invocation-eventfiltering, "Filter rule syntax" table: one row per comparison operator.
    row({"UserID": [None]}, {"UserID": None}, True, "null"),
    row({"UserID": [None]}, {"UserID": "u1"}, False, "null-vs-value"),
    row({"UserID": [None]}, {}, False, "null-vs-missing"),
    row({"LastName": [""]}, {"LastName": ""}, True, "empty"),
    row({"LastName": [""]}, {"LastName": "Doe"}, False, "empty-vs-value"),
    row({"Name": ["Alice"]}, {"Name": "Alice"}, True, "equals"),
    row({"Name": ["Alice"]}, {"Name": "Bob"}, False, "equals-other"),
    row({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Monday"}, True, "and"),
    row({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Friday"}, False, "and-one-fails"),
    row({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York"}, False, "and-field-missing"),
    row({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Debit"}, True, "or"),
    row({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Cash"}, False, "or-none"),
    row({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Sunny"}, True, "not"),
    row({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Raining"}, False, "not-excluded"),
    row({"Weather": [{"anything-but": ["Raining"]}]}, {}, False, "not-needs-field"),
    row({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100}, True, "numeric-equals"),
    row({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100.0}, True, "numeric-equals-compares-value"),
    row({"Price": [{"numeric": ["=", 100]}]}, {"Price": "100"}, False, "numeric-vs-string"),
    row({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20}, True, "numeric-range-top-inclusive"),
    row({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 10}, False, "numeric-range-bottom-exclusive"),
    row({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20.5}, False, "numeric-range-above"),
    row({"ProductName": [{"exists": True}]}, {"ProductName": "Widget"}, True, "exists"),
    row({"ProductName": [{"exists": True}]}, {"Other": 1}, False, "exists-missing"),
    row({"ProductName": [{"exists": False}]}, {"Other": 1}, True, "does-not-exist"),
    row({"ProductName": [{"exists": False}]}, {"ProductName": "Widget"}, False, "does-not-exist-present"),
    row({"Region": [{"prefix": "us-"}]}, {"Region": "us-east-1"}, True, "begins-with"),
    row({"Region": [{"prefix": "us-"}]}, {"Region": "eu-west-1"}, False, "begins-with-other"),
    # DG note: exact character matching, no case folding; numbers by string representation (300, 300.0, 3.0e2).
    row({"Name": ["Alice"]}, {"Name": "alice"}, False, "no-case-folding"),
    row('{"n": [300]}', {"n": 300}, True, "number-same-text"),
    row('{"n": [300]}', {"n": 300.0}, False, "number-300-vs-300.0"),
    row('{"n": [3.0e2]}', {"n": 300}, False, "number-3.0e2-vs-300"),
    row({"n": [300]}, {"n": "300"}, False, "number-vs-string"),
    row({"flag": [True]}, {"flag": True}, True, "boolean"),
    row({"flag": [True]}, {"flag": "true"}, False, "boolean-vs-string"),
    # EventBridge "Matching null values and empty strings": null and "" are not interchangeable.
    row({"detail": {"eventVersion": [""]}}, {"detail": {"eventVersion": None}}, False, "empty-not-null"),
    row({"detail": {"responseElements": [None]}}, {"detail": {"responseElements": ""}}, False, "null-not-empty"),
]

EVENTBRIDGE_ROWS = [
    # EventBridge "Content filtering": prefix on "time".
    row({"time": [{"prefix": "2017-10-02"}]}, {"time": "2017-10-02T18:43:48Z"}, True, "eb-prefix"),
    row({"time": [{"prefix": "2017-10-02"}]}, {"time": "2017-10-03T18:43:48Z"}, False, "eb-prefix-miss"),
    # ... prefix / suffix with equals-ignore-case ("EventB", ".png").
    row({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}, {"detail": {"service": "eventbridge"}}, True, "eb-prefix-ignore-case"),
    row({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}, {"detail": {"service": "Lambda"}}, False, "eb-prefix-ignore-case-miss"),
    row({"FileName": [{"suffix": ".png"}]}, {"FileName": "photo.png"}, True, "eb-suffix"),
    row({"FileName": [{"suffix": ".png"}]}, {"FileName": "photo.PNG"}, False, "eb-suffix-case-sensitive"),
    row({"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}, {"FileName": "photo.PNG"}, True, "eb-suffix-ignore-case"),
    # ... equals-ignore-case.
    row({"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}, {"detail-type": "EC2 Instance State-change Notification"}, True, "eb-equals-ignore-case"),
    row({"detail-type": [{"equals-ignore-case": "ec2 instance"}]}, {"detail-type": "EC2 Instance State-change Notification"}, False, "eb-equals-ignore-case-whole-value"),
    # ... anything-but: single string, single number, lists, prefix, suffix, equals-ignore-case, wildcard.
    row({"detail": {"state": [{"anything-but": "initializing"}]}}, {"detail": {"state": "running"}}, True, "eb-anything-but-string"),
    row({"detail": {"state": [{"anything-but": "initializing"}]}}, {"detail": {"state": "initializing"}}, False, "eb-anything-but-string-hit"),
    row({"detail": {"x-limit": [{"anything-but": 123}]}}, {"detail": {"x-limit": 124}}, True, "eb-anything-but-number"),
    row({"detail": {"x-limit": [{"anything-but": 123}]}}, {"detail": {"x-limit": 123}}, False, "eb-anything-but-number-hit"),
    row({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, {"detail": {"state": "overloaded"}}, False, "eb-anything-but-list"),
    row({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, {"detail": {"x-limit": 150}}, True, "eb-anything-but-number-list"),
    row({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, {"detail": {"x-limit": 200}}, False, "eb-anything-but-number-list-hit"),
    row({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, {"detail": {"state": "running"}}, True, "eb-anything-but-prefix"),
    row({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, {"detail": {"state": "initializing"}}, False, "eb-anything-but-prefix-hit"),
    row({"FileName": [{"anything-but": {"suffix": ".txt"}}]}, {"FileName": "a.txt"}, False, "eb-anything-but-suffix-hit"),
    row({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "Overloaded"]}}]}}, {"detail": {"state": "STOPPED"}}, False, "eb-anything-but-ignore-case-hit"),
    row({"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"FilePath": "dir/bin/x"}, True, "eb-anything-but-wildcard"),
    row({"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"FilePath": "dir/lib/x"}, False, "eb-anything-but-wildcard-hit"),
    # ... numeric: c-count / d-count / x-limit 3.018e2 (numeric compares values, unlike exact numbers).
    row({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}},
        {"detail": {"c-count": 5, "d-count": 9, "x-limit": 301.8}}, True, "eb-numeric"),
    row({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}},
        {"detail": {"c-count": 5, "d-count": 10, "x-limit": 301.8}}, False, "eb-numeric-one-fails"),
    row({"n": [{"numeric": [">=", 0]}]}, {"n": 0}, True, "numeric-ge"),
    row({"n": [{"numeric": [">=", 0]}]}, {"n": -0.5}, False, "numeric-ge-below"),
    # ... IP address matching: cidr 10.0.0.0/24.
    row({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, {"detail": {"sourceIPAddress": "10.0.0.24"}}, True, "eb-cidr"),
    row({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, {"detail": {"sourceIPAddress": "10.0.1.1"}}, False, "eb-cidr-outside"),
    row({"detail": {"sourceIPAddress": [{"cidr": "2001:db8::/32"}]}}, {"detail": {"sourceIPAddress": "2001:db8::1"}}, True, "eb-cidr-ipv6"),
    # ... wildcard: "dir/*.png", escapes.
    row({"FileName": [{"wildcard": "dir/*.png"}]}, {"FileName": "dir/a/b.png"}, True, "eb-wildcard"),
    row({"FileName": [{"wildcard": "dir/*.png"}]}, {"FileName": "dir/a.jpg"}, False, "eb-wildcard-miss"),
    row({"FileName": [{"wildcard": "a*"}]}, {"FileName": "a"}, True, "eb-wildcard-empty-run"),
    row({"FileName": [{"wildcard": r"a\*b"}]}, {"FileName": "axb"}, False, "eb-wildcard-escaped-star"),
    # ... exists matching works on leaf nodes only: c-count as an object is not a leaf.
    row({"detail": {"c-count": [{"exists": False}]}}, {"detail": {"state": ["initializing", "running"]}}, True, "eb-exists-false"),
    row({"detail": {"c-count": [{"exists": False}]}}, {"detail": {"c-count": {"c1": 100}}}, True, "eb-exists-false-intermediate"),
    row({"detail": {"c-count": [{"exists": True}]}}, {"detail": {"c-count": {"c1": 100}}}, False, "eb-exists-true-intermediate"),
    # ... complex example with multiple matching.
    row({"time": [{"prefix": "2017-10-02"}], "detail": {"state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}], "x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"time": "2017-10-02T18:43:48Z", "detail": {"state": "running", "c-count": 3, "x-limit": 250}}, True, "eb-complex"),
    row({"time": [{"prefix": "2017-10-02"}], "detail": {"state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}], "x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"time": "2017-10-02T18:43:48Z", "detail": {"state": "running", "c-count": 3, "x-limit": 300}}, False, "eb-complex-one-fails"),
    # EventBridge "$or matching" (also the aws/event-ruler JsonRuleCompiler example), incl. nested $or.
    row({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}, {"source": "aws.cloudwatch", "namespace": "AWS/EC2"}, True, "or-branch"),
    row({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}, {"source": "aws.cloudwatch", "namespace": "AWS/ES"}, False, "or-no-branch"),
    row({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}, {"source": "aws.ec2", "metricName": "CPUUtilization"}, False, "or-sibling-anded"),
    row({"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}}, {"detail": {"d-count": 3}}, True, "or-nested"),
    # EventBridge "Arrays in event patterns": an event array matches if the intersection is non-empty.
    row({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]},
        {"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x", "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}, True, "array-intersection"),
    row({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}, {"resources": ["arn:aws:s3:::bucket"]}, False, "array-disjoint"),
    row({"resources": [{"exists": True}]}, {"resources": []}, False, "array-empty-no-leaf"),
    row({"resources": [{"exists": True}]}, {"resources": [{"arn": "x"}]}, False, "array-of-objects-no-leaf"),
    row({"resources": ["x"]}, {"resources": [["w", "x"]]}, True, "array-nested"),
    row({"items": {"sku": ["A"], "qty": [{"numeric": [">", 1]}]}}, {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}]}, False, "array-of-objects-same-element"),
    row({"items": {"sku": ["A"], "qty": [{"numeric": [">", 1]}]}}, {"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 5}]}, True, "array-of-objects-match"),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), OPERATOR_ROWS + EVENTBRIDGE_ROWS)
def test_pattern_rows(pattern: dict[str, Any] | str, event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


def sqs_record(body: str, **metadata: Any) -> dict[str, Any]:
    return {"messageId": "059f36b4", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {"myAttribute": {"stringValue": "myValue", "dataType": "String"}}, **metadata}


SQS_ROWS = [
    # DG "Properly filtering Amazon SQS messages": body format vs pattern format table, one row per line.
    row({"body": ["Test message."]}, sqs_record("Test message."), True, "plain-body-plain-pattern"),
    row({"body": ["Other"]}, sqs_record("Test message."), False, "plain-body-plain-pattern-miss"),
    row({"messageId": ["059f36b4"]}, sqs_record("Test message."), True, "plain-body-no-body-pattern"),
    row({"body": {"RequestCode": ["AAAA"]}}, sqs_record("Test message."), False, "plain-body-json-pattern-dropped"),
    row({"body": ["AAAA"]}, sqs_record('{"RequestCode": "AAAA"}'), False, "json-body-plain-pattern-dropped"),
    row({"messageId": ["059f36b4"]}, sqs_record('{"RequestCode": "AAAA"}'), True, "json-body-no-body-pattern"),
    row({"body": {"RequestCode": ["AAAA"]}}, sqs_record('{"RecordNumber": 1, "RequestCode": "AAAA"}'), True, "json-body-json-pattern"),
    row({"body": {"RequestCode": ["BBBB"]}}, sqs_record('{"RequestCode": "AAAA"}'), False, "json-body-json-pattern-miss"),
    # Metadata fields are matchable at top level (DG "Event filtering basics": metadata properties).
    row({"attributes": {"ApproximateReceiveCount": ["1"]}}, sqs_record("x"), True, "attributes"),
    row({"messageAttributes": {"myAttribute": {"stringValue": ["otherValue"]}}}, sqs_record("x"), False, "message-attributes-miss"),
    # Numbers in a JSON body keep their text: 300 vs 300.0 vs 3.0e2 (DG note).
    row('{"body": {"n": [300]}}', sqs_record('{"n": 300}'), True, "body-number-same-text"),
    row('{"body": {"n": [300]}}', sqs_record('{"n": 3.0e2}'), False, "body-number-other-text"),
    row('{"body": {"n": [{"numeric": ["=", 300]}]}}', sqs_record('{"n": 3.0e2}'), True, "body-numeric-by-value"),
]


@pytest.mark.parametrize(("pattern", "record", "expected"), SQS_ROWS)
def test_sqs_rows(pattern: dict[str, Any] | str, record: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, sqs_filter_view(record)) is expected


def kinesis_record(data: bytes | str, partition_key: str = "1") -> dict[str, Any]:
    raw = data if isinstance(data, bytes) else data.encode()
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key, "sequenceNumber": "4959",
                        "data": base64.b64encode(raw).decode(), "approximateArrivalTimestamp": 1545084650.987},
            "eventSource": "aws:kinesis", "eventName": "aws:kinesis:record", "awsRegion": "us-east-2"}


KINESIS_ROWS = [
    # DG invocation-eventfiltering "Filtering examples": partitionKey "1" and data.Location "Los Angeles".
    row({"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}}, kinesis_record('{"Location": "Los Angeles"}'), True, "partition-key-and-data"),
    row({"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}}, kinesis_record('{"Location": "Los Angeles"}', "2"), False, "partition-key-miss"),
    # ... data.Temperature numeric (> 50, <= 60).
    row({"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}}, kinesis_record('{"Temperature": 60}'), True, "temperature-range"),
    row({"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}}, kinesis_record('{"Temperature": 46}'), False, "temperature-below"),
    # DG with-kinesis-filtering: order.type "buy".
    row({"data": {"order": {"type": ["buy"]}}}, kinesis_record('{"record": 12345, "order": {"type": "buy", "stock": "ANYCO", "quantity": 1000}}'), True, "order-buy"),
    row({"data": {"order": {"type": ["buy"]}}}, kinesis_record('{"record": 12345, "order": {"type": "sell"}}'), False, "order-sell"),
    # ... non-JSON data with a JSON data pattern: record dropped; no data pattern: metadata only.
    row({"data": {"order": {"type": ["buy"]}}}, kinesis_record("Hello, this is a test."), False, "non-json-data-dropped"),
    row({"data": {"order": {"type": ["buy"]}}}, kinesis_record(b"\xff\xfe binary"), False, "binary-data-dropped"),
    row({"partitionKey": ["1"]}, kinesis_record("Hello, this is a test."), True, "non-json-data-metadata-only"),
    row({"eventSource": ["aws:kinesis"], "approximateArrivalTimestamp": [{"numeric": [">", 0]}]}, kinesis_record("{}"), True, "outer-and-inner-metadata"),
]


@pytest.mark.parametrize(("pattern", "record", "expected"), KINESIS_ROWS)
def test_kinesis_rows(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, kinesis_filter_view(record)) is expected


def test_kinesis_view_decodes_data_without_touching_the_record() -> None:
    record = kinesis_record('{"a": 1}')
    view = kinesis_filter_view(record)
    assert view["partitionKey"] == "1" and view["eventSource"] == "aws:kinesis"
    assert matches({"data": {"a": [1]}}, view)
    assert record["kinesis"]["data"] == base64.b64encode(b'{"a": 1}').decode()


def ddb_record(event_name: str = "INSERT", **new_image: dict[str, str]) -> dict[str, Any]:
    return {"eventID": "1", "eventName": event_name, "eventSource": "aws:dynamodb", "awsRegion": "us-west-2",
            "dynamodb": {"Keys": {"CustomerName": {"S": "AnyCompany Industries"}},
                         "NewImage": {"CustomerName": {"S": "AnyCompany Industries"}, **new_image},
                         "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_IMAGE"}}


DDB_ROWS = [
    # DG with-ddb-filtering "Filtering with table keys": Keys.CustomerName.S.
    row({"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}}, ddb_record(), True, "keys"),
    row({"dynamodb": {"Keys": {"CustomerName": {"S": ["Example Corp"]}}}}, ddb_record(), False, "keys-miss"),
    # ... "Filtering with table attributes": NewImage.AccountManager is "Pat Candella" or "Shirley Rodriguez".
    row({"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}}}, ddb_record(AccountManager={"S": "Shirley Rodriguez"}), True, "new-image-or"),
    row({"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}}}, ddb_record(AccountManager={"S": "Diego Ramirez"}), False, "new-image-or-miss"),
    row({"dynamodb": {"NewImage": {"Region": {"S": ["us-west-2"]}}}}, ddb_record(Region={"S": "us-west-2"}), True, "new-image-region"),
    row({"dynamodb": {"NewImage": {"Region": {"S": ["us-west-2"]}}}}, ddb_record(), False, "new-image-attribute-missing"),
    # DG invocation-eventfiltering "Multi-level filtering": Keys.Id.N "101" (N values are strings).
    row({"dynamodb": {"Keys": {"Id": {"N": ["101"]}}}}, {"dynamodb": {"Keys": {"Id": {"N": "101"}}}}, True, "multi-level"),
    row({"dynamodb": {"Keys": {"Id": {"N": [101]}}}}, {"dynamodb": {"Keys": {"Id": {"N": "101"}}}}, False, "multi-level-number-vs-string"),
    # CDK FilterRule example: eventName INSERT with a NewImage BOOL.
    row({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"id": {"BOOL": [True]}}}}, ddb_record(id={"BOOL": True}), True, "event-name-and-bool"),
    row({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"id": {"BOOL": [True]}}}}, ddb_record("MODIFY", id={"BOOL": True}), False, "event-name-miss"),
    row({"dynamodb": {"SizeBytes": [{"numeric": ["<", 100]}], "OldImage": {"CustomerName": [{"exists": False}]}}}, ddb_record(), True, "metadata-numeric-and-absent-old-image"),
]


@pytest.mark.parametrize(("pattern", "record", "expected"), DDB_ROWS)
def test_dynamodb_rows(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, dynamodb_filter_view(record)) is expected


# DG: up to five filters; an event that satisfies any one of them is sent (OR across filters).
def test_filters_are_ored() -> None:
    filters = FilterSet.parse(criteria({"Name": ["Alice"]}, {"Name": ["Bob"]}))
    assert filters.matches({"Name": "Bob"})
    assert not filters.matches({"Name": "Carol"})


@pytest.mark.parametrize("empty", [None, {}, {"Filters": []}], ids=["none", "empty-object", "empty-list"])
def test_no_criteria_matches_everything(empty: dict[str, Any] | None) -> None:
    filters = FilterSet.parse(empty)
    assert filters.matches_all and filters.matches({"anything": 1})
    assert filters.to_api() is None


def test_five_filters_is_the_limit() -> None:
    five = FilterSet.parse(criteria(*({"n": [i]} for i in range(5))))
    assert five.to_api() == criteria(*({"n": [i]} for i in range(5)))
    with pytest.raises(FilterCriteriaError) as caught:
        FilterSet.parse(criteria(*({"n": [i]} for i in range(6))))
    assert "5" in caught.value.message and "6 filters" in caught.value.reason


INVALID_ROWS = [
    ("{not json", "Filters[1].Pattern is not valid JSON"),
    ('["a"]', "Filter is not an object"),
    ("{}", "Empty objects are not allowed"),
    ('{"a": {}}', "Empty objects are not allowed"),
    ('{"a": []}', "Empty arrays are not allowed"),
    ('{"a": "x"}', '"a" must be an object or an array'),
    ('{"a": [["x"]]}', "Match value must be String, number, true, false, or null"),
    ('{"a": [{"regex": "x.*"}]}', "Unrecognized match type regex"),
    ('{"a": [{"prefix": "x", "suffix": "y"}]}', "Only one key allowed in match expression"),
    ('{"a": [{"prefix": 1}]}', "prefix match pattern must be a string"),
    ('{"a": [{"exists": "yes"}]}', "exists match pattern must be either true or false."),
    ('{"a": [{"numeric": "> 1"}]}', "Value of numeric must be an array."),
    ('{"a": [{"numeric": ["!=", 1]}]}', "Unrecognized numeric range operator: !="),
    ('{"a": [{"numeric": [">", "1"]}]}', "Value of > must be numeric"),
    ('{"a": [{"numeric": ["=", 1, "<", 2]}]}', "Too many elements in numeric expression"),
    ('{"a": [{"numeric": [">", 1, ">", 2]}]}', "Bad numeric range operator: >"),
    ('{"a": [{"numeric": [">", 5, "<", 2]}]}', "Bottom must be less than top"),
    ('{"a": [{"anything-but": ["x", 1]}]}', "mixed type is not supported"),
    ('{"a": [{"anything-but": {"numeric": [">", 1]}}]}', "Unsupported anything-but pattern: numeric"),
    ('{"a": [{"wildcard": "a**b"}]}', "Consecutive wildcard characters at pos 2"),
    ('{"a": [{"cidr": "10.0.0.0"}]}', "Malformed CIDR, one '/' required"),
    ('{"$or": [{"a": ["x"]}]}', "There must have at least 2 Objects in $or relationship."),
]


@pytest.mark.parametrize(("pattern", "reason"), INVALID_ROWS, ids=[r for _, r in INVALID_ROWS])
def test_invalid_patterns_are_refused_with_aws_wording(pattern: str, reason: str) -> None:
    with pytest.raises(FilterCriteriaError) as caught:
        FilterSet.parse(criteria({"ok": ["x"]}, pattern))
    assert caught.value.message == "Invalid filter pattern definition."
    assert reason in caught.value.reason and "Filters[1]" in caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("entry", [{}, {"Pattern": ""}, {"Pattern": 5}], ids=["missing", "empty", "not-string"])
def test_filter_without_a_pattern_is_refused(entry: dict[str, Any]) -> None:
    with pytest.raises(FilterCriteriaError, match="Filters\\[0\\].Pattern is missing or empty"):
        FilterSet.parse({"Filters": [entry]})


# DG "Properly filtering Kinesis and DynamoDB messages": a non-JSON pattern for the data field is refused at
# create/update; SQS instead accepts a plain-string body pattern.
@pytest.mark.parametrize(
    ("source", "pattern", "refused"),
    [
        ("kinesis", {"data": ["Hello"]}, True),
        ("kinesis", {"$or": [{"partitionKey": ["1"]}, {"data": [{"prefix": "H"}]}]}, True),
        ("kinesis", {"data": {"order": ["buy"]}}, False),
        ("dynamodb", {"dynamodb": [{"exists": True}]}, True),
        ("sqs", {"body": ["Hello"]}, False),
    ],
)
def test_stream_sources_refuse_plain_payload_patterns(source: Any, pattern: dict[str, Any], refused: bool) -> None:
    if refused:
        with pytest.raises(FilterCriteriaError, match="must be a JSON object"):
            FilterSet.parse(criteria(pattern), source=source)
    else:
        assert FilterSet.parse(criteria(pattern), source=source).patterns == (json.dumps(pattern),)

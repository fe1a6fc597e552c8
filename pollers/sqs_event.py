"""Lambda's SQS event record, built from a ReceiveMessage message (SEMANTICS §18-20).

The shape is exactly what Lambda sends (reference/events/sqs.json, sqs-fifo.json):
lower-camel record keys, system attributes as strings, message attributes as
{stringValue|binaryValue, stringListValues, binaryListValues, dataType}, and
md5OfMessageAttributes null when there are none.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

# System attributes Lambda passes on, in the order it writes them.
STANDARD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
FIFO_ATTRIBUTES = (
    "ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId", "SenderId",
    "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp",
)
OPTIONAL_ATTRIBUTES = ("AWSTraceHeader", "DeadLetterQueueSourceArn")


def parse_arn(arn: str) -> tuple[str, str, str]:
    """(region, account, name) of an arn:aws:sqs:REGION:ACCOUNT:NAME queue ARN."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs" or not parts[5]:
        raise ValueError(f"not an SQS queue ARN: {arn}")
    return parts[3], parts[4], parts[5]


def _raw_value(attr: dict[str, Any]) -> tuple[bytes, int]:
    if "BinaryValue" in attr:
        value = attr["BinaryValue"]
        return (value if isinstance(value, bytes) else base64.b64decode(value)), 2
    return str(attr.get("StringValue", "")).encode(), 1


def md5_of_message_attributes(attrs: dict[str, dict[str, Any]]) -> str | None:
    """SQS's MD5 of message attributes (SEMANTICS §20), None when there are none.

    Computed here rather than copied from the emulator's MD5OfMessageAttributes so the
    value is right whatever the emulator does.
    """
    if not attrs:
        return None
    digest = hashlib.md5()
    for name in sorted(attrs):
        attr = attrs[name]
        value, transport = _raw_value(attr)
        for part in (name.encode(), str(attr.get("DataType", "String")).encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        digest.update(bytes([transport]))
        digest.update(struct.pack(">I", len(value)) + value)
    return digest.hexdigest()


def event_attributes(attrs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, attr in attrs.items():
        entry: dict[str, Any] = {}
        if "BinaryValue" in attr:
            value = attr["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)
        else:
            entry["stringValue"] = str(attr.get("StringValue", ""))
        entry["stringListValues"] = list(attr.get("StringListValues", []))
        entry["binaryListValues"] = [
            base64.b64encode(v).decode() if isinstance(v, bytes) else str(v) for v in attr.get("BinaryListValues", [])
        ]
        entry["dataType"] = str(attr.get("DataType", "String"))
        out[name] = entry
    return out


def sqs_record(message: dict[str, Any], queue_arn: str, *, fifo: bool, sequence_number: str | None = None) -> dict[str, Any]:
    """One event record. `sequence_number` fills FIFO's SequenceNumber when the source
    did not return one (moto does not, PLATFORM §4a)."""
    region = parse_arn(queue_arn)[0]
    system = {k: str(v) for k, v in message.get("Attributes", {}).items()}
    if fifo and "SequenceNumber" not in system and sequence_number is not None:
        system["SequenceNumber"] = sequence_number
    names = FIFO_ATTRIBUTES if fifo else STANDARD_ATTRIBUTES
    attributes = {k: system[k] for k in (*names, *OPTIONAL_ATTRIBUTES) if k in system}
    message_attributes = message.get("MessageAttributes") or {}
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": event_attributes(message_attributes),
        "md5OfMessageAttributes": md5_of_message_attributes(message_attributes),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }

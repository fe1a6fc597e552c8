"""S3 → function (kind "s3", ARN arn:aws:s3:::bucket, an eventmill extension of the ESM API).

On start the bucket is configured to notify the mapping's queue (Events, prefix/suffix
rules); each S3 record then becomes one async invocation with AWS's event shape
(reference/events/s3-put.json). s3:TestEvent messages are dropped (SEMANTICS §74).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from pollers.base import register
from pollers.relay import NotificationRelay

DEFAULT_EVENTS = ("s3:ObjectCreated:*",)


def aws_key(key: str) -> str:
    """An object key encoded as S3 writes it in events: form encoding (space → '+') with '/'
    kept (moto also encodes '/'; decode first so both forms end up the same)."""
    return quote_plus(unquote_plus(key), safe="/*").replace("~", "%7E")


def s3_record(raw: dict[str, Any]) -> dict[str, Any]:
    """A record in AWS's field order, filling the fields emulators leave out with AWS-like values."""
    s3 = raw.get("s3", {})
    bucket = s3.get("bucket", {})
    obj = dict(s3.get("object", {}))
    obj["key"] = aws_key(str(obj.get("key", "")))
    obj.setdefault("sequencer", f"{time.time_ns():018X}")  # emulators omit it; AWS's is hex, increasing per key
    return {
        "eventVersion": raw.get("eventVersion", "2.1"),
        "eventSource": "aws:s3",
        "awsRegion": raw.get("awsRegion", "us-east-1"),
        "eventTime": raw.get("eventTime"),
        "eventName": raw.get("eventName"),
        "userIdentity": raw.get("userIdentity") or {"principalId": "AWS:EVENTMILL"},
        "requestParameters": raw.get("requestParameters") or {"sourceIPAddress": "127.0.0.1"},
        "responseElements": raw.get("responseElements") or {"x-amz-request-id": "EVENTMILL", "x-amz-id-2": "EVENTMILL"},
        "s3": {
            "s3SchemaVersion": s3.get("s3SchemaVersion", "1.0"),
            "configurationId": s3.get("configurationId"),
            "bucket": {
                "name": bucket.get("name"),
                "ownerIdentity": bucket.get("ownerIdentity") or {"principalId": "EVENTMILL"},
                "arn": bucket.get("arn") or f"arn:aws:s3:::{bucket.get('name')}",
            },
            "object": obj,
        },
    }


@register("s3")
class S3Poller(NotificationRelay):
    source = "s3"

    @property
    def bucket(self) -> str:
        return self.mapping.event_source_arn.split(":::", 1)[-1]

    async def setup(self, sqs: Any) -> tuple[str, str]:
        url, arn = await self.ensure_queue(sqs)
        config_id = f"eventmill-{self.mapping.uuid}"
        entry: dict[str, Any] = {"Id": config_id, "QueueArn": arn, "Events": list(self.mapping.s3_events or DEFAULT_EVENTS)}
        if self.mapping.s3_filter_rules:
            entry["Filter"] = {"Key": {"FilterRules": [{"Name": n, "Value": v} for n, v in self.mapping.s3_filter_rules]}}
        async with self.ctx.client("s3") as s3:
            current = await s3.get_bucket_notification_configuration(Bucket=self.bucket)
            # The call replaces the bucket's whole configuration: keep everyone else's entries.
            queues = [q for q in current.get("QueueConfigurations", []) if q.get("Id") != config_id]
            config = {k: current[k] for k in ("TopicConfigurations", "LambdaFunctionConfigurations") if current.get(k)}
            config["QueueConfigurations"] = [*queues, entry]
            await s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration=config)
        return url, arn

    def events(self, body: str) -> list[dict[str, Any]]:
        try:
            doc = json.loads(body)
        except ValueError:
            return []
        if not isinstance(doc, dict) or doc.get("Event") == "s3:TestEvent":
            return []
        return [{"Records": [s3_record(r)]} for r in doc.get("Records", []) if isinstance(r, dict)]

"""SNS → function (kind "sns"): a queue subscribed to the topic (raw delivery off), each
notification unwrapped into Lambda's SNS event (reference/events/sns.json) and invoked
asynchronously. Note the two spellings: the SQS envelope says SigningCertURL and
UnsubscribeURL, Lambda's event SigningCertUrl and UnsubscribeUrl.
"""

from __future__ import annotations

import json
from typing import Any

from pollers.base import register
from pollers.relay import NotificationRelay


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    return {
        "Records": [{
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription_arn,
            "EventSource": "aws:sns",
            "Sns": {
                "SignatureVersion": envelope.get("SignatureVersion", "1"),
                "Timestamp": envelope.get("Timestamp"),
                "Signature": envelope.get("Signature", "EXAMPLE"),
                "SigningCertUrl": envelope.get("SigningCertURL") or envelope.get("SigningCertUrl"),
                "MessageId": envelope.get("MessageId"),
                "Message": envelope.get("Message"),
                "MessageAttributes": envelope.get("MessageAttributes") or {},
                "Type": envelope.get("Type", "Notification"),
                "UnsubscribeUrl": envelope.get("UnsubscribeURL") or envelope.get("UnsubscribeUrl"),
                "TopicArn": envelope.get("TopicArn"),
                "Subject": envelope.get("Subject"),
            },
        }]
    }


@register("sns")
class SnsPoller(NotificationRelay):
    source = "sns"
    subscription_arn = ""

    async def setup(self, sqs: Any) -> tuple[str, str]:
        url, arn = await self.ensure_queue(sqs)
        async with self.ctx.client("sns") as sns:
            resp = await sns.subscribe(
                TopicArn=self.mapping.event_source_arn, Protocol="sqs", Endpoint=arn,
                Attributes={"RawMessageDelivery": "false"}, ReturnSubscriptionArn=True,
            )
        self.subscription_arn = str(resp["SubscriptionArn"])
        return url, arn

    def events(self, body: str) -> list[dict[str, Any]]:
        try:
            envelope = json.loads(body)
        except ValueError:
            return []
        if not isinstance(envelope, dict) or envelope.get("Type") != "Notification":
            return []
        return [sns_event(envelope, self.subscription_arn)]

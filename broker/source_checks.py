"""Checks AWS makes against the event source itself when a mapping is created or updated.

AWS refuses an SQS mapping whose queue does not exist, or whose VisibilityTimeout is
shorter than the function's timeout (a batch would reappear while still running,
SEMANTICS §A.7-8). The API makes the same SQS calls on the configured endpoint (moto,
LocalStack or real AWS). If the source cannot be asked at all (no endpoint reachable, no
credentials) the mapping is accepted and a warning logged: the poller will report the
problem in the mapping's state, as AWS's does for a queue that breaks later.
Kinesis / DynamoDB / S3 / SNS sources are not checked here.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from broker.errors import InvalidParameterValueException
from broker.mappings import EventSourceMapping
from broker.settings import Settings

log = logging.getLogger("eventmill.api")

NON_EXISTENT_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def missing_queue(arn: str) -> InvalidParameterValueException:
    """AWS's text for a mapping to a queue that does not exist, naming the queue."""
    return InvalidParameterValueException(
        "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
        f"SQS Error Message: The specified queue does not exist for this wsdl version. ({arn})"
    )


def visibility_too_short(visibility_s: int, function_timeout_s: int) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Queue visibility timeout: {visibility_s} seconds is less than Function timeout: {function_timeout_s} seconds"
    )


async def check_source(settings: Settings, mapping: EventSourceMapping, function_timeout_s: int) -> None:
    """Raise AWS's InvalidParameterValueException if the mapping's source refuses it."""
    if mapping.kind == "sqs":
        await check_sqs_queue(settings, mapping.event_source_arn, function_timeout_s)


async def check_sqs_queue(settings: Settings, queue_arn: str, function_timeout_s: int) -> None:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    _, _, _, region, account, name = queue_arn.split(":", 5)
    kwargs: dict[str, Any] = {"region_name": region or settings.region}
    if settings.aws_endpoint:
        kwargs.update(endpoint_url=settings.aws_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    # One quick attempt: this runs inside an API request.
    config = AioConfig(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})
    try:
        async with get_session().create_client("sqs", config=config, **kwargs) as sqs:
            url = (await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account))["QueueUrl"]
            attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"]))["Attributes"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in NON_EXISTENT_QUEUE_CODES:
            raise missing_queue(queue_arn) from None
        log.warning("could not check SQS queue %s for an event source mapping: %s", queue_arn, exc)
        return
    except (BotoCoreError, OSError) as exc:
        log.warning("could not reach SQS to check queue %s for an event source mapping: %s", queue_arn, exc)
        return
    visibility = int(attributes.get("VisibilityTimeout", "30"))
    if visibility < function_timeout_s:
        raise visibility_too_short(visibility, function_timeout_s)

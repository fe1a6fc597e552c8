"""Response parsing for stream clients: GetRecords pages as the wire sent them.

botocore walks every record of a GetRecords page through the service model and parses
each arrival time with dateutil; for a page of a few thousand records that is tens of
milliseconds of CPU on the pollers' event loop, during which no batch reply is handled,
and more CPU than everything else the poller does with a record. A Kinesis or DynamoDB
Streams page in the JSON protocol already has botocore's member names, so the body is
loaded as is: timestamps stay epoch numbers and blobs stay base64 text, which is what
Lambda's event carries anyway (pollers/stream_records.py accepts both forms). Errors and
every other operation go through botocore unchanged, with the same raw timestamp and
blob values so a client never mixes the two forms.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from botocore.parsers import lowercase_dict

RAW_OUTPUTS = frozenset({"GetRecordsOutput"})


def _same(value: Any) -> Any:
    return value


class RawPageJSONParser(AioJSONParser):
    """AioJSONParser that returns a successful GetRecords body without walking its shape."""

    async def parse(self, response: dict[str, Any], shape: Any) -> Any:
        if response["status_code"] < 300 and shape is not None and shape.name in RAW_OUTPUTS and response["body"]:
            parsed = orjson.loads(response["body"])
            if isinstance(parsed, dict):
                parsed["ResponseMetadata"] = {
                    "HTTPStatusCode": response["status_code"], "HTTPHeaders": lowercase_dict(response["headers"]),
                }
                return parsed
        return await super().parse(response, shape)


class RawPageParserFactory(AioResponseParserFactory):
    """The `parser_factory` for PollerContext.client of a stream source."""

    def __init__(self) -> None:
        super().__init__()
        self.set_parser_defaults(timestamp_parser=_same, blob_parser=_same)

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return RawPageJSONParser(**self._defaults)
        return super().create_parser(protocol_name)

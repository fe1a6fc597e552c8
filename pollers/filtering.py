"""Lambda event filtering (FilterCriteria) for every event source mapping: parse once at the edge, match per record.

A record passes if any filter matches (OR); within a filter keys are ANDed and a value list is ORed
(SEMANTICS §21-22). The payload is filtered under `body` (SQS), `data` (Kinesis) and `dynamodb` (DynamoDB);
the *_filter_view functions build the object a pattern is matched against (SEMANTICS §23-25).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

from pollers.filter_pattern import JsonNumber, Node, PatternError, compile_pattern, loads, match

__all__ = [
    "MAX_FILTERS",
    "FilterCriteriaError",
    "FilterSet",
    "JsonNumber",
    "dynamodb_filter_view",
    "kinesis_filter_view",
    "sqs_filter_view",
]

Source = Literal["sqs", "kinesis", "dynamodb"]

# Default quota: 5 filters per event source mapping (raisable to 10 on request). [DG:invocation-eventfiltering]
MAX_FILTERS = 5

# AWS answers every bad pattern with this one text (InvalidParameterValueException); see FilterCriteriaError.
INVALID_PATTERN = "Invalid filter pattern definition."
TOO_MANY_FILTERS = f"Invalid filter criteria. The maximum number of filters per event source mapping is {MAX_FILTERS}."

# Kinesis and DynamoDB reject a plain-string pattern on their payload key at create/update time (SEMANTICS §25);
# SQS accepts one and matches it against a plain-string body (§24).
_STREAM_PAYLOAD_KEY: dict[str, str] = {"kinesis": "data", "dynamodb": "dynamodb"}


class FilterCriteriaError(ValueError):
    """FilterCriteria that AWS refuses at CreateEventSourceMapping / UpdateEventSourceMapping.

    `message` is the text AWS puts in its InvalidParameterValueException; `reason` says what is wrong and
    where (AWS does not), e.g. 'Filters[1].Pattern: Unrecognized match type foo'. str() gives both.
    """

    def __init__(self, reason: str, message: str = INVALID_PATTERN) -> None:
        super().__init__(f"{message} {reason}")
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class FilterSet:
    """Parsed FilterCriteria. With no filters every record matches."""

    patterns: tuple[str, ...] = ()
    compiled: tuple[Node, ...] = ()

    @classmethod
    def parse(cls, criteria: dict[str, Any] | None, *, source: Source | None = None) -> FilterSet:
        """Validate `{"Filters": [{"Pattern": "<json>"}, ...]}`; None, {} or an empty list match everything.

        With `source`, also apply that source's rule for a plain-string pattern on its payload key.
        """
        if not criteria:
            return cls()
        if not isinstance(criteria, dict):
            raise FilterCriteriaError("FilterCriteria must be an object")
        filters = criteria.get("Filters")
        if filters is None:
            return cls()
        if not isinstance(filters, list):
            raise FilterCriteriaError("FilterCriteria.Filters must be a list")
        if len(filters) > MAX_FILTERS:
            raise FilterCriteriaError(
                f"{len(filters)} filters given; at most {MAX_FILTERS} are allowed", message=TOO_MANY_FILTERS
            )
        patterns: list[str] = []
        compiled: list[Node] = []
        for index, entry in enumerate(filters):
            where = f"Filters[{index}].Pattern"
            pattern = entry.get("Pattern") if isinstance(entry, dict) else None
            if not isinstance(pattern, str) or not pattern.strip():
                raise FilterCriteriaError(f"{where} is missing or empty")
            try:
                document = loads(pattern)
            except ValueError as exc:
                raise FilterCriteriaError(f"{where} is not valid JSON: {exc}") from None
            try:
                node = compile_pattern(document)
            except PatternError as exc:
                raise FilterCriteriaError(f"{where}: {exc}") from None
            payload_key = _STREAM_PAYLOAD_KEY.get(source or "")
            if payload_key and _has_plain_pattern(node, payload_key):
                raise FilterCriteriaError(f'{where}: the pattern for "{payload_key}" must be a JSON object')
            patterns.append(pattern)
            compiled.append(node)
        return cls(tuple(patterns), tuple(compiled))

    @property
    def matches_all(self) -> bool:
        return not self.compiled

    def matches(self, record: dict[str, Any]) -> bool:
        """True if the filter view of a record (see *_filter_view) satisfies any filter."""
        return self.matches_all or any(match(node, record) for node in self.compiled)

    def to_api(self) -> dict[str, Any] | None:
        """The FilterCriteria as GetEventSourceMapping echoes it."""
        return {"Filters": [{"Pattern": p} for p in self.patterns]} if self.patterns else None


def _has_plain_pattern(node: Node, key: str) -> bool:
    return any(name == key and not isinstance(child, Node) for name, child in node.fields) or any(
        _has_plain_pattern(branch, key) for group in node.ors for branch in group
    )


def _json_or_text(text: str) -> Any:
    """The parsed JSON value if `text` is valid JSON, else the text itself (a plain-string payload)."""
    try:
        return loads(text)
    except ValueError:
        return text


def sqs_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """An SQS record with `body` parsed as JSON when it is valid JSON, else kept as the plain string.

    A JSON body only matches object patterns and a plain body only plain-string patterns, which is
    Lambda's format check (SEMANTICS §24). Metadata (messageId, attributes, messageAttributes...) is as is.
    """
    body = record.get("body")
    if not isinstance(body, str):
        return dict(record)
    return {**record, "body": _json_or_text(body)}


def kinesis_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """A Kinesis record flattened as Lambda filters it: the `kinesis` fields (partitionKey, sequenceNumber...)
    beside the record's own (eventSource, awsRegion...), with `data` base64-decoded and parsed as JSON.

    Data that is not UTF-8 JSON stays a string, so a JSON `data` pattern drops the record (SEMANTICS §25).
    """
    inner = record.get("kinesis")
    view = {k: v for k, v in record.items() if k != "kinesis"}
    if isinstance(inner, dict):
        view.update(inner)
    data = view.get("data")
    if isinstance(data, str):
        try:
            view["data"] = _json_or_text(base64.b64decode(data, validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError):
            pass  # not base64 text of UTF-8: leave the raw string, which no object pattern matches
    return view


def dynamodb_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB Streams record as is: `dynamodb` already holds Keys/NewImage/OldImage as JSON."""
    return record

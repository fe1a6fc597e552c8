"""Functions declared in eventmill.yaml (fields named as the Lambda API, so a SAM or
CloudFormation block pastes in), and the one place a create body becomes a FunctionConfig.

    functions:
      - FunctionName: hello
        Runtime: python3.11
        Handler: app.handler
        Code: ./functions/hello          # a local directory (relative to the YAML file)
        Timeout: 3
        EventInvokeConfig: {MaximumRetryAttempts: 0}
        ReservedConcurrentExecutions: 1
    event_source_mappings:               # CreateEventSourceMapping bodies (broker/mappings.py)
      - {FunctionName: hello, EventSourceArn: "arn:aws:sqs:us-east-1:123456789012:in", BatchSize: 5}
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
import yaml

from broker.code import HOT_RELOAD_BUCKET, from_api_code
from broker.config import EventInvokeConfig, FunctionConfig, now_iso, parse_reserved_concurrency, parse_settings, resolve_name
from broker.errors import InvalidParameterValueException, LambdaError
from broker.keys import Keys
from broker.mappings import plan_project, save_mappings


def build_function(body: dict[str, Any], data_dir: Path) -> FunctionConfig:
    """CreateFunction semantics: AWS defaults and validation. Every build is a new
    revision, so re-applying a project retires warm environments."""
    raw_name = body.get("FunctionName")
    if not raw_name:
        raise InvalidParameterValueException("FunctionName is required")
    name, _ = resolve_name(str(raw_name))
    settings = parse_settings(body)
    if not isinstance(body.get("Code"), dict):
        raise InvalidParameterValueException("Please provide a source for function code.")
    code = from_api_code(data_dir, name, body["Code"])
    extras: dict[str, Any] = {}
    if body.get("EventInvokeConfig"):
        extras["invoke_config"] = EventInvokeConfig.parse(body["EventInvokeConfig"])
    if body.get("ReservedConcurrentExecutions") is not None:
        extras["reserved_concurrency"] = parse_reserved_concurrency(body)
    return FunctionConfig(
        name=name, code_dir=code.directory, code_sha256=code.sha256, code_size=code.size,
        revision_id=str(uuid.uuid4()), last_modified=now_iso(), **settings, **extras,
    )


def load_project(path: Path) -> list[dict[str, Any]]:
    """Read eventmill.yaml into CreateFunction bodies, with local Code paths resolved."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidParameterValueException(f"{path}: not valid YAML: {exc}") from None
    functions = document.get("functions") or []
    if not isinstance(functions, list):
        raise InvalidParameterValueException(f"{path}: 'functions' must be a list")
    bodies = []
    for index, item in enumerate(functions):
        if not isinstance(item, dict):
            raise InvalidParameterValueException(f"{path}: functions[{index}] must be a mapping")
        body = dict(item)
        code = body.get("Code")
        if isinstance(code, str):
            body["Code"] = {"S3Bucket": HOT_RELOAD_BUCKET, "S3Key": str((path.parent / code).resolve())}
        bodies.append(body)
    return bodies


def apply_project(client: redis.Redis, keys: Keys, data_dir: Path, path: Path) -> list[str]:
    """Register every function of the file, then its event source mappings; all are
    validated before any is written."""
    configs = []
    for index, body in enumerate(load_project(path)):
        try:
            configs.append(build_function(body, data_dir))
        except LambdaError as exc:
            raise type(exc)(f"{path}: functions[{index}] ({body.get('FunctionName')}): {exc.message}") from None
    mappings = plan_project(client, keys, path, {c.name for c in configs})
    with client.pipeline(transaction=True) as pipe:
        for config in configs:
            pipe.set(keys.function(config.name), orjson.dumps(config.to_dict()))
            pipe.sadd(keys.functions, config.name)
        pipe.execute()
    save_mappings(client, keys, mappings)
    return [c.name for c in configs]

"""A demo function: echoes the event, counts warm invocations, fails on request."""

import os

INVOCATIONS = 0


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    print(f"hello from {context.function_name} ({os.environ.get('GREETING', 'hi')})")
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"echo": event, "warm_invocations": INVOCATIONS, "request_id": context.aws_request_id}

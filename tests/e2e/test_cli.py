"""The `eventmill` CLI as a user runs it (a subprocess), against a live deployment:
invoke (sync, --async, --log, @file, stdin), results --json, status, dlq, and errors as
one clear line with exit code 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.test_async import invoke_event
from tests.stack import ROOT, Stack, zip_source

ECHO = """
def handler(event, context):
    print("handling", event)
    return {"echo": event}
"""

FAILS = """
def handler(event, context):
    raise ValueError("nope " + str(event.get("n")))
"""


def cli(stack: Stack | None, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, redis_url: bool = True) -> subprocess.CompletedProcess[str]:
    base = env if env is not None else dict(stack.env()) if stack else dict(os.environ)
    base["COLUMNS"] = "250"  # rich tables must not truncate request ids
    base["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "broker.cli", *args]
    if stack is not None and redis_url:
        argv += ["--redis-url", stack.redis_url]
    return subprocess.run(argv, input=stdin.decode() if stdin is not None else None, capture_output=True, text=True, env=base, cwd=str(ROOT), timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert err.count("\n") == 0, f"not one line:\n{err}"
    assert err.startswith("error:"), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture
def live(stack: Stack) -> Stack:
    stack.start_worker()
    stack.create_function("echo", ECHO)
    return stack


def test_invoke_sync_payload_log_file_stdin(live: Stack, tmp_path: Path) -> None:
    proc = cli(live, "invoke", "echo", "--payload", '{"a": 1}')
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout) == {"echo": {"a": 1}}

    proc = cli(live, "invoke", "echo", "--payload", '{"b": 2}', "--log")
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout) == {"echo": {"b": 2}}
    assert "START RequestId: " in proc.stderr and "Version: $LATEST" in proc.stderr
    assert "handling {'b': 2}" in proc.stderr
    assert "END RequestId: " in proc.stderr and "REPORT RequestId: " in proc.stderr

    # no payload means {}, and no --log means no log
    plain = cli(live, "invoke", "echo")
    assert orjson.loads(plain.stdout) == {"echo": {}}
    assert "START RequestId" not in plain.stderr

    # @file and - (stdin)
    event = tmp_path / "event.json"
    event.write_text('{"from": "file", "n": [1, 2, 3]}')
    proc = cli(live, "invoke", "echo", "--payload", f"@{event}")
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout) == {"echo": {"from": "file", "n": [1, 2, 3]}}

    proc = cli(live, "invoke", "echo", "--payload", "-", stdin=b'{"from": "stdin"}')
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout) == {"echo": {"from": "stdin"}}

    one_line_error(cli(live, "invoke", "echo", "--payload", f"@{tmp_path / 'missing.json'}"), "cannot read payload file")


def test_invoke_async_then_results_json(live: Stack) -> None:
    proc = cli(live, "invoke", "echo", "--async", "--payload", '{"async": true}')
    assert proc.returncode == 0, proc.stderr
    reply = orjson.loads(proc.stdout)
    assert reply["StatusCode"] == 202
    rid = reply["RequestId"]
    live.wait_for(lambda: any(r["requestId"] == rid for r in live.results("echo")), timeout=30, what="the async result")
    live.create_function("fails", FAILS)
    assert cli(live, "invoke", "echo", "--payload", '{"sync": 1}').returncode == 0
    failed = cli(live, "invoke", "fails", "--payload", '{"n": 5}')
    assert failed.returncode == 1  # a function error is a failed command
    error = orjson.loads(failed.stdout)
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "nope 5" and error["stackTrace"]

    proc = cli(live, "results", "echo", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    for record in lines:
        for key in ("requestId", "functionName", "status", "event", "payload", "error"):
            assert key in record, (key, record)
        assert record["functionName"] == "echo" and record["status"] == "success" and record["error"] is None
    by_rid = {r["requestId"]: r for r in lines}
    assert by_rid[rid]["event"] == {"async": True}
    assert by_rid[rid]["payload"] == {"echo": {"async": True}}
    assert [r["event"] for r in lines] == [{"async": True}, {"sync": 1}]  # oldest first

    lines = [orjson.loads(line) for line in cli(live, "results", "fails", "--json").stdout.splitlines()]
    assert len(lines) == 1
    assert lines[0]["status"] == "error" and lines[0]["payload"] is None
    assert lines[0]["error"]["errorType"] == "ValueError" and lines[0]["event"] == {"n": 5}

    assert len(cli(live, "results", "echo", "--json", "--limit", "1").stdout.splitlines()) == 1
    table = cli(live, "results", "echo")
    assert table.returncode == 0 and rid in table.stdout


def test_status_shows_functions_and_counts(live: Stack) -> None:
    live.create_function("fails", FAILS)
    for _ in range(2):
        assert cli(live, "invoke", "echo").returncode == 0
    assert cli(live, "invoke", "fails").returncode == 1
    proc = cli(live, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    data = orjson.loads(proc.stdout)
    fns = data["functions"]
    assert fns["echo"]["Invocations"] == 2 and fns["echo"].get("Errors", 0) == 0
    assert fns["fails"]["Invocations"] == 1 and fns["fails"]["Errors"] == 1
    assert data["queues"]["workers"] >= 1
    text = cli(live, "status")
    assert text.returncode == 0, text.stderr
    rows = {line.split("│")[1].strip(): line for line in text.stdout.splitlines() if line.count("│") > 3}
    assert "echo" in rows and "fails" in rows, text.stdout
    assert " 2 " in rows["echo"] and " 1 " in rows["fails"]


def test_cli_errors_are_one_line(stack: Stack, tmp_path: Path) -> None:
    stack.create_function("echo", ECHO)
    one_line_error(cli(stack, "invoke", "ghost", "--payload", "{}"), "ResourceNotFoundException", "ghost")
    one_line_error(cli(stack, "invoke", "ghost", "--async"), "ResourceNotFoundException")
    one_line_error(cli(stack, "invoke", "echo", "--payload", "{not json"), "InvalidRequestContentException")
    big = orjson.dumps({"pad": "x" * (1024 * 1024 + 10)})
    one_line_error(cli(stack, "invoke", "echo", "--async", "--payload", "-", stdin=big), "RequestEntityTooLargeException")
    one_line_error(cli(stack, "dlq", "show", "no-such-id"), "no DLQ record")

    # no instance: no --redis-url, no EVENTMILL_REDIS_URL, an empty data dir
    env = {k: v for k, v in stack.env().items() if k not in ("EVENTMILL_REDIS_URL", "EVENTMILL_DATA_DIR")}
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (("status",), ("invoke", "echo")):
        one_line_error(cli(None, *args, "--data-dir", str(empty), env=env), "no running eventmill")
    # an instance file whose process is gone is no instance either
    (empty / "instance.json").write_text(orjson.dumps({"redis_url": stack.redis_url, "aws_endpoint": "x", "api_url": "x", "pid": 2**22 + 7}).decode())
    one_line_error(cli(None, "status", "--data-dir", str(empty), env=env), "no running eventmill")
    (empty / "instance.json").write_text("garbage")
    one_line_error(cli(None, "status", "--data-dir", str(empty), env=env), "instance.json")
    # Redis not reachable
    one_line_error(cli(None, "status", "--redis-url", "redis://127.0.0.1:1/0", env=env), "cannot reach Redis")


def dlq_list(stack: Stack, function: str) -> str:
    proc = cli(stack, "dlq", "list", function)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_dlq_list_show_redrive_purge(live: Stack) -> None:
    live.create_function("flaky", FAILS)
    live.lambda_client.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=0)
    rids = [invoke_event(live, "flaky", orjson.dumps({"n": n})) for n in range(3)]
    live.wait_for(lambda: len(live.dlq("flaky")) == 3, timeout=40, what="3 events in our DLQ")

    listing = dlq_list(live, "flaky")
    for rid in rids:
        assert rid in listing, listing
    assert listing.count("RetriesExhausted") == 3
    assert rids[0] in cli(live, "dlq", "list").stdout  # all functions

    shown = cli(live, "dlq", "show", rids[1])
    assert shown.returncode == 0, shown.stderr
    record: dict[str, Any] = orjson.loads(shown.stdout)
    assert record["requestId"] == rids[1] and record["functionName"] == "flaky"
    assert record["event"] == {"n": 1}
    assert record["condition"] == "RetriesExhausted" and record["attempts"] == 1
    assert record["error"]["errorMessage"] == "nope 1"

    # fix the function, then redrive: every event runs again and leaves the DLQ
    live.lambda_client.update_function_code(FunctionName="flaky", ZipFile=zip_source({"app.py": ECHO}))
    proc = cli(live, "dlq", "redrive", "flaky")
    assert proc.returncode == 0, proc.stderr
    assert "redriven 3" in proc.stdout
    assert live.dlq("flaky") == []
    assert all(rid not in dlq_list(live, "flaky") for rid in rids)
    done = live.wait_for(
        lambda: [r for r in live.results("flaky") if r["status"] == "success"] if len([r for r in live.results("flaky") if r["status"] == "success"]) == 3 else None,
        timeout=40, what="redriven events to succeed",
    )
    assert sorted(r["event"]["n"] for r in done) == [0, 1, 2]
    assert not {r["requestId"] for r in done} & set(rids)  # redrive uses new request ids

    # purge
    live.lambda_client.update_function_code(FunctionName="flaky", ZipFile=zip_source({"app.py": FAILS}))
    more = [invoke_event(live, "flaky", orjson.dumps({"n": n})) for n in (7, 8)]
    live.wait_for(lambda: len(live.dlq("flaky")) == 2, timeout=40, what="2 more events in our DLQ")
    assert {d["requestId"] for d in live.dlq("flaky")} == set(more)
    proc = cli(live, "dlq", "purge", "flaky")
    assert proc.returncode == 0 and "purged 2" in proc.stdout, proc.stdout + proc.stderr
    assert live.dlq("flaky") == []
    one_line_error(cli(live, "dlq", "show", more[0]), "no DLQ record")

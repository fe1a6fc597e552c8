"""Environment lifecycle: warm reuse, and a fresh environment after timeout, OOM or crash."""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import pytest

from sandbox import Pool

COUNTER = """
    import os
    import subprocess
    import sys
    import time
    count = 0

    def handler(event, context):
        global count
        count += 1
        action = event.get("action")
        if action == "sleep":
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", event["token"]])
            time.sleep(30)
        elif action == "oom":
            hog = b"x" * (4 * int(context.memory_limit_in_mb) * 1024 * 1024)
            return len(hog)
        elif action == "exit":
            os._exit(1)
        elif action == "segv":
            import ctypes
            ctypes.string_at(0)
        elif action == "write":
            with open("/tmp/state.txt", "w") as f:
                f.write(event["value"])
        elif action == "read":
            with open("/tmp/state.txt") as f:
                return f.read()
        return count
"""


def _host_pids_with(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_counter_survives_100_serial_invocations(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER})
    counts = [json.loads(pool.invoke(spec, req()).payload) for _ in range(100)]
    assert counts == list(range(1, 101))
    assert pool.environment_count == 1


def test_tmp_persists_between_invocations(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER})
    value = uuid.uuid4().hex
    assert pool.invoke(spec, req(json.dumps({"action": "write", "value": value}).encode())).ok
    second = pool.invoke(spec, req(b'{"action": "read"}'))
    assert json.loads(second.payload) == value


def test_code_version_change_gets_fresh_environment(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER}, code_version="1")
    assert [json.loads(pool.invoke(spec, req()).payload) for _ in range(3)] == [1, 2, 3]
    from dataclasses import replace

    changed = replace(spec, code_version="2")
    result = pool.invoke(changed, req())
    assert json.loads(result.payload) == 1
    assert result.init_duration_ms is not None
    assert pool.environment_count == 1  # the old version's environment was retired


def test_retire_drops_warm_environment(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER})
    assert json.loads(pool.invoke(spec, req()).payload) == 1
    pool.retire(spec.name)
    assert pool.environment_count == 0
    assert json.loads(pool.invoke(spec, req()).payload) == 1


def test_idle_timeout_retires_environment(make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER})
    with Pool(mode="nsjail", idle_timeout_s=0.2) as short:
        assert json.loads(short.invoke(spec, req()).payload) == 1
        deadline = time.monotonic() + 3
        while short.environment_count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert short.environment_count == 0
        assert json.loads(short.invoke(spec, req()).payload) == 1


def test_timeout_kills_environment_and_background_child(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER}, timeout_s=1.0)
    token = f"eventmill-bg-{uuid.uuid4().hex}"
    request = req(json.dumps({"action": "sleep", "token": token}).encode())
    started = time.monotonic()
    result = pool.invoke(spec, request)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.error_type == "Sandbox.Timedout"
    assert result.function_error == "Unhandled"
    message = json.loads(result.payload)["errorMessage"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z " + re.escape(request.request_id) + r" Task timed out after 1\.00 seconds",
        message,
    )
    assert elapsed < 3.0
    assert _host_pids_with(token) == []
    assert json.loads(pool.invoke(spec, req()).payload) == 1  # fresh environment


def test_out_of_memory_kills_environment(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": COUNTER}, memory_mb=128)
    assert json.loads(pool.invoke(spec, req()).payload) == 1
    result = pool.invoke(spec, req(b'{"action": "oom"}'))
    assert result.error_type == "Runtime.OutOfMemory", result.log
    body = json.loads(result.payload)
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert result.max_memory_used_mb <= 128
    assert json.loads(pool.invoke(spec, req()).payload) == 1


@pytest.mark.parametrize(
    ("action", "reason"),
    [("exit", "exit status 1"), ("segv", "signal: segmentation fault")],
)
def test_runtime_exit_error(pool: Pool, make_function, req, action: str, reason: str) -> None:
    spec = make_function({"handler.py": COUNTER})
    assert json.loads(pool.invoke(spec, req()).payload) == 1
    request = req(json.dumps({"action": action}).encode())
    result = pool.invoke(spec, request)
    assert result.error_type == "Runtime.ExitError"
    assert json.loads(result.payload) == {
        "errorMessage": f"RequestId: {request.request_id} Error: Runtime exited with error: {reason}",
        "errorType": "Runtime.ExitError",
    }
    assert json.loads(pool.invoke(spec, req()).payload) == 1

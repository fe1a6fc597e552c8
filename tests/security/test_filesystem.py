"""Filesystem isolation: host secrets, other functions and the code mount are out of reach.

Each handler reports every attempt; the test checks the exact errno and then that
the same function's next invocation is healthy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import FunctionSpec, Pool

from .conftest import MakeFunction
from .helpers import RedisServer, assert_healthy, assert_refused, invoke, report

# Not visible (mount namespace) or not readable (uid 65534): both are refusals.
HIDDEN = {"ENOENT", "EACCES"}

READ_PROBE = """
def probe(event):
    out = {}
    for key, path in event["read"].items():
        out["read:" + key] = attempt(read_text, path)
    for key, path in event.get("list", {}).items():
        out["list:" + key] = attempt(os.listdir, path)
    if event.get("task_has"):
        task = read_text("/var/task/app.py")
        out["task_has"] = {needle: needle in task for needle in event["task_has"]}
    return out
"""


@pytest.fixture()
def root_canary() -> Iterator[Path]:
    """A secret file planted in the host's /root, so reading it would be a visible leak."""
    path = Path("/root") / f".eventmill-canary-{uuid.uuid4().hex[:8]}"
    path.write_text("root-canary-" + uuid.uuid4().hex)
    path.chmod(0o644)  # readable by anyone who can reach it: only the jail may hide it
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_read_etc_shadow_and_root(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec, root_canary: Path
) -> None:
    """/etc/shadow and the host's /root (with a planted canary) are absent or unreadable."""
    spec = make_function("read-host-secrets", READ_PROBE)
    data = report(
        invoke(
            pool,
            spec,
            {
                "read": {"shadow": "/etc/shadow", "canary": str(root_canary)},
                "list": {"root": "/root"},
            },
        )
    )
    assert_refused(data["read:shadow"], HIDDEN, "read /etc/shadow")
    assert_refused(data["read:canary"], HIDDEN, f"read {root_canary}")
    listing = data["list:root"]
    if "ok" in listing:
        # /root may exist as mount scaffolding for the interpreter under /root/.pyenv,
        # but none of the host's own /root entries may show through.
        assert root_canary.name not in listing["ok"], f"host /root visible in jail: {listing}"
        host_entries = set(os.listdir("/root")) - {".pyenv"}
        leaked = [e for e in host_entries if repr(e) in listing["ok"]]
        assert not leaked, f"host /root entries visible in jail: {leaked} ({listing})"
    else:
        assert_refused(listing, HIDDEN, "list /root")
    assert_healthy(pool, spec, trivial_spec)


def test_read_redis_data_dir(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec, redis_server: RedisServer
) -> None:
    """Redis's data directory (with a saved secret in dump.rdb) is not reachable from the jail."""
    secret = "redis-secret-" + uuid.uuid4().hex
    assert b"+OK" in redis_server.command("SET", "secret", secret)
    assert b"+OK" in redis_server.command("SAVE")
    dump = redis_server.data_dir / "dump.rdb"
    assert secret.encode() in dump.read_bytes()  # control: it is on disk, world-readable

    spec = make_function("read-redis-dir", READ_PROBE)
    data = report(
        invoke(
            pool,
            spec,
            {"read": {"dump": str(dump)}, "list": {"dir": str(redis_server.data_dir)}},
        )
    )
    assert_refused(data["read:dump"], HIDDEN, f"read {dump}")
    assert_refused(data["list:dir"], HIDDEN, f"list {redis_server.data_dir}")
    assert_healthy(pool, spec, trivial_spec)


def test_read_another_functions_code_and_tmp(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """Function B sees neither A's code dir (by its host path) nor the file A left in its /tmp."""
    secret = "a-tmp-secret-" + uuid.uuid4().hex
    spec_a = make_function(
        "tenant-a",
        """
        A_CODE_SECRET = "a-code-secret"

        def probe(event):
            if event.get("write"):
                with open("/tmp/a-secret.txt", "w") as fh:
                    fh.write(event["write"])
            return {"tmp": attempt(read_text, "/tmp/a-secret.txt")}
        """,
    )
    spec_b = make_function("tenant-b", READ_PROBE + 'B_CODE_MARK = "b"\n')

    a_first = report(invoke(pool, spec_a, {"write": secret}))
    assert a_first["tmp"] == {"ok": repr(secret)}
    # Control: A's /tmp persists across A's own warm invocations, so the file exists
    # while B looks for it.
    assert report(invoke(pool, spec_a, {}))["tmp"] == {"ok": repr(secret)}

    data = report(
        invoke(
            pool,
            spec_b,
            {
                "read": {
                    "a_code": str(spec_a.code_dir / "app.py"),
                    "a_tmp": "/tmp/a-secret.txt",
                },
                "list": {"a_dir": str(spec_a.code_dir), "tmp": "/tmp"},
                "task_has": ["A_CODE_SECRET", "B_CODE_MARK"],
            },
        )
    )
    assert_refused(data["read:a_code"], HIDDEN, "B reads A's code by host path")
    assert_refused(data["list:a_dir"], HIDDEN, "B lists A's code dir by host path")
    assert_refused(data["read:a_tmp"], {"ENOENT"}, "B reads A's /tmp file")
    assert "a-secret.txt" not in data["list:tmp"].get("ok", ""), data["list:tmp"]
    assert data["task_has"] == {"A_CODE_SECRET": False, "B_CODE_MARK": True}, "B's /var/task must be B's own code"
    assert_healthy(pool, spec_a)
    assert_healthy(pool, spec_b, trivial_spec)


def test_write_to_var_task(pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec) -> None:
    """/var/task is a read-only mount: EROFS even though the host dir is world-writable."""
    spec = make_function(
        "write-var-task",
        """
        def modify():
            with open("/var/task/app.py", "a") as fh:
                fh.write("# tampered")

        def create():
            with open("/var/task/evil.py", "w") as fh:
                fh.write("x = 1")

        def probe(event):
            return {
                "modify": attempt(modify),
                "create": attempt(create),
                "unlink": attempt(os.unlink, "/var/task/app.py"),
                "chmod": attempt(os.chmod, "/var/task/app.py", 0o777),
            }
        """,
    )
    # Make the host side writable by anyone, so only the read-only bind mount can refuse.
    spec.code_dir.chmod(0o777)
    (spec.code_dir / "app.py").chmod(0o666)
    before = (spec.code_dir / "app.py").read_bytes()

    data = report(invoke(pool, spec, {}))
    for key in ("modify", "create", "unlink", "chmod"):
        assert_refused(data[key], {"EROFS"}, f"{key} in /var/task")
    assert (spec.code_dir / "app.py").read_bytes() == before
    assert not (spec.code_dir / "evil.py").exists()
    assert_healthy(pool, spec, trivial_spec)

"""Resource limits: pids, memory, wall-clock timeout and /tmp size hold, and the host shrugs.

Each limit is pushed past its value; the handler either gets the specific error
(EAGAIN, MemoryError, ENOSPC) or its environment is killed, and the function's
next invocation is healthy (a fresh environment where one was killed).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

from sandbox import FunctionSpec, InvokeResult, Pool

from .conftest import MakeFunction
from .helpers import (
    assert_healthy,
    assert_refused,
    describe,
    host_can_spawn,
    host_pids_with_marker,
    invoke,
    report,
)

FORK_ATTEMPTS = 10_000


def test_fork_bomb_contained_by_pids_limit(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """Forking until refused stops at the pids limit with EAGAIN, long before 10,000 processes."""
    spec = make_function(
        "fork-bomb",
        """
        import time

        def probe(event):
            children = 0
            error = None
            t0 = time.monotonic()
            for _ in range(event["attempts"]):
                try:
                    pid = os.fork()
                except OSError as exc:
                    error = {"exc": type(exc).__name__, "errname": _errno.errorcode.get(exc.errno)}
                    break
                if pid == 0:
                    # Exit at once and never be reaped: a zombie holds its pid but
                    # no memory, so the pids limit (not the memory limit) must stop this.
                    os._exit(0)
                children += 1
                if time.monotonic() - t0 > 4:
                    break
            return {"children": children, "error": error, "elapsed_s": round(time.monotonic() - t0, 3)}
        """,
        timeout_s=6,
    )
    res = invoke(pool, spec, {"attempts": FORK_ATTEMPTS})
    data = report(res)
    assert data["error"] is not None, f"forked {data['children']} children without refusal: {data}"
    assert data["error"]["exc"] == "BlockingIOError" and data["error"]["errname"] == "EAGAIN", data
    assert data["children"] <= 1024, f"pids limit looser than Lambda's 1024: {data}"
    assert host_can_spawn()
    assert_healthy(pool, spec, trivial_spec)


def test_allocate_four_times_memory_size(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """Touching 4x MemorySize either raises MemoryError within MemorySize or kills the environment."""
    memory_mb = 128
    spec = make_function(
        "memory-hog",
        """
        def probe(event):
            chunks = []
            try:
                for _ in range(event["mb"] // 8):
                    chunks.append(b"\\x01" * (8 << 20))  # really touched, not lazily mapped
            except MemoryError:
                got = len(chunks) * 8
                chunks.clear()
                return {"alloc": "MemoryError", "allocated_mb": got}
            return {"alloc": "ok", "allocated_mb": len(chunks) * 8}
        """,
        memory_mb=memory_mb,
        timeout_s=5,
    )
    res = invoke(pool, spec, {"mb": 4 * memory_mb})
    if res.ok:
        data = report(res)
        assert data["alloc"] == "MemoryError", f"allocated 4x MemorySize: {data}"
        assert data["allocated_mb"] <= memory_mb, f"limit looser than MemorySize: {data}"
    else:
        # OOM-killed: reported like Lambda's "Runtime exited ... signal: killed".
        assert res.function_error == "Unhandled" and not res.timed_out, describe(res)
        assert (res.error_type or "").startswith("Runtime."), describe(res)
        assert res.max_memory_used_mb <= memory_mb, f"peak above MemorySize: {describe(res)}"
    assert_healthy(pool, spec, trivial_spec)


def test_timeout_kills_handler_and_background_child(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """A handler sleeping past Timeout, with a detached child, is killed together with the child.

    The child carries a unique marker in its argv, so the host can see it alive
    during the invocation (control) and gone after it. The next invocation must
    run in a fresh environment (the /tmp file the killed one wrote is gone).
    """
    marker = "eventmill-bg-" + uuid.uuid4().hex
    spec = make_function(
        "sleeper",
        """
        import time

        def probe(event):
            if event.get("check"):
                return {"tmp_marker": os.path.exists("/tmp/was-here")}
            open("/tmp/was-here", "w").close()
            pid = os.fork()
            if pid == 0:
                try:
                    os.setsid()  # leave the handler's session and process group
                    fd = os.open("/tmp/bg.log", os.O_WRONLY | os.O_CREAT, 0o600)
                    for std in (0, 1, 2):
                        os.dup2(fd, std)
                    os.execv(sys.executable, [sys.executable, "-c",
                             "import time\\nwhile True: time.sleep(1)", event["marker"]])
                finally:
                    os._exit(1)
            time.sleep(30)
            return {"slept": True}
        """,
        timeout_s=1,
    )
    seen_alive: list[int] = []
    result: list[InvokeResult | BaseException] = []

    def run() -> None:
        try:
            result.append(invoke(pool, spec, {"marker": marker}))
        except BaseException as exc:  # re-raised below, in the test's thread
            result.append(exc)

    worker = threading.Thread(target=run)
    t0 = time.monotonic()
    worker.start()
    while worker.is_alive():
        if not seen_alive:
            seen_alive.extend(host_pids_with_marker(marker))
        time.sleep(0.02)
    worker.join()
    elapsed = time.monotonic() - t0
    res = result[0]
    if isinstance(res, BaseException):
        for pid in host_pids_with_marker(marker):
            os.kill(pid, signal.SIGKILL)
        raise res

    assert seen_alive, "control: the background child never showed up on the host"
    assert res.timed_out and res.function_error == "Unhandled", describe(res)
    assert res.error_type == "Sandbox.Timedout", describe(res)
    assert elapsed < 5, f"timeout of 1 s took {elapsed:.1f} s to enforce"
    deadline = time.monotonic() + 2
    while host_pids_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = host_pids_with_marker(marker)
    for pid in survivors:  # do not leave a leaked child behind on the host
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"background child survived the timeout: host pids {survivors}"

    data = report(invoke(pool, spec, {"check": True}))
    assert data["tmp_marker"] is False, "next invocation reused the timed-out environment"
    assert_healthy(pool, spec, trivial_spec)


def test_tmp_beyond_ephemeral_storage(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """Writing 32 MB into a 16 MB /tmp fails with ENOSPC at about 16 MB."""
    ephemeral_mb = 16
    spec = make_function(
        "tmp-filler",
        """
        def fill(mb, written):
            # 4 MB files, so the per-file size rlimit (EFBIG) cannot pre-empt the
            # tmpfs size limit under test.
            block = b"\\x00" * (1 << 20)
            for i in range(mb // 4):
                with open(f"/tmp/fill-{i}.bin", "wb") as fh:
                    for _ in range(4):
                        fh.write(block)
                        fh.flush()
                        written[0] += 1

        def probe(event):
            written = [0]
            out = attempt(fill, event["mb"], written)
            return {"fill": out, "written_mb": written[0]}
        """,
        ephemeral_mb=ephemeral_mb,
        memory_mb=128,
        timeout_s=2,
    )
    data = report(invoke(pool, spec, {"mb": 2 * ephemeral_mb}))
    assert_refused(data["fill"], {"ENOSPC"}, "write 32 MB to a 16 MB /tmp")
    assert data["written_mb"] <= ephemeral_mb, f"/tmp larger than EphemeralStorage: {data}"
    assert data["written_mb"] >= ephemeral_mb - 2, f"/tmp much smaller than EphemeralStorage: {data}"
    assert_healthy(pool, spec, trivial_spec)

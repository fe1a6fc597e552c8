"""Warm execution environments, reused for serial invocations as Lambda does.

Environments are keyed by the whole FunctionSpec (code_version included), so any
code or configuration change gets a fresh one, and idle environments of the
function's older specs are retired as soon as the new spec is invoked. At most
`max_environments` exist at once; when full, the least recently used idle
environment is evicted, and callers wait only when every environment is busy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Literal

from sandbox import jail, results
from sandbox.environment import Environment
from sandbox.interpreter import find_interpreter
from sandbox.types import FunctionSpec, InvokeRequest, InvokeResult, SandboxUnavailable

log = logging.getLogger("eventmill.sandbox")
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
Mode = Literal["nsjail", "none"]


class Pool:
    """Thread-safe pool; `invoke` blocks the caller for the duration of one invocation."""

    def __init__(self, mode: Mode = "nsjail", idle_timeout_s: float = 300.0, max_environments: int = 16) -> None:
        if mode not in ("nsjail", "none"):
            raise ValueError(f"sandbox mode must be 'nsjail' or 'none', not {mode!r}")
        if max_environments < 1:
            raise ValueError("max_environments must be at least 1")
        self.mode: Mode = mode
        self.idle_timeout_s = idle_timeout_s
        self.max_environments = max_environments
        self._nsjail: Path | None = None
        self._cgroups = False
        if mode == "nsjail":
            self._nsjail = jail.find_nsjail()
            own = find_interpreter(f"python{sys.version_info[0]}.{sys.version_info[1]}")
            assert own is not None
            jail.probe(self._nsjail, own)
            self._cgroups = jail.prepare_cgroups()
            if not self._cgroups:
                log.warning("cgroup v1 memory/pids controllers unusable: memory limited with rlimit_as only")
        else:
            log.warning(
                "sandbox mode 'none': functions run as plain processes with NO isolation "
                "(no namespaces, no memory/pids limits, no seccomp, host filesystem and network visible)"
            )
        self._cond = threading.Condition()
        self._idle: dict[FunctionSpec, list[Environment]] = defaultdict(list)
        self._all: set[Environment] = set()
        self._reserved = 0  # slots taken by environments being started
        self._generation: dict[str, int] = defaultdict(int)
        self._closed = False
        self._workdir = Path(tempfile.mkdtemp(prefix="eventmill-sandbox-"))
        self._layers: dict[tuple[tuple[Path, ...], str], Path] = {}
        self._reaper = threading.Thread(target=self._reap_loop, name="eventmill-sandbox-reaper", daemon=True)
        self._reaper.start()

    def invoke(self, spec: FunctionSpec, request: InvokeRequest) -> InvokeResult:
        interpreter = find_interpreter(spec.runtime)
        if interpreter is None:
            message = f"Runtime {spec.runtime!r} is not available on this host (no interpreter found)"
            return InvokeResult(
                request_id=request.request_id, function_error="Unhandled", error_type="Runtime.InvalidRuntime",
                payload=json.dumps({"errorMessage": message, "errorType": "Runtime.InvalidRuntime"}).encode(),
                log=message + "\n",
            )
        env = self._acquire(spec)
        try:
            init_ms: float | None = None
            if env is None:
                env = Environment(
                    spec, mode=self.mode, interpreter=interpreter, runtime_dir=RUNTIME_DIR,
                    opt_dir=self._opt_dir(spec), nsjail=self._nsjail, cgroups=self._cgroups,
                    generation=self._generation[spec.name],
                )
                with self._cond:
                    self._reserved -= 1
                    self._all.add(env)
                env.start()
                if not env.alive:
                    return results.from_init_failure(env, spec, request)
                init_ms = env.init_duration_ms
            started = time.monotonic()
            reply = env.invoke(request, started + spec.timeout_s)
            return results.from_exchange(env, spec, request, reply, started, init_ms)
        finally:
            self._release(env)

    def retire(self, function_name: str) -> None:
        """Drop every environment of a function: idle ones now, busy ones when they finish."""
        with self._cond:
            self._generation[function_name] += 1
            doomed = [e for s, envs in self._idle.items() if s.name == function_name for e in envs]
            for spec in [s for s in self._idle if s.name == function_name]:
                del self._idle[spec]
            self._forget(doomed)
        for env in doomed:
            env.kill()

    def close(self) -> None:
        """Kill every environment, busy ones included; the pool refuses work afterwards."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            doomed = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for env in doomed:
            env.kill()
        self._reaper.join(timeout=5)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def environment_count(self) -> int:
        with self._cond:
            return len(self._all) + self._reserved

    def _acquire(self, spec: FunctionSpec) -> Environment | None:
        """An idle warm environment for `spec`, or None after reserving a slot for a new one."""
        doomed: list[Environment] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise SandboxUnavailable("sandbox pool is closed")
                    for other in [s for s in self._idle if s.name == spec.name and s != spec]:
                        doomed += self._idle.pop(other)
                    self._forget(doomed)
                    idle = self._idle.get(spec)
                    while idle:
                        env = idle.pop()
                        if env.alive:
                            return env
                        doomed.append(env)
                        self._forget([env])
                    if len(self._all) + self._reserved < self.max_environments:
                        self._reserved += 1
                        return None
                    victim = self._least_recent_idle()
                    if victim is not None:
                        doomed.append(victim)
                        self._forget([victim])
                        continue
                    self._cond.wait()
        finally:
            for env in doomed:
                env.kill()

    def _release(self, env: Environment | None) -> None:
        if env is None:
            with self._cond:
                self._reserved -= 1
                self._cond.notify()
            return
        keep = False
        with self._cond:
            current = self._generation[env.spec.name] == env.generation
            if env in self._all and env.alive and current and not self._closed:
                env.last_used = time.monotonic()
                self._idle[env.spec].append(env)
                keep = True
            else:
                self._forget([env])
            self._cond.notify()
        if not keep:
            env.kill()

    def _forget(self, envs: list[Environment]) -> None:
        for env in envs:
            self._all.discard(env)

    def _least_recent_idle(self) -> Environment | None:
        best: tuple[float, FunctionSpec, Environment] | None = None
        for spec, envs in self._idle.items():
            for env in envs:
                if best is None or env.last_used < best[0]:
                    best = (env.last_used, spec, env)
        if best is None:
            return None
        self._idle[best[1]].remove(best[2])
        return best[2]

    def _reap_loop(self) -> None:
        """Retire environments idle for longer than idle_timeout_s."""
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(timeout=min(1.0, max(self.idle_timeout_s / 4, 0.05)))
                if self._closed:
                    return
                cutoff = time.monotonic() - self.idle_timeout_s
                doomed = []
                for envs in self._idle.values():
                    stale = [e for e in envs if e.last_used < cutoff]
                    for env in stale:
                        envs.remove(env)
                    doomed += stale
                self._forget(doomed)
            for env in doomed:
                env.kill()

    def _opt_dir(self, spec: FunctionSpec) -> Path | None:
        """Layers merged into one /opt tree, later layers winning, as Lambda extracts them."""
        if not spec.layers:
            return None
        if len(spec.layers) == 1:
            return spec.layers[0].resolve()
        key = (spec.layers, spec.code_version)
        with self._cond:
            cached = self._layers.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        merged = self._workdir / f"opt-{digest}"
        if not merged.exists():
            staging = Path(tempfile.mkdtemp(dir=self._workdir))
            for layer in spec.layers:
                shutil.copytree(layer, staging, dirs_exist_ok=True, symlinks=True)
            staging.chmod(0o755)
            staging.rename(merged)
        with self._cond:
            self._layers[key] = merged
        return merged

"""Sandbox costs side by side: cold start, warm overhead, memory. Prints a table; asserts nothing.

Run: /work/venv/bin/python bench/bench_sandbox.py
Targets: cold < 60 ms, warm overhead < 1 ms, idle worker + one warm env < 80 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import FunctionSpec, InvokeRequest, Pool  # noqa: E402
from sandbox.interpreter import find_interpreter  # noqa: E402
from bench.procstats import descendants, pct, vm_rss_kb  # noqa: E402

HANDLER = "import json\ndef handler(event, context):\n    return {'ok': True, 'n': event.get('n')}\n"


def main() -> None:
    idle_worker_kb = vm_rss_kb(os.getpid())
    code = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    code.chmod(0o755)
    (code / "handler.py").write_text(HANDLER)
    (code / "handler.py").chmod(0o644)
    rows: list[tuple[str, str, str]] = []

    interp = find_interpreter(f"python{sys.version_info[0]}.{sys.version_info[1]}")
    assert interp is not None
    for label, args in (("plain `python -I -c pass`", ["-I"]), ("plain `python -I -S -c pass`", ["-I", "-S"])):
        times = []
        for _ in range(20):
            t = time.perf_counter()
            subprocess.run([str(interp.executable), *args, "-c", "pass"], check=True)
            times.append((time.perf_counter() - t) * 1000)
        rows.append((label, f"{statistics.median(times):.1f} ms", f"p90 {pct(times, 0.9):.1f} ms"))

    pool = Pool(mode="nsjail", idle_timeout_s=300, max_environments=4)
    cold, init = [], []
    for i in range(20):
        spec = FunctionSpec(name="bench", code_dir=code, handler="handler.handler", code_version=f"cold-{i}")
        t = time.perf_counter()
        result = pool.invoke(spec, InvokeRequest(str(uuid.uuid4()), b'{"n": 1}'))
        cold.append((time.perf_counter() - t) * 1000)
        init.append(result.init_duration_ms or 0.0)
        assert result.ok, result.payload
    rows.append(("cold invoke (nsjail+python+import+1st call)", f"{statistics.median(cold):.1f} ms",
                 f"p90 {pct(cold, 0.9):.1f} ms"))
    rows.append(("  of which Init Duration", f"{statistics.median(init):.1f} ms", f"p90 {pct(init, 0.9):.1f} ms"))

    spec = FunctionSpec(name="bench", code_dir=code, handler="handler.handler", code_version="warm")
    pool.invoke(spec, InvokeRequest(str(uuid.uuid4()), b'{"n": 0}'))
    warm = []
    for i in range(1000):
        payload = json.dumps({"n": i}).encode()
        t = time.perf_counter()
        pool.invoke(spec, InvokeRequest(str(uuid.uuid4()), payload))
        warm.append((time.perf_counter() - t) * 1e6)
    namespace: dict[str, object] = {}
    exec(HANDLER, namespace)
    fn = namespace["handler"]
    inproc = []
    for i in range(1000):
        payload = json.dumps({"n": i}).encode()
        t = time.perf_counter()
        json.dumps(fn(json.loads(payload), None))  # type: ignore[operator]
        inproc.append((time.perf_counter() - t) * 1e6)
    rows.append(("warm invoke via pool", f"{statistics.median(warm):.0f} us", f"p99 {pct(warm, 0.99):.0f} us"))
    rows.append(("handler called in-process", f"{statistics.median(inproc):.1f} us", f"p99 {pct(inproc, 0.99):.1f} us"))
    rows.append(("warm overhead (median diff)", f"{statistics.median(warm) - statistics.median(inproc):.0f} us", ""))

    env_kb = sum(vm_rss_kb(p) for p in descendants(os.getpid()))
    worker_kb = vm_rss_kb(os.getpid())
    last = pool.invoke(spec, InvokeRequest(str(uuid.uuid4()), b"{}"))
    rows.append(("RSS idle worker (python + Pool imported)", f"{idle_worker_kb / 1024:.1f} MB", ""))
    rows.append(("RSS worker after bench", f"{worker_kb / 1024:.1f} MB", ""))
    rows.append(("RSS one warm env (nsjail + jailed python)", f"{env_kb / 1024:.1f} MB",
                 f"REPORT Max Memory Used {last.max_memory_used_mb} MB"))
    rows.append(("idle worker + one warm env", f"{(idle_worker_kb + env_kb) / 1024:.1f} MB", "target < 80 MB"))
    pool.close()
    shutil.rmtree(code, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median':>10}  spread")
    for name, value, extra in rows:
        print(f"{name:<{width}}  {value:>10}  {extra}")


if __name__ == "__main__":
    main()

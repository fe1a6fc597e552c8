"""Per-invocation logs: START/END/REPORT byte layout, handler output, JSON format."""

from __future__ import annotations

import json
import re

from sandbox import Pool

HANDLER = """
    import logging
    print("init output")
    def handler(event, context):
        print("hello from", context.aws_request_id)
        logging.getLogger().warning("careful")
        logging.getLogger("app").info("info line")
        return "ok"
"""

REPORT = (
    r"REPORT RequestId: {rid}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms \t"
    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t"
)


def test_text_log_lines(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": HANDLER})
    first, second = req(), req()
    cold = pool.invoke(spec, first)
    warm = pool.invoke(spec, second)
    lines = cold.log.split("\n")
    assert lines[0] == "init output"
    assert lines[1] == f"START RequestId: {first.request_id} Version: $LATEST"
    assert lines[2] == f"hello from {first.request_id}"
    assert re.fullmatch(
        r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + first.request_id + r"\tcareful", lines[3]
    )
    assert lines[4] == f"END RequestId: {first.request_id}"
    assert re.fullmatch(REPORT.format(rid=first.request_id) + r"Init Duration: \d+\.\d\d ms\t", lines[5])
    assert lines[6:] == [""]
    assert cold.init_duration_ms is not None and cold.init_duration_ms > 0
    assert "info line" not in cold.log  # Text format keeps the root logger at WARNING, like Lambda

    warm_lines = warm.log.split("\n")
    assert warm_lines[0] == f"START RequestId: {second.request_id} Version: $LATEST"
    assert "init output" not in warm.log and "Init Duration" not in warm.log
    assert re.fullmatch(REPORT.format(rid=second.request_id), warm_lines[-2])
    assert warm.init_duration_ms is None
    assert warm.billed_duration_ms >= 1 and 0 < warm.max_memory_used_mb <= 128


def test_output_is_attributed_to_its_invocation(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": """
        import sys
        def handler(event, context):
            sys.stdout.write("x" * 200000 + "\\n")
            sys.stderr.write("to stderr " + context.aws_request_id + "\\n")
            return 1
    """})
    results = [pool.invoke(spec, req()) for _ in range(5)]
    for result in results:
        assert result.log.count("x" * 200000) == 1
        assert f"to stderr {result.request_id}" in result.log
        assert result.log.count("START RequestId") == 1


def test_json_log_format(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": HANDLER}, log_format="JSON")
    request = req()
    result = pool.invoke(spec, request)
    assert result.ok
    records = [json.loads(line) for line in result.log.splitlines() if line.startswith("{")]
    kinds = [r.get("type") or r.get("level") for r in records]
    assert kinds == ["platform.start", "WARNING", "INFO", "platform.report"]
    assert records[0]["record"] == {"requestId": request.request_id, "version": "$LATEST"}
    app = records[2]
    assert app["message"] == "info line" and app["logger"] == "app" and app["requestId"] == request.request_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", app["timestamp"])
    report = records[3]["record"]
    assert report["requestId"] == request.request_id and report["status"] == "success"
    assert set(report["metrics"]) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
    assert "START RequestId" not in result.log


def test_timeout_log_has_timeout_line(pool: Pool, make_function, req) -> None:
    spec = make_function({"handler.py": "import time\ndef handler(e, c):\n    print('before'); time.sleep(5)\n"}, timeout_s=1.0)
    request = req()
    result = pool.invoke(spec, request)
    lines = result.log.splitlines()
    assert "before" in lines
    assert lines[-2].startswith(f"REPORT RequestId: {request.request_id}\tDuration: ")
    assert lines[-1].endswith(f"{request.request_id} Task timed out after 1.00 seconds")

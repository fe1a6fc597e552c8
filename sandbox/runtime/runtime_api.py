"""Lambda Runtime API 2018-06-01 served inside the jail for custom runtimes (SEMANTICS G).

Stdlib only. The jail has no route to the host, so the API listens on the jail's
own loopback and relays to the host over the same control pipes the python
runtime uses: an invoke frame becomes the body of a pending
`/runtime/invocation/next`, and `/response` or `/error` becomes the result frame.
INIT ends when the custom bootstrap first asks for `next`, as on Lambda.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

PREFIX = "/2018-06-01"


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _client_context_json(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw


class Relay:
    """State shared by the HTTP handlers and the control-pipe reader."""

    def __init__(self, protocol: ModuleType, ctl_out: int) -> None:
        self.protocol = protocol
        self.ctl_out = ctl_out
        self.invocations: queue.Queue[tuple[dict[str, Any], bytes]] = queue.Queue()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.current: dict[str, Any] | None = None
        self.started = 0.0

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        with self.lock:
            self.protocol.write_frame(self.ctl_out, header, body)

    def finish(self, request_id: str, status: str, error_type: str | None, body: bytes) -> bool:
        current = self.current
        if current is None or current["request_id"] != request_id:
            return False
        self.current = None
        duration_ms = (time.perf_counter() - self.started) * 1000.0
        os.write(1, str(current["marker"]).encode())
        self.send({"type": "result", "status": status, "error_type": error_type, "duration_ms": duration_ms}, body)
        return True


def _handler_class(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/runtime/invocation/next":
                self._reply(404, b'{"errorType":"InvalidRequest","errorMessage":"not found"}')
                return
            if not relay.ready.is_set():
                relay.ready.set()
                relay.send({"type": "ready"})
            header, body = relay.invocations.get()
            relay.current = header
            relay.started = time.perf_counter()
            headers = {
                "Lambda-Runtime-Aws-Request-Id": str(header["request_id"]),
                "Lambda-Runtime-Deadline-Ms": str(header["deadline_ms"]),
                "Lambda-Runtime-Invoked-Function-Arn": str(header["arn"]),
                "Lambda-Runtime-Trace-Id": _trace_id(),
            }
            client_context = _client_context_json(header.get("client_context"))
            if client_context:
                headers["Lambda-Runtime-Client-Context"] = client_context
            if header.get("cognito_identity"):
                headers["Lambda-Runtime-Cognito-Identity"] = str(header["cognito_identity"])
            self._reply(200, body, headers)

        def do_POST(self) -> None:
            body = self._body()
            parts = self.path[len(PREFIX):].strip("/").split("/") if self.path.startswith(PREFIX) else []
            if parts == ["runtime", "init", "error"]:
                error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or _error_type(body)
                relay.send({"type": "init_error", "error_type": error_type}, body)
                self._reply(202, b'{"status":"OK"}')
                threading.Timer(0.05, os._exit, (1,)).start()
                return
            if len(parts) == 4 and parts[:2] == ["runtime", "invocation"] and parts[3] in ("response", "error"):
                if parts[3] == "response":
                    ok = relay.finish(parts[2], "ok", None, body)
                else:
                    error_type = _error_type(body) or self.headers.get("Lambda-Runtime-Function-Error-Type")
                    ok = relay.finish(parts[2], "error", error_type or "Unhandled", body)
                if ok:
                    self._reply(202, b'{"status":"OK"}')
                else:
                    self._reply(400, b'{"errorType":"InvalidRequestID","errorMessage":"unknown request id"}')
                return
            self._reply(404, b'{"errorType":"InvalidRequest","errorMessage":"not found"}')

    return Handler


def _error_type(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


def serve_custom(config: dict[str, Any], protocol: ModuleType, ctl_in: int, ctl_out: int) -> None:
    relay = Relay(protocol, ctl_out)
    server = ThreadingHTTPServer(("127.0.0.1", int(config["port"])), _handler_class(relay))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    task_root = str(config["task_root"])
    try:
        child = subprocess.Popen([os.path.join(task_root, "bootstrap")], cwd=task_root)
    except OSError as e:
        error = {"errorMessage": f"Couldn't find valid bootstrap(s): [{task_root}/bootstrap] ({e.strerror})",
                 "errorType": "Runtime.InvalidEntrypoint", "stackTrace": []}
        sys.stdout.write(json.dumps(error) + "\n")
        relay.send({"type": "init_error", "error_type": "Runtime.InvalidEntrypoint"}, json.dumps(error).encode())
        sys.exit(1)

    def watch() -> None:
        rc = child.wait()
        sys.stdout.flush()
        os._exit(rc if rc >= 0 else 128 - rc)  # pid 1 of the jail cannot re-raise the signal on itself

    threading.Thread(target=watch, daemon=True).start()
    while True:
        frame = protocol.read_frame(ctl_in)
        if frame is None:
            child.kill()
            return
        relay.invocations.put(frame)

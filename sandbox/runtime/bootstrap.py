"""In-jail runtime: imports the handler once (INIT), then serves invocations (INVOKE).

Runs as ``python -I -S -u bootstrap.py`` inside the jail; stdlib only, because the
jail sees nothing of eventmill's venv. fd 0/1 arrive as the control pipes and fd 2
as the log pipe; we move the control pipes aside and point fd 1 at the log pipe,
so the handler's prints, logging and child processes land in the function log the
way Lambda captures stdout/stderr. Behaviour (messages, error shapes, log format)
follows awslambdaric, the code Lambda's own python runtimes run.
"""

from __future__ import annotations

import decimal
import importlib
import importlib.util
import json
import logging
import os
import resource
import sys
import time
import traceback
from types import ModuleType
from typing import Any, Callable

CTL_IN = os.dup(0)
CTL_OUT = os.dup(1)
os.dup2(2, 1)
_null_r, _null_w = os.pipe()
os.dup2(_null_r, 0)
os.close(_null_r)
os.close(_null_w)
os.set_inheritable(CTL_IN, False)
os.set_inheritable(CTL_OUT, False)

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str) -> ModuleType:
    """Load a sibling file under a private name so it never shadows a handler module."""
    spec = importlib.util.spec_from_file_location(f"_eventmill_{name}", os.path.join(_HERE, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


protocol = _load("protocol")
lambda_context = _load("lambda_context")

_request_id: str | None = None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON application-log record (awslambdaric JsonFormatter, None fields dropped)."""

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info
        result: dict[str, Any] = {
            "timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ"),
            "level": record.levelname,
            "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc and exc[0] else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc else None,
        }
        return json.dumps({k: v for k, v in result.items() if v is not None}, default=str, ensure_ascii=False) + "\n"


class _StdoutHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


def setup_logging(log_format: str) -> None:
    """Root-logger handler as Lambda installs it; JSON format defaults the level to INFO."""
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    if log_format == "JSON":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL") or ("INFO" if log_format == "JSON" else "")
    if level.upper() in logging._nameToLevel:
        root.setLevel(level.upper())


def setup_python(task_root: str, opt_dir: str) -> None:
    """sys.path and builtins as on Lambda; -S kept the host's site-packages out."""
    import site

    tag = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    front = [task_root, f"{opt_dir}/python/lib/{tag}/site-packages", f"{opt_dir}/python"]
    sys.path[:0] = [p for p in front if p not in sys.path]
    site.setquit()
    site.setcopyright()
    site.sethelper()
    os.chdir(task_root)


def make_error(message: str, error_type: str, request_id: str | None, stack: list[str] | None) -> dict[str, Any]:
    """AWS error payload; key order as recorded from the python3.12 runtime."""
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id or "", "stackTrace": stack or []}


def log_error(error: dict[str, Any], log_format: str) -> None:
    """The [ERROR] record the runtime writes for an uncaught error (awslambdaric log_error)."""
    if log_format == "JSON":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sys.stdout.write(json.dumps({"timestamp": stamp, "level": "ERROR", **error}, ensure_ascii=False) + "\n")
        return
    line = "[ERROR] " + error["errorType"] + ": " + error["errorMessage"]
    lines = [line, "Traceback (most recent call last):"]
    for frame in error.get("stackTrace") or []:
        lines.extend(frame.splitlines())
    sys.stdout.write("\n".join(lines) + "\n")


class HandlerError(Exception):
    """An init-phase failure in Lambda's words (errorType + message + optional trace)."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack


def load_handler(handler: str) -> Callable[..., Any]:
    """awslambdaric._get_handler: the same checks and the same messages."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise HandlerError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {e}") from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise HandlerError("Runtime.BuiltInModuleConflict", f"Cannot use built-in module {modname} as a handler module")
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise HandlerError("Runtime.ImportModuleError", f"Unable to import module '{modname}': {e}") from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise HandlerError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {e}", trace) from None
    try:
        return getattr(module, fname)  # type: ignore[no-any-return]
    except AttributeError:
        raise HandlerError("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'") from None


def _decimal(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return float(obj) if obj.is_nan() or obj != obj.to_integral_value() else int(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def marshal(response: Any) -> bytes:
    if isinstance(response, bytes):
        return response
    ascii_only = os.environ.get("AWS_EXECUTION_ENV", "") < "AWS_Lambda_python3.12"
    return json.dumps(response, default=_decimal, ensure_ascii=ascii_only).encode()


def _user_stack(tb: Any) -> list[str]:
    frames = traceback.extract_tb(tb)
    while frames and frames[0].filename == __file__:
        frames.pop(0)
    return traceback.format_list(frames)


def run_invocation(fn: Callable[..., Any], header: dict[str, Any], body: bytes, log_format: str) -> None:
    global _request_id
    request_id = str(header["request_id"])
    _request_id = request_id
    status, error_type = "ok", None
    start = time.perf_counter()
    try:
        ctx = lambda_context.LambdaContext(header)
        try:
            event = json.loads(body) if body else {}
        except ValueError as e:
            raise HandlerError("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}") from None
        response = fn(event, ctx)
        try:
            out = marshal(response)
        except (TypeError, ValueError) as e:
            raise HandlerError("Runtime.MarshalError", f"Unable to marshal response: {e}") from None
    except HandlerError as e:
        error = make_error(e.message, e.error_type, request_id, e.stack)
        status, error_type, out = "error", e.error_type, json.dumps(error).encode()
        log_error(error, log_format)
    except MemoryError:
        status, error_type, out = "fatal", "Runtime.OutOfMemory", b""
    except Exception as e:
        error = make_error(str(e), type(e).__name__, request_id, _user_stack(e.__traceback__))
        status, error_type, out = "error", type(e).__name__, json.dumps(error).encode()
        log_error(error, log_format)
    duration_ms = (time.perf_counter() - start) * 1000.0
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, str(header["marker"]).encode())
    rss_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    reply = {"type": "result", "status": status, "error_type": error_type, "duration_ms": duration_ms, "rss_kb": rss_kb}
    protocol.write_frame(CTL_OUT, reply, out)
    _request_id = None
    if status == "fatal":
        os._exit(137)


def serve_python(config: dict[str, Any]) -> None:
    log_format = str(config["log_format"])
    setup_logging(log_format)
    setup_python(str(config["task_root"]), str(config["opt_dir"]))
    try:
        fn = load_handler(str(config["handler"]))
    except HandlerError as e:
        error = make_error(e.message, e.error_type, None, e.stack)
        log_error(error, log_format)
        sys.stdout.flush()
        protocol.write_frame(CTL_OUT, {"type": "init_error", "error_type": e.error_type}, json.dumps(error).encode())
        sys.exit(1)
    except Exception as e:
        error = make_error(str(e), type(e).__name__, None, _user_stack(e.__traceback__))
        log_error(error, log_format)
        sys.stdout.flush()
        protocol.write_frame(CTL_OUT, {"type": "init_error", "error_type": type(e).__name__}, json.dumps(error).encode())
        sys.exit(1)
    sys.stdout.flush()
    protocol.write_frame(CTL_OUT, {"type": "ready"})
    while True:
        frame = protocol.read_frame(CTL_IN)
        if frame is None:
            return
        header, body = frame
        run_invocation(fn, header, body, log_format)


def main() -> None:
    frame = protocol.read_frame(CTL_IN)
    if frame is None:
        return
    config = frame[0]
    if config.get("custom"):
        _load("runtime_api").serve_custom(config, protocol, CTL_IN, CTL_OUT)
    else:
        serve_python(config)


if __name__ == "__main__":
    main()

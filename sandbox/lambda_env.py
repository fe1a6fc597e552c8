"""The environment variables a function sees: its own plus Lambda's (SEMANTICS F.63-64).

Built from scratch for every environment; nothing is copied from the host's
os.environ, so secrets in the worker's environment never reach a function.
"""

from __future__ import annotations

import secrets
import time

from sandbox.interpreter import is_custom
from sandbox.types import FunctionSpec

RUNTIME_API = "127.0.0.1:9001"


def log_stream_name(version: str) -> str:
    """`2024/01/15/[$LATEST]<32 hex>`: one stream per execution environment, as in Lambda."""
    return time.strftime("%Y/%m/%d", time.gmtime()) + f"/[{version}]{secrets.token_hex(16)}"


def lambda_environment(
    spec: FunctionSpec, *, task_root: str, runtime_dir: str, opt_dir: str, log_stream: str, runtime_api: str
) -> dict[str, str]:
    env: dict[str, str] = {
        "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LANG": "en_US.UTF-8",
        "TZ": "UTC",
        "LD_LIBRARY_PATH": (
            f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task_root}:{task_root}/lib:{opt_dir}/lib"
        ),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    if not is_custom(spec.runtime):
        env["PYTHONPATH"] = runtime_dir
    env.update(dict(spec.environment))
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": runtime_dir,
        }
    )
    if spec.log_format == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env.setdefault("AWS_LAMBDA_LOG_LEVEL", "INFO")
    return env

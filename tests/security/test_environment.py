"""Environment variables: the worker's secrets never enter the jail.

Secrets are planted in this (worker) process's environment before the pool
starts an environment; the handler looks in os.environ, /proc/self/environ and
/proc/1/environ (the jail's init, which could have inherited more than the
handler). A function variable is the control that the channel works at all.
"""

from __future__ import annotations

import uuid

import pytest

from sandbox import FunctionSpec, Pool

from .conftest import MakeFunction
from .helpers import assert_healthy, invoke, report

ENV_PROBE = """
def probe(event):
    out = {"environ": dict(os.environ)}
    for path in ("/proc/self/environ", "/proc/1/environ"):
        out[path] = attempt(read_text, path)
    return out
"""


# Lambda's reserved and documented unreserved runtime variables, plus what a shell
# wrapper adds; anything else came from somewhere it should not have.
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
ALLOWED_NAMES = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "LANG", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "TZ",
    "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "PWD", "SHLVL", "_",
    "LC_CTYPE",  # set by Python itself when coercing the C locale (PEP 538)
}
ALLOWED_PREFIXES = ("AWS_", "_AWS_", "_LAMBDA_")


def _unexpected_names(environ: dict[str, str], function_vars: set[str]) -> list[str]:
    return sorted(
        n for n in environ
        if n not in function_vars and n not in ALLOWED_NAMES and not n.startswith(ALLOWED_PREFIXES)
    )


def _assert_no_secret(data: dict[str, object], secrets: dict[str, str]) -> None:
    environ = data["environ"]
    assert isinstance(environ, dict)
    for name, value in secrets.items():
        if name != "AWS_SECRET_ACCESS_KEY":
            # Lambda reserves AWS_SECRET_ACCESS_KEY for the function's own
            # credentials, so only its host *value* is forbidden.
            assert name not in environ, f"host variable {name} visible in the jail"
        assert all(value not in str(v) for v in environ.values()), (
            f"host secret {name} visible in os.environ: {environ}"
        )
        for path in ("/proc/self/environ", "/proc/1/environ"):
            assert value not in str(data[path]), f"host secret {name} visible in {path}"


@pytest.mark.parametrize("fresh_pool", [False, True], ids=["session-pool", "pool-after-planting"])
def test_worker_secret_not_visible(
    pool: Pool,
    make_function: MakeFunction,
    trivial_spec: FunctionSpec,
    monkeypatch: pytest.MonkeyPatch,
    fresh_pool: bool,
) -> None:
    """Neither an existing pool nor one created after the secret was planted passes it on."""
    secrets = {
        "EVENTMILL_TEST_SECRET": "planted-" + uuid.uuid4().hex,
        "AWS_SECRET_ACCESS_KEY": "hostkey-" + uuid.uuid4().hex,
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    spec = make_function("env-secret", ENV_PROBE, environment=(("FUNCTION_VAR", "visible"),))

    target = Pool(mode="nsjail", idle_timeout_s=300.0, max_environments=4) if fresh_pool else pool
    try:
        data = report(invoke(target, spec, {}))
        environ = data["environ"]
        assert isinstance(environ, dict)
        assert environ.get("FUNCTION_VAR") == "visible", "control: the function's own variable"
        assert environ.get("AWS_LAMBDA_FUNCTION_NAME") == spec.name, "control: a reserved variable"
        _assert_no_secret(data, secrets)
        unexpected = _unexpected_names(environ, {"FUNCTION_VAR"})
        assert not unexpected, f"variables beyond the function's and Lambda's: {unexpected}"
        assert_healthy(target, spec, trivial_spec)
    finally:
        if fresh_pool:
            target.close()

"""Map a Lambda runtime name to a host interpreter that can be mounted into the jail.

Only the interpreter's installation prefix is mounted (read-only, at its own path,
because pyenv/Debian builds carry an absolute RUNPATH), so the prefix must be the
real base installation, never a venv.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_PYTHON_RUNTIME = re.compile(r"^python(3\.\d+)$")
CUSTOM_RUNTIMES = frozenset({"provided", "provided.al2", "provided.al2023"})


@dataclass(frozen=True)
class Interpreter:
    executable: Path
    prefix: Path
    version: str  # "3.11"


def is_custom(runtime: str) -> bool:
    return runtime in CUSTOM_RUNTIMES


def _own() -> Interpreter:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    executable = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    return Interpreter(executable, Path(os.path.realpath(sys.base_prefix)), version)


@functools.lru_cache(maxsize=16)
def _from_path(version: str) -> Interpreter | None:
    found = shutil.which(f"python{version}")
    if found is None:
        return None
    executable = Path(os.path.realpath(found))
    probe = subprocess.run(
        [str(executable), "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, timeout=10, check=False,
    )
    if probe.returncode != 0:
        return None
    return Interpreter(executable, Path(os.path.realpath(probe.stdout.strip())), version)


def find_interpreter(runtime: str) -> Interpreter | None:
    """The interpreter for `runtime`; custom runtimes get ours (it runs the Runtime API relay)."""
    own = _own()
    if is_custom(runtime):
        return own
    match = _PYTHON_RUNTIME.match(runtime)
    if match is None:
        return None
    if match.group(1) == own.version:
        return own
    return _from_path(match.group(1))

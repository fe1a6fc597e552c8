"""Where the running `eventmill up` is: `<data dir>/instance.json`.

`eventmill up` writes it once its children answer and removes it on a clean exit; every
other CLI command reads it to find Redis, the AWS endpoint and the API without flags.
After a `kill -9` the file stays behind, so a reader treats it as absent once the
recorded pid is gone rather than sending commands to a dead instance's ports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypedDict

__all__ = [
    "DATA_DIR_ENV",
    "INSTANCE_FILE",
    "InstanceInfo",
    "default_data_dir",
    "read_instance",
    "remove_instance",
    "write_instance",
]

DATA_DIR_ENV = "EVENTMILL_DATA_DIR"
INSTANCE_FILE = "instance.json"
_FIELDS = {"redis_url": str, "aws_endpoint": str, "api_url": str, "pid": int}


class InstanceInfo(TypedDict):
    redis_url: str
    aws_endpoint: str
    api_url: str
    pid: int


def default_data_dir() -> Path:
    """$EVENTMILL_DATA_DIR if set, else `./.eventmill/` (a CLI flag overrides both)."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.cwd() / ".eventmill")


def _validated(info: object, source: str) -> InstanceInfo:
    if not isinstance(info, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(info).__name__}")
    for name, kind in _FIELDS.items():
        if not isinstance(info.get(name), kind) or isinstance(info.get(name), bool):
            raise ValueError(f"{source}: field {name!r} must be {kind.__name__}")
    return InstanceInfo(
        redis_url=info["redis_url"],
        aws_endpoint=info["aws_endpoint"],
        api_url=info["api_url"],
        pid=info["pid"],
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_instance(data_dir: Path | str, info: InstanceInfo) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    record = _validated(dict(info), "instance info")
    target = directory / INSTANCE_FILE
    temp = directory / f".{INSTANCE_FILE}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, target)
    return target


def read_instance(data_dir: Path | str) -> InstanceInfo | None:
    """The running instance, or None if there is no file or its pid no longer exists.

    Raises ValueError for a file that is not a valid instance record, naming the path.
    """
    path = Path(data_dir) / INSTANCE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from error
    info = _validated(raw, str(path))
    return info if _alive(info["pid"]) else None


def remove_instance(data_dir: Path | str) -> None:
    """Remove the file; a no-op if it is already gone."""
    (Path(data_dir) / INSTANCE_FILE).unlink(missing_ok=True)

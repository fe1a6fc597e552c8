"""Function code on disk: uploaded zips are unpacked under the data dir, local directories
are used in place (LocalStack's `hot-reload` bucket convention, so existing tooling works)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from broker.errors import InvalidParameterValueException, RequestTooLargeException

HOT_RELOAD_BUCKET = "hot-reload"
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 262_144_000


@dataclass(frozen=True)
class StoredCode:
    directory: str
    sha256: str  # base64 of the SHA-256, as AWS reports CodeSha256
    size: int


def store_zip(data_dir: Path, function: str, zip_bytes: bytes) -> StoredCode:
    if len(zip_bytes) > MAX_ZIP_BYTES:
        raise RequestTooLargeException(
            f"Request must be smaller than {MAX_ZIP_BYTES} bytes for the CreateFunction operation"
        )
    digest = hashlib.sha256(zip_bytes).digest()
    sha = base64.b64encode(digest).decode()
    target = (data_dir / "code" / function / digest.hex()[:16]).resolve()
    if not target.exists():
        try:
            archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        except zipfile.BadZipFile:
            raise InvalidParameterValueException("Could not unzip uploaded file. Please check your file, then try to upload again.") from None
        total = sum(info.file_size for info in archive.infolist())
        if total > MAX_UNZIPPED_BYTES:
            raise InvalidParameterValueException(
                f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
            )
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for info in archive.infolist():
            dest = (staging / info.filename).resolve()
            if not str(dest).startswith(str(staging.resolve())):
                raise InvalidParameterValueException(f"Zip entry escapes the code directory: {info.filename}")
            archive.extract(info, staging)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(dest, mode | 0o444)
        _make_world_readable(staging)
        staging.rename(target)
    return StoredCode(str(target), sha, len(zip_bytes))


def local_directory(path: str) -> StoredCode:
    """A directory on this host used in place; its hash covers names, sizes and mtimes."""
    directory = Path(path).expanduser().resolve()
    if not directory.is_dir():
        raise InvalidParameterValueException(f"Code directory does not exist: {directory}")
    digest = hashlib.sha256()
    size = 0
    for file in sorted(directory.rglob("*")):
        if file.is_file():
            stat = file.stat()
            size += stat.st_size
            digest.update(f"{file.relative_to(directory)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return StoredCode(str(directory), base64.b64encode(digest.digest()).decode(), size)


def from_api_code(data_dir: Path, function: str, code: dict[str, object]) -> StoredCode:
    """CreateFunction/UpdateFunctionCode `Code` (or the flat UpdateFunctionCode body)."""
    if code.get("ZipFile"):
        raw = code["ZipFile"]
        zip_bytes = base64.b64decode(raw) if isinstance(raw, str) else bytes(raw)  # type: ignore[arg-type]
        return store_zip(data_dir, function, zip_bytes)
    if code.get("S3Bucket") == HOT_RELOAD_BUCKET and code.get("S3Key"):
        return local_directory(str(code["S3Key"]))
    if code.get("S3Bucket") or code.get("ImageUri"):
        raise InvalidParameterValueException(
            "eventmill accepts Code.ZipFile, or a local directory as Code.S3Bucket='hot-reload' with Code.S3Key=<path>"
        )
    raise InvalidParameterValueException("Please provide a source for function code.")


def _make_world_readable(root: Path) -> None:
    """Code runs as nobody inside the jail; it must be able to read (not write) it."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)

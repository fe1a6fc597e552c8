"""Control-pipe framing shared by the host and the in-jail bootstrap.

Stdlib only: this file is imported by the host (`sandbox.environment`) and loaded
by path inside the jail, where eventmill's packages are not visible. A frame is
``>II`` (header length, body length), a JSON header, then raw body bytes, so
event and response payloads cross the pipe without base64 or re-encoding.
"""

from __future__ import annotations

import json
import os
import struct

_PREFIX = struct.Struct(">II")


def encode(header: dict[str, object], body: bytes = b"") -> bytes:
    """One frame as bytes (written with a single os.write by the caller)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(head), len(body)) + head + body


def write_frame(fd: int, header: dict[str, object], body: bytes = b"") -> None:
    """Write a whole frame, looping over short writes (pipes accept 64 KiB at a time)."""
    view = memoryview(encode(header, body))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[dict[str, object], bytes] | None:
    """Blocking read of one frame; None on EOF (the other side went away)."""
    prefix = _read_exact(fd, _PREFIX.size)
    if prefix is None:
        return None
    head_len, body_len = _PREFIX.unpack(prefix)
    head = _read_exact(fd, head_len) if head_len else b""
    body = _read_exact(fd, body_len) if body_len else b""
    if head is None or body is None:
        return None
    return json.loads(head), body


class FrameBuffer:
    """Incremental decoder for the host side, which reads with select() and a deadline."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pop(self) -> tuple[dict[str, object], bytes] | None:
        if len(self._buf) < _PREFIX.size:
            return None
        head_len, body_len = _PREFIX.unpack_from(self._buf)
        end = _PREFIX.size + head_len + body_len
        if len(self._buf) < end:
            return None
        head = bytes(self._buf[_PREFIX.size : _PREFIX.size + head_len])
        body = bytes(self._buf[_PREFIX.size + head_len : end])
        del self._buf[:end]
        return json.loads(head), body

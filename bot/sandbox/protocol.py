"""The wire format between the bot, a worker and a run: length-prefixed JSON, never pickle.

Imported by the bot (as ``bot.sandbox.protocol``) and inside the sandbox by the worker and the
harness (as ``protocol``, from the worker's own directory), so it uses the standard library only.

Every message is 4 bytes of big-endian length followed by that many bytes of UTF-8 JSON. Anything
that comes *out* of the sandbox is untrusted: lengths are capped before reading, and strings are
cleaned and cut by :func:`clean_text`.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")

#: The largest request the bot sends (the learner's code plus the checks, JSON-encoded).
MAX_REQUEST_BYTES = 8 << 20
#: The largest reply a worker may send; larger means something is wrong and the worker is replaced.
MAX_REPLY_BYTES = 2 << 20
#: The largest result a run may write on its result pipe.
MAX_RESULT_BYTES = 512 << 10
#: The learner's code may be at most this long (UTF-8 bytes).
MAX_CODE_BYTES = 1 << 20

#: Caps on the text fields of an outcome.
DETAIL_CHARS = 500
ERROR_CHARS = 4000

#: The file name the learner's code is compiled under; tracebacks show it.
CODE_FILENAME = "<your code>"


def encode(message: dict[str, Any]) -> bytes:
    """One framed message: length header plus compact ASCII JSON."""
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; ``ValueError`` if it is anything else."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a sandbox message must be a JSON object")
    return data


def read_message(fd: int, limit: int) -> dict[str, Any] | None:
    """Blocking read of one framed message from ``fd``; ``None`` at a clean end of file."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > limit:
        raise ValueError(f"message of {size} bytes is over the {limit} byte limit")
    body = _read_exactly(fd, size)
    if body is None:
        raise EOFError("end of file inside a message")
    return decode(body)


def write_message(fd: int, message: dict[str, Any]) -> None:
    data = memoryview(encode(message))
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            if remaining == size:
                return None
            raise EOFError("end of file inside a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def clean_text(value: object, limit: int) -> str:
    """``value`` as printable-safe text: a ``str``, valid UTF-8 (no lone surrogates), at most
    ``limit`` characters (the middle is cut, the start and the end are kept)."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        marker = "\n... [cut] ...\n"
        head = max(0, (limit - len(marker)) * 2 // 3)
        tail = max(0, limit - len(marker) - head)
        text = text[:head] + marker + (text[-tail:] if tail else "")
    return text

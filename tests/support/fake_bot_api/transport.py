"""HTTP plumbing: the threaded server and its request handler, request bodies (JSON, form,
multipart) decoded into typed parameters, and the entry point that routes, records, applies
injected faults and answers."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .protocol import ApiError, JSONDict, bad_request
from .records import DROPPED, RecordedRequest

if TYPE_CHECKING:
    from .server import FakeBotAPI

_INT_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "message_thread_id",
        "cache_time",
        "open_period",
        "close_date",
        "correct_option_id",
        "reply_to_message_id",
        "max_connections",
        "from_chat_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "is_anonymous",
        "allows_multiple_answers",
        "is_closed",
        "drop_pending_updates",
        "has_spoiler",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "show_caption_above_media",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "allows_revoting",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "options",
        "commands",
        "scope",
        "reply_parameters",
        "link_preview_options",
        "allowed_updates",
        "correct_option_ids",
        "explanation_entities",
        "question_entities",
        "media",
        "message_ids",
    }
)


class _DropConnection(Exception):
    """Close the connection without an answer."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 10  # seconds a silent client may hold a handler thread

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        fake = self.server.fake
        try:
            body = self._read_body()
            status, content_type, payload, after_send = fake._dispatch_http(
                self.command, self.path, self.headers.get("Content-Type", ""), body
            )
        except _DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception:  # a bug in the fake: answer 500 and keep the traceback for the test
            trace = traceback.format_exc()
            with fake._lock:
                fake.server_errors.append(trace)
            error = ApiError(500, f"Internal Server Error (bug in the fake: {trace.splitlines()[-1]})")
            status, content_type, payload = fake._json_response(error.to_json(), 500)
            after_send = None
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            return  # the client went away (e.g. a cancelled long poll)
        if after_send is not None:
            after_send()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = False
    request_queue_size = 256  # the listen backlog: a bot sending 30+ messages at once must not see resets

    def __init__(self, address: tuple[str, int], fake: FakeBotAPI) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connection resets from clients that gave up are normal here; real bugs surface as
        # 500 answers (see FakeBotAPI.server_errors).
        return


_CD_PARAM = re.compile(r';\s*([\w*]+)="((?:[^"\\]|\\.)*)"|;\s*([\w*]+)=([^;\s]+)')


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Form fields and files (name -> (filename, bytes)) of a multipart/form-data body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise bad_request("can't parse multipart body: no boundary")
    delimiter = b"\r\n--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        raw_headers, _, content = part.partition(b"\r\n\r\n")
        disposition = ""
        for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        params: dict[str, str] = {}
        for m in _CD_PARAM.finditer(disposition):
            key = m.group(1) or m.group(3)
            params[key.lower()] = m.group(2) if m.group(1) else m.group(4)
        field_name = params.get("name", "")
        if "filename" in params or "filename*" in params:
            files[field_name] = (params.get("filename", "file"), content)
        else:
            fields[field_name] = content.decode("utf-8")
    return fields, files


class HTTPEntry:
    """The HTTP entry point.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    # ------------------------------------------------------------------ HTTP entry point

    def _dispatch_http(
        self, verb: str, path: str, content_type: str, body: bytes
    ) -> tuple[int, str, bytes, Callable[[], None] | None]:
        """Route one HTTP request; runs on a request thread."""
        parts = urlsplit(path)
        segments = unquote(parts.path).split("/")
        # /file/bot<token>/<file_path>
        if len(segments) >= 4 and segments[1] == "file" and segments[2].startswith("bot"):
            return self._serve_file(segments[2][3:], "/".join(segments[3:]))
        if len(segments) != 3 or not segments[1].startswith("bot"):
            return (*self._json_response(ApiError(404, "Not Found").to_json(), 404), None)
        token, method = segments[1][3:], segments[2]
        if not re.fullmatch(r"\d+:[\w-]+", token):
            return (*self._json_response(ApiError(404, "Not Found").to_json(), 404), None)
        if token != self.token:
            return (*self._json_response(ApiError(401, "Unauthorized").to_json(), 401), None)

        record = RecordedRequest(method=method, params={}, files={}, time=time.time())
        try:
            params, files = self._decode_params(verb, parts.query, content_type, body)
            record.params = params
            record.files = {name: data for name, (_, data) in files.items()}
        except ApiError as error:
            return self._finish(record, error, None)
        with self._lock:
            self._requests.append(record)
            self._changed()

        lower = method.lower()
        fault = self._take_fault(lower, params)
        if fault is not None and fault.error is not None:
            return self._finish(record, fault.error, None)
        if fault is not None and fault.drop and not fault.apply:
            self._finish_record(record, DROPPED, {"dropped": True})
            raise _DropConnection

        after_send: Callable[[], None] | None = None
        try:
            result, after_send = self._call(lower, params, files)
            outcome: ApiError | Any = result
        except ApiError as error:
            outcome = error
        except Exception:  # a bug in the fake: answer 500 and keep the traceback
            trace = traceback.format_exc()
            with self._lock:
                self.server_errors.append(trace)
            outcome = ApiError(500, f"Internal Server Error (bug in the fake: {trace.splitlines()[-1]})")

        if fault is not None and fault.drop:
            self._finish_record(record, DROPPED, {"dropped": True})
            raise _DropConnection
        if fault is not None and fault.delay:
            self._stop_event.wait(fault.delay)
        return self._finish(record, outcome, after_send)

    def _finish(
        self, record: RecordedRequest, outcome: Any, after_send: Callable[[], None] | None
    ) -> tuple[int, str, bytes, Callable[[], None] | None]:
        if isinstance(outcome, ApiError):
            body, status = outcome.to_json(), outcome.error_code
        else:
            body, status = {"ok": True, "result": outcome}, 200
        self._finish_record(record, status, body)
        return (*self._json_response(body, status), after_send)

    def _finish_record(self, record: RecordedRequest, status: int, body: JSONDict) -> None:
        with self._lock:
            record.status = status
            record.response = copy.deepcopy(body)
            if record not in self._requests:
                self._requests.append(record)
            self._changed()

    @staticmethod
    def _json_response(body: JSONDict, status: int) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _serve_file(self, token: str, file_path: str) -> tuple[int, str, bytes, None]:
        if token != self.token:
            return (*self._json_response(ApiError(401, "Unauthorized").to_json(), 401), None)
        with self._lock:
            for path, data in self._files.values():
                if path == file_path:
                    return 200, "application/octet-stream", data, None
        return (*self._json_response(ApiError(404, "Not Found").to_json(), 404), None)

    def _decode_params(
        self, verb: str, query: str, content_type: str, body: bytes
    ) -> tuple[JSONDict, dict[str, tuple[str, bytes]]]:
        raw: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, tuple[str, bytes]] = {}
        kind = content_type.split(";")[0].strip().lower()
        if verb == "POST" and body:
            if kind == "application/json":
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    raise bad_request("can't parse JSON encoded request body") from exc
                if not isinstance(decoded, dict):
                    raise bad_request("JSON-serialized request body must be an object")
                raw.update(decoded)
            elif kind == "multipart/form-data":
                fields, files = _parse_multipart(content_type, body)
                raw.update(fields)
            else:
                raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        params: JSONDict = {}
        for key, value in raw.items():
            params[key] = self._convert(key, value)
        return params, files

    @staticmethod
    def _convert(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if key in _INT_PARAMS:
            with contextlib.suppress(ValueError):
                return int(value)
            return value
        if key in _BOOL_PARAMS:
            return value.strip().lower() in ("true", "1")
        if key in _JSON_PARAMS:
            try:
                return json.loads(value)
            except ValueError as exc:
                raise bad_request(f"can't parse {key} JSON object") from exc
        return value

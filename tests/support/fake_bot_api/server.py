"""A fake Telegram Bot API server over real HTTP on loopback, for end-to-end tests of the bot.

The real python-telegram-bot ``Application`` talks to it exactly as it talks to Telegram::

    server = FakeBotAPI()
    server.start()
    app = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)            # f"{server.url}/bot"; PTB appends the token
        .base_file_url(server.base_file_url)  # f"{server.url}/file/bot"
        .build()
    )

Tests then act as learners (``send_text``, ``click``, ``press``, ``sticker``...), wait for the bot
(``await server.wait_for_messages(chat_id, 2, after=...)``) and inspect what it did
(``messages(chat_id)``, ``requests``, ``answered_callback_queries``).

How it is built: a ``ThreadingHTTPServer`` in a background thread, one thread per request and one
connection per request (``Connection: close``), so it never depends on the test's event loop and
``stop()`` leaves no thread or socket behind. All state sits behind one lock; every change wakes
the waiting helpers, which are async (they yield to the loop PTB runs in) or sync (``*_sync``).

Fidelity: errors carry the descriptions the official server sends (TDLib's ``parse_html`` is
ported byte for byte for HTML parse errors and offsets). Where the fake is stricter than Telegram
or guesses, the docstring of the check says so.

Not emulated: Markdown/MarkdownV2 parsing (kept as sent), automatic entities (URLs, mentions) in
the bot's texts, inline mode, media groups, editMessageMedia, payments, chat administration,
per-private-chat flood limits, ``poll`` updates with vote counts, downloading files from URLs,
HTTPS webhooks (webhooks go to loopback HTTP only) and Telegram's 48-hour edit window.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import http.client
import itertools
import json
import re
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "ApiError",
    "EntityParseError",
    "FakeBotAPI",
    "Learner",
    "RecordedRequest",
    "SentMessage",
    "parse_html",
    "utf16_len",
]

T = TypeVar("T")

JSONDict = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_POLL_QUESTION_LENGTH = 300
MAX_POLL_OPTION_LENGTH = 100
MAX_POLL_OPTIONS = 12
MAX_POLL_EXPLANATION_LENGTH = 200

DROPPED = -1  # RecordedRequest.status of a request whose connection the fake closed unanswered
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query id is invalid"
GET_UPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Update kinds Telegram leaves out unless a bot asks for them in allowed_updates.
NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
SENDING_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "sendpoll"})

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


# ----------------------------------------------------------------------------------------------
# Errors and small helpers


class ApiError(Exception):
    """A Bot API error answer: HTTP status ``error_code`` and Telegram's ``description``."""

    def __init__(self, error_code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class EntityParseError(ValueError):
    """TDLib's reason for refusing formatted text; the Bot API prefixes it with
    ``Bad Request: can't parse entities: ``."""


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and length limits."""
    return len(text.encode("utf-16-le")) // 2


def _default_description(error_code: int, retry_after: int | None) -> str:
    return {
        400: "Bad Request: injected failure",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: GET_UPDATES_CONFLICT,
        429: f"Too Many Requests: retry after {retry_after}",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }.get(error_code, f"Error {error_code}")


# ----------------------------------------------------------------------------------------------
# Telegram HTML, ported from TDLib's parse_html (td/telegram/MessageEntity.cpp)

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SPACE = frozenset(b" \t\r\n\0\v")
_LT, _GT, _AMP, _SLASH, _EQ = (ord(c) for c in "<>&/=")


def _decode_html_entity(data: bytes, pos: int) -> tuple[int, int]:
    """TDLib's decode_html_entity: (code point, position after the entity), code 0 if none."""

    def at(k: int) -> int:
        return data[k] if k < len(data) else 0

    end = pos + 1
    code = 0
    if at(pos + 1) == ord("#"):
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while chr(at(end)) in "0123456789abcdefABCDEF" and at(end):
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                code = code * 10 + at(end) - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha() and at(end):
            end += 1
        name = data[pos + 1 : end]
        code = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}.get(name, 0)
        if code == 0:
            return 0, pos
    if at(end) == ord(";"):
        end += 1
    return code, end


def parse_html(text: str, *, strict_ampersand: bool = False) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML as the official server does; return (plain text, Bot API entities).

    Raises ``EntityParseError`` with TDLib's message (byte offsets into the UTF-8 text). With
    ``strict_ampersand`` a ``&`` that starts no entity is refused too; Telegram itself shows it
    literally, so that check only exists to catch missing escaping in the bot.
    """
    data = text.encode("utf-8")
    n = len(data)

    def at(k: int) -> int:
        return data[k] if k < n else 0

    out = bytearray()
    entities: list[JSONDict] = []
    utf16 = 0
    # Each open tag: name, argument, UTF-16 offset where it starts, byte offset in `out`.
    stack: list[tuple[str, str, int, int]] = []
    i = 0
    while i < n:
        c = data[i]
        if c == _AMP:
            code, end = _decode_html_entity(data, i)
            if code:
                if 0xD800 <= code <= 0xDFFF:
                    raise EntityParseError(
                        "Text contains invalid Unicode characters after decoding HTML entities, "
                        "check for unmatched surrogate code units"
                    )
                utf16 += 2 if code > 0xFFFF else 1
                out += chr(code).encode("utf-8")
                i = end
                continue
            if strict_ampersand:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {i} (the fake server\'s strict mode; Telegram '
                    "would show it literally: escape it as &amp;)"
                )
        if c != _LT:
            if c & 0xC0 != 0x80:
                utf16 += 2 if c >= 0xF0 else 1
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != _SLASH:
            while at(i) not in _SPACE and at(i) != _GT:
                i += 1
            if at(i) == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            tag = data[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            while at(i) != _GT:
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) == _GT:
                    break
                name_begin = i
                while at(i) not in _SPACE and at(i) not in b"=>/\"'":
                    i += 1
                attribute = data[name_begin:i].decode("utf-8", "replace")
                if not attribute:
                    raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) != _EQ:
                    if at(i) == 0:
                        raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                    if tag == "blockquote" and attribute == "expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) == 0:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if at(i) not in b"'\"":
                    token_begin = i
                    while chr(at(i)).isascii() and (chr(at(i)).isalnum() or at(i) in b".-") and at(i):
                        i += 1
                    value = data[token_begin:i].decode("utf-8", "replace").lower()
                    if at(i) not in _SPACE and at(i) != _GT:
                        raise EntityParseError(f"Unexpected end of name token at byte offset {token_begin}")
                else:
                    quote = at(i)
                    i += 1
                    raw = bytearray()
                    while at(i) != quote and at(i) != 0:
                        if at(i) == _AMP:
                            code, end = _decode_html_entity(data, i)
                            if code:
                                raw += chr(code).encode("utf-8", "surrogatepass")
                                i = end
                                continue
                        raw.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = raw.decode("utf-8", "replace")
                if at(i) == 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and attribute == "href":
                    argument = value
                elif tag == "code" and attribute == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attribute == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attribute == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attribute == "expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
            stack.append((tag, argument, utf16, len(out)))
            i += 1
            continue

        # An end tag.
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
        while at(i) not in _SPACE and at(i) != _GT:
            i += 1
        end_tag = data[begin + 2 : i].decode("utf-8", "replace").lower()
        while at(i) in _SPACE and at(i) != 0:
            i += 1
        if at(i) != _GT:
            raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
        tag, argument, offset, out_begin = stack[-1]
        if end_tag and end_tag != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", found "</{end_tag}>"'
            )
        if utf16 > offset:
            entity = _entity_for(tag, argument, offset, utf16 - offset, entities, bytes(out[out_begin:]))
            if entity is not None:
                entities.append(entity)
        stack.pop()
        i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    try:
        plain = out.decode("utf-8")
    except UnicodeDecodeError as exc:  # pragma: no cover - only with broken input bytes
        raise EntityParseError("Strings must be encoded in UTF-8") from exc
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return plain, entities


def _entity_for(
    tag: str, argument: str, offset: int, length: int, entities: list[JSONDict], inner: bytes
) -> JSONDict | None:
    """The Bot API entity for a closed tag (merging <pre><code class=...> into one ``pre``)."""
    simple = {
        "i": "italic",
        "em": "italic",
        "b": "bold",
        "strong": "bold",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "u": "underline",
        "ins": "underline",
        "tg-spoiler": "spoiler",
        "span": "spoiler",
    }
    if tag in simple:
        return {"type": simple[tag], "offset": offset, "length": length}
    if tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        return {"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": argument}
    if tag == "a":
        url = argument or inner.decode("utf-8", "replace")
        if not url:
            return None
        return {"type": "text_link", "offset": offset, "length": length, "url": url}
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag == "pre":
        if same_span and last is not None and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"
            return None
        return {"type": "pre", "offset": offset, "length": length}
    if tag == "code":
        if same_span and last is not None and last["type"] == "pre" and argument:
            last["language"] = argument
            return None
        entity: JSONDict = {"type": "code", "offset": offset, "length": length}
        if argument:
            entity["language"] = argument  # dropped below if no <pre> wraps it
        return entity
    if tag == "blockquote":
        kind = "expandable_blockquote" if argument else "blockquote"
        return {"type": kind, "offset": offset, "length": length}
    raise AssertionError(tag)  # pragma: no cover


def _finish_entities(entities: list[JSONDict]) -> list[JSONDict]:
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    return entities


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Strip leading/trailing whitespace as Telegram does, keeping entities in range."""
    stripped_left = text.lstrip()
    shift = utf16_len(text) - utf16_len(stripped_left)
    trimmed = stripped_left.rstrip()
    total = utf16_len(trimmed)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] - shift + entity["length"], total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return trimmed, kept


_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/<>])")


def command_entities(text: str) -> list[JSONDict]:
    """``bot_command`` entities Telegram attaches to a user's message (offsets in UTF-16)."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _BOT_COMMAND.finditer(text)
    ]


# ----------------------------------------------------------------------------------------------
# Records


@dataclass
class RecordedRequest:
    """One HTTP request the bot made, with its decoded parameters and the answer it got."""

    method: str
    params: JSONDict
    files: dict[str, bytes]
    time: float
    status: int = 0
    response: JSONDict | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in ("reply_markup",)}
        text = json.dumps(shown, ensure_ascii=False, default=str)
        if len(text) > 160:
            text = text[:157] + "..."
        if self.status == DROPPED:
            extra = " -> connection dropped"
        elif self.ok or not self.status:
            extra = ""
        else:
            extra = f" -> {self.status} {(self.response or {}).get('description')}"
        return f"{self.method} {text}{extra}"


@dataclass
class SentMessage:
    """A message the bot sent, as it currently stands in the chat."""

    chat_id: int
    message_id: int
    kind: str  # "text", "photo", "document" or "poll"
    date: int
    text: str | None = None  # the text or caption as the bot sent it (raw markup)
    parse_mode: str | None = None
    plain_text: str | None = None  # what the learner sees (markup parsed, trimmed)
    entities: list[JSONDict] = field(default_factory=list)
    reply_markup: JSONDict | None = None
    file: bytes | None = None  # uploaded photo/document bytes
    file_name: str | None = None
    file_ids: list[str] = field(default_factory=list)
    poll: JSONDict | None = None
    reply_to_message_id: int | None = None
    edited: bool = False
    edit_date: int | None = None
    history: list[JSONDict] = field(default_factory=list)  # earlier versions, oldest first
    deleted: bool = False
    params: JSONDict = field(default_factory=dict)  # the request parameters that created it

    @property
    def photo(self) -> bytes | None:
        return self.file if self.kind == "photo" else None

    @property
    def caption(self) -> str | None:
        return self.text if self.kind in ("photo", "document") else None

    @property
    def buttons(self) -> list[list[JSONDict]]:
        """The inline keyboard rows, empty if there is none."""
        if not self.reply_markup:
            return []
        return list(self.reply_markup.get("inline_keyboard") or [])

    @property
    def button_texts(self) -> list[str]:
        return [button.get("text", "") for row in self.buttons for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for row in self.buttons for b in row if "callback_data" in b]

    def button(self, text: str) -> JSONDict:
        """The first button whose label is ``text`` (or contains it)."""
        for row in self.buttons:
            for button in row:
                if button.get("text") == text:
                    return button
        for row in self.buttons:
            for button in row:
                if text in button.get("text", ""):
                    return button
        raise LookupError(f"no button {text!r} in message {self.message_id}: {self.button_texts}")

    def summary(self) -> str:
        body = self.plain_text if self.plain_text is not None else ""
        if self.kind == "poll" and self.poll:
            body = f"[poll] {self.poll['question']} {[o['text'] for o in self.poll['options']]}"
        elif self.kind != "text":
            body = f"[{self.kind} {len(self.file or b'')} bytes] {body}"
        flags = "".join([" (edited)" if self.edited else "", " (deleted)" if self.deleted else ""])
        buttons = f" {self.button_texts}" if self.buttons else ""
        return f"#{self.message_id}{flags}: {body!r}{buttons}"


@dataclass
class _Fault:
    method: str  # lower-case method name or "*"
    chat_id: int | str | None
    times: int
    error: ApiError | None = None
    delay: float = 0.0
    drop: bool = False
    apply: bool = False

    def matches(self, method: str, params: JSONDict) -> bool:
        if self.method != method and (self.method != "*" or method == "getupdates"):
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


@dataclass
class _Pending:
    update: JSONDict
    forced: bool = False  # a redelivery: survives offset confirmation until delivered once
    delivered: bool = False


class _DropConnection(Exception):
    """Close the connection without an answer."""


# ----------------------------------------------------------------------------------------------
# HTTP plumbing


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


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


# ----------------------------------------------------------------------------------------------
# The server


class FakeBotAPI:
    """A fake Telegram Bot API server on 127.0.0.1 (ephemeral port), run in a background thread.

    Args:
        token: the bot token requests must carry (``/bot<token>/<method>``); others get 401.
        bot_username, bot_first_name: what ``getMe`` answers. The bot's id is the token's prefix.
        strict_html: also refuse a ``&`` that starts no HTML entity (Telegram shows it literally;
            in our bot it means missing escaping).
        require_known_chats: sending to a chat no learner has written from (or ``add_chat``) fails
            with "chat not found", as on Telegram.
        min_poll_options: Bot API 10.0 accepts 1 option; 2 (the default) keeps the older, stricter
            rule so a poll with a single option is caught.
        first_update_id: the first ``update_id`` handed out.
        clock: wall-clock seconds for message dates (``time.time`` by default).
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "AutogradTutorBot",
        bot_first_name: str = "Autograd Tutor",
        strict_html: bool = True,
        require_known_chats: bool = True,
        min_poll_options: int = 2,
        first_update_id: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        prefix = token.split(":", 1)[0]
        if not prefix.isdigit():
            raise ValueError("a bot token looks like '<digits>:<secret>'")
        self.token = token
        self.bot_user: JSONDict = {
            "id": int(prefix),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.strict_html = strict_html
        self.require_known_chats = require_known_chats
        self.min_poll_options = min_poll_options
        self._clock = clock

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop_event = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._version = 0

        self._update_ids = itertools.count(first_update_id)
        self._ids = itertools.count(1)
        self._pending: list[_Pending] = []
        self._all_updates: dict[int, JSONDict] = {}
        self._delivered_ids: set[int] = set()
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._webhook: JSONDict = {"url": ""}
        self._webhook_threads: list[threading.Thread] = []
        self._webhook_stop = threading.Event()
        self._webhook_error: tuple[int, str] | None = None

        self._chats: dict[int, JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[int, list[SentMessage]] = {}
        self._learner_messages: dict[int, dict[int, JSONDict]] = {}
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self._polls: dict[str, tuple[int, int]] = {}  # poll id -> (chat_id, message_id)
        self._callback_queries: dict[str, JSONDict] = {}
        self._answers: dict[str, JSONDict] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._bot_settings: dict[str, Any] = {}
        self._blocked: set[int] = set()
        self._faults: list[_Fault] = []
        self._flood: tuple[int | None, int | None, int] | None = None
        self._send_times: list[tuple[float, int]] = []
        self._requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []  # tracebacks of bugs inside the fake itself

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotAPI:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._stop_event.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeBotAPI", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake long polls, close the socket, join every thread. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stop_event.set()
        self._stop_webhook_delivery()
        with self._cond:
            self._changed()
        httpd.shutdown()
        httpd.server_close()  # joins the request threads
        thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeBotAPI:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake Bot API server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ state change notification

    def _changed(self) -> None:
        """Call with the lock held after any change: wakes sync and async waiters."""
        self._version += 1
        self._cond.notify_all()
        for loop, event in list(self._async_waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                self._async_waiters.discard((loop, event))

    def _now(self) -> int:
        return int(self._clock())

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        parameters: JSONDict | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (``"*"``: any but getUpdates) with an error.

        429 defaults to ``retry_after=1`` and Telegram's "Too Many Requests: retry after N" with
        ``parameters.retry_after``. The failed request changes nothing. ``chat_id`` narrows it to
        calls for that chat.
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        params = dict(parameters or {})
        if retry_after is not None:
            params["retry_after"] = retry_after
        error = ApiError(error_code, description or _default_description(error_code, retry_after), params)
        self._add_fault(_Fault(method.lower(), chat_id, times, error=error))

    def delay_next(self, method: str, seconds: float, *, times: int = 1, chat_id: int | str | None = None) -> None:
        """Hold the answer to the next call(s) for ``seconds``. The request is applied first, as
        when Telegram did its work but the answer is slow: a client that times out and retries
        sends twice."""
        self._add_fault(_Fault(method.lower(), chat_id, times, delay=seconds, apply=True))

    def drop_next(
        self, method: str, *, times: int = 1, applied: bool = False, chat_id: int | str | None = None
    ) -> None:
        """Close the connection without an answer on the next call(s): PTB raises NetworkError.
        With ``applied`` the request takes effect first (the answer is what gets lost)."""
        self._add_fault(_Fault(method.lower(), chat_id, times, drop=True, apply=applied))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def block_chat(self, chat_id: int, *, send_update: bool = False) -> None:
        """The learner blocks the bot: every call for this chat gets 403 "Forbidden: bot was
        blocked by the user". With ``send_update`` Telegram's ``my_chat_member`` update (member ->
        kicked) is queued too."""
        with self._lock:
            self._blocked.add(chat_id)
            if send_update:
                self._enqueue_my_chat_member(chat_id, "member", "kicked")
            self._changed()

    def unblock_chat(self, chat_id: int, *, send_update: bool = False) -> None:
        with self._lock:
            self._blocked.discard(chat_id)
            if send_update:
                self._enqueue_my_chat_member(chat_id, "kicked", "member")
            self._changed()

    def flood_limits(
        self, overall_per_second: int | None = 30, group_per_minute: int | None = 20, *, retry_after: int = 1
    ) -> None:
        """Answer 429 when the bot sends more messages than Telegram allows (about 30 a second
        overall, 20 a minute in one group): the limits PTB's AIORateLimiter keeps to. Off until
        called; ``flood_limits(None, None)`` turns it off again."""
        with self._lock:
            if overall_per_second is None and group_per_minute is None:
                self._flood = None
            else:
                self._flood = (overall_per_second, group_per_minute, retry_after)
            self._send_times.clear()

    # ------------------------------------------------------------------ chats and users

    def add_chat(
        self,
        chat_id: int,
        *,
        chat_type: str = "private",
        first_name: str | None = None,
        title: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> JSONDict:
        """Make a chat known (as if the learner had written /start), returning its Chat object."""
        with self._lock:
            return copy.deepcopy(self._ensure_chat(chat_id, chat_type, first_name, title, username, language_code))

    def _ensure_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        first_name: str | None = None,
        title: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> JSONDict:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name or f"Learner{chat_id}"
                if username:
                    chat["username"] = username
            else:
                chat["title"] = title or f"Study group {abs(chat_id)}"
            chat["_language_code"] = language_code
            self._chats[chat_id] = chat
            self._messages.setdefault(chat_id, [])
            self._learner_messages.setdefault(chat_id, {})
        return chat

    def _chat_json(self, chat_id: int) -> JSONDict:
        return {k: v for k, v in self._chats[chat_id].items() if not k.startswith("_")}

    def _user(self, chat_id: int, user: int | JSONDict | None, language_code: str | None) -> JSONDict:
        chat = self._chats[chat_id]
        if isinstance(user, dict):
            result = {"is_bot": False, "first_name": f"User{user['id']}", **user}
        else:
            user_id = user if user is not None else (chat_id if chat["type"] == "private" else 1_000_001)
            result = {"id": user_id, "is_bot": False, "first_name": f"Learner{user_id}"}
            if user_id == chat_id and "first_name" in chat:
                result["first_name"] = chat["first_name"]
                if "username" in chat:
                    result["username"] = chat["username"]
        if "language_code" not in result:
            result["language_code"] = language_code or chat.get("_language_code", "en")
        return result

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def last_message_id(self, chat_id: int) -> int:
        """The highest message id used in the chat so far, by the learner or the bot (0 if none):
        pass it as ``after=`` to wait only for what comes next."""
        with self._lock:
            return self._next_message_id.get(chat_id, 1) - 1

    mark = last_message_id

    def learner(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        language_code: str = "en",
        username: str | None = None,
    ) -> Learner:
        """A learner in a private chat (chat id = user id), with send/click/wait shortcuts."""
        with self._lock:
            self._ensure_chat(user_id, "private", first_name, None, username, language_code)
        return Learner(self, user_id, language_code)

    # ------------------------------------------------------------------ learner actions (updates)

    def send_update(self, update: JSONDict) -> JSONDict:
        """Queue a raw update (``update_id`` is assigned if missing) and return it."""
        with self._lock:
            update = copy.deepcopy(update)
            if "update_id" not in update:
                update["update_id"] = next(self._update_ids)
            self._all_updates[update["update_id"]] = copy.deepcopy(update)
            self._pending.append(_Pending(update))
            self._pending.sort(key=lambda p: p.update["update_id"])
            self._changed()
            return copy.deepcopy(update)

    def redeliver(self, update_id: int) -> JSONDict:
        """Queue an already delivered update again with the same ``update_id`` (as Telegram does
        when a bot crashed before confirming it). It is delivered once even though its id is
        below the confirmed offset."""
        with self._lock:
            if update_id not in self._all_updates:
                raise KeyError(f"no update {update_id} was ever queued")
            update = copy.deepcopy(self._all_updates[update_id])
            self._pending.append(_Pending(update, forced=True))
            self._pending.sort(key=lambda p: p.update["update_id"])
            self._changed()
            return copy.deepcopy(update)

    def _learner_message(
        self,
        chat_id: int,
        content: JSONDict,
        *,
        user: int | JSONDict | None,
        language_code: str | None,
        chat_type: str,
        chat_title: str | None = None,
        kind: str = "message",
    ) -> JSONDict:
        with self._lock:
            self._ensure_chat(chat_id, chat_type, None, chat_title, None, language_code or "en")
            message: JSONDict = {
                "message_id": self._new_message_id(chat_id),
                "from": self._user(chat_id, user, language_code),
                "chat": self._chat_json(chat_id),
                "date": self._now(),
                **content,
            }
            self._learner_messages[chat_id][message["message_id"]] = message
            return self.send_update({kind: message})

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user: int | JSONDict | None = None,
        language_code: str | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
        allow_oversize: bool = False,
    ) -> JSONDict:
        """The learner types ``text``; returns the queued update. Commands get ``bot_command``
        entities like Telegram gives them. A group chat needs a negative ``chat_id`` and
        ``chat_type="group"`` (or "supergroup"). Telegram clients split texts over 4096
        characters, so those raise unless ``allow_oversize`` (see ``send_long_text``)."""
        if utf16_len(text) > MAX_TEXT_LENGTH and not allow_oversize:
            raise ValueError("a Telegram client splits texts over 4096 characters: use send_long_text()")
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        content: JSONDict = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        with self._lock:
            if reply_to_message_id is not None:
                content["reply_to_message"] = self._message_json_any(chat_id, reply_to_message_id)
            return self._learner_message(
                chat_id,
                content,
                user=user,
                language_code=language_code,
                chat_type=chat_type,
                chat_title=chat_title,
            )

    def send_long_text(self, chat_id: int, text: str, **kwargs: Any) -> list[JSONDict]:
        """Send ``text`` as a Telegram client would: in pieces of at most 4096 characters,
        cut at a newline or space where possible. Returns the queued updates."""
        pieces: list[str] = []
        rest = text
        while utf16_len(rest) > MAX_TEXT_LENGTH:
            cut = MAX_TEXT_LENGTH
            while utf16_len(rest[:cut]) > MAX_TEXT_LENGTH:
                cut -= 1
            split_at = max(rest.rfind("\n", 0, cut), rest.rfind(" ", 0, cut))
            if split_at <= 0:
                split_at = cut
            pieces.append(rest[:split_at])
            rest = rest[split_at:].lstrip("\n ")
        if rest.strip():
            pieces.append(rest)
        return [self.send_text(chat_id, piece, **kwargs) for piece in pieces]

    def sticker(
        self, chat_id: int, *, emoji: str = "👍", user: int | JSONDict | None = None, chat_type: str = "private"
    ) -> JSONDict:
        """The learner sends a sticker."""
        file_id, unique = self._learner_file(b"STICKER", "stickers/sticker.webp")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "FakeStickers",
            "file_size": 7,
        }
        return self._learner_message(chat_id, {"sticker": sticker}, user=user, language_code=None, chat_type=chat_type)

    def photo(
        self,
        chat_id: int,
        data: bytes = b"\x89PNG\r\n\x1a\n" + b"\0" * 16,
        *,
        caption: str | None = None,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner sends a photo (downloadable by the bot through getFile)."""
        file_id, unique = self._learner_file(data, "photos/learner.jpg")
        sizes = [
            {"file_id": f"{file_id}-s", "file_unique_id": f"{unique}-s", "width": 90, "height": 67},
            {"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 600, "file_size": len(data)},
        ]
        with self._lock:
            self._files[f"{file_id}-s"] = self._files[file_id]
        content: JSONDict = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        return self._learner_message(chat_id, content, user=user, language_code=None, chat_type=chat_type)

    def voice(
        self,
        chat_id: int,
        data: bytes = b"OggS fake voice",
        *,
        duration: int = 3,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner sends a voice message."""
        file_id, unique = self._learner_file(data, "voice/learner.oga")
        voice = {
            "file_id": file_id,
            "file_unique_id": unique,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return self._learner_message(chat_id, {"voice": voice}, user=user, language_code=None, chat_type=chat_type)

    def document(
        self,
        chat_id: int,
        data: bytes = b"print('hello')\n",
        *,
        file_name: str = "solution.py",
        mime_type: str = "text/x-python",
        caption: str | None = None,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner sends a file."""
        file_id, unique = self._learner_file(data, f"documents/{file_name}")
        content: JSONDict = {
            "document": {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(data),
            }
        }
        if caption is not None:
            content["caption"] = caption
        return self._learner_message(chat_id, content, user=user, language_code=None, chat_type=chat_type)

    def edited_text(
        self, chat_id: int, new_text: str, *, message_id: int | None = None, user: int | JSONDict | None = None
    ) -> JSONDict:
        """The learner edits one of their text messages (the last one by default): an
        ``edited_message`` update with the same ``message_id`` and an ``edit_date``."""
        with self._lock:
            sent = self._learner_messages.get(chat_id, {})
            candidates = [m for m in sent.values() if "text" in m]
            if message_id is None:
                if not candidates:
                    raise LookupError(f"the learner has sent no text in chat {chat_id}")
                message_id = candidates[-1]["message_id"]
            if message_id not in sent:
                raise LookupError(f"no learner message {message_id} in chat {chat_id}")
            message = copy.deepcopy(sent[message_id])
            message["text"] = new_text
            message.pop("entities", None)
            entities = command_entities(new_text)
            if entities:
                message["entities"] = entities
            message["edit_date"] = max(self._now(), message["date"] + 1)
            if user is not None:
                message["from"] = self._user(chat_id, user, None)
            sent[message_id] = message
            return self.send_update({"edited_message": message})

    def forwarded_text(
        self,
        chat_id: int,
        text: str,
        *,
        origin: JSONDict | None = None,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner forwards someone else's text message (``forward_origin`` as in Bot API 7+)."""
        if origin is None:
            origin = {
                "type": "user",
                "date": self._now() - 3600,
                "sender_user": {"id": 777_000_111, "is_bot": False, "first_name": "Someone Else"},
            }
        content: JSONDict = {"text": text, "forward_origin": origin}
        return self._learner_message(chat_id, content, user=user, language_code=None, chat_type=chat_type)

    def poll_answer(
        self,
        chat_id: int,
        option_ids: Iterable[int],
        *,
        message_id: int | None = None,
        user: int | JSONDict | None = None,
    ) -> JSONDict:
        """The learner votes in a (non-anonymous) poll the bot sent: a ``poll_answer`` update.
        The poll defaults to the bot's last poll in the chat; its voter counts are updated."""
        option_ids = list(option_ids)
        with self._lock:
            polls = [m for m in self._messages.get(chat_id, []) if m.kind == "poll" and not m.deleted]
            if message_id is not None:
                polls = [m for m in polls if m.message_id == message_id]
            if not polls:
                raise LookupError(f"no poll from the bot in chat {chat_id}")
            message = polls[-1]
            poll = message.poll
            assert poll is not None
            if poll["is_closed"]:
                raise LookupError("that poll is closed")
            for option_id in option_ids:
                if not 0 <= option_id < len(poll["options"]):
                    raise LookupError(f"the poll has no option {option_id}")
                poll["options"][option_id]["voter_count"] += 1
            poll["total_voter_count"] += 1
            answer = {
                "poll_id": poll["id"],
                "user": self._user(chat_id, user, None),
                "option_ids": option_ids,
                "option_persistent_ids": [poll["options"][i]["persistent_id"] for i in option_ids],
            }
            return self.send_update({"poll_answer": answer})

    def click(
        self,
        chat_id: int,
        message_id: int,
        callback_data: str,
        *,
        user: int | JSONDict | None = None,
        check: bool = True,
    ) -> JSONDict:
        """The learner taps an inline button: a ``callback_query`` update carrying the message as
        it currently is. With ``check`` (default) the message must be the bot's, not deleted, and
        still show a button with that ``callback_data``; pass ``check=False`` for a forged tap."""
        with self._lock:
            message = self._find_message(chat_id, message_id)
            if check:
                if message is None or message.deleted:
                    raise LookupError(f"no message {message_id} from the bot in chat {chat_id}")
                if callback_data not in message.callback_data:
                    raise LookupError(
                        f"message {message_id} has no button with callback_data {callback_data!r}; "
                        f"it has {message.callback_data}"
                    )
            query_id = str(next(self._ids) * 7919 + 4_000_000_000)
            query: JSONDict = {
                "id": query_id,
                "from": self._user(chat_id, user, None),
                "chat_instance": str(abs(hash(("chat", chat_id))) % 10**18),
                "data": callback_data,
            }
            if message is not None and not message.deleted:
                query["message"] = self._message_json(message)
            else:
                query["message"] = {"chat": self._chat_json(chat_id), "message_id": message_id, "date": 0}
            self._callback_queries[query_id] = {
                "chat_id": chat_id,
                "message_id": message_id,
                "data": callback_data,
            }
            return self.send_update({"callback_query": query})

    def press(
        self,
        chat_id: int,
        button_text: str,
        *,
        message_id: int | None = None,
        user: int | JSONDict | None = None,
    ) -> JSONDict:
        """Tap the button labelled ``button_text`` (exact, else substring) on the given message,
        or on the newest message of the bot that has such a button."""
        with self._lock:
            candidates = [m for m in self._messages.get(chat_id, []) if not m.deleted]
            if message_id is not None:
                candidates = [m for m in candidates if m.message_id == message_id]
            for message in reversed(candidates):
                with contextlib.suppress(LookupError):
                    button = message.button(button_text)
                    if "callback_data" not in button:
                        raise LookupError(f"button {button_text!r} has no callback_data: {button}")
                    return self.click(chat_id, message.message_id, button["callback_data"], user=user)
            shown = [m.button_texts for m in candidates if m.buttons]
            raise LookupError(f"no button {button_text!r} in chat {chat_id}; buttons shown: {shown}")

    def _learner_file(self, data: bytes, path: str) -> tuple[str, str]:
        with self._lock:
            number = next(self._ids)
            file_id = f"AgAD-learner-{number}"
            self._files[file_id] = (path.replace(".", f"_{number}.", 1), data)
            return file_id, f"uniq-{number}"

    def _enqueue_my_chat_member(self, chat_id: int, old: str, new: str) -> None:
        self._ensure_chat(chat_id)
        user = self._user(chat_id, None, None)
        self.send_update(
            {
                "my_chat_member": {
                    "chat": self._chat_json(chat_id),
                    "from": user,
                    "date": self._now(),
                    "old_chat_member": {"status": old, "user": self.bot_user},
                    "new_chat_member": (
                        {"status": new, "user": self.bot_user, "until_date": 0}
                        if new == "kicked"
                        else {"status": new, "user": self.bot_user}
                    ),
                }
            }
        )

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (copies)."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def calls(self, method: str) -> list[RecordedRequest]:
        """The requests to one method (case-insensitive), e.g. ``calls("sendMessage")``."""
        wanted = method.lower()
        with self._lock:
            return [copy.deepcopy(r) for r in self._requests if r.method.lower() == wanted]

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """The bot's messages in the chat as they stand now, oldest first (copies)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(chat_id, []) if include_deleted or not m.deleted]

    def texts(self, chat_id: int) -> list[str]:
        """The plain texts (captions for photos) of the bot's current messages in the chat."""
        return [m.plain_text or "" for m in self.messages(chat_id)]

    def last_message(self, chat_id: int) -> SentMessage:
        messages = self.messages(chat_id)
        if not messages:
            raise LookupError(f"the bot has sent nothing to chat {chat_id}")
        return messages[-1]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        with self._lock:
            message = self._find_message(chat_id, message_id)
            if message is None:
                raise LookupError(f"no message {message_id} from the bot in chat {chat_id}")
            return copy.deepcopy(message)

    @property
    def chats(self) -> list[int]:
        with self._lock:
            return list(self._chats)

    @property
    def answered_callback_queries(self) -> dict[str, JSONDict]:
        """callback_query_id -> the answerCallbackQuery parameters."""
        with self._lock:
            return copy.deepcopy(self._answers)

    def unanswered_callback_queries(self) -> list[str]:
        """Ids of taps the bot has not answered (the learner would see a spinning button)."""
        with self._lock:
            return [qid for qid in self._callback_queries if qid not in self._answers]

    def commands(self, language_code: str = "", scope: JSONDict | None = None) -> list[JSONDict]:
        """The commands set with setMyCommands for that language and scope."""
        with self._lock:
            return copy.deepcopy(self._commands.get((self._scope_key(scope), language_code), []))

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by the bot."""
        with self._lock:
            return [copy.deepcopy(p.update) for p in self._pending]

    def was_delivered(self, update_id: int) -> bool:
        with self._lock:
            return update_id in self._delivered_ids

    @property
    def webhook_info(self) -> JSONDict:
        with self._lock:
            return self._webhook_info()

    def transcript(self, chat_id: int) -> str:
        """A readable dump of the chat (learner and bot), for assertion messages."""
        with self._lock:
            lines = []
            entries: list[tuple[int, str]] = []
            for mid, m in self._learner_messages.get(chat_id, {}).items():
                what = (
                    m.get("text")
                    or m.get("caption")
                    or next((k for k in ("sticker", "photo", "voice", "document") if k in m), "?")
                )
                entries.append((mid, f"  learner #{mid}: {what!r}"))
            for message in self._messages.get(chat_id, []):
                entries.append((message.message_id, f"  bot {message.summary()}"))
            for _, line in sorted(entries):
                lines.append(line)
            return f"chat {chat_id}:\n" + "\n".join(lines)

    # ------------------------------------------------------------------ waiting helpers

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, *, what: str | None = None) -> T:
        """Wait (yielding to the event loop) until ``predicate()`` is truthy and return its value.

        It is re-evaluated, under the server's lock, whenever the server's state changes; on
        timeout a ``TimeoutError`` lists the recent requests and chats.
        """
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._async_waiters.add(entry)
        try:
            deadline = loop.time() + timeout
            while True:
                event.clear()
                with self._lock:
                    value = predicate()
                if value:
                    return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_report(what or "condition", timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                self._async_waiters.discard(entry)

    def wait_for_sync(self, predicate: Callable[[], T], timeout: float = 10.0, *, what: str | None = None) -> T:
        """``wait_for`` for synchronous code (blocks the calling thread: never call it on the
        event loop the bot runs on)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_report(what or "condition", timeout))
                self._cond.wait(remaining)

    def _new_messages(self, chat_id: int, count: int, after: int | None) -> list[SentMessage] | None:
        found = [
            m for m in self._messages.get(chat_id, []) if not m.deleted and (after is None or m.message_id > after)
        ]
        return copy.deepcopy(found) if len(found) >= count else None

    async def wait_for_messages(
        self, chat_id: int, count: int = 1, *, after: int | None = None, timeout: float = 10.0
    ) -> list[SentMessage]:
        """Wait until the chat holds at least ``count`` messages from the bot with an id above
        ``after`` (all of them if None); return those messages (all found, oldest first)."""
        return await self.wait_for(
            lambda: self._new_messages(chat_id, count, after),
            timeout,
            what=f"{count} message(s) in chat {chat_id} after #{after}",
        )

    def wait_for_messages_sync(
        self, chat_id: int, count: int = 1, *, after: int | None = None, timeout: float = 10.0
    ) -> list[SentMessage]:
        return self.wait_for_sync(
            lambda: self._new_messages(chat_id, count, after),
            timeout,
            what=f"{count} message(s) in chat {chat_id} after #{after}",
        )

    async def wait_for_request(
        self,
        method: str,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> RecordedRequest:
        """Wait for a request to ``method`` (matching ``predicate``) among requests number
        ``since`` onwards (``len(server.requests)`` taken earlier); return it once answered."""
        wanted = method.lower()

        def find() -> RecordedRequest | None:
            for request in self._requests[since:]:
                if request.method.lower() == wanted and request.status and (predicate is None or predicate(request)):
                    return copy.deepcopy(request)
            return None

        return await self.wait_for(find, timeout, what=f"a {method} request")

    async def wait_for_callback_answer(self, callback_query_id: str, timeout: float = 10.0) -> JSONDict:
        """Wait until the bot answered that callback query; return the answer's parameters."""
        return await self.wait_for(
            lambda: copy.deepcopy(self._answers.get(callback_query_id)),
            timeout,
            what=f"an answer to callback query {callback_query_id}",
        )

    async def wait_until_delivered(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until the bot has fetched the update (getUpdates or webhook)."""
        await self.wait_for(lambda: update_id in self._delivered_ids, timeout, what=f"delivery of update {update_id}")

    def _timeout_report(self, what: str, timeout: float) -> str:
        with self._lock:
            recent = [str(r) for r in self._requests if r.method.lower() != "getupdates"][-15:]
            chats = "\n".join(self.transcript(chat_id) for chat_id in self._chats)
            pending = [p.update["update_id"] for p in self._pending]
            errors = "\n".join(self.server_errors[-3:])
        return (
            f"timed out after {timeout}s waiting for {what}\n"
            f"recent requests (getUpdates left out):\n  " + "\n  ".join(recent or ["(none)"]) + "\n"
            f"pending updates: {pending}\n{chats}" + (f"\nerrors inside the fake:\n{errors}" if errors else "")
        )

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

    def _take_fault(self, method: str, params: JSONDict) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, params):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ method dispatch

    def _call(self, method: str, params: JSONDict, files: dict[str, tuple[str, bytes]]) -> tuple[Any, Any]:
        if method == "getupdates":
            return self._get_updates(params)
        handler = self._methods().get(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        with self._lock:
            if "chat_id" in params and method not in ("getchat",):
                self._check_chat(method, params)
            result = handler(params, files)
            self._changed()
            return result, None

    def _methods(self) -> dict[str, Callable[[JSONDict, dict[str, tuple[str, bytes]]], Any]]:
        return {
            "getme": lambda p, f: copy.deepcopy(self.bot_user),
            "logout": lambda p, f: True,
            "close": lambda p, f: True,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": lambda p, f: self._webhook_info(),
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setmydescription": self._set_bot_setting("description"),
            "setmyshortdescription": self._set_bot_setting("short_description"),
            "setmyname": self._set_bot_setting("name"),
            "getmydescription": lambda p, f: {"description": self._bot_settings.get("description", "")},
            "getmyshortdescription": lambda p, f: {
                "short_description": self._bot_settings.get("short_description", "")
            },
            "getmyname": lambda p, f: {"name": self._bot_settings.get("name", self.bot_user["first_name"])},
            "setchatmenubutton": lambda p, f: True,
            "getchat": self._get_chat,
            "sendmessage": self._send_message,
            "sendphoto": self._send_file("photo"),
            "senddocument": self._send_file("document"),
            "sendpoll": self._send_poll,
            "stoppoll": self._stop_poll,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "getfile": self._get_file,
        }

    def _check_chat(self, method: str, params: JSONDict) -> None:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            match = [cid for cid, chat in self._chats.items() if chat.get("username") == chat_id.lstrip("@")]
            if not match:
                raise bad_request("chat not found")
            params["chat_id"] = chat_id = match[0]
        if chat_id in self._blocked:
            if self._chats.get(chat_id, {}).get("type", "private") == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        if chat_id not in self._chats:
            if self.require_known_chats:
                raise bad_request("chat not found")
            self._ensure_chat(chat_id, "private" if chat_id > 0 else "group")
        if method in SENDING_METHODS and self._flood is not None:
            self._check_flood(chat_id)

    def _check_flood(self, chat_id: int) -> None:
        assert self._flood is not None
        overall, group_per_minute, retry_after = self._flood
        now = time.monotonic()
        self._send_times = [(t, c) for t, c in self._send_times if now - t < 60]
        too_many = overall is not None and sum(1 for t, _ in self._send_times if now - t < 1) >= overall
        is_group = self._chats[chat_id]["type"] != "private"
        if group_per_minute is not None and is_group:
            too_many = too_many or sum(1 for _, c in self._send_times if c == chat_id) >= group_per_minute
        if too_many:
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        self._send_times.append((now, chat_id))

    # ------------------------------------------------------------------ getUpdates and webhooks

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._pending = [
                p for p in self._pending if p.update["update_id"] >= offset or (p.forced and not p.delivered)
            ]
        elif offset < 0:
            self._pending = self._pending[offset:]

    def _deliverable(self, limit: int) -> list[_Pending]:
        allowed = self._allowed_updates
        batch = []
        for pending in list(self._pending):
            kind = next((k for k in pending.update if k != "update_id"), "")
            if (allowed and kind not in allowed) or (not allowed and kind in NOT_DELIVERED_BY_DEFAULT):
                self._pending.remove(pending)  # Telegram never keeps those for this bot
                continue
            batch.append(pending)
            if len(batch) >= limit:
                break
        return batch

    def _get_updates(self, params: JSONDict) -> tuple[list[JSONDict], Callable[[], None]]:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        with self._cond:
            if self._webhook.get("url"):
                raise ApiError(409, WEBHOOK_CONFLICT)
            if "allowed_updates" in params and params["allowed_updates"] is not None:
                self._allowed_updates = list(params["allowed_updates"])
            self._poll_generation += 1
            generation = self._poll_generation
            self._confirm(offset)
            self._changed()  # also wakes a long poll this request preempts
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, GET_UPDATES_CONFLICT)
                batch = self._deliverable(limit)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._stop_event.is_set():
                    break
                self._cond.wait(remaining)
            updates = [copy.deepcopy(p.update) for p in batch]

        def delivered() -> None:
            with self._lock:
                for pending in batch:
                    pending.delivered = True
                    self._delivered_ids.add(pending.update["update_id"])
                self._changed()

        return updates, delivered

    def _webhook_info(self) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook.get("url"):
            info["max_connections"] = self._webhook.get("max_connections", 40)
            info["ip_address"] = "127.0.0.1"
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = self._webhook["allowed_updates"]
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _set_webhook(self, params: JSONDict, files: Any) -> bool:
        url = params.get("url") or ""
        if not url:
            self._delete_webhook(params, files)
            return True
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: Invalid URL specified")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise bad_request("bad webhook: the fake Bot API delivers webhooks to loopback addresses only")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        self._webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "max_connections": int(params.get("max_connections") or 40),
            "allowed_updates": params.get("allowed_updates"),
        }
        self._webhook_error = None
        self._poll_generation += 1  # a waiting getUpdates ends with a conflict
        self._start_webhook_delivery()
        return True

    def _delete_webhook(self, params: JSONDict, files: Any) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if self._webhook.get("url"):
            self._webhook = {"url": ""}
            self._webhook_stop.set()
        return True

    def _start_webhook_delivery(self) -> None:
        self._webhook_stop.set()  # a previous delivery thread ends on its own
        self._webhook_stop = threading.Event()
        thread = threading.Thread(
            target=self._deliver_webhooks, args=(self._webhook_stop,), name="FakeBotAPI-webhook", daemon=True
        )
        self._webhook_threads.append(thread)
        thread.start()

    def _stop_webhook_delivery(self) -> None:
        with self._cond:
            self._webhook_stop.set()
            threads, self._webhook_threads = self._webhook_threads, []
            self._changed()
        for thread in threads:
            thread.join()

    def _deliver_webhooks(self, stop: threading.Event) -> None:
        """POST pending updates one by one to the webhook URL, in order; retry until 2xx."""
        while not stop.is_set() and not self._stop_event.is_set():
            with self._cond:
                webhook = dict(self._webhook)
                batch = self._deliverable(1) if webhook.get("url") else []
                if not batch:
                    self._cond.wait(0.2)
                    continue
                pending = batch[0]
                update = copy.deepcopy(pending.update)
            status, error = self._post_update(webhook, update)
            with self._lock:
                if 200 <= status < 300:
                    self._delivered_ids.add(update["update_id"])
                    if pending in self._pending:
                        self._pending.remove(pending)
                    self._webhook_error = None
                else:
                    self._webhook_error = (self._now(), error)
                self._changed()
            if not 200 <= status < 300:
                stop.wait(0.2)

    @staticmethod
    def _post_update(webhook: JSONDict, update: JSONDict) -> tuple[int, str]:
        parts = urlsplit(webhook["url"])
        headers = {"Content-Type": "application/json"}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            connection.request("POST", path, body=json.dumps(update).encode(), headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, f"Wrong response from the webhook: {response.status} {response.reason}"
        except OSError as exc:
            return 0, f"Connection refused ({exc.__class__.__name__})"
        finally:
            connection.close()

    # ------------------------------------------------------------------ commands and settings

    @staticmethod
    def _scope_key(scope: JSONDict | None) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _set_my_commands(self, params: JSONDict, files: Any) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name.lstrip("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("command description must be non-empty")
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        key = (self._scope_key(params.get("scope")), language)
        self._commands[key] = [{"command": c["command"].lstrip("/"), "description": c["description"]} for c in commands]
        return True

    def _get_my_commands(self, params: JSONDict, files: Any) -> list[JSONDict]:
        key = (self._scope_key(params.get("scope")), params.get("language_code") or "")
        return copy.deepcopy(self._commands.get(key, []))

    def _delete_my_commands(self, params: JSONDict, files: Any) -> bool:
        self._commands.pop((self._scope_key(params.get("scope")), params.get("language_code") or ""), None)
        return True

    def _set_bot_setting(self, name: str) -> Callable[[JSONDict, Any], bool]:
        def setter(params: JSONDict, files: Any) -> bool:
            self._bot_settings[name] = params.get(name, "")
            return True

        return setter

    def _get_chat(self, params: JSONDict, files: Any) -> JSONDict:
        chat_id = params.get("chat_id")
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        chat = self._chat_json(chat_id)
        chat["accent_color_id"] = 0
        chat["max_reaction_count"] = 11
        return chat

    # ------------------------------------------------------------------ formatted text

    def _parse_text(
        self, text: Any, parse_mode: Any, entities: Any, *, limit: int, too_long: str, empty: str
    ) -> tuple[str, list[JSONDict]]:
        """Apply parse_mode like Telegram, then trim, then check emptiness and the length."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        mode = (parse_mode or "").strip()
        if mode.lower() == "html":
            try:
                plain, found = parse_html(text, strict_ampersand=self.strict_html)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from exc
            found = _finish_entities(found)
        elif mode == "" or mode.lower() in ("markdown", "markdownv2"):
            # Markdown is not parsed by the fake: the text is kept as sent.
            plain, found = text, list(entities or []) if isinstance(entities, list) else []
        else:
            raise bad_request("unsupported parse_mode")
        plain, found = _trim(plain, found)
        if empty and not plain:
            raise bad_request(empty)
        if utf16_len(plain) > limit:
            raise bad_request(too_long)
        return plain, found

    def _check_reply_markup(self, markup: Any) -> JSONDict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise bad_request("object expected as reply markup")
        if "inline_keyboard" not in markup:
            return markup  # reply keyboards etc. are kept as sent
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        actions = (
            "callback_data",
            "url",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "web_app",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
                if "text" not in button:
                    raise bad_request("can't parse inline keyboard button: Can't find field \"text\"")
                if not isinstance(button["text"], str):
                    raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str):
                        raise bad_request(
                            'can\'t parse inline keyboard button: Field "callback_data" must be of type String'
                        )
                    if not data:
                        raise bad_request(
                            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                        )
                    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif not any(button.get(action) not in (None, "") for action in actions):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
        return markup

    # ------------------------------------------------------------------ sending

    def _reply_to(self, chat_id: int, params: JSONDict) -> int | None:
        reply = params.get("reply_parameters")
        message_id = reply.get("message_id") if isinstance(reply, dict) else params.get("reply_to_message_id")
        if message_id is None:
            return None
        allow = (reply or {}).get("allow_sending_without_reply") if isinstance(reply, dict) else None
        allow = allow or params.get("allow_sending_without_reply")
        known = message_id in self._learner_messages.get(chat_id, {}) or self._find_message(chat_id, message_id)
        if not known:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return int(message_id)

    def _store(self, message: SentMessage) -> JSONDict:
        self._messages.setdefault(message.chat_id, []).append(message)
        return self._message_json(message)

    def _send_message(self, params: JSONDict, files: Any) -> JSONDict:
        chat_id = params["chat_id"]
        if "text" not in params:
            raise bad_request("message text is empty")
        plain, entities = self._parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="message is too long",
            empty="message text is empty",
        )
        markup = self._check_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        return self._store(
            SentMessage(
                chat_id=chat_id,
                message_id=self._new_message_id(chat_id),
                kind="text",
                date=self._now(),
                text=params.get("text"),
                parse_mode=params.get("parse_mode"),
                plain_text=plain,
                entities=entities,
                reply_markup=markup,
                reply_to_message_id=reply_to,
                params=copy.deepcopy(params),
            )
        )

    def _resolve_file(self, kind: str, params: JSONDict, files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
        value = params.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            name = value[len("attach://") :]
            if name not in files:
                raise bad_request(f"there is no {kind} in the request")
            return files[name]
        if kind in files:
            return files[kind]
        if isinstance(value, str) and value:
            if value in self._files:
                path, data = self._files[value]
                return path.rsplit("/", 1)[-1], data
            if value.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")  # the fake fetches nothing
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {kind} in the request")

    def _send_file(self, kind: str) -> Callable[[JSONDict, dict[str, tuple[str, bytes]]], JSONDict]:
        def send(params: JSONDict, files: dict[str, tuple[str, bytes]]) -> JSONDict:
            chat_id = params["chat_id"]
            file_name, data = self._resolve_file(kind, params, files)
            if not data:
                raise bad_request("file must be non-empty")
            if kind == "photo":
                size = _png_size(data)
                if size and (sum(size) > 10000 or max(size) > 20 * max(min(size), 1)):
                    raise bad_request("PHOTO_INVALID_DIMENSIONS")
            plain, entities = self._parse_text(
                params.get("caption") or "",
                params.get("parse_mode"),
                params.get("caption_entities"),
                limit=MAX_CAPTION_LENGTH,
                too_long="message caption is too long",
                empty="",
            )
            markup = self._check_reply_markup(params.get("reply_markup"))
            reply_to = self._reply_to(chat_id, params)
            number = next(self._ids)
            file_id = f"AgAD-{kind}-{number}"
            extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
            folder = "photos" if kind == "photo" else "documents"
            self._files[file_id] = (f"{folder}/file_{number}.{extension}", data)
            return self._store(
                SentMessage(
                    chat_id=chat_id,
                    message_id=self._new_message_id(chat_id),
                    kind=kind,
                    date=self._now(),
                    text=params.get("caption"),
                    parse_mode=params.get("parse_mode"),
                    plain_text=plain,
                    entities=entities,
                    reply_markup=markup,
                    file=data,
                    file_name=file_name,
                    file_ids=[file_id],
                    reply_to_message_id=reply_to,
                    params=copy.deepcopy(params),
                )
            )

        return send

    def _send_poll(self, params: JSONDict, files: Any) -> JSONDict:
        chat_id = params["chat_id"]
        question = params.get("question")
        if not isinstance(question, str) or not question.strip():
            raise bad_request("poll question must be non-empty")
        question_plain, _ = self._parse_text(
            question,
            params.get("question_parse_mode"),
            None,
            limit=10**9,
            too_long="",
            empty="poll question must be non-empty",
        )
        if len(question_plain) > MAX_POLL_QUESTION_LENGTH:
            raise bad_request(f"poll question length must not exceed {MAX_POLL_QUESTION_LENGTH}")
        raw_options = params.get("options")
        if not isinstance(raw_options, list):
            raw_options = []
        if len(raw_options) < self.min_poll_options:
            raise bad_request(
                "poll must have at least 2 option"
                if self.min_poll_options >= 2
                else "poll must have at least one answer option"
            )
        if len(raw_options) > MAX_POLL_OPTIONS:
            raise bad_request(f"poll can't have more than {MAX_POLL_OPTIONS} options")
        options = []
        for raw in raw_options:
            option_text = raw.get("text") if isinstance(raw, dict) else raw
            if not isinstance(option_text, str) or not option_text.strip():
                raise bad_request("poll options must be non-empty")
            if len(option_text) > MAX_POLL_OPTION_LENGTH:
                raise bad_request(f"poll options length must not exceed {MAX_POLL_OPTION_LENGTH}")
            options.append({"text": option_text, "voter_count": 0, "persistent_id": str(len(options))})
        poll_type = params.get("type") or "regular"
        if poll_type not in ("regular", "quiz"):
            raise bad_request("unsupported poll type specified")
        poll_id = str(5_000_000_000_000_000 + next(self._ids))
        poll: JSONDict = {
            "id": poll_id,
            "question": question_plain,
            "options": options,
            "total_voter_count": 0,
            "is_closed": bool(params.get("is_closed", False)),
            "is_anonymous": bool(params.get("is_anonymous", True)),
            "type": poll_type,
            "allows_multiple_answers": bool(params.get("allows_multiple_answers", False)),
            "allows_revoting": bool(params.get("allows_revoting", poll_type == "regular")),
            "members_only": bool(params.get("members_only", False)),
        }
        if poll_type == "quiz":
            correct = params.get("correct_option_ids")
            if correct is None and params.get("correct_option_id") is not None:
                correct = [params["correct_option_id"]]
            if not correct or any(not 0 <= int(c) < len(options) for c in correct):
                raise bad_request("wrong correct option ID specified")
            poll["correct_option_ids"] = [int(c) for c in correct]
            explanation = params.get("explanation")
            if explanation:
                plain, entities = self._parse_text(
                    explanation,
                    params.get("explanation_parse_mode"),
                    params.get("explanation_entities"),
                    limit=10**9,
                    too_long="",
                    empty="",
                )
                if utf16_len(plain) > MAX_POLL_EXPLANATION_LENGTH or plain.count("\n") > 2:
                    raise bad_request("explanation is too long")  # description unverified
                poll["explanation"] = plain
                if entities:
                    poll["explanation_entities"] = entities
        if params.get("open_period"):
            poll["open_period"] = int(params["open_period"])
        markup = self._check_reply_markup(params.get("reply_markup"))
        message = SentMessage(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            kind="poll",
            date=self._now(),
            plain_text=question_plain,
            poll=poll,
            reply_markup=markup,
            params=copy.deepcopy(params),
        )
        self._polls[poll_id] = (chat_id, message.message_id)
        return self._store(message)

    def _stop_poll(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._find_message(params["chat_id"], params.get("message_id"))
        if message is None or message.deleted or message.kind != "poll" or message.poll is None:
            raise bad_request("message with poll to stop not found")
        if message.poll["is_closed"]:
            raise bad_request("poll has already been closed")
        markup = params.get("reply_markup")
        if markup is not None:
            message.reply_markup = self._check_reply_markup(markup)
        message.poll["is_closed"] = True
        return copy.deepcopy(message.poll)

    # ------------------------------------------------------------------ editing and deleting

    def _find_message(self, chat_id: Any, message_id: Any) -> SentMessage | None:
        for message in self._messages.get(chat_id, []):
            if message.message_id == message_id:
                return message
        return None

    def _editable(self, params: JSONDict) -> SentMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # inline messages are not emulated
        if params.get("message_id") in (None, ""):
            raise bad_request("message identifier is not specified")
        message = self._find_message(params["chat_id"], params["message_id"])
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        return message

    def _apply_edit(self, message: SentMessage, **changes: Any) -> JSONDict:
        current = {name: getattr(message, name) for name in changes}
        if current == changes:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.history.append(
            {
                "text": message.text,
                "plain_text": message.plain_text,
                "parse_mode": message.parse_mode,
                "entities": copy.deepcopy(message.entities),
                "reply_markup": copy.deepcopy(message.reply_markup),
            }
        )
        for name, value in changes.items():
            setattr(message, name, value)
        message.edited = True
        message.edit_date = max(self._now(), message.date + 1)
        return self._message_json(message)

    def _edit_message_text(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._editable(params)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        plain, entities = self._parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="MESSAGE_TOO_LONG",
            empty="message text is empty",
        )
        markup = self._check_reply_markup(params.get("reply_markup"))
        result = self._apply_edit(message, plain_text=plain, entities=entities, reply_markup=markup)
        message.text = params.get("text")
        message.parse_mode = params.get("parse_mode")
        return result

    def _edit_message_caption(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._editable(params)
        if message.kind not in ("photo", "document"):
            raise bad_request("there is no caption in the message to edit")
        plain, entities = self._parse_text(
            params.get("caption") or "",
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
            empty="",
        )
        markup = self._check_reply_markup(params.get("reply_markup"))
        result = self._apply_edit(message, plain_text=plain, entities=entities, reply_markup=markup)
        message.text = params.get("caption")
        message.parse_mode = params.get("parse_mode")
        return result

    def _edit_message_reply_markup(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._editable(params)
        markup = self._check_reply_markup(params.get("reply_markup"))
        if markup == {"inline_keyboard": []}:
            markup = None
        current = message.reply_markup if message.reply_markup != {"inline_keyboard": []} else None
        if current == markup:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        return self._apply_edit(message, reply_markup=markup)

    def _delete_message(self, params: JSONDict, files: Any) -> bool:
        message = self._find_message(params["chat_id"], params.get("message_id"))
        if message is None or message.deleted:
            if params.get("message_id") in self._learner_messages.get(params["chat_id"], {}):
                self._learner_messages[params["chat_id"]].pop(params["message_id"])
                return True
            raise bad_request("message to delete not found")
        message.deleted = True
        return True

    def _delete_messages(self, params: JSONDict, files: Any) -> bool:
        for message_id in params.get("message_ids") or []:
            message = self._find_message(params["chat_id"], message_id)
            if message is not None:
                message.deleted = True
        return True

    # ------------------------------------------------------------------ misc methods

    def _answer_callback_query(self, params: JSONDict, files: Any) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callback_queries or query_id in self._answers:
            raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        text = params.get("text") or ""
        if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        self._answers[query_id] = copy.deepcopy(params)
        return True

    def _send_chat_action(self, params: JSONDict, files: Any) -> bool:
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _get_file(self, params: JSONDict, files: Any) -> JSONDict:
        file_id = params.get("file_id")
        if file_id not in self._files:
            raise bad_request("invalid file_id")
        path, data = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data), "file_path": path}

    # ------------------------------------------------------------------ JSON shapes

    def _message_json_any(self, chat_id: int, message_id: int) -> JSONDict:
        learner = self._learner_messages.get(chat_id, {}).get(message_id)
        if learner is not None:
            return copy.deepcopy(learner)
        message = self._find_message(chat_id, message_id)
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return self._message_json(message)

    def _message_json(self, message: SentMessage) -> JSONDict:
        body: JSONDict = {
            "message_id": message.message_id,
            "from": copy.deepcopy(self.bot_user),
            "chat": self._chat_json(message.chat_id),
            "date": message.date,
        }
        if message.edit_date is not None:
            body["edit_date"] = message.edit_date
        if message.reply_to_message_id is not None:
            with contextlib.suppress(LookupError):
                reply = self._message_json_any(message.chat_id, message.reply_to_message_id)
                reply.pop("reply_to_message", None)
                body["reply_to_message"] = reply
        entity_key = "entities" if message.kind == "text" else "caption_entities"
        if message.kind == "text":
            body["text"] = message.plain_text or ""
        elif message.kind in ("photo", "document") and message.plain_text:
            body["caption"] = message.plain_text
        if message.entities and message.kind != "poll":
            body[entity_key] = copy.deepcopy(message.entities)
        if message.kind == "photo":
            body["photo"] = self._photo_sizes(message)
        elif message.kind == "document":
            body["document"] = {
                "file_id": message.file_ids[0],
                "file_unique_id": f"u{message.file_ids[0]}",
                "file_name": message.file_name,
                "file_size": len(message.file or b""),
            }
        elif message.kind == "poll":
            body["poll"] = copy.deepcopy(message.poll)
        if message.reply_markup and message.reply_markup.get("inline_keyboard"):
            body["reply_markup"] = copy.deepcopy(message.reply_markup)
        return body

    @staticmethod
    def _photo_sizes(message: SentMessage) -> list[JSONDict]:
        width, height = _png_size(message.file or b"") or (800, 600)
        file_id = message.file_ids[0]
        scale = 90 / max(width, height, 1)
        thumb = {
            "file_id": f"{file_id}-s",
            "file_unique_id": f"u{file_id}-s",
            "width": max(int(width * scale), 1),
            "height": max(int(height * scale), 1),
        }
        full = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "width": width,
            "height": height,
            "file_size": len(message.file or b""),
        }
        return [thumb, full]


class Learner:
    """A learner in a private chat with the bot: shortcuts over the server's learner actions."""

    def __init__(self, server: FakeBotAPI, user_id: int, language_code: str = "en") -> None:
        self.server = server
        self.user_id = user_id
        self.chat_id = user_id
        self.language_code = language_code

    def send(self, text: str) -> JSONDict:
        return self.server.send_text(self.chat_id, text, language_code=self.language_code)

    def click(self, callback_data: str, *, message_id: int | None = None) -> JSONDict:
        """Tap the button with that data on ``message_id`` or on the newest message showing it."""
        if message_id is None:
            for message in reversed(self.server.messages(self.chat_id)):
                if callback_data in message.callback_data:
                    message_id = message.message_id
                    break
            else:
                raise LookupError(f"no message in chat {self.chat_id} has a button {callback_data!r}")
        return self.server.click(self.chat_id, message_id, callback_data)

    def press(self, button_text: str, *, message_id: int | None = None) -> JSONDict:
        return self.server.press(self.chat_id, button_text, message_id=message_id)

    @property
    def messages(self) -> list[SentMessage]:
        return self.server.messages(self.chat_id)

    def mark(self) -> int:
        return self.server.last_message_id(self.chat_id)

    async def wait_for_messages(
        self, count: int = 1, *, after: int | None = None, timeout: float = 10.0
    ) -> list[SentMessage]:
        return await self.server.wait_for_messages(self.chat_id, count, after=after, timeout=timeout)

    async def ask(self, text: str, count: int = 1, *, timeout: float = 10.0) -> list[SentMessage]:
        """Send ``text`` and wait for at least ``count`` new messages from the bot."""
        update = self.send(text)
        return await self.wait_for_messages(count, after=update["message"]["message_id"], timeout=timeout)


@contextlib.contextmanager
def running(server: FakeBotAPI | None = None) -> Iterator[FakeBotAPI]:
    """``with running() as server:`` starts a server and always stops it."""
    server = server or FakeBotAPI()
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""What the fake records: the requests the bot made (``RecordedRequest``), the messages it sent as
they stand now (``SentMessage``) and the updates queued for it (``_Pending``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .protocol import JSONDict

DROPPED = -1  # RecordedRequest.status of a request whose connection the fake closed unanswered


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
class _Pending:
    update: JSONDict
    forced: bool = False  # a redelivery: survives offset confirmation until delivered once
    delivered: bool = False

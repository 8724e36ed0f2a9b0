"""What only the Telegram adapter needs to remember about the messages it sent: which message carries
an anchored reply (a question, to be edited once answered, also after a restart), and which quiz poll
belongs to which learner (a poll answer carries only the poll's id). The engine never sees these: it
names an anchor, and the adapter finds the message here. Also the codec that stores replies as outbox
rows (``encode``/``decode``)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from typing import Any

from sqlmodel import Session

from bot.storage import Repository
from bot.storage.models import MessageAnchor, PollRef
from dialogs.messages import Button, Edit, GraphView, Photo, QuizPoll, Reply, Say


class Outbox:
    """The adapter's own records, in the tutor's database (its own tables), off the event loop."""

    def __init__(self, repo: Repository) -> None:
        self.engine = repo.engine
        self._write = repo.write_lock

    async def anchor(self, learner_id: str, anchor: str) -> int | None:
        return await asyncio.to_thread(self._anchor, learner_id, anchor)

    async def remember_anchor(self, learner_id: str, anchor: str, message_id: int) -> None:
        await asyncio.to_thread(self._remember_anchor, learner_id, anchor, message_id)

    async def poll(self, poll_id: str) -> PollRef | None:
        return await asyncio.to_thread(self._poll, poll_id)

    async def remember_poll(self, poll_id: str, learner_id: str, chat_id: int, seq: int) -> None:
        await asyncio.to_thread(self._remember_poll, poll_id, learner_id, chat_id, seq)

    # -- the blocking parts ------------------------------------------------------------------------

    def _anchor(self, learner_id: str, anchor: str) -> int | None:
        with Session(self.engine) as db:
            row = db.get(MessageAnchor, (learner_id, anchor))
            return None if row is None else row.message_id

    def _remember_anchor(self, learner_id: str, anchor: str, message_id: int) -> None:
        with self._write, Session(self.engine) as db:
            db.merge(MessageAnchor(learner_id=learner_id, anchor=anchor, message_id=message_id))
            db.commit()

    def _poll(self, poll_id: str) -> PollRef | None:
        with Session(self.engine) as db:
            return db.get(PollRef, poll_id)

    def _remember_poll(self, poll_id: str, learner_id: str, chat_id: int, seq: int) -> None:
        with self._write, Session(self.engine) as db:
            db.merge(PollRef(poll_id=poll_id, learner_id=learner_id, chat_id=chat_id, seq=seq))
            db.commit()


# ------------------------------------------------------------------------------ replies as outbox rows

KIND = {Say: "say", Edit: "edit", Photo: "photo", GraphView: "graph"}


def _buttons(rows: Any) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(Button(**b) for b in row) for row in rows)


def encode(reply: Reply) -> tuple[str, dict[str, Any]]:
    """A reply as an outbox row's kind and JSON payload."""
    payload = dataclasses.asdict(reply)
    if isinstance(reply, Photo):
        payload["data"] = base64.b64encode(reply.data).decode("ascii")
    return KIND[type(reply)], payload


def decode(kind: str, payload: dict[str, Any]) -> Reply:
    """The reply an outbox row holds (the inverse of ``encode``)."""
    if kind == "say":
        poll = payload.get("poll")
        return Say(payload["text"], _buttons(payload.get("buttons", ())), payload.get("anchor"), payload.get("seq", 0),
                   QuizPoll(poll["question"], tuple(poll["options"]), poll["correct"], poll["explanation"])
                   if poll else None)
    if kind == "edit":
        return Edit(payload["anchor"], payload["text"], _buttons(payload.get("buttons", ())), payload.get("seq", 0),
                    payload.get("note", ""))
    if kind == "photo":
        return Photo(payload["path"], payload.get("caption", ""), base64.b64decode(payload.get("data", "")))
    if kind == "graph":
        return GraphView(payload["graph"], payload["caption"], payload["tree"], payload.get("no_picture", ""),
                         payload.get("saved_as", ""))
    raise ValueError(f"no reply of kind {kind!r}")

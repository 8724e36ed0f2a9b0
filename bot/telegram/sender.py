"""The outbox sender: every Bot API call the tutor makes goes through here, from a stored outbox row.

A turn's replies are stored in the same transaction as the learner's new state (``Repository.save_turn``);
this sends them afterwards, marks each row, retries what failed and picks up after a restart whatever a
dead process left. Rules:

- One chat's messages go out one at a time, in the order they were stored; different chats go out
  concurrently (at most ``lanes`` at once; Telegram's pace is ``AIORateLimiter``'s). Callback answers
  wait for nothing: as soon as the turn is stored, its answer goes out (``answer_now``), so a tapped
  button stops spinning first; the outbox row is there for when that fails or the process dies.
- A row is marked sent once Telegram has answered. What failed (a callback answer Telegram refuses is
  ``expired``: it was answered before a restart, or is too old to answer):
  - certainly not carried out (no connection could be made; Telegram answered 5xx or 429): sent again
    later, with a growing delay (429: when Telegram says), up to ``MAX_ATTEMPTS``;
  - maybe carried out (a timeout or a connection lost after the request went out): an edit, a callback
    answer or a keyboard removal is sent again (repeating them changes nothing); a new message is not
    (``unknown``): Telegram almost always carried it out, and sending it again would post it twice;
  - refused (400): logged and marked failed, never retried; 403: the learner blocked us, their pending
    rows are dropped and they are marked inactive.
- A row that was being sent when the process died (``pending`` with ``attempts`` > 0) is sent again
  after the restart: the process cannot know whether it went out, and a lost question would leave the
  learner waiting, while a duplicate is only noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from telegram import LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from bot import graphs
from bot.storage import OutboxMessage, Repository
from bot.telegram.outbox import Outbox, decode
from bot.telegram.render import CAPTION_LIMIT, keyboard, to_html
from dialogs.messages import Edit, GraphView, Photo, Reply, Say

if TYPE_CHECKING:
    from dialogs.course import Course

log = logging.getLogger(__name__)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
TAG = re.compile(r"<[^>]+>")
MAX_ATTEMPTS = 8
ANSWER_GRACE = 5.0  # seconds: a stored callback answer is the fast path's (``answer_now``) this long
IDEMPOTENT = frozenset({"edit", "answer", "unkeyboard"})


def learner_id(chat_id: int) -> str:
    return f"tg:{chat_id}"


def never_sent(exc: NetworkError) -> bool:
    """Did the request certainly not reach Telegram, or did Telegram answer that it failed (5xx)? Then
    sending it again cannot post it twice. python-telegram-bot keeps httpx's error as the cause: a failed
    connect or a pool timeout (``Request was *not* sent``) say so; an error status from the server comes
    without a cause."""
    cause = exc.__cause__
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True
    if isinstance(cause, RuntimeError) and "not initialized" in str(cause):
        return True  # the bot's HTTP client was already shut down (a stop): nothing left the process
    return cause is None and not isinstance(exc, TimedOut)


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Blocked(Exception):
    """The learner blocked the bot (403)."""


class Sender:
    """Sends the outbox. ``wake()`` after storing rows; ``run()`` until ``stop()``."""

    def __init__(self, app: Application, repo: Repository, course: Course, *, lanes: int = 64,
                 answers: int = 32, idle_seconds: float = 1.0,
                 on_change: Callable[[], None] | None = None) -> None:
        self.app = app
        self.repo = repo
        self.course = course
        self.outbox = Outbox(repo)  # which message carries which anchor, which poll is whose
        self.lanes = lanes
        self.answers = answers
        self.idle_seconds = idle_seconds
        self.on_change = on_change or (lambda: None)
        self._wake = asyncio.Event()
        self._stopping = False
        self._chats: dict[int, asyncio.Task[None]] = {}
        self._answering: dict[int, asyncio.Task[None]] = {}
        self._fast: set[asyncio.Future[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    def answer_now(self, query_id: str, text: str, origin: int | None) -> None:
        """Answer a tap whose answer row was just stored, at once: no reading back from the outbox, no
        queue. If this fails, the row is still pending and the outbox sends it (``ANSWER_GRACE`` later)."""
        task = asyncio.ensure_future(self._answer_now(query_id, text, origin))
        self._fast.add(task)
        task.add_done_callback(self._fast.discard)

    async def _answer_now(self, query_id: str, text: str, origin: int | None) -> None:
        try:
            await self.app.bot.answer_callback_query(query_id, text=text or None)
            status, error = "sent", None
        except BadRequest as exc:  # too old to answer
            log.info("callback query not answered: %s", exc.message)
            status, error = "expired", exc.message
        except TelegramError as exc:
            log.warning("callback answer failed (%s); the outbox sends it again", exc)
            return
        await asyncio.to_thread(self.repo.answer_done, query_id, origin, status, error)
        self.on_change()

    async def run(self, *, recover: bool = True) -> None:
        """Send until ``stop()``: whatever is due, chat by chat. ``recover``: this is the serving bot, so
        the rows a dead process was sending are freed and sent again."""
        resent = await asyncio.to_thread(self.repo.in_flight) if recover else []
        if recover:
            await asyncio.to_thread(self.repo.release_claims)
        for row in resent:
            log.warning("outbox row %s (%s for chat %s) was being sent when the process stopped: its fate is "
                        "unknown, so it is sent again", row.id, row.kind, row.chat_id)
        while not self._stopping:
            self._wake.clear()
            await self._start_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    async def _start_due(self) -> None:
        now = datetime.now(UTC)
        room = self.answers - len(self._answering)
        if room > 0:
            for row in await asyncio.to_thread(self.repo.pending_answers, set(self._answering), room, now,
                                               now - timedelta(seconds=ANSWER_GRACE)):
                assert row.id is not None
                self._answering[row.id] = self._task(self._send_answer(row), self._answering, row.id)
        room = self.lanes - len(self._chats)
        if room > 0:
            for chat in await asyncio.to_thread(self.repo.outbox_heads, set(self._chats), room, now):
                self._chats[chat] = self._task(self._lane(chat), self._chats, chat)

    def _task(self, work: Awaitable[None], where: dict[int, asyncio.Task[None]], key: int) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)

        def done(_: asyncio.Task[None]) -> None:
            where.pop(key, None)
            self._wake.set()
            self.on_change()

        task.add_done_callback(done)
        return task

    async def stop(self, timeout: float) -> int:
        """Go on sending what is due for up to ``timeout`` s, then stop: the calls in progress are let
        finish (a call cut off would leave its fate unknown), and what is left stays in the outbox for the
        next start. Returns how many rows are left pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        grace = min(2.0, timeout / 3)
        while True:
            await self._start_due()
            tasks = set(self._chats.values()) | set(self._answering.values())
            remaining = deadline - grace - loop.time()
            if not tasks or remaining <= 0:
                break
            await asyncio.wait(tasks, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        if self._fast:
            await asyncio.wait(set(self._fast), timeout=max(deadline - grace - loop.time(), 0.1))
        self._stopping = True  # each lane ends after the row in hand
        self._wake.set()
        tasks = set(self._chats.values()) | set(self._answering.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0.1))
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        counts = await asyncio.to_thread(self.repo.outbox_counts)
        return counts.get("pending", 0)

    # ------------------------------------------------------------------------------ one chat, in order

    async def _lane(self, chat_id: int) -> None:
        row = await asyncio.to_thread(self.repo.claim_next, chat_id, datetime.now(UTC))
        while row is not None and not self._stopping:
            try:
                sent, following = await self._send_row(row, claimed=True, then=chat_id)
            except Blocked:
                return
            if sent:
                row = following  # marked sent and the next one taken, in one transaction
            elif not self._stopping:
                row = await asyncio.to_thread(self.repo.claim_next, chat_id, datetime.now(UTC))
        # None: nothing to send now (or it waits for a retry, or another sender has it)

    async def _send_answer(self, row: OutboxMessage) -> None:
        with contextlib.suppress(Blocked):
            await self._send_row(row)

    async def _send_row(self, row: OutboxMessage, *, claimed: bool = False,
                        then: int | None = None) -> tuple[bool, OutboxMessage | None]:
        """Send one row. Returns whether it went out, and (``then``: a chat id) that chat's next row, taken
        in the same transaction that marks this one sent."""
        assert row.id is not None
        row_id = row.id
        payload = json.loads(row.payload)
        if not claimed and not await asyncio.to_thread(self.repo.claim, row_id, datetime.now(UTC)):
            return False, None
        try:
            message_id = await self._perform(row, payload)
        except Forbidden as exc:
            dropped = await asyncio.to_thread(self.repo.drop_outbox, row.chat_id, exc.message)
            await asyncio.to_thread(self.repo.set_active, learner_id(row.chat_id), False)
            log.info("chat %s: %s; learner marked inactive, %d messages dropped", row.chat_id, exc.message, dropped)
            raise Blocked from None
        except RetryAfter as exc:
            wait = _seconds(exc.retry_after)
            log.warning("chat %s: Telegram asks to wait %.0f s; row %s waits", row.chat_id, wait, row_id)
            await self._later(row, wait, str(exc), count=False)
        except BadRequest as exc:
            if row.kind == "answer":  # answered already (a resend after a restart), or too old: the replies follow
                log.info("callback query not answered: %s", exc.message)
                await self._mark(row_id, "expired", error=exc.message)
            else:
                log.error("chat %s: Telegram refused outbox row %s (%s): %s", row.chat_id, row_id, row.kind,
                          exc.message)
                await self._mark(row_id, "failed", error=exc.message)
        except NetworkError as exc:  # TimedOut included
            if self._stopping:  # cut off by the stop: left for the next start, as if the process had died
                log.info("chat %s: %s cut off by the stop (%s); sent at the next start", row.chat_id, row.kind, exc)
                await asyncio.to_thread(self.repo.outbox_update, row_id, claimed_until=None)
            elif never_sent(exc) or row.kind in IDEMPOTENT:
                if row.attempts + 1 >= MAX_ATTEMPTS:
                    log.error("chat %s: outbox row %s failed %d times (%s); given up", row.chat_id, row_id,
                              MAX_ATTEMPTS, exc)
                    await self._mark(row_id, "failed", error=str(exc))
                else:
                    log.warning("chat %s: %s failed (%s); will retry", row.chat_id, row.kind, exc)
                    await self._later(row, min(0.5 * 2 ** row.attempts, 30), str(exc))
            else:
                log.warning("chat %s: %s may or may not have gone out (%s); not sent again", row.chat_id,
                            row.kind, exc)
                await self._mark(row_id, "unknown", error=str(exc))
        except TelegramError as exc:
            log.error("chat %s: outbox row %s (%s) failed: %s", row.chat_id, row_id, row.kind, exc)
            await self._mark(row_id, "failed", error=str(exc))
        else:
            if then is not None and not self._stopping:
                following = await asyncio.to_thread(self.repo.sent_and_claim_next, row_id, message_id, then,
                                                    datetime.now(UTC))
                self.on_change()
                return True, following
            await self._mark(row_id, "sent", message_id=message_id)
            return True, None
        return False, None

    async def _later(self, row: OutboxMessage, seconds: float, error: str, *, count: bool = True) -> None:
        values: dict[str, Any] = {"not_before": datetime.now(UTC) + timedelta(seconds=seconds), "error": error,
                                  "claimed_until": None}
        if not count:
            values["attempts"] = row.attempts  # a 429 is Telegram's pace, not the row's failure
        assert row.id is not None
        await asyncio.to_thread(self.repo.outbox_update, row.id, **values)
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, self._wake.set)

    async def _mark(self, row_id: int, status: str, **values: Any) -> None:
        await asyncio.to_thread(self.repo.outbox_update, row_id, status=status, sent_at=datetime.now(UTC),
                                claimed_until=None, **values)
        self.on_change()

    # ------------------------------------------------------------------------------ rows -> Bot API calls

    async def _perform(self, row: OutboxMessage, payload: dict[str, Any]) -> int | None:
        """Make the call(s) of one row; the id of the message sent or edited."""
        bot = self.app.bot
        chat_id = row.chat_id
        if row.kind == "answer":
            await bot.answer_callback_query(payload["query_id"], text=payload.get("text") or None)
            return None
        if row.kind == "unkeyboard":
            message_id = int(payload["message_id"])
            if await asyncio.to_thread(self.repo.edited_by, row.origin, message_id):
                return None  # a reply to the same tap rewrote that message and its buttons
            try:
                await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
            except BadRequest as exc:  # already gone, or the message is too old to edit
                log.info("chat %s: keyboard of message %s kept: %s", chat_id, message_id, exc.message)
            return message_id
        if row.kind == "text":  # prepared HTML (a group note, an apology)
            reply_to = payload.get("reply_to")
            reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
            message = await self._send_text(chat_id, payload["html"], None, reply)
            return message.message_id
        return await self.perform(row, decode(row.kind, payload))

    async def perform(self, row: OutboxMessage, reply: Reply) -> int | None:
        chat_id = row.chat_id
        if isinstance(reply, Say):
            return await self._say(row, reply)
        if isinstance(reply, Edit):
            return await self._edit(row, reply)
        if isinstance(reply, Photo):
            caption = to_html(reply.caption, limit=CAPTION_LIMIT)[0] if reply.caption else None
            photo: bytes | Path = reply.data if reply.data else Path(reply.path)
            sent = await self.app.bot.send_photo(chat_id, photo, caption=caption, parse_mode=ParseMode.HTML,
                                                 filename="picture.png" if reply.data else None)
            return sent.message_id
        if isinstance(reply, GraphView):
            return await self._graph(row, reply)
        log.warning("chat %s: no Telegram rendering for %s; skipped", chat_id, type(reply).__name__)
        return None

    async def _send_text(self, chat_id: int, html_text: str, markup: Any,
                         reply_to: ReplyParameters | None = None) -> Message:
        bot = self.app.bot
        try:
            return await bot.send_message(chat_id, html_text, parse_mode=ParseMode.HTML, reply_markup=markup,
                                          link_preview_options=NO_PREVIEW, reply_parameters=reply_to)
        except BadRequest as exc:
            if "parse entities" not in exc.message:
                raise
            log.error("chat %s: Telegram refused our HTML (%s); sent as plain text: %r", chat_id, exc.message,
                      html_text[:200])
            plain = html.unescape(TAG.sub("", html_text))
            return await bot.send_message(chat_id, plain, reply_markup=markup, link_preview_options=NO_PREVIEW)

    async def _say(self, row: OutboxMessage, reply: Say, *, first: int = 0) -> int | None:
        """A message, split under Telegram's limit; the chunks already sent (``row.progress``) are not
        sent again on a retry."""
        chat_id = row.chat_id
        if reply.poll is not None:
            return await self._poll(row, reply)
        chunks = to_html(reply.text)
        message: Message | None = None
        done = row.progress
        for i, chunk in enumerate(chunks):
            if i < done - first:
                continue
            last = i == len(chunks) - 1
            message = await self._send_text(chat_id, chunk, keyboard(reply.buttons, reply.seq) if last else None)
            if not last:
                assert row.id is not None
                row.progress = first + i + 1
                await asyncio.to_thread(self.repo.outbox_update, row.id, progress=row.progress)
        if message is None:
            return None
        if reply.anchor:
            await self.outbox.remember_anchor(learner_id(chat_id), reply.anchor, message.message_id)
        return message.message_id

    async def _poll(self, row: OutboxMessage, reply: Say) -> int | None:
        """A quiz question as a native Telegram quiz poll; its answer comes back as a poll answer."""
        poll = reply.poll
        assert poll is not None
        message = await self.app.bot.send_poll(
            row.chat_id, poll.question, list(poll.options), is_anonymous=False, type="quiz",
            correct_option_ids=[poll.correct], explanation=poll.explanation or None)
        if message.poll is not None:
            await self.outbox.remember_poll(message.poll.id, learner_id(row.chat_id), row.chat_id, reply.seq)
        return message.message_id

    async def _edit(self, row: OutboxMessage, reply: Edit) -> int | None:
        """Edit the anchored message; its note goes into the same message when both fit in one (the
        question stays with its verdict), else right after it (``progress`` 1: the edit is done)."""
        chat_id = row.chat_id
        message_id = await self.outbox.anchor(learner_id(chat_id), reply.anchor)
        note = reply.note
        if message_id is None:
            return await self._say(row, Say(note)) if note else None
        if row.progress == 0:
            parts = to_html(reply.text)
            together = to_html(reply.text + "\n\n" + note) if note and len(parts) == 1 else []
            if len(together) == 1:
                text, note = together[0], ""
            else:
                text = parts[-1]  # an anchored Say that was split keeps its anchor on the last part
            try:
                await self.app.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(reply.buttons, reply.seq), link_preview_options=NO_PREVIEW)
            except BadRequest as exc:  # not modified / deleted / too old: the note is sent on its own
                log.info("chat %s: edit of %s skipped: %s", chat_id, reply.anchor, exc.message)
                if "not modified" not in exc.message:  # else it already shows this (a retried edit went through)
                    note = reply.note
                    message_id = None
            if not note:
                return message_id
            assert row.id is not None
            row.progress = 1
            await asyncio.to_thread(self.repo.outbox_update, row.id, progress=1, message_id=message_id)
        else:  # the edit went out before a retry: only its note is left
            message_id = row.message_id
        sent = await self._say(row, Say(note), first=1)
        return message_id if message_id is not None else sent

    async def _graph(self, row: OutboxMessage, reply: GraphView) -> int | None:
        """An autograd graph: a PNG photo with its caption; the text tree when it is not drawn (and why)."""
        chat_id = row.chat_id
        png = await graphs.draw_png(reply.graph)  # caged dot, a few at a time, never on the thread pool
        caption = to_html(reply.caption, limit=CAPTION_LIMIT)[0]
        bot = self.app.bot
        if png is not None:
            try:
                if graphs.fits_a_photo(png):
                    sent = await bot.send_photo(chat_id, png, caption=caption, parse_mode=ParseMode.HTML,
                                                filename="graph.png")
                else:  # too tall or too wide for a photo: a document keeps every pixel
                    sent = await bot.send_document(chat_id, png, caption=caption, parse_mode=ParseMode.HTML,
                                                   filename="graph.png")
                return sent.message_id
            except BadRequest as exc:
                log.warning("chat %s: the graph picture was refused (%s); sending the text tree", chat_id, exc.message)
        note = ""
        if png is None and reply.no_picture:
            state = await asyncio.to_thread(self.repo.load, learner_id(chat_id))
            lang = state.lang if state is not None else "en"
            course = self.course
            note = graphs.no_picture_note(reply.graph, lambda key, **values: course.t(lang, key, **values),
                                          reply.no_picture)
        text = (note + "\n\n" if note else "") + reply.caption
        return await self._say(row, Say(text + f"\n```\n{reply.tree}\n```"))

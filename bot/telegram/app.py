"""The Telegram bot: a python-telegram-bot ``Application`` around the tutor service.

Handlers are thin: they turn an update into an engine event and hand it to ``Tutor.handle`` with the
update's id (idempotency) and a ``send`` function that performs the replies (``TelegramShell``).
Different chats are served concurrently; one chat's updates are applied in order by the service's
per-learner lock (handlers await nothing before taking it, so PTB's arrival order is kept).

What each kind of update becomes:

- private chat: ``/command`` -> ``Start``/``Command``; text -> ``Text``; a button -> ``Press`` (the
  query is always answered, and a keyboard that no longer applies is removed); stickers, photos,
  voice, documents... -> ``Unsupported(kind)``; edited and forwarded messages -> ``Unsupported``;
- groups: a command for us (``/help`` or ``/help@us``) gets a "talk to me in private" note;
  everything else there is ignored;
- ``my_chat_member``: the learner blocked (kicked) or unblocked the bot -> inactive / active.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import html
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from telegram import BotCommand, LinkPreviewOptions, Message, Update
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    PollAnswerHandler,
    TypeHandler,
    filters,
)

from bot import graphs
from bot.config import Settings
from bot.service import Evaluator, Tutor
from bot.storage import Repository
from bot.telegram.outbox import Outbox
from bot.telegram.push import install_push_job
from bot.telegram.render import CAPTION_LIMIT, keyboard, to_html
from dialogs import actions
from dialogs.course import Course
from dialogs.evaluation import CheckSpec, EvalOutcome
from dialogs.messages import Command, Edit, Event, GraphView, Photo, Press, Reply, Say, Start, Text, Turn, Unsupported

log = logging.getLogger(__name__)
T = TypeVar("T")
SEND_ATTEMPTS = 3  # per Bot API call, on network errors and timeouts (429s are retried by the rate limiter)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
TAG = re.compile(r"<[^>]+>")

MENU = {
    "en": [("start", "Hello and the course map"), ("map", "The course map"), ("cards", "Review due flashcards"),
           ("quiz", "A question on what you've covered"), ("recap", "Key points and flashcards of recent sections"),
           ("progress", "Streak, sections, cards due"), ("settings", "Daily push time, time zone, pause"),
           ("graph", "Draw the autograd graph of your code"),
           ("lang", "Language: English / 中文"), ("help", "What I understand"), ("reset", "Start over")],
    "zh": [("start", "你好，并显示课程地图"), ("map", "课程地图"), ("cards", "复习到期的闪卡"),
           ("quiz", "针对已学内容出一道题"), ("recap", "最近几节的要点与闪卡"),
           ("progress", "连续天数、进度、到期闪卡"),
           ("settings", "每日推送时间、时区、暂停"), ("graph", "画出代码的 autograd 计算图"),
           ("lang", "语言：English / 中文"), ("help", "我能听懂什么"),
           ("reset", "从头开始")],
}
KINDS = [
    (filters.Sticker.ALL, "sticker"), (filters.PHOTO, "photo"), (filters.VOICE | filters.AUDIO, "voice"),
    (filters.VIDEO | filters.VIDEO_NOTE | filters.ANIMATION, "video"), (filters.Document.ALL, "document"),
]


def learner_id(chat_id: int) -> str:
    return f"tg:{chat_id}"


def lang_of(update: Update) -> str | None:
    """The learner's Telegram language as a course language: ``zh*`` -> Chinese, else English."""
    user = update.effective_user
    code = (user.language_code or "") if user else ""
    if not code:
        return None
    return "zh" if code.lower().startswith("zh") else "en"


def coalesce(replies: Sequence[Reply]) -> list[Reply]:
    """A turn's replies as few chat messages as they read well in: plain messages (no buttons, not to be
    edited later, not a poll) join the message that follows them, unless that one is anchored (its later
    edit rewrites the whole message) or not text. Rendering splits what grows too long again. (Telegram
    paces a bot's messages: fewer messages, sooner replies.)"""
    out: list[Reply] = []
    pending: list[str] = []
    for reply in replies:
        if isinstance(reply, Say) and reply.anchor is None and reply.poll is None:
            if not reply.buttons:
                pending.append(reply.text)
                continue
            if pending:
                out.append(Say("\n\n".join([*pending, reply.text]), reply.buttons, None, reply.seq))
                pending = []
                continue
        if pending:
            out.append(Say("\n\n".join(pending)))
            pending = []
        out.append(reply)
    if pending:
        out.append(Say("\n\n".join(pending)))
    return out


def never_sent(exc: NetworkError) -> bool:
    """Did the request certainly not reach Telegram (so that sending it again cannot post it twice)?
    python-telegram-bot keeps httpx's error as the cause: only a failed connect or a pool timeout
    (``Request was *not* sent``) say so."""
    cause = exc.__cause__
    return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


class TelegramShell:
    """Performs replies for the tutor in one chat at a time; owns no state of its own."""

    def __init__(self, app: Application, tutor: Tutor) -> None:
        self.app = app
        self.tutor = tutor
        self.repo: Repository = tutor.repo
        self.outbox = Outbox(tutor.repo)  # which message carries which anchor, which poll is whose

    async def call(self, chat_id: int, fn: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T | None:
        """One Bot API call; 403 -> the learner is marked inactive and ``None`` is returned.

        A call that never reached Telegram (the connection could not be made) is retried a bounded
        number of times. One that may have reached it (a timeout, a connection lost before the answer)
        is retried only when it is safe to repeat (``idempotent``: an edit, a callback answer): a
        message whose answer was lost may have been delivered, and sending it again would post it
        twice. 429s are the rate limiter's to retry (``AIORateLimiter(max_retries=3)``); one that gets
        through is raised, not retried again here. Other Telegram errors are raised.
        """
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await fn()
            except Forbidden as exc:
                log.info("chat %s: %s; learner marked inactive", chat_id, exc.message)
                await asyncio.to_thread(self.repo.set_active, learner_id(chat_id), False)
                return None
            except (RetryAfter, BadRequest):
                raise
            except NetworkError as exc:  # TimedOut included
                if attempt == SEND_ATTEMPTS or not (idempotent or never_sent(exc)):
                    raise
                log.warning("chat %s: telegram call failed (%s), attempt %d/%d", chat_id, exc, attempt, SEND_ATTEMPTS)
                await asyncio.sleep(0.5 * attempt)
        return None  # pragma: no cover - the loop always returns or raises

    def sender(self, chat_id: int, edited: set[int]) -> Callable[[Sequence[Reply]], Awaitable[None]]:
        """The ``send`` the tutor calls; the ids of messages it edits are added to ``edited``."""

        async def send(replies: Sequence[Reply]) -> None:
            for reply in coalesce(replies):
                if not await self.perform(chat_id, reply, edited):
                    return  # the learner blocked the bot: the rest would fail the same way

        return send

    def push_sender(self, chat_id: int) -> Callable[[Sequence[Reply]], Awaitable[None]]:
        """The ``send`` for a daily push (no update, so no edited message ids to report)."""
        return self.sender(chat_id, set())

    async def perform(self, chat_id: int, reply: Reply, edited: set[int]) -> bool:
        """One reply -> Bot API calls. False when the learner has blocked the bot."""
        if isinstance(reply, Say):
            return await self._say(chat_id, reply)
        if isinstance(reply, Edit):
            return await self._edit(chat_id, reply, edited)
        if isinstance(reply, Photo):
            return await self._photo(chat_id, reply)
        if isinstance(reply, GraphView):
            return await self._graph(chat_id, reply)
        log.warning("chat %s: no Telegram rendering for %s; skipped", chat_id, type(reply).__name__)
        return True

    async def _send_text(self, chat_id: int, html_text: str, markup: Any) -> Message | None:
        bot = self.app.bot
        try:
            return await self.call(chat_id, lambda: bot.send_message(
                chat_id, html_text, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=NO_PREVIEW))
        except BadRequest as exc:
            if "parse entities" not in exc.message:
                raise
            log.error("chat %s: Telegram refused our HTML (%s); sent as plain text: %r", chat_id, exc.message,
                      html_text[:200])
            plain = html.unescape(TAG.sub("", html_text))
            return await self.call(chat_id, lambda: bot.send_message(
                chat_id, plain, reply_markup=markup, link_preview_options=NO_PREVIEW))

    async def _say(self, chat_id: int, reply: Say) -> bool:
        if reply.poll is not None:
            return await self._poll(chat_id, reply)
        chunks = to_html(reply.text)
        message: Message | None = None
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            message = await self._send_text(chat_id, chunk, keyboard(reply.buttons, reply.seq) if last else None)
            if message is None:
                return False
        if reply.anchor and message is not None:
            await self.outbox.remember_anchor(learner_id(chat_id), reply.anchor, message.message_id)
        return True

    async def _poll(self, chat_id: int, reply: Say) -> bool:
        """A quiz question as a native Telegram quiz poll; its answer comes back as a poll answer."""
        poll = reply.poll
        assert poll is not None
        bot = self.app.bot
        message = await self.call(chat_id, lambda: bot.send_poll(
            chat_id, poll.question, list(poll.options), is_anonymous=False, type="quiz",
            correct_option_ids=[poll.correct], explanation=poll.explanation or None))
        if message is None:
            return False
        if message.poll is not None:
            await self.outbox.remember_poll(message.poll.id, learner_id(chat_id), chat_id, reply.seq)
        return True

    async def _edit(self, chat_id: int, reply: Edit, edited: set[int]) -> bool:
        """Edit the anchored message; its note goes into the same message when both fit in one (the
        question stays with its verdict), else right after it."""
        message_id = await self.outbox.anchor(learner_id(chat_id), reply.anchor)
        note = reply.note
        if message_id is None:
            return await self._say(chat_id, Say(note)) if note else True
        parts = to_html(reply.text)
        together = to_html(reply.text + "\n\n" + note) if note and len(parts) == 1 else []
        if len(together) == 1:
            text, note = together[0], ""
        else:
            text = parts[-1]  # an anchored Say that was split keeps its anchor on the last part
        bot = self.app.bot
        try:
            done = await self.call(chat_id, lambda: bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply.buttons, reply.seq), link_preview_options=NO_PREVIEW), idempotent=True)
        except BadRequest as exc:  # not modified / deleted / too old: the note is sent on its own
            log.info("chat %s: edit of %s skipped: %s", chat_id, reply.anchor, exc.message)
            if "not modified" in exc.message:  # it already shows this (e.g. a retried edit had gone through)
                edited.add(message_id)
            else:
                note = reply.note
            return await self._say(chat_id, Say(note)) if note else True
        if done is None:
            return False
        edited.add(message_id)
        return await self._say(chat_id, Say(note)) if note else True

    async def _photo(self, chat_id: int, reply: Photo) -> bool:
        caption = to_html(reply.caption, limit=CAPTION_LIMIT)[0] if reply.caption else None
        bot = self.app.bot
        path = Path(reply.path)
        sent = await self.call(chat_id, lambda: bot.send_photo(chat_id, path, caption=caption,
                                                               parse_mode=ParseMode.HTML))
        return sent is not None

    async def _graph(self, chat_id: int, reply: GraphView) -> bool:
        """An autograd graph: a PNG photo with its caption; the text tree when it is not drawn (and why)."""
        png = await graphs.draw_png(reply.graph)  # caged dot, a few at a time, never on the thread pool
        caption = to_html(reply.caption, limit=CAPTION_LIMIT)[0]
        bot = self.app.bot
        if png is not None:
            try:
                if graphs.fits_a_photo(png):
                    sent = await self.call(chat_id, lambda: bot.send_photo(
                        chat_id, png, caption=caption, parse_mode=ParseMode.HTML, filename="graph.png"))
                else:  # too tall or too wide for a photo: a document keeps every pixel
                    sent = await self.call(chat_id, lambda: bot.send_document(
                        chat_id, png, caption=caption, parse_mode=ParseMode.HTML, filename="graph.png"))
                return sent is not None
            except BadRequest as exc:
                log.warning("chat %s: the graph picture was refused (%s); sending the text tree", chat_id, exc.message)
        note = ""
        if png is None and reply.no_picture:
            state = await asyncio.to_thread(self.repo.load, learner_id(chat_id))
            lang = state.lang if state is not None else "en"
            course = self.tutor.course
            note = graphs.no_picture_note(reply.graph, lambda key, **values: course.t(lang, key, **values),
                                          reply.no_picture)
        text = (note + "\n\n" if note else "") + reply.caption
        return await self._say(chat_id, Say(text + f"\n```\n{reply.tree}\n```"))

    async def dispatch(self, update: Update, event: Event,
                       on_turn: Callable[[Turn], Awaitable[None]] | None = None) -> tuple[Turn | None, set[int]]:
        """Hand one event to the tutor: the turn applied (``None`` for a redelivered update) and the ids
        of the messages edited on the way."""
        chat = update.effective_chat
        edited: set[int] = set()
        if chat is None:
            return None, edited
        turn = await self.tutor.handle(learner_id(chat.id), event, self.sender(chat.id, edited),
                                       update_id=update.update_id, chat_id=chat.id, lang_hint=lang_of(update),
                                       on_turn=on_turn)
        return turn, edited


def shell_of(context: ContextTypes.DEFAULT_TYPE) -> TelegramShell:
    return context.application.bot_data["shell"]


# ------------------------------------------------------------------------------------ handlers


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A /command in a private chat."""
    msg = update.effective_message
    if msg is None or not msg.text:
        return
    head, args = [*re.split(r"\s", msg.text.strip(), maxsplit=1), ""][:2]  # "/graph\ncode" too
    name = head[1:].split("@")[0].lower()
    event: Event = Start() if name == "start" else Command(name, args.strip())
    await shell_of(context).dispatch(update, event)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Plain text in a private chat: an answer, a 'go', code..."""
    msg = update.effective_message
    if msg is None or msg.text is None:
        return
    await shell_of(context).dispatch(update, Text(msg.text))


async def on_forwarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A forwarded message: we grade what the learner writes, not what they pass on."""
    await shell_of(context).dispatch(update, Unsupported("forwarded"))


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message: we grade what was sent, so say so."""
    await shell_of(context).dispatch(update, Unsupported("edited"))


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice notes, documents...: a friendly word, nothing changes."""
    what = next((name for flt, name in KINDS if flt.check_update(update)), "other")
    await shell_of(context).dispatch(update, Unsupported(what))


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button: its callback query is answered first (with the turn's toast, if any), as soon
    as the turn is stored and before any reply is sent, so the button stops spinning at once; then the
    replies; then a keyboard the turn made stale is taken away."""
    query = update.callback_query
    if query is None:
        return
    shell = shell_of(context)
    press = actions.decode(query.data or "")
    answered = False

    async def answer(turn: Turn | None = None) -> None:
        nonlocal answered
        answered = True
        try:
            chat_id = update.effective_chat.id if update.effective_chat else 0
            await shell.call(chat_id, lambda: query.answer(text=(turn.toast if turn else None) or None),
                             idempotent=True)
        except TelegramError as exc:  # too old to answer, or the network: the replies follow anyway
            log.info("callback query %s not answered: %s", query.id, exc)

    turn: Turn | None = None
    edited: set[int] = set()
    try:
        turn, edited = await shell.dispatch(update, press, on_turn=answer)
    finally:
        if not answered:  # a redelivered update, or an error before the turn was stored
            await answer()
    message = query.message
    if turn is None or not isinstance(message, Message) or message.reply_markup is None:
        return
    if turn.keyboard_stale and message.message_id not in edited:
        await _remove_keyboard(shell, message)


async def _remove_keyboard(shell: TelegramShell, message: Message) -> None:
    """Take the buttons off a message whose question has moved on."""
    try:
        await shell.call(message.chat.id, lambda: message.edit_reply_markup(reply_markup=None), idempotent=True)
    except BadRequest as exc:  # already gone, or the message is too old to edit
        log.info("chat %s: keyboard of message %s kept: %s", message.chat.id, message.message_id, exc.message)


async def on_group_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command in a group: if it is addressed to us, point to the private chat."""
    msg = update.effective_message
    if msg is None or not msg.text:
        return
    me = context.bot.username
    _, _, target = msg.text.split(maxsplit=1)[0].partition("@")
    if target and target.lower() != me.lower():
        return  # for another bot
    shell = shell_of(context)
    text = shell.tutor.course.t(lang_of(update) or "en", "group_note", bot=me)
    await shell.call(msg.chat.id, lambda: msg.reply_text(to_html(text)[0], parse_mode=ParseMode.HTML,
                                                         link_preview_options=NO_PREVIEW))


async def on_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The learner blocked (or unblocked) the bot in their private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    active = change.new_chat_member.status not in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT)
    log.info("chat %s: the learner %s the bot", change.chat.id, "unblocked" if active else "blocked")
    await asyncio.to_thread(shell_of(context).repo.set_active, learner_id(change.chat.id), active)


async def on_poll_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An answer to one of our quiz polls: the same as tapping that option's button."""
    answer = update.poll_answer
    if answer is None or not answer.option_ids:
        return  # a retracted vote (quiz polls do not allow it, but be safe)
    shell = shell_of(context)
    ref = await shell.outbox.poll(answer.poll_id)
    if ref is None:
        log.info("answer to an unknown poll %s ignored", answer.poll_id)
        return
    await shell.tutor.handle(ref.learner_id, Press(actions.Action.PICK, str(answer.option_ids[0]), ref.seq),
                             shell.sender(ref.chat_id, set()), update_id=update.update_id, chat_id=ref.chat_id)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failing update with its context and apologise to the learner."""
    error = context.error
    if not isinstance(update, Update):
        if isinstance(error, NetworkError):  # fetching updates failed; PTB retries on its own
            log.warning("telegram: %s", error)
        else:
            log.error("error outside an update: %r", update, exc_info=error)
        return
    chat = update.effective_chat
    log.error("error while handling update %s (chat %s): %s", update.update_id, chat.id if chat else None,
              update.to_dict(), exc_info=error)
    if chat is None or chat.type != "private":
        return
    shell = shell_of(context)
    state = None
    with contextlib.suppress(Exception):
        state = await asyncio.to_thread(shell.repo.load, learner_id(chat.id))
    lang = state.lang if state is not None else lang_of(update) or "en"
    text = to_html(shell.tutor.course.t(lang, "our_error"))[0]
    try:
        await shell.call(chat.id, lambda: context.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML))
    except TelegramError as exc:
        log.warning("chat %s: could not even apologise: %s", chat.id, exc)


async def _ignore(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Everything else (group chatter, channel posts, polls...) is ignored on purpose."""


# ------------------------------------------------------------------------------------ application


class BackgroundStart:
    """An evaluator (the sandbox) started in the background: the bot answers at once, a submission
    sent meanwhile waits for it, and a sandbox that cannot start leaves the rest of the bot working."""

    def __init__(self, evaluator: Any) -> None:
        self.evaluator = evaluator
        self._starting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._starting = asyncio.create_task(self._start(), name="sandbox-start")

    async def _start(self) -> None:
        try:
            await self.evaluator.start()
        except Exception:
            log.exception("the code sandbox could not start; code tasks will be answered 'unavailable'")

    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
        if self._starting is not None:
            await asyncio.shield(self._starting)
        return await self.evaluator.evaluate(code, checks)

    async def graph(self, code: str, target: str | None = None) -> EvalOutcome:
        if self._starting is not None:
            await asyncio.shield(self._starting)
        graph = getattr(self.evaluator, "graph", None)
        if graph is None:
            return EvalOutcome("unavailable", error="this evaluator draws no graphs")
        outcome: EvalOutcome = await graph(code, target)
        return outcome

    def is_saturated(self) -> bool:
        starting = self._starting is not None and not self._starting.done()
        return starting or bool(self.evaluator.is_saturated())

    async def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.evaluator.close()


async def set_commands(app: Application) -> None:
    """The command menu in English and Chinese (Telegram picks by the user's language), English by default."""
    for lang, items in MENU.items():
        await app.bot.set_my_commands([BotCommand(name, desc) for name, desc in items], language_code=lang)
    await app.bot.set_my_commands([BotCommand(name, desc) for name, desc in MENU["en"]])


def build_application(settings: Settings, course: Course, repo: Repository,
                      evaluator: Evaluator | None) -> Application:
    token = settings.token
    if not token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(256)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    if evaluator is not None and hasattr(evaluator, "start") and hasattr(evaluator, "close"):
        evaluator = BackgroundStart(evaluator)
    tutor = Tutor(course, repo, evaluator)
    app.bot_data["shell"] = TelegramShell(app, tutor)
    app.bot_data["settings"] = settings
    app.bot_data["evaluator"] = evaluator
    private = filters.ChatType.PRIVATE
    message = filters.UpdateType.MESSAGE
    app.add_handlers([
        MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, on_edited),
        MessageHandler(private & message & filters.FORWARDED, on_forwarded),
        MessageHandler(private & message & filters.COMMAND, on_command),
        MessageHandler(private & message & filters.TEXT, on_text),
        MessageHandler(private & message & ~filters.StatusUpdate.ALL, on_other),
        CallbackQueryHandler(on_press),
        MessageHandler(filters.ChatType.GROUPS & message & filters.COMMAND, on_group_command),
        ChatMemberHandler(on_membership, ChatMemberHandler.MY_CHAT_MEMBER),
        PollAnswerHandler(on_poll_answer),
        TypeHandler(Update, _ignore),
    ])
    app.add_error_handler(on_error)
    return app


async def _post_init(app: Application) -> None:
    me = app.bot.bot  # fetched by getMe in Application.initialize
    await set_commands(app)
    settings: Settings = app.bot_data["settings"]
    evaluator = app.bot_data.get("evaluator")
    if isinstance(evaluator, BackgroundStart):
        evaluator.start()
    install_push_job(app, interval=settings.push_tick_seconds)
    mode = f"webhook {settings.webhook_url} (port {settings.port})" if settings.webhook_url else "long polling"
    log.info("running as @%s (id %s); database %s; %s", me.username, me.id, _safe_db(settings.db_url), mode)


async def _post_shutdown(app: Application) -> None:
    evaluator = app.bot_data.get("evaluator")
    if isinstance(evaluator, BackgroundStart):
        await evaluator.close()


def _safe_db(url: str) -> str:
    """The database URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def webhook_args(settings: Settings) -> dict[str, Any]:
    """How PTB's webhook server listens for ``WEBHOOK_URL``: on every interface, at the URL's path."""
    assert settings.webhook_url
    return {"listen": "0.0.0.0", "port": settings.port, "url_path": urlsplit(settings.webhook_url).path.lstrip("/"),
            "webhook_url": settings.webhook_url, "secret_token": settings.webhook_secret}


def run_bot(settings: Settings, course: Course) -> int:
    """Serve until SIGINT/SIGTERM: long polling, or a webhook when ``WEBHOOK_URL`` is set."""
    from bot.sandbox import Sandbox

    os.environ.setdefault("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta, without warnings
    repo = Repository(settings.db_url)
    sandbox = Sandbox(settings.sandbox_config())
    app = build_application(settings, course, repo, sandbox)
    try:
        if settings.webhook_url:
            app.run_webhook(**webhook_args(settings), allowed_updates=Update.ALL_TYPES, bootstrap_retries=3)
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=3)
    finally:
        repo.close()
    return 0

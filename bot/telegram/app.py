"""The Telegram bot: a python-telegram-bot ``Application`` around the tutor service.

Handlers are thin: they turn an update into an engine event, hand it to ``Tutor.handle`` with the
update's id (idempotency) and a ``send`` function that renders replies. Different chats are served
concurrently; one chat's updates are applied in order by the service's per-learner lock.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from telegram import BotCommand, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.service import Evaluator, Tutor
from bot.storage import Repository
from bot.telegram.render import keyboard, parse_callback, to_html
from dialogs.course import Course
from dialogs.messages import Command, Edit, Event, Photo, Press, Reply, Say, Start, Text, Unsupported

log = logging.getLogger(__name__)
T = TypeVar("T")
SEND_ATTEMPTS = 3

MENU = {
    "en": [("start", "Hello and the course map"), ("map", "The course map"), ("recap", "Key points of recent sections"),
           ("progress", "How far you are"), ("lang", "Language: English / 中文"), ("help", "What I understand"),
           ("reset", "Start over")],
    "zh": [("start", "你好，并显示课程地图"), ("map", "课程地图"), ("recap", "最近几节的要点"),
           ("progress", "学习进度"), ("lang", "语言：English / 中文"), ("help", "我能听懂什么"), ("reset", "从头开始")],
}


def learner_id(chat_id: int) -> str:
    return f"tg:{chat_id}"


def lang_of(update: Update) -> str | None:
    user = update.effective_user
    code = (user.language_code or "") if user else ""
    if not code:
        return None
    return "zh" if code.lower().startswith("zh") else "en"


class TelegramShell:
    """Renders replies for one chat and performs them with retries; owns nothing else."""

    def __init__(self, app: Application, tutor: Tutor) -> None:
        self.app = app
        self.tutor = tutor
        self.repo: Repository = tutor.repo

    async def call(self, chat_id: int, fn: Callable[[], Awaitable[T]]) -> T | None:
        """One Bot API call: network errors retried a bounded number of times; 403 deactivates."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await fn()
            except Forbidden:
                log.info("chat %s blocked the bot; marked inactive", chat_id)
                await asyncio.to_thread(self.repo.set_active, learner_id(chat_id), False)
                return None
            except RetryAfter as exc:  # the rate limiter already retried; wait once more ourselves
                delay = exc.retry_after if isinstance(exc.retry_after, int | float) else exc.retry_after.total_seconds()
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(float(delay))
            except (TimedOut, NetworkError) as exc:
                if isinstance(exc, BadRequest) or attempt == SEND_ATTEMPTS:
                    raise
                log.warning("telegram call failed (%s), attempt %d/%d", exc, attempt, SEND_ATTEMPTS)
                await asyncio.sleep(0.5 * attempt)
        return None

    def sender(self, chat_id: int) -> Callable[[Sequence[Reply]], Awaitable[None]]:
        async def send(replies: Sequence[Reply]) -> None:
            for reply in replies:
                await self.perform(chat_id, reply)

        return send

    async def perform(self, chat_id: int, reply: Reply) -> None:
        bot = self.app.bot
        lid = learner_id(chat_id)
        if isinstance(reply, Say):
            chunks = to_html(reply.text)
            message: Message | None = None
            for i, chunk in enumerate(chunks):
                markup = keyboard(reply.buttons, reply.seq) if i == len(chunks) - 1 else None
                message = await self.call(chat_id, lambda c=chunk, m=markup: bot.send_message(
                    chat_id, c, parse_mode=ParseMode.HTML, reply_markup=m, disable_web_page_preview=True))
            if reply.anchor and message is not None:
                await asyncio.to_thread(self.repo.set_anchor, lid, reply.anchor, message.message_id)
        elif isinstance(reply, Edit):
            message_id = await asyncio.to_thread(self.repo.anchor, lid, reply.anchor)
            if message_id is None:
                return
            chunks = to_html(reply.text)
            text = chunks[0] if len(chunks) == 1 else chunks[0] + "\n…"
            try:
                await self.call(chat_id, lambda: bot.edit_message_text(
                    text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(reply.buttons, reply.seq), disable_web_page_preview=True))
            except BadRequest as exc:  # not modified / message too old or deleted: nothing to fix
                log.info("edit of %s in chat %s skipped: %s", reply.anchor, chat_id, exc.message)
        elif isinstance(reply, Photo):
            caption = to_html(reply.caption, limit=1000)[0] if reply.caption else None
            with open(reply.path, "rb") as f:
                data = f.read()
            await self.call(chat_id, lambda: bot.send_photo(chat_id, data, caption=caption,
                                                            parse_mode=ParseMode.HTML))

    async def dispatch(self, update: Update, event: Event) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        await self.tutor.handle(learner_id(chat.id), event, self.sender(chat.id), update_id=update.update_id,
                                chat_id=chat.id, lang_hint=lang_of(update))


def shell_of(context: ContextTypes.DEFAULT_TYPE) -> TelegramShell:
    return context.application.bot_data["shell"]


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A /command in a private chat."""
    msg = update.effective_message
    if msg is None or not msg.text:
        return
    head, _, args = msg.text.strip().partition(" ")
    name = head[1:].split("@")[0].lower()
    event: Event = Start() if name == "start" else Command(name, args.strip())
    await shell_of(context).dispatch(update, event)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Plain text in a private chat: an answer, a 'go', code..."""
    msg = update.effective_message
    if msg is None or msg.text is None:
        return
    if msg.forward_origin is not None:
        await shell_of(context).dispatch(update, Unsupported("forwarded"))
        return
    await shell_of(context).dispatch(update, Text(msg.text))


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button: always answered, so the button never keeps spinning."""
    query = update.callback_query
    if query is None:
        return
    shell = shell_of(context)
    parsed = parse_callback(query.data or "")
    chat_id = query.message.chat.id if query.message else None
    try:
        if parsed is not None and chat_id is not None:
            seq, action, arg = parsed
            await shell.dispatch(update, Press(action, arg, seq))
        else:
            await shell.dispatch(update, Press("unknown", "", -1))
    finally:
        try:
            await shell.call(chat_id or 0, query.answer)
        except TelegramError as exc:  # an old query can no longer be answered; nothing to do
            log.info("callback answer failed: %s", exc)


KINDS = [
    (filters.Sticker.ALL, "sticker"), (filters.PHOTO, "photo"), (filters.VOICE | filters.AUDIO, "voice"),
    (filters.VIDEO | filters.VIDEO_NOTE | filters.ANIMATION, "video"), (filters.Document.ALL, "document"),
]


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice notes, documents...: a friendly word, nothing changes."""
    msg = update.effective_message
    what = "other"
    for flt, name in KINDS:
        if msg is not None and flt.check_update(update):
            what = name
            break
    await shell_of(context).dispatch(update, Unsupported(what))


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message: we grade what was sent, so say so."""
    await shell_of(context).dispatch(update, Unsupported("edited"))


async def on_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command addressed to the bot in a group: point to the private chat."""
    msg = update.effective_message
    if msg is None:
        return
    me = context.bot.username
    tutor = shell_of(context).tutor
    lang = lang_of(update) or "en"
    text = tutor.course.t(lang, "group_note", bot=me)
    await shell_of(context).call(msg.chat.id, lambda: msg.reply_text(to_html(text)[0], parse_mode=ParseMode.HTML))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failing update with its context and apologise to the learner."""
    log.error("error while handling update %r", update.to_dict() if isinstance(update, Update) else update,
              exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        shell = shell_of(context)
        text = shell.tutor.course.t(lang_of(update) or "en", "our_error")
        try:
            await context.bot.send_message(update.effective_chat.id, html.escape(text))
        except TelegramError:
            log.warning("could not even apologise to chat %s", update.effective_chat.id)


async def set_commands(app: Application) -> None:
    for lang, items in MENU.items():
        commands = [BotCommand(name, desc) for name, desc in items]
        await app.bot.set_my_commands(commands, language_code=lang)
    await app.bot.set_my_commands([BotCommand(n, d) for n, d in MENU["en"]])


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
    tutor = Tutor(course, repo, evaluator)
    app.bot_data["shell"] = TelegramShell(app, tutor)
    app.bot_data["settings"] = settings
    app.bot_data["evaluator"] = evaluator
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, on_edited), group=0)
    app.add_handler(MessageHandler(private & filters.COMMAND & filters.UpdateType.MESSAGE, on_command))
    app.add_handler(MessageHandler(private & filters.TEXT & filters.UpdateType.MESSAGE, on_text))
    app.add_handler(CallbackQueryHandler(on_press))
    app.add_handler(MessageHandler(groups & filters.COMMAND, on_group))
    app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE, on_other))
    app.add_handler(TypeHandler(Update, _ignore), group=1)
    app.add_error_handler(on_error)
    return app


async def _ignore(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Everything else (group chatter, channel posts...) is ignored on purpose."""


async def _post_init(app: Application) -> None:
    me = await app.bot.get_me()
    await set_commands(app)
    settings: Settings = app.bot_data["settings"]
    evaluator: Any = app.bot_data.get("evaluator")
    if evaluator is not None and hasattr(evaluator, "start"):
        await evaluator.start()
    mode = f"webhook {settings.webhook_url}" if settings.webhook_url else "long polling"
    log.info("running as @%s (id %s); database %s; %s", me.username, me.id, _safe_db(settings.db_url), mode)


async def _post_shutdown(app: Application) -> None:
    evaluator: Any = app.bot_data.get("evaluator")
    if evaluator is not None and hasattr(evaluator, "close"):
        await evaluator.close()


def _safe_db(url: str) -> str:
    """The database URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def run_bot(settings: Settings, course: Course) -> int:
    from bot.sandbox import Sandbox, SandboxConfig

    repo = Repository(settings.db_url)
    sandbox = Sandbox(SandboxConfig(workers=settings.sandbox_workers, wall_seconds=settings.sandbox_wall_seconds,
                                    memory_mb=settings.sandbox_memory_mb, output_bytes=settings.sandbox_output_bytes))
    app = build_application(settings, course, repo, sandbox)
    try:
        if settings.webhook_url:
            path = urlsplit(settings.webhook_url).path.lstrip("/")
            app.run_webhook(listen="0.0.0.0", port=settings.port, url_path=path, webhook_url=settings.webhook_url,
                            secret_token=settings.webhook_secret, allowed_updates=Update.ALL_TYPES)
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES)
    finally:
        repo.close()
    return 0

"""The Telegram bot: a python-telegram-bot ``Application`` around the tutor service.

Handlers are thin: they turn an update into an engine event and hand it to ``Tutor.handle`` with the
update's id (idempotency) and a ``ChatSink``, which stores the turn's replies as outbox rows in the
turn's own transaction; ``bot.telegram.sender`` makes the Bot API calls. Updates reach the handlers from
the durable inbox (``bot.telegram.runtime``): one chat's one at a time, in order; chats side by side.

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
import logging
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import NetworkError
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

from bot.config import Settings
from bot.service import Direct, Evaluator, Sink, Tutor
from bot.storage import Outgoing, Repository
from bot.telegram.outbox import encode
from bot.telegram.push import install_push_job
from bot.telegram.render import to_html
from bot.telegram.runtime import Runtime
from bot.telegram.sender import Sender, learner_id
from dialogs import actions
from dialogs.course import Course
from dialogs.evaluation import CheckSpec, EvalOutcome
from dialogs.messages import Command, Event, Press, Reply, Say, Start, Text, Turn, Unsupported

log = logging.getLogger(__name__)

MENU = {
    "en": [("start", "Hello and the course map"), ("map", "The course map: tap a section to go there"),
           ("ask", "Ask anything about autograd"), ("goto", "Go to a section, e.g. /goto 3A"),
           ("back", "Back to where you were"), ("skip", "Skip this section"), ("redo", "Play a section again"),
           ("cards", "Review due flashcards"),
           ("quiz", "A few questions on what you've covered"),
           ("recap", "Key points and flashcards of recent sections"),
           ("progress", "Streak, sections, cards due"), ("settings", "Daily push time, time zone, pause"),
           ("graph", "Draw the autograd graph of your code"),
           ("lang", "Language: English / 中文"), ("help", "What I understand"), ("reset", "Start over")],
    "zh": [("start", "你好，并显示课程地图"), ("map", "课程地图：点一节就去那里"),
           ("ask", "问任何关于 autograd 的问题"), ("goto", "跳到某一节，例如 /goto 3A"),
           ("back", "回到刚才的位置"), ("skip", "跳过这一节"), ("redo", "重学某一节"),
           ("cards", "复习到期的闪卡"),
           ("quiz", "针对已学内容出几道题"), ("recap", "最近几节的要点与闪卡"),
           ("progress", "连续天数、进度、到期闪卡"),
           ("settings", "每日推送时间、时区、暂停"), ("graph", "画出代码的 autograd 计算图"),
           ("lang", "语言：English / 中文"), ("help", "我能听懂什么"),
           ("reset", "从头开始")],
}
KINDS = [
    (filters.Sticker.ALL, "sticker"), (filters.PHOTO, "photo"), (filters.VOICE | filters.AUDIO, "voice"),
    (filters.VIDEO | filters.VIDEO_NOTE | filters.ANIMATION, "video"), (filters.Document.ALL, "document"),
]


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


class ChatSink:
    """Where one chat's replies go: outbox rows stored with the turn (``Sink``), sent by the ``Sender``.

    A tap's callback answer (with the turn's toast) is the first row of its turn and goes out before
    anything else; a keyboard the turn made stale is taken off afterwards, unless a reply of the same turn
    rewrote that message."""

    def __init__(self, shell: TelegramShell, chat_id: int, origin: int | None = None, *,
                 query_id: str | None = None, pressed: int | None = None) -> None:
        self.shell = shell
        self.chat_id = chat_id
        self.learner_id = learner_id(chat_id)
        self.origin = origin
        self.query_id = query_id
        self.pressed = pressed
        self.answered = query_id is None

    def _row(self, kind: str, payload: dict[str, Any]) -> Outgoing:
        return Outgoing(self.chat_id, kind, payload, self.learner_id, self.origin)

    def rows(self, replies: Sequence[Reply]) -> list[Outgoing]:
        out = []
        for reply in coalesce(replies):
            kind, payload = encode(reply)
            out.append(self._row(kind, payload))
        return out

    def answer_row(self, text: str = "") -> Outgoing:
        assert self.query_id is not None
        return self._row("answer", {"query_id": self.query_id, "text": text})

    def outbox(self, turn: Turn) -> Sequence[Outgoing]:
        out = [self.answer_row(turn.toast)] if not self.answered else []
        out.extend(self.rows(turn.replies))
        if turn.keyboard_stale and self.pressed is not None:
            out.append(self._row("unkeyboard", {"message_id": self.pressed}))
        return out

    async def after(self, turn: Turn) -> None:
        if self.origin is not None:
            self.shell.applied.add(self.origin)  # its inbox row is marked done already
        if not self.answered and self.query_id is not None:  # stored: answer it now, ahead of everything
            self.shell.sender.answer_now(self.query_id, turn.toast, self.origin)
        self.answered = True
        if turn.keyboard_stale:
            self.pressed = None
        self.shell.sender.wake()

    async def send(self, replies: Sequence[Reply]) -> None:
        await asyncio.to_thread(self.shell.repo.enqueue, self.rows(replies))
        self.shell.sender.wake()

    async def finish(self) -> None:
        """The update is done with: a tap not answered by a turn (already applied, or an error) is answered
        now, without a toast."""
        if not self.answered:
            self.answered = True
            await asyncio.to_thread(self.shell.repo.enqueue, [self.answer_row()])
            self.shell.sender.wake()


class TelegramShell:
    """What the handlers share: the tutor, the database, the outbox sender. Owns no learner state."""

    def __init__(self, app: Application, tutor: Tutor) -> None:
        self.app = app
        self.tutor = tutor
        self.repo: Repository = tutor.repo
        self.sender = Sender(app, tutor.repo, tutor.course)
        self.outbox = self.sender.outbox  # which message carries which anchor, which poll is whose
        self.failed: dict[int, str] = {}  # update id -> the error its handler raised
        self.applied: set[int] = set()  # update ids whose turn (and so their "done" mark) is stored

    def sink(self, chat_id: int, origin: int | None = None, **press: Any) -> ChatSink:
        return ChatSink(self, chat_id, origin, **press)

    def push_sender(self, chat_id: int) -> ChatSink:
        """The sink for a daily push (no update)."""
        return self.sink(chat_id)

    def recovery_sink(self, learner: str, chat_id: int | None, origin: int | None) -> Sink:
        """Where the news of a run interrupted by a restart goes."""
        if chat_id is None:
            return Direct(_discard)
        return self.sink(chat_id, origin)

    async def say(self, chat_id: int, html_text: str, origin: int | None = None, reply_to: int | None = None) -> None:
        """A message that is no learner's turn (a group note, an apology), through the outbox."""
        row = Outgoing(chat_id, "text", {"html": html_text, "reply_to": reply_to}, None, origin)
        await asyncio.to_thread(self.repo.enqueue, [row])
        self.sender.wake()

    async def dispatch(self, update: Update, event: Event, sink: ChatSink | None = None) -> Turn | None:
        """Hand one event to the tutor: the turn applied (``None`` for a redelivered update)."""
        chat = update.effective_chat
        if chat is None:
            return None
        sink = sink or self.sink(chat.id, update.update_id)
        return await self.tutor.handle(learner_id(chat.id), event, sink, update_id=update.update_id,
                                       chat_id=chat.id, lang_hint=lang_of(update))


async def _discard(replies: Sequence[Reply]) -> None:
    """Replies for a learner with no chat (none in Telegram)."""


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
    """An inline button: its callback query is answered first (with the turn's toast, if any: the answer
    is the first outbox row of the turn), then the replies go out; then a keyboard the turn made stale is
    taken away."""
    query = update.callback_query
    if query is None:
        return
    shell = shell_of(context)
    message = query.message
    chat_id = update.effective_chat.id if update.effective_chat else (query.from_user.id if query.from_user else 0)
    pressed = message.message_id if isinstance(message, Message) and message.reply_markup is not None else None
    sink = shell.sink(chat_id, update.update_id, query_id=query.id, pressed=pressed)
    try:
        await shell.dispatch(update, actions.decode(query.data or ""), sink)
    finally:
        await sink.finish()


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
    await shell.say(msg.chat.id, to_html(text)[0], update.update_id, reply_to=msg.message_id)


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
                             shell.sink(ref.chat_id, update.update_id), update_id=update.update_id,
                             chat_id=ref.chat_id)


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
    shell = shell_of(context)
    shell.failed[update.update_id] = f"{type(error).__name__}: {error}"
    if chat is None or chat.type != "private":
        return
    state = None
    with contextlib.suppress(Exception):
        state = await asyncio.to_thread(shell.repo.load, learner_id(chat.id))
    lang = state.lang if state is not None else lang_of(update) or "en"
    await shell.say(chat.id, to_html(shell.tutor.course.t(lang, "our_error"))[0], update.update_id)


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

    async def pictures(self, code: str) -> EvalOutcome:
        if self._starting is not None:
            await asyncio.shield(self._starting)
        pictures = getattr(self.evaluator, "pictures", None)
        if pictures is None:
            return EvalOutcome("unavailable", error="this evaluator draws no pictures")
        outcome: EvalOutcome = await pictures(code)
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
    tutor = Tutor(course, repo, evaluator, background=True)
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


def runtime_for(app: Application, settings: Settings, **options: Any) -> Runtime:
    """The durable runtime for an application: long polling, or a webhook when ``WEBHOOK_URL`` is set."""
    webhook = webhook_args(settings) if settings.webhook_url else None
    return Runtime(app, webhook=webhook, lanes=settings.update_lanes, max_backlog=settings.inbox_backlog,
                   shutdown_seconds=settings.shutdown_seconds, **options)


def run_bot(settings: Settings, course: Course) -> int:
    """Serve until SIGINT/SIGTERM: long polling, or a webhook when ``WEBHOOK_URL`` is set."""
    from bot.sandbox import Sandbox

    os.environ.setdefault("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta, without warnings
    repo = Repository(settings.db_url, settings.db_pool())
    sandbox = Sandbox(settings.sandbox_config())
    app = build_application(settings, course, repo, sandbox)
    try:
        asyncio.run(runtime_for(app, settings).serve())
    finally:
        repo.close()
    return 0

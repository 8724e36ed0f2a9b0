"""The fake Bot API server, proven with the real python-telegram-bot and with plain HTTP."""

from __future__ import annotations

import datetime as dtm
import socket
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PollAnswerHandler,
    filters,
)

from tests.support.fake_bot_api import (
    NOT_MODIFIED,
    EntityParseError,
    FakeBotAPI,
    parse_html,
    utf16_len,
)
from tests.support.networking import RealNetworkAccess, block_real_network

CHAT = 4242


def png(width: int, height: int) -> bytes:
    """A valid, tiny grey PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def fake_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("FakeBotAPI")]


@pytest.fixture
def server() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as fake:
        fake.add_chat(CHAT, first_name="Ada")
        yield fake
    assert not fake_threads(), "the fake left threads behind"
    assert not fake.server_errors, fake.server_errors[0]


def build_app(server: FakeBotAPI) -> Application:
    return (
        ApplicationBuilder().token(server.token).base_url(server.base_url).base_file_url(server.base_file_url).build()
    )


@pytest.fixture
async def app(server: FakeBotAPI) -> AsyncIterator[Application]:
    application = build_app(server)
    await application.initialize()
    yield application
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()


async def start_polling(application: Application) -> None:
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=5)
    await application.start()


def description(server: FakeBotAPI, method: str) -> str:
    """Telegram's raw error description of the last call to ``method``."""
    response = server.calls(method)[-1].response
    assert response is not None
    return str(response["description"])


# ------------------------------------------------------------------------------ with the real PTB


async def test_get_me_and_the_request_log(app: Application, server: FakeBotAPI) -> None:
    me = await app.bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "AutogradTutorBot"
    assert [r.method for r in server.requests] == ["getMe", "getMe"]  # initialize() calls it too
    assert all(r.ok and r.time > 0 for r in server.requests)


async def test_send_html_message_with_keyboard(app: Application, server: FakeBotAPI) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next ▶", callback_data="p1.a.1:v3")]])
    html = '<b>Leaf</b> tensors &amp; <code>.grad</code>\n<pre><code class="language-python">x = 1</code></pre>'

    message = await app.bot.send_message(CHAT, html, parse_mode=ParseMode.HTML, reply_markup=keyboard)

    assert message.text == "Leaf tensors & .grad\nx = 1"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bold", 0, 4),
        ("code", 15, 5),
        ("pre", 21, 5),
    ]
    assert message.entities[2].language == "python"
    assert message.reply_markup == keyboard
    assert message.from_user is not None and message.from_user.is_bot
    stored = server.last_message(CHAT)
    assert stored.message_id == message.message_id
    assert stored.text == html and stored.parse_mode == "HTML"
    assert stored.plain_text == message.text
    assert stored.callback_data == ["p1.a.1:v3"]


async def test_length_is_counted_after_parsing_html(app: Application) -> None:
    exactly = "<b>" + "&lt;" * 4096 + "</b>"  # 16 kB of markup, 4096 characters to show
    message = await app.bot.send_message(CHAT, exactly, parse_mode=ParseMode.HTML)
    assert message.text == "<" * 4096
    with pytest.raises(BadRequest, match="Message is too long"):
        await app.bot.send_message(CHAT, "é" * 4097)
    # Telegram counts UTF-16 code units: 2049 emoji are 4098 units.
    assert utf16_len("🙂" * 2049) == 4098
    with pytest.raises(BadRequest, match="Message is too long"):
        await app.bot.send_message(CHAT, "🙂" * 2049)


REJECTED_TEXTS = [
    ("   \n ", "Bad Request: message text is empty"),
    ("<b> </b>", "Bad Request: message text is empty"),
    ("<p>hello</p>", 'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0'),
    ("<b>bold", "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""),
    (
        "<b><i>x</b></i>",
        'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 7, expected "</i>", found "</b>"',
    ),
    ("x</b>", "Bad Request: can't parse entities: Unexpected end tag at byte offset 1"),
    ("1 < 2", 'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2'),
    ("grad <b", "Bad Request: can't parse entities: Unclosed start tag at byte offset 5"),
    ("<br/>", 'Bad Request: can\'t parse entities: Unsupported start tag "br/" at byte offset 0'),
    ("<span>x</span>", 'Bad Request: can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte offset 0'),
]


@pytest.mark.parametrize(("text", "expected"), REJECTED_TEXTS)
async def test_rejected_texts(app: Application, server: FakeBotAPI, text: str, expected: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await app.bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)
    assert description(server, "sendMessage") == expected
    # PTB strips "Bad Request: " and capitalizes what is left.
    assert caught.value.message == expected.removeprefix("Bad Request: ").capitalize()
    assert server.messages(CHAT) == []


async def test_bare_ampersand_is_refused_in_strict_mode_only(app: Application, server: FakeBotAPI) -> None:
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await app.bot.send_message(CHAT, "x & y", parse_mode=ParseMode.HTML)
    assert 'Unescaped "&" at byte offset 2' in description(server, "sendMessage")
    server.strict_html = False  # Telegram itself shows a lone "&" as it is
    message = await app.bot.send_message(CHAT, "x & y", parse_mode=ParseMode.HTML)
    assert message.text == "x & y"


async def test_callback_data_over_64_bytes(app: Application, server: FakeBotAPI) -> None:
    fine = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="é" * 32)]])  # 64 bytes
    await app.bot.send_message(CHAT, "fits", reply_markup=fine)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="a" * 65)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await app.bot.send_message(CHAT, "does not", reply_markup=too_long)
    assert description(server, "sendMessage") == "Bad Request: BUTTON_DATA_INVALID"
    multibyte = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="✓" * 22)]])  # 66 bytes
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await app.bot.send_message(CHAT, "nor this", reply_markup=multibyte)


async def test_edits(app: Application, server: FakeBotAPI) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await app.bot.send_message(CHAT, "<b>Q1</b>", parse_mode=ParseMode.HTML, reply_markup=keyboard)

    with pytest.raises(BadRequest, match="Message is not modified"):
        await app.bot.edit_message_text(
            "<b>Q1</b>", CHAT, sent.message_id, parse_mode=ParseMode.HTML, reply_markup=keyboard
        )
    assert description(server, "editMessageText") == NOT_MODIFIED
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await app.bot.edit_message_text("x", CHAT, 999)

    # Same text without reply_markup still changes the message: the keyboard goes away.
    edited = await app.bot.edit_message_text("<b>Q1</b>", CHAT, sent.message_id, parse_mode=ParseMode.HTML)
    assert isinstance(edited, type(sent)) and edited.reply_markup is None and edited.edit_date
    stored = server.message(CHAT, sent.message_id)
    assert stored.edited and stored.buttons == [] and stored.history[0]["reply_markup"] is not None

    with pytest.raises(BadRequest, match="Message is not modified"):
        await app.bot.edit_message_reply_markup(CHAT, sent.message_id)
    await app.bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard)
    assert server.message(CHAT, sent.message_id).callback_data == ["a"]

    assert await app.bot.delete_message(CHAT, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await app.bot.delete_message(CHAT, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await app.bot.edit_message_text("gone", CHAT, sent.message_id)
    assert server.messages(CHAT) == []
    assert len(server.messages(CHAT, include_deleted=True)) == 1


async def test_retry_after(app: Application, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without PTB_TIMEDELTA, PTB 22.8 warns inside RetryAfter.__init__ (an error under "-W error").
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    server.fail_next("sendMessage", 429, retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        await app.bot.send_message(CHAT, "hello")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert server.calls("sendMessage")[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert server.messages(CHAT) == []
    await app.bot.send_message(CHAT, "hello")  # only the next call failed
    assert server.texts(CHAT) == ["hello"]


async def test_rate_limiter_waits_out_a_429(server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    application = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)
        .rate_limiter(AIORateLimiter(max_retries=2))
        .build()
    )
    server.fail_next("sendMessage", 429, retry_after=1)
    async with application:
        began = time.monotonic()
        await application.bot.send_message(CHAT, "patience")
        assert time.monotonic() - began >= 1
    assert [r.status for r in server.calls("sendMessage")] == [429, 200]
    assert server.texts(CHAT) == ["patience"]


async def test_blocked_chat(app: Application, server: FakeBotAPI) -> None:
    server.block_chat(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(CHAT, "daily review")
    with pytest.raises(Forbidden):
        await app.bot.send_chat_action(CHAT, "typing")
    server.unblock_chat(CHAT)
    await app.bot.send_message(CHAT, "welcome back")
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(777, "who?")


async def test_connection_drop_and_slow_answer(app: Application, server: FakeBotAPI) -> None:
    server.drop_next("sendMessage")
    with pytest.raises(NetworkError):
        await app.bot.send_message(CHAT, "lost")
    assert server.messages(CHAT) == []
    assert str(await server.wait_for_request("sendMessage")).endswith("connection dropped")

    server.delay_next("sendMessage", 2.0)
    with pytest.raises(TimedOut):
        await app.bot.send_message(CHAT, "slow", read_timeout=0.2)
    assert server.texts(CHAT) == ["slow"]  # Telegram did it; only the answer was late


async def test_send_photo_upload_and_download(app: Application, server: FakeBotAPI) -> None:
    picture = png(300, 200)
    message = await app.bot.send_photo(
        CHAT, picture, caption="<i>the graph</i>", parse_mode=ParseMode.HTML, filename="graph.png"
    )

    assert message.caption == "the graph"
    assert (message.photo[-1].width, message.photo[-1].height) == (300, 200)
    stored = server.last_message(CHAT)
    assert stored.kind == "photo" and stored.photo == picture and stored.file_name == "graph.png"
    assert server.calls("sendPhoto")[0].files  # it really was a multipart upload

    downloaded = await (await app.bot.get_file(message.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == picture
    again = await app.bot.send_photo(CHAT, message.photo[-1].file_id)  # resend by file_id
    assert server.message(CHAT, again.message_id).photo == picture

    with pytest.raises(BadRequest, match="Message caption is too long"):
        await app.bot.send_photo(CHAT, picture, caption="x" * 1025)
    with pytest.raises(BadRequest, match="Photo_invalid_dimensions"):
        await app.bot.send_photo(CHAT, png(9000, 1500))


async def test_polls(app: Application, server: FakeBotAPI) -> None:
    message = await app.bot.send_poll(
        CHAT,
        "Where does .grad land?",
        ["on leaves", "on every tensor"],
        type="quiz",
        correct_option_ids=[0],
        is_anonymous=False,
        explanation="<b>leaves</b> only",
        explanation_parse_mode=ParseMode.HTML,
    )
    assert message.poll is not None and message.poll.type == "quiz"
    assert message.poll.explanation == "leaves only"
    stopped = await app.bot.stop_poll(CHAT, message.message_id)
    assert stopped.is_closed
    with pytest.raises(BadRequest, match="Poll has already been closed"):
        await app.bot.stop_poll(CHAT, message.message_id)

    cases = [
        (("q" * 301, ["a", "b"]), {}, "poll question length must not exceed 300"),
        (("q", ["a", "b" * 101]), {}, "poll options length must not exceed 100"),
        (("q", ["only one"]), {}, "poll must have at least 2 option"),
        (("q", ["a", "b"]), {"type": "quiz", "correct_option_ids": [0], "explanation": "e" * 201}, "too long"),
    ]
    for args, kwargs, expected in cases:
        with pytest.raises(BadRequest):
            await app.bot.send_poll(CHAT, *args, **kwargs)
        assert expected in description(server, "sendPoll")


async def test_commands_per_language(app: Application, server: FakeBotAPI) -> None:
    await app.bot.set_my_commands([BotCommand("start", "Begin"), BotCommand("map", "Course map")])
    await app.bot.set_my_commands([BotCommand("start", "开始")], language_code="zh")
    assert [c.command for c in await app.bot.get_my_commands()] == ["start", "map"]
    assert [c.description for c in await app.bot.get_my_commands(language_code="zh")] == ["开始"]
    assert server.commands("zh") == [{"command": "start", "description": "开始"}]
    assert server.commands("en") == []  # no fallback: nothing was set for "en" itself
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await app.bot.set_my_commands([BotCommand("Bad-Name", "x")], scope=BotCommandScopeDefault())


async def test_polling_delivers_messages_and_clicks(app: Application, server: FakeBotAPI) -> None:
    seen: list[int] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Greet with a button."""
        seen.append(update.update_id)
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
        await update.effective_message.reply_html("<b>Hello!</b>", reply_markup=keyboard)

    async def go(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer the tap and edit the question."""
        query = update.callback_query
        assert query is not None
        await query.answer("✓")
        await query.edit_message_text("Chosen: Go")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(go))
    await start_polling(app)

    learner = server.learner(5001, first_name="Lin", language_code="zh")
    replies = await learner.ask("/start")
    assert [m.plain_text for m in replies] == ["Hello!"]
    assert replies[0].reply_markup == {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}

    tap = learner.press("Go")
    answer = await server.wait_for_callback_answer(tap["callback_query"]["id"])
    assert answer["text"] == "✓"
    edited = await server.wait_for(lambda: server.message(5001, replies[0].message_id).edited or None)
    assert edited is True
    assert server.message(5001, replies[0].message_id).plain_text == "Chosen: Go"
    assert server.unanswered_callback_queries() == []
    with pytest.raises(LookupError):
        learner.press("Go")  # the edit removed the keyboard

    # A redelivered update keeps its update_id (idempotency after a restart).
    first = seen[0]
    server.redeliver(first)
    await server.wait_for(lambda: len(seen) == 2)
    assert seen == [first, first]
    await app.updater.stop()  # type: ignore[union-attr]
    assert server.pending_updates == []  # the cleanup getUpdates confirmed everything


async def test_update_ids_and_learner_message_kinds(app: Application, server: FakeBotAPI) -> None:
    group = -100500
    updates = [
        server.send_text(CHAT, "/start@AutogradTutorBot please"),
        server.sticker(CHAT),
        server.photo(CHAT, png(4, 4), caption="my graph"),
        server.voice(CHAT),
        server.document(CHAT),
        server.edited_text(CHAT, "/start again"),
        server.forwarded_text(CHAT, "a quote"),
        server.send_text(group, "/help@AutogradTutorBot", chat_type="group", user=6001),
    ]
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    parsed = [Update.de_json(u, app.bot) for u in updates]
    text, sticker, photo, voice, document, edited, forwarded, in_group = parsed
    assert text.message is not None and text.message.text is not None
    assert text.message.parse_entities() == {text.message.entities[0]: "/start@AutogradTutorBot"}
    assert sticker.message is not None and sticker.message.sticker is not None
    assert photo.message is not None and photo.message.photo and photo.message.caption == "my graph"
    assert voice.message is not None and voice.message.voice is not None
    assert document.message is not None and document.message.document is not None
    assert edited.edited_message is not None and edited.edited_message.text == "/start again"
    assert edited.edited_message.message_id == text.message.message_id
    assert forwarded.message is not None and forwarded.message.forward_origin is not None
    assert in_group.message is not None and in_group.message.chat.type == "group"
    assert in_group.message.from_user is not None and in_group.message.from_user.id == 6001

    file = await app.bot.get_file(photo.message.photo[-1].file_id)  # learners' files download too
    assert bytes(await file.download_as_bytearray()) == png(4, 4)
    with pytest.raises(ValueError, match="send_long_text"):
        server.send_text(CHAT, "x" * 10_000)
    pieces = server.send_long_text(CHAT, ("word " * 2000).strip())
    assert len(pieces) == 3 and all(utf16_len(p["message"]["text"]) <= 4096 for p in pieces)


async def test_poll_answers_reach_the_bot(app: Application, server: FakeBotAPI) -> None:
    answers: list[tuple[int, ...]] = []

    async def on_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Collect the chosen options."""
        assert update.poll_answer is not None
        answers.append(tuple(update.poll_answer.option_ids))

    app.add_handler(PollAnswerHandler(on_answer))
    await app.bot.send_poll(CHAT, "Pick", ["a", "b", "c"], is_anonymous=False, allows_multiple_answers=True)
    await start_polling(app)
    server.poll_answer(CHAT, [0, 2])
    await server.wait_for(lambda: answers)
    assert answers == [(0, 2)]
    assert server.last_message(CHAT).poll["total_voter_count"] == 1  # type: ignore[index]


async def test_webhook_delivery(server: FakeBotAPI) -> None:
    application = build_app(server)
    received: list[str] = []

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Remember the text."""
        assert update.message is not None and update.message.text is not None
        received.append(update.message.text)

    application.add_handler(MessageHandler(filters.TEXT, echo))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with application:
        assert application.updater is not None
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret",
        )
        await application.start()
        assert server.webhook_info["url"] == f"http://127.0.0.1:{port}/hook"
        with pytest.raises(httpx.HTTPStatusError):  # getUpdates is refused while a webhook is set
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{server.base_url}{server.token}/getUpdates")
                response.raise_for_status()
        update = server.send_text(CHAT, "via webhook")
        await server.wait_until_delivered(update["update_id"])
        await server.wait_for(lambda: received)
        assert received == ["via webhook"]
        await application.updater.stop()
        await application.stop()


async def test_flood_limits(app: Application, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    server.flood_limits(overall_per_second=2)
    await app.bot.send_message(CHAT, "1")
    await app.bot.send_message(CHAT, "2")
    with pytest.raises(RetryAfter):
        await app.bot.send_message(CHAT, "3")
    server.flood_limits(None, None)
    await app.bot.send_message(CHAT, "3")


async def test_wait_for_reports_what_happened(server: FakeBotAPI) -> None:
    server.send_text(CHAT, "anyone there?")
    with pytest.raises(TimeoutError) as caught:
        await server.wait_for_messages(CHAT, 1, timeout=0.05)
    report = str(caught.value)
    assert "anyone there?" in report and "pending updates: [1000]" in report


# ------------------------------------------------------------------------------ plain HTTP


def test_plain_http_encodings_and_errors(server: FakeBotAPI) -> None:
    api = f"{server.base_url}{server.token}"
    with httpx.Client() as client:
        as_json = client.post(f"{api}/sendMessage", json={"chat_id": CHAT, "text": "json"}).json()
        as_form = client.post(f"{api}/sendmessage", data={"chat_id": str(CHAT), "text": "form"}).json()
        as_multipart = client.post(
            f"{api}/sendPhoto",
            data={"chat_id": str(CHAT), "caption": "multi"},
            files={"photo": ("p.png", png(2, 2), "image/png")},
        ).json()
        with_markup = client.post(
            f"{api}/sendMessage",
            data={
                "chat_id": str(CHAT),
                "text": "markup",
                "reply_markup": '{"inline_keyboard": [[{"text": "b", "callback_data": "d"}]]}',
            },
        ).json()
        by_get = client.get(f"{api}/getMe").json()
        unknown = client.post(f"{api}/sendTelepathy")
        wrong_token = client.post(f"{server.base_url}999:WRONG/getMe")
        nonsense = client.get(f"{server.url}/favicon.ico")

    assert as_json["ok"] and as_json["result"]["text"] == "json"
    assert as_json["result"]["chat"] == {"id": CHAT, "type": "private", "first_name": "Ada"}
    assert as_form["ok"] and as_form["result"]["text"] == "form"  # method names ignore case
    assert as_multipart["ok"] and as_multipart["result"]["caption"] == "multi"
    assert with_markup["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "d"
    assert by_get["result"]["username"] == "AutogradTutorBot"
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert wrong_token.status_code == 401 and wrong_token.json()["description"] == "Unauthorized"
    assert nonsense.status_code == 404
    assert [m.message_id for m in server.messages(CHAT)] == [1, 2, 3, 4]


def test_get_updates_offset_limit_and_timeout(server: FakeBotAPI) -> None:
    api = f"{server.base_url}{server.token}"
    first, second, third = (server.send_text(CHAT, t)["update_id"] for t in ("a", "b", "c"))
    with httpx.Client() as client:

        def get(**params: object) -> list[dict[str, object]]:
            response = client.post(f"{api}/getUpdates", json=params, timeout=10)
            assert response.status_code == 200, response.text
            return response.json()["result"]

        assert [u["update_id"] for u in get(limit=2)] == [first, second]
        assert [u["update_id"] for u in get(offset=second)] == [second, third]  # confirms `first`
        assert [u["update_id"] for u in get()] == [second, third]
        assert get(offset=third + 1) == []  # confirms everything
        began = time.monotonic()
        assert get(offset=third + 1, timeout=0.3) == []
        assert 0.25 < time.monotonic() - began < 2

        # A long poll returns as soon as an update arrives.
        threading.Timer(0.2, server.send_text, args=(CHAT, "late")).start()
        began = time.monotonic()
        late = get(offset=third + 1, timeout=5)
        assert [u["message"]["text"] for u in late] == ["late"]
        assert time.monotonic() - began < 2

        assert get(offset=-1) == late  # a negative offset keeps the last updates


def test_second_long_poll_ends_the_first_with_a_conflict(server: FakeBotAPI) -> None:
    api = f"{server.base_url}{server.token}"
    results: list[httpx.Response] = []

    def poll() -> None:
        with httpx.Client() as client:
            results.append(client.post(f"{api}/getUpdates", json={"timeout": 5}, timeout=10))

    waiting = threading.Thread(target=poll)
    waiting.start()
    server.wait_for_sync(lambda: any(r.method == "getUpdates" for r in server._requests))
    with httpx.Client() as client:
        assert client.post(f"{api}/getUpdates", json={"timeout": 0}).json() == {"ok": True, "result": []}
    waiting.join(5)
    assert results[0].status_code == 409
    assert "terminated by other getUpdates request" in results[0].json()["description"]


def test_stop_ends_a_waiting_long_poll_promptly() -> None:
    fake = FakeBotAPI().start()
    api = f"{fake.base_url}{fake.token}"
    results: list[httpx.Response] = []

    def poll() -> None:
        with httpx.Client() as client:
            results.append(client.post(f"{api}/getUpdates", json={"timeout": 30}, timeout=40))

    waiting = threading.Thread(target=poll)
    waiting.start()
    fake.wait_for_sync(lambda: fake.calls("getUpdates"))
    began = time.monotonic()
    fake.stop()
    waiting.join(5)
    assert time.monotonic() - began < 2
    assert results and results[0].json() == {"ok": True, "result": []}
    assert not fake_threads()
    fake.stop()  # idempotent


async def test_a_bot_object_without_application(server: FakeBotAPI) -> None:
    async with Bot(server.token, base_url=server.base_url) as bot:
        assert (await bot.get_me()).first_name == "Autograd Tutor"
        await bot.send_chat_action(CHAT, "typing")
        with pytest.raises(BadRequest, match="Wrong parameter action"):
            await bot.send_chat_action(CHAT, "dancing")


# ------------------------------------------------------------------------------ HTML parser


@pytest.mark.parametrize(
    ("html", "error"),
    [  # cases from TDLib's own tests (test/message_entities.cpp)
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
        ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
        ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        (
            "&#57311;",
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units",
        ),
    ],
)
def test_parse_html_errors_match_tdlib(html: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(html)
    assert str(caught.value) == error


def test_parse_html_results_match_tdlib() -> None:
    assert parse_html("&lt;&gt;&amp;&quot;&laquo;&#12345678;") == ('<>&"&laquo;&#12345678;', [])
    assert parse_html("🏟 🏟<i>🏟 &lt🏟</i>") == ("🏟 🏟🏟 <🏟", [{"type": "italic", "offset": 5, "length": 6}])
    text, entities = parse_html('<blockquote expandable>q</blockquote><a href="https://x.org/?a&amp;b">l</a>')
    assert text == "ql"
    assert entities == [
        {"type": "expandable_blockquote", "offset": 0, "length": 1},
        {"type": "text_link", "offset": 1, "length": 1, "url": "https://x.org/?a&b"},
    ]


# ------------------------------------------------------------------------------ network guard


async def test_network_guard_allows_loopback_and_refuses_the_rest(server: FakeBotAPI) -> None:
    with block_real_network(fail_on_exit=False) as guard:
        async with httpx.AsyncClient() as client:  # the fake server is on loopback: allowed
            assert (await client.get(f"{server.base_url}{server.token}/getMe")).status_code == 200
            with pytest.raises(RealNetworkAccess):
                await client.get("https://api.telegram.org/bot123:X/getMe")
        with socket.socket() as sock, pytest.raises(RealNetworkAccess):
            sock.connect(("192.0.2.1", 443))
        bot = Bot("123:X")  # default base URL: the real Telegram
        with pytest.raises(NetworkError):
            await bot.initialize()
        await bot.shutdown()
    assert len(guard.violations) == 3
    with pytest.raises(AssertionError, match=r"api\.telegram\.org"):
        guard.check()

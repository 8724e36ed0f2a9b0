"""Buttons answer at once: the callback query is answered before the turn's replies are sent, with a
toast when the engine has one; calls that are safe to repeat are retried, sends are not.

Real Application, real HTTP, the fake Bot API; no test sleeps or times anything.
"""

from __future__ import annotations

import httpx
import pytest
from telegram.error import NetworkError, TimedOut

from bot.telegram.sender import never_sent
from tests.support.fake_bot_api import DROPPED, FakeBotAPI
from tests.support.telegram_bot import Chat, Expect, TelegramBot, texts, with_text

REPLIES = ("sendmessage", "editmessagetext", "sendphoto", "senddocument", "sendpoll")


async def test_the_tap_is_answered_before_any_reply(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 701)
    await chat.send("/start")
    before = set(server.answered_callback_queries)
    new = await chat.press("Continue")
    assert new, "the tap got its lesson"
    (query_id,) = set(server.answered_callback_queries) - before
    calls = [r for r in server.requests if r.params.get("chat_id") == chat.id
             or r.params.get("callback_query_id") == query_id]
    answered = next(i for i, r in enumerate(calls) if r.params.get("callback_query_id") == query_id)
    first_reply = next(i for i, r in enumerate(calls) if r.method.lower() in REPLIES
                       and r.params.get("text") and any(m.text == r.params["text"] for m in new))
    assert answered < first_reply, [str(r) for r in calls]


async def test_a_multi_select_toggle_is_answered_before_its_edit(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 702)
    await chat.send("/start")
    for _ in range(2):
        await chat.send("go")
    question = chat.messages[-1]
    await chat.send("b")  # the single-choice question: right
    await chat.send("go")
    multi = with_text(chat.messages, "Which are leaves?")
    before = set(server.answered_callback_queries)
    await chat.press(multi.button_texts[0], message_id=multi.message_id)
    (query_id,) = set(server.answered_callback_queries) - before
    calls = [r.method.lower() for r in server.requests if r.params.get("chat_id") == chat.id
             or r.params.get("callback_query_id") == query_id]
    at = calls.index("answercallbackquery", len(calls) - 3)
    assert "editmessagetext" in calls[at:], calls
    assert question.message_id != multi.message_id


async def test_a_stale_tap_gets_a_toast(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 703)
    await chat.send("/start")
    course_map = chat.messages[-1]
    await chat.send("go")
    await chat.send("go")
    before = set(server.answered_callback_queries)
    new = await chat.press("Continue", message_id=course_map.message_id)
    assert "behind us" in texts(new)
    (query_id,) = set(server.answered_callback_queries) - before
    assert "moved on" in server.answered_callback_queries[query_id].get("text", "")


async def test_a_fresh_tap_gets_no_toast(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 704)
    await chat.send("/start")
    before = set(server.answered_callback_queries)
    await chat.press("Continue")
    (query_id,) = set(server.answered_callback_queries) - before
    assert not server.answered_callback_queries[query_id].get("text")


async def test_a_lost_callback_answer_is_retried(server: FakeBotAPI, bot: TelegramBot, expect: Expect) -> None:
    """Answering a callback twice is harmless: a lost answer is sent again and the button stops spinning."""
    expect.failed_requests.add(DROPPED)
    chat = Chat(server, bot, 705)
    await chat.send("/start")
    server.drop_next("answerCallbackQuery", applied=False)
    await chat.press("Continue")
    statuses = [r.status for r in server.calls("answerCallbackQuery")]
    assert statuses[-2:] == [DROPPED, 200]


async def test_a_lost_edit_is_retried(server: FakeBotAPI, bot: TelegramBot, expect: Expect) -> None:
    """The edit went through but its answer was lost: the retry finds it done ("not modified")."""
    expect.failed_requests.update({DROPPED, 400})
    chat = Chat(server, bot, 706)
    await chat.send("/start")
    for _ in range(2):
        await chat.send("go")
    question = with_text(chat.messages, "What is x.grad?")
    server.drop_next("editMessageText", chat_id=chat.id, applied=True)
    await chat.press(question.button_texts[1], message_id=question.message_id)
    edits = [r.status for r in server.calls("editMessageText") if r.params.get("chat_id") == chat.id]
    assert edits == [DROPPED, 400]
    assert "Your answer: B" in with_text(chat.messages, "What is x.grad?").text
    assert not [r for r in server.calls("editMessageReplyMarkup") if r.params.get("chat_id") == chat.id]


@pytest.mark.parametrize(
    ("cause", "sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("pool"), False),
        (httpx.ReadTimeout("slow answer"), True),
        (httpx.RemoteProtocolError("closed without an answer"), True),
        (httpx.ReadError("reset"), True),
    ],
)
def test_what_counts_as_never_sent(cause: Exception, sent: bool) -> None:
    for kind in (NetworkError, TimedOut):
        error = kind("x")
        error.__cause__ = cause
        assert never_sent(error) is not sent
    # python-telegram-bot raises a 5xx answer (Telegram failed, nothing done) as a NetworkError without a cause
    assert never_sent(NetworkError("Bad Gateway")) is True
    assert never_sent(TimedOut("no cause")) is False
    # the bot's HTTP client was shut down under a call (a stop): PTB wraps that RuntimeError
    closed = NetworkError("Unknown error in HTTP implementation")
    closed.__cause__ = RuntimeError("This HTTPXRequest is not initialized!")
    assert never_sent(closed) is True


async def test_a_used_continue_stays_until_tapped_again(server: FakeBotAPI, bot: TelegramBot) -> None:
    """Continue stays under a lesson once used (no extra call per step); a second tap on it is behind
    us: a toast, a word, and then its keyboard goes."""
    chat = Chat(server, bot, 707)
    await chat.send("/start")
    course_map = chat.messages[-1]
    await chat.press("Continue", message_id=course_map.message_id)
    assert chat.message(course_map.message_id).button_texts == ["Continue ▶️"]
    assert not [r for r in server.calls("editMessageReplyMarkup") if r.params.get("chat_id") == chat.id]
    before = chat.state()
    new = await chat.press("Continue", message_id=course_map.message_id)
    assert "behind us" in texts(new) and chat.state() == before
    assert not chat.message(course_map.message_id).buttons

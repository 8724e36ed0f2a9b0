"""Talking to the real Telegram bot (over HTTP, against the fake Bot API): a free question answered with
"take me there" buttons, the map's section buttons, a jump to Part 3 and /back, in English and Chinese."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.content import default_content_dir, load_course
from dialogs.course import Course
from tests.support.fake_bot_api import FakeBotAPI
from tests.support.telegram_bot import Chat, texts, with_text


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


async def test_a_question_then_take_me_there_then_back(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                       course: Course) -> None:
    bot = await run_bot(course)
    chat = Chat(server, bot, 501, "en")
    await chat.send("/start")
    await chat.send("go")
    answer = with_text(await chat.send("why is my .grad None??"), "4A")
    assert answer.parse_mode == "HTML"
    labels = answer.button_texts
    assert labels[-1] == "↩️ Back to where we were" and any(label.startswith("📖 1 · ") for label in labels)
    state = chat.state()
    assert (state.section, state.step, state.attempts) == ("p1.why", "p1.why.intro", 0)
    # take me there (the first passage), then back to the very step we were on
    there = await chat.press(labels[0], message_id=answer.message_id)
    assert chat.state().section != "p1.why"
    assert "·" in texts(there)
    back = await chat.send("/back")
    assert "Back to 1A" in texts(back)
    assert (chat.state().section, chat.state().step) == ("p1.why", "p1.why.intro")


async def test_the_map_buttons_jump_and_back_undoes_it_in_chinese(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                                   course: Course) -> None:
    bot = await run_bot(course)
    chat = Chat(server, bot, 502, "zh-hans")
    await chat.send("/start")
    await chat.send("继续")
    shown = with_text(await chat.send("/map"), "课程地图")
    assert "3A" in shown.button_texts and "1A" in shown.button_texts
    jumped = await chat.press("3A", message_id=shown.message_id)
    assert "往前跳" in texts(jumped) and "3A ·" in texts(jumped)
    assert chat.state().section == "p3.contract"
    back = await chat.send("/back")
    assert "回到 1A" in texts(back)
    assert chat.state().section == "p1.why"
    # a pasted error, in a Chinese chat, finds the in-place section
    pasted = await chat.send("训练的时候报错了\nRuntimeError: a leaf Variable that requires grad is being used in "
                             "an in-place operation.")
    assert any(label.endswith("3E") for label in pasted[-1].button_texts), pasted[-1].button_texts

"""The real Telegram bot end to end: our PTB Application over real HTTP against the fake Bot API.

Learners type and tap through Part 1 in English and Chinese; buttons, edits, stale taps, several
learners at once, restarts and redelivered updates, 429/403, every kind of non-text message, group
chats, errors inside a handler, long replies; and ``python -m bot`` as a real process. No test
sleeps for a fixed time: each waits until the bot has handled the update it sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import load_course
from bot.sandbox import Sandbox, SandboxConfig
from bot.telegram import sender as telegram_sender
from bot.telegram.render import LIMIT, to_html, units
from dialogs import markup
from dialogs.course import Choice, Course, Explain, Ponder, Predict, Statements
from dialogs.messages import Event, Press, Text
from tests.support.driver import FIXTURES, mini_course
from tests.support.fake_bot_api import DROPPED, MAX_TEXT_LENGTH, FakeBotAPI, JSONDict, SentMessage, utf16_len
from tests.support.process import Stderr, cli_env
from tests.support.telegram_bot import Chat, Expect, TelegramBot, texts, with_text

ROOT = Path(__file__).resolve().parent.parent
LETTERS = "ABCDEFGH"
BOT_NAME = "AutogradTutorBot"


# ------------------------------------------------------------------------------------------ helpers


def first_line(text: str) -> str:
    """The first plain line of a markup text, as the learner sees it (a fragment to look for)."""
    for line in text.split("\n"):
        line = markup.plain(line).strip()
        if line and not line.startswith(("```", "|")):
            return line[:25]
    raise AssertionError(f"no plain line in {text!r}")


@cache
def course_ui() -> Course:
    return mini_course()


def ui(lang: str, key: str, **values: Any) -> str:
    """A UI string as the learner sees it (markup removed); without values, cut before the first
    placeholder and the first variant."""
    if values:
        return markup.plain(course_ui().t(lang, key, **values))
    return markup.plain(course_ui().ui[lang][key]).split("{")[0].split("||")[0].strip()


def part1_content(root: Path) -> Path:
    """A content directory with the real UI strings and Part 1 only (the rest of the course is
    written elsewhere and may be incomplete)."""
    content = ROOT / "content"
    shutil.copytree(content / "ui", root / "ui")
    shutil.copytree(content / "part1", root / "part1")
    meta = yaml.safe_load((content / "course.yaml").read_text(encoding="utf-8"))
    meta["parts"] = [p for p in meta["parts"] if p["id"] == "p1"]
    (root / "course.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def part1(tmp_path_factory: pytest.TempPathFactory) -> Course:
    return load_course(part1_content(tmp_path_factory.mktemp("content")))


def answers_in(db: Path) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT learner_id, step, verdict, correct FROM answerlog ORDER BY id").fetchall()


async def to_single_question(chat: Chat) -> SentMessage:
    """/start, go, go: the mini course's single-choice question is on screen; returns its message."""
    await chat.send("/start")
    await chat.send("go")
    new = await chat.send("go")
    return with_text(new, "What is x.grad?")


# ------------------------------------------------------------------------------------------ Part 1


async def play_part1(chat: Chat, course: Course, lang: str, *, by: str) -> None:
    """Play every step of Part 1 by tapping (``by="tap"``) or typing (``by="type"``)."""
    new = await chat.send("/start")
    assert ui(lang, "map_title") in texts(new)
    go = ui(lang, "btn_go")
    new = await (chat.press(go) if by == "tap" else chat.send("继续" if lang == "zh" else "go"))
    for si, section in enumerate(course.parts[0].sections):
        assert f"1{LETTERS[si]} · {section.title.get(lang)}" in texts(new)
        for i, step in enumerate(section.steps):
            new = await play_step(chat, step, lang, new, by=by, try_wrong=(i % 2 == 1))
        end = with_text(new, ui(lang, "section_done"))
        assert end.reply_markup is not None
        assert any(e["type"] == "pre" for e in end.entities)  # the flashcard table
        if by == "tap":
            new = await chat.press(go, message_id=end.message_id)
            # a used Continue stays (one call less per step); tapped again it is "behind us" and goes
            assert chat.message(end.message_id).buttons
        else:
            new = await chat.send("go")
    assert ui(lang, "course_done") in texts(new)


async def play_step(chat: Chat, step: Any, lang: str, new: list[SentMessage], *, by: str,
                    try_wrong: bool) -> list[SentMessage]:
    if isinstance(step, Ponder):  # think first: the prompt, then the explanation on a tap or a guess
        asked = with_text(new, first_line(step.prompt.get(lang)))
        if by == "tap":
            new = await chat.press(ui(lang, "btn_ponder"), message_id=asked.message_id)
        else:
            new = await chat.send("我猜是 2x" if lang == "zh" else "my guess: 2x")
            quoted = texts(new) + (chat.message(asked.message_id).plain_text or "")  # the note goes with the edit
            assert "2x" in quoted and not chat.message(asked.message_id).buttons
    if isinstance(step, Explain):
        msg = with_text(new, first_line(step.text.get(lang)))
        if step.code:
            assert any(e["type"] == "pre" and e.get("language") == "python" for e in msg.entities), msg.entities
        if by == "tap":  # the button sits under the last part of a long explanation
            return await chat.press(ui(lang, "btn_go"))
        return await chat.send("好" if lang == "zh" else "ok")
    question = with_text(new, first_line(step.prompt.get(lang)))
    typed_only = isinstance(step, Predict) and not step.options
    assert bool(question.buttons) != typed_only, question.summary()
    if try_wrong and isinstance(step, Choice) and not step.multi:
        wrong = next(i for i, o in enumerate(step.options) if not o.correct)
        after = await (chat.press(LETTERS[wrong], message_id=question.message_id) if by == "tap"
                       else chat.send(LETTERS[wrong].lower()))
        # the question stays open where it is: the verdict under it, its options, and "Show answer"
        reopened = chat.message(question.message_id)
        assert ui(lang, "you_answered", answer=LETTERS[wrong]) in reopened.plain_text and "❌" in reopened.plain_text
        assert reopened.button_texts == [*LETTERS[:len(step.options)], ui(lang, "btn_reveal")]
        assert not after  # no new message: the answer is edited in
        assert chat.state().phase == "retry"
    seq = chat.state().seq
    new = await (tap_answer(chat, step, lang, question) if by == "tap" else type_answer(chat, step, lang))
    closed = chat.message(question.message_id)
    assert closed.edited and not closed.buttons, closed.summary()
    assert ui(lang, "you_answered") in (closed.plain_text or "")
    assert chat.state().seq > seq
    return new


async def tap_answer(chat: Chat, step: Any, lang: str, question: SentMessage) -> list[SentMessage]:
    qid = question.message_id
    if isinstance(step, Choice) and step.multi:
        new: list[SentMessage] = []
        for i, option in enumerate(step.options):
            if option.correct:
                new += await chat.press(f"▫️ {LETTERS[i]}", message_id=qid)
                assert f"✅ {LETTERS[i]}" in chat.message(qid).button_texts
        return new + await chat.press(ui(lang, "btn_submit"), message_id=qid)
    if isinstance(step, Choice):
        right = next(i for i, o in enumerate(step.options) if o.correct)
        return await chat.press(LETTERS[right], message_id=qid)
    if isinstance(step, Statements):
        new = []
        for i, statement in enumerate(step.statements):
            new += await chat.press(f"{i + 1} {'✓' if statement.answer else '✗'}", message_id=qid)
        return new
    if isinstance(step, Predict) and step.options:
        return await chat.press(LETTERS[step.options.index(step.answer)], message_id=qid)
    assert isinstance(step, Predict)
    return await chat.send(step.answer)


async def type_answer(chat: Chat, step: Any, lang: str) -> list[SentMessage]:
    if isinstance(step, Choice):
        return await chat.send(" ".join(LETTERS[i].lower() for i, o in enumerate(step.options) if o.correct))
    if isinstance(step, Statements):
        yes, no = ("对", "错") if lang == "zh" else ("T", "F")
        return await chat.send(" ".join(yes if s.answer else no for s in step.statements))
    assert isinstance(step, Predict)
    if step.options:
        return await chat.send(LETTERS[step.options.index(step.answer)].lower())
    return await chat.send(step.answer)


def questions_of(course: Course) -> set[str]:
    return {s.id for sec in course.parts[0].sections for s in sec.steps if not isinstance(s, Explain)}


async def test_part1_in_english_by_tapping(server: FakeBotAPI, run_bot: Callable[..., Any], part1: Course,
                                          tmp_path: Path) -> None:
    bot = await run_bot(part1)
    chat = Chat(server, bot, 101, "en")
    await play_part1(chat, part1, "en", by="tap")
    state = chat.state()
    assert (state.phase, state.lang) == ("done", "en")
    assert state.done_sections == tuple(part1.section_ids)
    log = answers_in(tmp_path / "tutor.db")
    assert {step for _, step, _, ok in log if ok} == questions_of(part1)
    assert any(verdict == "wrong" for _, _, verdict, _ in log)
    assert all(m.parse_mode == "HTML" for m in chat.messages)


async def test_part1_in_chinese_by_typing_with_a_language_switch(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                                part1: Course, tmp_path: Path) -> None:
    bot = await run_bot(part1)
    chat = Chat(server, bot, 102, "zh-hans")
    sections = part1.parts[0].sections
    # /lang with buttons halfway through the first section: English, then back to Chinese
    await chat.send("/start")
    new = await chat.send("继续")
    for step in sections[0].steps[:2]:
        new = await play_step(chat, step, "zh", new, by="type", try_wrong=True)
    asked = with_text(await chat.send("/lang"), "Which language? / 用哪种语言？")
    assert asked.button_texts == ["English", "简体中文"]
    new = await chat.press("English", message_id=asked.message_id)
    assert "Language: English" in texts(new)
    assert not chat.message(asked.message_id).buttons
    current = sections[0].steps[2]
    shown = current.text if isinstance(current, Explain) and not isinstance(current, Ponder) else current.prompt
    assert first_line(shown.en) in texts(new)
    new = await chat.send("/lang")
    new = await chat.press("简体中文", message_id=new[-1].message_id)
    assert "语言：简体中文" in texts(new)
    for step in sections[0].steps[2:]:
        new = await play_step(chat, step, "zh", new, by="type", try_wrong=False)
    assert ui("zh", "section_done") in texts(new)
    new = await chat.send("好")
    for si, section in enumerate(sections[1:], 1):
        assert f"1{LETTERS[si]} · {section.title.zh}" in texts(new)
        for i, step in enumerate(section.steps):
            new = await play_step(chat, step, "zh", new, by="type", try_wrong=(i % 2 == 1))
        assert ui("zh", "section_done") in texts(new)
        new = await chat.send("继续")
    assert ui("zh", "course_done") in texts(new)
    state = chat.state()
    assert (state.phase, state.lang, state.lang_chosen) == ("done", "zh", True)
    assert {step for _, step, _, ok in answers_in(tmp_path / "tutor.db") if ok} == questions_of(part1)


# ------------------------------------------------------------------------------------------ buttons


async def test_commands_menu_and_log_line_at_start(server: FakeBotAPI, bot: TelegramBot,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    en = [c["command"] for c in server.commands("en")]
    assert en[:3] == ["start", "map", "ask"]
    assert {"goto", "back", "skip", "redo", "cards", "quiz", "recap", "settings", "lang", "help", "reset",
            "progress"} <= set(en)
    assert [c["command"] for c in server.commands("zh")] == en
    assert server.commands("zh")[0]["description"] == "你好，并显示课程地图"
    assert [c["command"] for c in server.commands()] == en
    assert any(f"running as @{BOT_NAME}" in r.getMessage() and "long polling" in r.getMessage()
               for r in caplog.get_records("setup"))


async def test_language_follows_telegram_until_chosen(server: FakeBotAPI, bot: TelegramBot) -> None:
    zh, en = Chat(server, bot, 201, "zh-hans"), Chat(server, bot, 202, "en")
    assert ui("zh", "map_title") in texts(await zh.send("/start"))
    assert ui("en", "map_title") in texts(await en.send("/start"))
    assert (zh.state().lang, en.state().lang) == ("zh", "en")
    assert "Language: English" in texts(await zh.send("/lang en"))
    zh.learner.language_code = "zh-hant"  # Telegram's language no longer matters once chosen
    assert "Course map" in texts(await zh.send("/map"))
    assert zh.state().lang == "en"


async def test_single_choice_tap_edits_the_question(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 301)
    question = await to_single_question(chat)
    assert question.button_texts == ["A", "B", "C"]
    assert all(len(d.encode()) <= 64 for d in question.callback_data)
    new = await chat.press("B", message_id=question.message_id)
    closed = chat.message(question.message_id)
    assert closed.edited and not closed.buttons
    # the question shows the answer given and its verdict, in place
    assert "👉 Your answer: B\n\n" in closed.plain_text and "✅ B. 2x at 3 is 6." in closed.plain_text
    assert with_text(new, "Which are leaves?").buttons


async def test_multi_select_toggles_and_submit(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 302)
    await to_single_question(chat)
    question = with_text(await chat.send("b"), "Which are leaves?")
    qid = question.message_id
    assert question.button_texts == ["▫️ A", "▫️ B", "▫️ C", "Submit ✔️"]
    assert "Pick at least one" in texts(await chat.press("Submit", message_id=qid))
    await chat.press("▫️ A", message_id=qid)
    await chat.press("▫️ B", message_id=qid)
    now = chat.message(qid)
    assert now.button_texts == ["✅ A", "✅ B", "▫️ C", "Submit ✔️"]
    assert "✅ A. x\n✅ B. x * 2\n▫️ C. w" in now.plain_text
    await chat.press("✅ B", message_id=qid)  # toggled off again
    await chat.press("▫️ C", message_id=qid)
    assert chat.message(qid).button_texts == ["✅ A", "▫️ B", "✅ C", "Submit ✔️"]
    assert chat.state().selected == (0, 2)
    new = await chat.press("Submit", message_id=qid)
    closed = chat.message(qid)
    assert not closed.buttons and "👉 Your answer: AC\n\n" in closed.plain_text
    assert "▫️ C. w" in closed.plain_text  # the closed question shows no ticks of its own
    assert "True or false?" in texts(new)


async def test_statement_buttons(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 303)
    await to_single_question(chat)
    await chat.send("b")
    question = with_text(await chat.send("ac"), "True or false?")
    qid = question.message_id
    assert question.button_texts == ["1 ✓", "1 ✗", "2 ✓", "2 ✗", "3 ✓", "3 ✗"]
    assert [len(row) for row in question.buttons] == [2, 2, 2]
    await chat.press("1 ✓", message_id=qid)
    assert "Leaves keep .grad → ✓" in chat.message(qid).plain_text
    assert "1 ✓ •" in chat.message(qid).button_texts
    await chat.press("2 ✓", message_id=qid)  # the trap
    new = await chat.press("3 ✓", message_id=qid)
    closed = chat.message(qid)
    assert not closed.buttons and "👉 Your answer: True True True\n\n" in closed.plain_text
    assert "statement 2 is the trap" in closed.plain_text and new
    assert [(step, verdict) for _, step, verdict, _ in answers_in(bot.db)][-1] == ("m1.one.tf", "partial")


async def test_stale_buttons_change_nothing(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 304)
    await chat.send("/start")
    course_map = chat.messages[-1]
    assert course_map.button_texts == ["Continue ▶️"]
    await chat.send("go")  # typed: the map's button is still there
    question = with_text(await chat.send("go"), "What is x.grad?")
    before = chat.state()
    # the map's old Continue
    new = await chat.press("Continue", message_id=course_map.message_id)
    assert "behind us" in texts(new) and len(new) == 1
    assert chat.state() == before
    assert not chat.message(course_map.message_id).buttons  # the stale keyboard is taken away
    # an answer button of a question already answered (its keyboard was removed: a forged tap)
    old_pick = question.callback_data[0]
    await chat.send("b")
    after_answer = chat.state()
    new = await chat.click(old_pick, question.message_id, check=False)
    assert "behind us" in texts(new)
    assert chat.state() == after_answer
    assert len(answers_in(bot.db)) == 1
    # data we never made
    new = await chat.click("garbage", chat.messages[-1].message_id, check=False)
    assert "behind us" in texts(new)
    assert chat.state() == after_answer
    assert not server.unanswered_callback_queries()


async def test_wrong_answers_keep_the_question_open_then_show_answer(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 305)
    question = await to_single_question(chat)
    assert not await chat.press("A", message_id=question.message_id)  # edited in place, no new message
    again = chat.message(question.message_id)
    assert "That is x itself" in again.plain_text and again.button_texts == ["A", "B", "C", "👀 Show answer"]
    await chat.press("C", message_id=question.message_id)  # another wrong answer, on the same message
    assert "That is x*x" in chat.message(question.message_id).plain_text
    assert "That is x itself" not in chat.message(question.message_id).plain_text
    await chat.press("Show answer", message_id=question.message_id)
    closed = chat.message(question.message_id)
    assert "Here's the answer" in closed.plain_text and not closed.buttons  # with the question it answers
    assert [v for _, _, v, _ in answers_in(bot.db)] == ["wrong", "wrong", "revealed"]


# ------------------------------------------------------------------------------------------ load, restarts


async def test_five_learners_at_once(server: FakeBotAPI, bot: TelegramBot) -> None:
    script = ["/start", "go", "go", "a", "b", "ac", "T F T", "tensor([4.])"]
    chats = [Chat(server, bot, 400 + i, "zh-hans" if i % 2 else "en") for i in range(5)]
    updates = [chat.learner.send(text) for text in script for chat in chats]  # interleaved, none awaited
    await bot.settled(updates)
    for chat in chats:
        state = chat.state()
        assert (state.phase, state.done_sections) == ("section_end", ("m1.one",)), chat.id
        assert state.lang == ("zh" if chat.id % 2 else "en")
        log = [(step, verdict) for lid, step, verdict, _ in answers_in(bot.db) if lid == f"tg:{chat.id}"]
        assert log == [("m1.one.single", "wrong"), ("m1.one.single", "right"), ("m1.one.multi", "right"),
                       ("m1.one.tf", "right"), ("m1.one.predict", "right")]


async def test_chats_do_not_wait_for_each_other(server: FakeBotAPI, bot: TelegramBot) -> None:
    slow, quick = Chat(server, bot, 410), Chat(server, bot, 411)
    server.delay_next("sendMessage", 5.0, chat_id=slow.id)  # Telegram is slow to answer for one chat
    slow_update = slow.learner.send("/help")
    quick_update = quick.learner.send("/help")
    await bot.settled(quick_update)
    assert bot.repo is not None and not bot.repo.settled([slow_update["update_id"]])  # still waiting for its answer
    assert "/help" not in server.texts(quick.id)[-1] and server.texts(quick.id)
    await bot.settled(slow_update)


async def test_restart_mid_lesson_and_redelivery(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 501)
    await to_single_question(chat)
    answer = chat.learner.send("b")
    await bot.settled(answer)
    multi = with_text(chat.messages, "Which are leaves?")
    state, log, count = chat.state(), answers_in(bot.db), len(chat.messages)

    await bot.restart()
    server.redeliver(answer["update_id"])  # as if the old process died before confirming it
    await bot.settled(answer)
    assert (chat.state(), answers_in(bot.db), len(chat.messages)) == (state, log, count)

    # a button sent before the restart still works (its message id was stored)
    await chat.press("▫️ A", message_id=multi.message_id)
    await chat.press("▫️ C", message_id=multi.message_id)
    new = await chat.press("Submit", message_id=multi.message_id)
    assert "Your answer: AC" in chat.message(multi.message_id).plain_text
    assert "True or false?" in texts(new)

    await bot.restart()
    new = await chat.send("/start")
    assert "Welcome back" in texts(new)
    question = with_text(new, "True or false?")
    assert question.button_texts[:2] == ["1 ✓", "1 ✗"]
    assert chat.state().step == "m1.one.tf"
    new = await chat.send("T F T")
    assert "Your answer: True False True" in chat.message(question.message_id).plain_text
    assert "What does this print?" in texts(new)


# ------------------------------------------------------------------------------------------ Telegram faults


async def test_429_retry_after_is_honoured(server: FakeBotAPI, bot: TelegramBot, expect: Expect) -> None:
    expect.failed_requests.add(429)
    chat = Chat(server, bot, 601)
    server.fail_next("sendMessage", 429, retry_after=1, chat_id=chat.id)
    new = await chat.send("/help")
    assert "What I understand" in texts(new)
    sends = [r for r in server.calls("sendMessage") if r.params.get("chat_id") == chat.id]
    assert [r.status for r in sends[:2]] == [429, 200]
    assert sends[1].time - sends[0].time >= 1.0


async def test_403_marks_the_learner_inactive(server: FakeBotAPI, bot: TelegramBot, expect: Expect,
                                              caplog: pytest.LogCaptureFixture) -> None:
    expect.failed_requests.add(403)
    chat = Chat(server, bot, 602)
    await chat.send("/start")
    assert bot.active(chat.id) is True
    server.block_chat(chat.id)
    sends = len(server.calls("sendMessage"))
    await chat.send("go")  # two replies due: the first gets 403, the second is not even tried
    assert bot.active(chat.id) is False
    assert len(server.calls("sendMessage")) == sends + 1
    assert any("marked inactive" in r.getMessage() for r in caplog.records)
    server.unblock_chat(chat.id)
    await chat.send("/progress")  # they are back
    assert bot.active(chat.id) is True


async def test_blocking_and_unblocking_updates(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 603)
    await chat.send("/start")

    def membership(status: str) -> Callable[[list[Any]], bool]:
        return lambda handled: any(u.my_chat_member is not None and u.my_chat_member.new_chat_member.status == status
                                   for u in handled)

    server.block_chat(chat.id, send_update=True)
    await bot.wait_handled(membership("kicked"), what="the block")
    assert bot.active(chat.id) is False
    # Telegram's "unblocked" update (the fake's own leaves out the old status' until_date, which
    # python-telegram-bot needs, so it is written out here)
    server.unblock_chat(chat.id)
    update = await chat._act(lambda: server.send_update({"my_chat_member": {
        "chat": {"id": chat.id, "type": "private", "first_name": "Learner"},
        "from": {"id": chat.id, "is_bot": False, "first_name": "Learner"}, "date": 1_800_000_000,
        "old_chat_member": {"status": "kicked", "user": server.bot_user, "until_date": 0},
        "new_chat_member": {"status": "member", "user": server.bot_user}}}))
    assert update == []  # nothing is said; the learner is simply active again
    assert bot.active(chat.id) is True


async def test_a_send_that_never_got_an_answer_is_not_sent_again(server: FakeBotAPI, bot: TelegramBot,
                                                                  expect: Expect) -> None:
    """The connection closes after Telegram posted the message: sending it again would post it twice.
    The outbox marks that reply's fate unknown (logged) and goes on with the next one."""
    expect.failed_requests.add(DROPPED)
    chat = Chat(server, bot, 604)
    server.drop_next("sendMessage", chat_id=chat.id, applied=True)
    new = await chat.send("/help")
    assert texts(new).count("What I understand") == 1
    sends = [r.status for r in server.calls("sendMessage") if r.params.get("chat_id") == chat.id]
    assert sends == [DROPPED]  # /help was not posted twice
    assert bot.repo is not None and bot.repo.outbox_counts() == {"unknown": 1}
    new = await chat.send("/help")  # the chat goes on
    assert texts(new).count("What I understand") == 1


async def test_webhook_mode(server: FakeBotAPI, run_bot: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    bot = await run_bot(webhook=True)
    assert server.webhook_info["url"] == bot.settings.webhook_url
    assert any("webhook http://127.0.0.1" in r.getMessage() for r in caplog.records)
    chat = Chat(server, bot, 605, "zh-hans")
    assert ui("zh", "map_title") in texts(await chat.send("/start"))
    new = await chat.press("继续")
    assert "认识 autograd" in texts(new)
    assert not server.calls("getUpdates")


# ------------------------------------------------------------------------------------------ odd messages


async def test_every_kind_of_non_text_message(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 701)
    await to_single_question(chat)
    before = chat.state()
    cases: list[tuple[Callable[[], JSONDict | list[JSONDict]], str]] = [
        (lambda: server.sticker(chat.id), "Nice sticker"),
        (lambda: server.photo(chat.id, caption="b"), "Nice photo"),
        (lambda: server.voice(chat.id), "Nice voice message"),
        (lambda: server.document(chat.id), "Nice file"),
        (lambda: server.edited_text(chat.id, "b"), "I saw you edit a message"),
        (lambda: server.forwarded_text(chat.id, "b"), "A forwarded message"),
    ]
    for act, expected in cases:
        new = await chat._act(act)
        assert len(new) == 1 and expected in texts(new), (expected, texts(new))
        assert "Answer with an option letter" in texts(new)
        assert chat.state() == before
    pieces = await chat._act(lambda: server.send_long_text(chat.id, ("grad " * 2000).strip()))
    assert len(pieces) == 3 and all("I read answers like" in (m.plain_text or "") for m in pieces)
    assert chat.state() == before
    assert answers_in(bot.db) == []


async def test_group_chats_get_a_private_chat_note(server: FakeBotAPI, bot: TelegramBot) -> None:
    group = -100200300
    note = ui("en", "group_note")

    async def in_group(text: str) -> list[SentMessage]:
        mark = server.last_message_id(group)
        await bot.settled(server.send_text(group, text, chat_type="supergroup", user=9001))
        return [m for m in server.messages(group) if m.message_id > mark]

    new = await in_group(f"/start@{BOT_NAME}")
    assert len(new) == 1 and note in texts(new) and f"@{BOT_NAME}" in texts(new)
    assert new[0].reply_to_message_id is not None
    assert note in texts(await in_group("/help"))
    assert await in_group("/start@SomeOtherBot") == []
    assert await in_group("hello everyone") == []
    mark = server.last_message_id(group)
    await bot.settled(server.sticker(group, chat_type="supergroup", user=9001))
    assert server.last_message_id(group) == mark + 1  # only the sticker itself
    assert bot.state(group) is None


async def test_unknown_command(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 702)
    await to_single_question(chat)
    before = chat.state()
    new = await chat.send("/frobnicate now")
    assert "I don't know /frobnicate" in texts(new)
    assert chat.state() == before


async def test_error_in_a_handler_apologises_and_keeps_state(server: FakeBotAPI, bot: TelegramBot, expect: Expect,
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    expect.error_logs = 2
    chat = Chat(server, bot, 703)
    question = await to_single_question(chat)
    before = chat.state()
    engine = bot.tutor.engine
    real_step = engine.step

    def broken_step(state: Any, event: Event, now: Any) -> Any:
        if event in (Text("boom"), Press("pick", "2", before.seq)):
            raise RuntimeError("a bug of ours")
        return real_step(state, event, now)

    monkeypatch.setattr(engine, "step", broken_step)
    boom = chat.learner.send("boom")
    await bot.settled(boom)
    assert "something went wrong on our side" in chat.messages[-1].plain_text
    assert chat.state() == before
    new = await chat.press("C", message_id=question.message_id)  # the tap is answered all the same
    assert "something went wrong on our side" in texts(new)
    assert chat.state() == before
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"update {boom['update_id']}" in errors[0].getMessage() and "'text': 'boom'" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "a bug of ours" in str(errors[0].exc_info[1])
    new = await chat.send("b")  # and the learner carries on
    assert "Which are leaves?" in texts(new)


async def test_html_telegram_refuses_is_resent_as_plain_text(server: FakeBotAPI, bot: TelegramBot, expect: Expect,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    expect.failed_requests.add(400)
    expect.error_logs = 1
    chat = Chat(server, bot, 704)
    monkeypatch.setattr(telegram_sender, "to_html", lambda text, limit=LIMIT: ["<b>a bug & <i>ours</b>"])
    new = await chat.send("/help")
    assert [m.plain_text for m in new] == ["a bug & ours"] and new[0].parse_mode is None
    refused = [r for r in server.calls("sendMessage") if not r.ok]
    assert len(refused) == 1 and "can't parse entities" in (refused[0].response or {})["description"]


async def test_a_long_reply_is_split_at_paragraphs(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                   tmp_path: Path) -> None:
    root = tmp_path / "long"
    shutil.copytree(FIXTURES / "mini", root)
    section = yaml.safe_load((root / "sections/one.yaml").read_text(encoding="utf-8"))
    paragraphs = [f"Paragraph {i} 🧠 " + "grad & <tensor> " * 40 for i in range(24)]
    code = "\n".join(f"y{i} = x * {i}  # line {i}" for i in range(60))
    text = "\n\n".join(paragraphs[:10]) + f"\n\n```python\n{code}\n```\n\n" + "\n\n".join(paragraphs[10:])
    section["steps"][0]["text"] = {"en": text, "zh": text}
    (root / "sections/one.yaml").write_text(yaml.safe_dump(section, allow_unicode=True), encoding="utf-8")
    bot = await run_bot(load_course(root))
    chat = Chat(server, bot, 801)
    await chat.send("/start")
    await chat.send("go")
    parts = [m for m in chat.messages if "Paragraph" in (m.plain_text or "") or "y0 = x" in (m.plain_text or "")]
    assert len(parts) >= 4
    for m in parts:
        assert utf16_len(m.plain_text or "") <= MAX_TEXT_LENGTH
        # (the section's header comes with its first step, in one message)
        assert m.plain_text.startswith(("Paragraph", "y0 = x", "📘 1A")), m.plain_text[:40]
        assert m.plain_text.rstrip().endswith(("<tensor>", "# line 59", "docs")), m.plain_text[-40:]
    shown = "\n\n".join(m.plain_text or "" for m in parts)
    for p in paragraphs:
        assert p.strip() in shown
    code_parts = [m for m in parts if "y0 = x" in (m.plain_text or "")]
    assert len(code_parts) == 1
    pre = [e for e in code_parts[0].entities if e["type"] == "pre"]
    assert pre and pre[0].get("language") == "python" and pre[0]["length"] == utf16_len(code)
    assert [bool(m.buttons) for m in parts] == [False] * (len(parts) - 1) + [True]


async def test_a_step_picture_is_sent_as_a_photo(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                 tmp_path: Path) -> None:
    root = tmp_path / "pictures"
    shutil.copytree(FIXTURES / "mini", root)
    picture = png(160, 90)
    (root / "graph.png").write_bytes(picture)
    section = yaml.safe_load((root / "sections/one.yaml").read_text(encoding="utf-8"))
    section["steps"][0]["image"] = "graph.png"
    (root / "sections/one.yaml").write_text(yaml.safe_dump(section, allow_unicode=True), encoding="utf-8")
    bot = await run_bot(load_course(root))
    chat = Chat(server, bot, 802)
    await chat.send("/start")
    new = await chat.send("go")
    photo = next(m for m in new if m.kind == "photo")
    assert photo.photo == picture and photo.caption == "Gradients land in .grad"
    assert new.index(photo) < new.index(with_text(new, "Meet autograd"))


def png(width: int, height: int) -> bytes:
    """A valid grey PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_render_splits_under_the_limit_in_utf16_units() -> None:
    text = "\n\n".join("🧠" * 1500 for _ in range(3))  # 3000 UTF-16 units a paragraph
    chunks = to_html(text)
    assert len(chunks) == 3 and all(units(c) <= LIMIT for c in chunks)
    huge = "```\n" + "\n".join("x" * 100 for _ in range(100)) + "\n```"
    chunks = to_html(huge)
    assert len(chunks) == 3 and all(c.startswith("<pre>") and c.endswith("</pre>") for c in chunks)
    assert to_html("```python\n```\n\nhi") == ["hi"]


# ------------------------------------------------------------------------------------------ code, sandbox


@pytest.mark.slow
async def test_code_task_runs_in_the_real_sandbox(server: FakeBotAPI, run_bot: Callable[..., Any]) -> None:
    sandbox = Sandbox(SandboxConfig(workers=1))
    bot = await run_bot(mini_course(), sandbox)
    chat = Chat(server, bot, 901)
    await to_single_question(chat)
    for text in ("b", "ac", "T F T", "tensor([4.])"):
        await chat.send(text)
    task = with_text(await chat.send("go"), "Define square(t)")
    assert any(e["type"] == "pre" for e in task.entities)
    new = await chat.send("```python\ndef square(t):\n    return t + t\n```")
    failed = with_text(new, "square(3) is 6, expected 9")
    assert failed.button_texts == ["💡 Hint"]
    new = await chat.press("Hint", message_id=failed.message_id)
    assert "What is t times t?" in texts(new)
    new = await chat.send("def square(t):\n    print('computing', t)\n    return t * t")
    assert "Squared!" in texts(new) and "computing 3" in texts(new)
    assert "That's all." in texts(new)


# ------------------------------------------------------------------------------------------ the real CLI


@pytest.mark.slow
@pytest.mark.parametrize(("command", "stop"), [(["serve"], signal.SIGINT), ([], signal.SIGTERM)],
                         ids=["serve-SIGINT", "token-SIGTERM"])
async def test_serve_cli_against_the_fake_server(server: FakeBotAPI, tmp_path: Path, command: list[str],
                                                 stop: signal.Signals) -> None:
    """``python -m bot serve`` (or just ``python -m bot`` with a token) as a real process."""
    env = cli_env(tmp_path, TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE_URL=server.base_url,
                  TELEGRAM_FILE_BASE_URL=server.base_file_url)
    proc = subprocess.Popen([sys.executable, "-m", "bot", *command], cwd=tmp_path, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        err = Stderr(proc)
        await err.wait_for(f"running as @{BOT_NAME}")
        assert "long polling" in err.text and "cli.db" in err.text
        learner = server.learner(77, language_code="zh-hans")
        update = learner.send("/start")
        new = await learner.wait_for_messages(1, after=update["message"]["message_id"], timeout=30)
        assert "课程地图" in texts(new)
        assert server.commands("zh") and server.commands("en")
        proc.send_signal(stop)
        assert await asyncio.to_thread(proc.wait, 30) == 0
        await err.finish()
        assert "Traceback" not in err.text, err.text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    with pytest.raises(ProcessLookupError):  # no worker of the sandbox outlived the bot
        os.killpg(proc.pid, 0)


@pytest.mark.slow
def test_no_token_means_the_terminal_chat(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=cli_env(tmp_path, LANG="C.UTF-8"),
                          input="/quit\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Course map" in proc.stdout and "Bye" in proc.stdout
    assert "running as" not in proc.stderr

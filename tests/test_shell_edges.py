"""Rough edges of the shells a learner ran into (issue 13): the terminal talking about buttons it has not got,
``/progress`` at a section's end, a lesson's graph drawn after its "(Enter ↵)", no recap when a Part ends."""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path

import pytest

from bot import console
from bot.console import Console
from bot.content import load_course
from bot.service import Tutor
from bot.storage import Repository
from dialogs import cards
from dialogs.course import Course, Explain
from dialogs.messages import Say, Start, Text
from dialogs.state import LearnerState
from tests.support.driver import FIXTURES, NOW, Driver, mini_course
from tests.support.terminal import ROOT, ChatProcess
from tests.test_course_playthrough import right_answer
from tests.test_graph_engine import graph_course
from tests.test_graph_shells import GraphEvaluator

CONTINUE_PROMPT = "(Enter ↵)"  # what the terminal shows under a message to continue from
TERMINAL_VARIANT = "@terminal"  # a UI key's terminal wording: "<key>@terminal"
#: Wording about buttons: there are none in a terminal, so none of it can be acted on there.
BUTTON_WORDS = {
    "en": re.compile(r"\bbuttons?\b|\btap(?:ping|s)?\b|\bclick|\bpress (?:the|it)\b|\bthen submit\b",
                     re.IGNORECASE),
    "zh": re.compile(r"按钮|点按|点击|点下|点\s*👀|勾选|轻触"),
}
#: What each prompt says to do instead: type something, answer on a line.
TYPE_WORDS = {"en": re.compile(r"\b(?:type|answer)\b", re.IGNORECASE), "zh": re.compile("输入|答")}


@cache
def course() -> Course:
    return load_course(ROOT / "content")


def button_talk(text: str, lang: str) -> list[str]:
    """The lines of ``text`` that speak of buttons."""
    return [line for line in text.split("\n") if BUTTON_WORDS[lang].search(line)]


def seen_at(chat: ChatProcess, fragment: str, lang: str, *, timeout: float = 30) -> str:
    """Wait for ``fragment``; the text up to it must not speak of buttons (in either language: a Chinese
    message can quote English, and an English one Chinese)."""
    seen = chat.expect(fragment, timeout=timeout)
    assert button_talk(seen, lang) == [], seen
    return seen


def how_line(seen: str, lang: str) -> str:
    """The last line of a question's message: how to answer it."""
    lines = [line for line in seen.strip().split("\n") if line.strip()]
    assert TYPE_WORDS[lang].search(lines[-1]), seen
    return lines[-1]


# ------------------------------------------------------------------------------- the terminal's wording


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_terminal_says_what_to_type_not_what_to_tap(tmp_path: Path, lang: str) -> None:
    """Map, explanation, single and multiple choice, true/false, predict, code task and its last hint,
    /settings, the section ends (with the Part recap) and /progress: every prompt says what to type."""
    zh = lang == "zh"
    with ChatProcess(tmp_path / "tutor.db", "--lang", lang, content=FIXTURES / "mini") as chat:
        how_to_start = seen_at(chat, "🚀", lang)  # the map
        assert ("输入 go" if zh else "Type go") in how_to_start  # code spans are plain text here (NO_COLOR)
        chat.send("")
        seen_at(chat, "Autograd records operations.", lang)  # an explanation
        chat.send("")
        how_line(seen_at(chat, "（如 b）或它的序号。" if zh else "(e.g. b) or its number.", lang), lang)
        chat.send("a")  # wrong: the question is shown again under the feedback
        seen_at(chat, "答案" if zh else "answer", lang)
        chat.send("b")
        multi = how_line(seen_at(chat, "2 3。" if zh else "2 3.", lang), lang)
        assert ("输入这些字母" if zh else "type the letters") in multi
        chat.send("ac")
        how_line(seen_at(chat, "一句一句答。" if zh else "or one at a time.", lang), lang)
        chat.send("对" if zh else "T")  # one at a time
        seen_at(chat, "（1/3）" if zh else "(1/3)", lang)
        chat.send("错 对" if zh else "F T")
        how_line(seen_at(chat, "都算一样）。" if zh else "all count the same).", lang), lang)
        chat.send("4")
        seen_at(chat, "准备好就继续 ▶️" if zh else "Continue when ready ▶️", lang)  # section end
        seen_at(chat, CONTINUE_PROMPT, lang)
        chat.send("/settings")
        settings = seen_at(chat, "/settings max 30", lang)
        assert ("输入如" if zh else "Type e.g.") in settings
        chat.send("go")
        seen_at(chat, "def square(t):", lang)  # the code task
        for _ in range(3):
            chat.send("提示" if zh else "hint")
        last_hint = seen_at(chat, "看参考答案。" if zh else "to see the reference solution.", lang)
        assert ("输入 答案" if zh else "Type answer") in last_hint
        chat.send("答案" if zh else "answer")
        seen_at(chat, "就这些。" if zh else "That's all.", lang)
        chat.send("")
        recap = seen_at(chat, "继续就完成课程 🎉" if zh else "Continue to finish 🎉", lang)  # the Part ends
        assert ("Part 1 完成" if zh else "Part 1 complete") in recap
        chat.send("/progress")
        seen_at(chat, "🃏", lang)
        chat.send("/quit")
        assert chat.wait() == 0
    assert button_talk(chat.out, lang) == []


def seed(db: Path, state: LearnerState) -> None:
    repo = Repository(f"sqlite:///{db}")
    try:
        repo.save_turn("console:local", state, (), NOW)
    finally:
        repo.close()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_predict_with_options_and_a_flashcard_review_in_the_terminal(tmp_path: Path, lang: str) -> None:
    zh = lang == "zh"
    step = course().step("p1.why", "p1.why.predict")
    assert step.options
    card = course().section("p1.why").cards[0]
    past = NOW.replace(year=2020)
    db = tmp_path / "tutor.db"
    seed(db, LearnerState(lang=lang, lang_chosen=True, phase="question", section="p1.why", step=step.id, seq=3,
                          deck={card.id: cards.new_card(card.id, past)}))
    with ChatProcess(db) as chat:
        how = how_line(seen_at(chat, "输出内容）。" if zh else "(or the output itself).", lang), lang)
        assert ("输入字母" if zh else "Type a letter") in how
        chat.send("/cards")
        show = seen_at(chat, "结束复习。" if zh else "ends the review.", lang)
        assert card.q.get(lang)[:15] in show
        assert ("输入你的答案" if zh else "Type your answer") in show
        chat.send("no idea")
        rate = seen_at(chat, "4 简单。" if zh else "4 Easy.", lang)
        assert ("输入 1 重来" if zh else "Type 1 Again") in rate
        chat.send("3")
        seen_at(chat, "🧠", lang)
        chat.send("/quit")
        assert chat.wait() == 0
    assert button_talk(chat.out, lang) == []


def test_every_terminal_variant_replaces_a_key_in_both_languages_and_telegram_keeps_its_buttons() -> None:
    ui = course().ui
    variants = {key for key in ui["en"] if key.endswith(TERMINAL_VARIANT)}
    assert {key for key in ui["zh"] if key.endswith(TERMINAL_VARIANT)} == variants
    for lang in ("en", "zh"):
        for key in variants:
            base = key.removesuffix(TERMINAL_VARIANT)
            assert base in ui[lang], key
            assert re.findall(r"\{\w+\}", ui[lang][key]) == re.findall(r"\{\w+\}", ui[lang][base]), key
            assert button_talk(ui[lang][key], lang) == [], key
    terminal = console.for_terminal(course())
    assert not any(key.endswith(TERMINAL_VARIANT) for strings in terminal.ui.values() for key in strings)
    assert button_talk(terminal.t("en", "how_single"), "en") == []
    assert "tap" in course().t("en", "how_single") and "按钮" in course().t("zh", "how_single")  # Telegram's


# ------------------------------------------------------------------------------ /progress at a section end


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_progress_after_a_section_says_it_is_done_and_what_comes_next(lang: str) -> None:
    d = Driver(mini_course())
    d.state = d.state.but(lang=lang, lang_chosen=True)
    d.start()
    d.send("go")
    for _ in range(20):
        if d.state.phase == "section_end":
            break
        d.send("go" if d.state.phase == "explain" else right_answer(d.course.step("m1.one", d.state.step or ""),
                                                                          lang))
    assert d.state.phase == "section_end" and d.state.section == "m1.one"
    d.command("progress")
    shown = d.text()
    if lang == "en":
        assert "You're in" not in shown
        assert "1A · First steps** is done" in shown and "Next up: **1B · Write code**" in shown
    else:
        assert "你正在学" not in shown
        assert "1A · 第一步** 已学完" in shown and "下一节：**1B · 写代码**" in shown
    d.send("go")
    d.command("progress")
    assert ("You're in **1B" if lang == "en" else "你正在学 **1B") in d.text()  # in a section: as before


def test_progress_after_the_last_section_says_go_finishes() -> None:
    ids = mini_course().section_ids
    d = Driver(mini_course(), LearnerState(phase="section_end", section=ids[-1], step=None, done_sections=ids,
                                           seq=5))
    d.command("progress")
    assert "1B · Write code** is done — that was the last section! Type `go` to finish" in d.text()


# ------------------------------------------------------------------------- a lesson's graph and its prompt


async def test_a_lesson_graph_comes_before_the_prompt_to_continue(tmp_path: Path) -> None:
    graphed = graph_course(tmp_path)
    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    try:
        tutor = Tutor(graphed, repo, GraphEvaluator(), clock=lambda: NOW)
        out = io.StringIO()
        term = Console(tutor, "console:ada", "en", stdin=io.StringIO(""), stdout=out, graphs_dir=tmp_path / "g")
        step = graphed.section("m1.two").steps[-1]
        assert isinstance(step, Explain) and step.graph
        await term.send_event(Start())
        for _ in range(40):
            state = tutor.state("console:ada")
            assert state is not None
            if state.step == step.id:
                break
            await term.send_event(Text("answer" if state.phase in ("question", "retry") else "go"))
        shown = out.getvalue()
        lesson = shown[shown.rindex("That's all."):]
        assert "The autograd graph of y" in lesson and CONTINUE_PROMPT in lesson
        assert lesson.index("The autograd graph of y") < lesson.index("Picture saved") < lesson.index(CONTINUE_PROMPT)
        assert lesson.rstrip().endswith(CONTINUE_PROMPT)  # the last thing before the learner's turn
        explained = shown[:shown.rindex("That's all.")]
        first = explained[explained.rindex("Autograd records operations."):]  # no graph: the prompt right under
        assert first.split("\n")[1] == CONTINUE_PROMPT
    finally:
        repo.close()


# ---------------------------------------------------------------------------------------- a Part's recap


def play_to_the_end_of(d: Driver, section_id: str, lang: str) -> str:
    """Answer every step of the section the learner is in; the section-end message (the one to continue from)."""
    for _ in range(100):
        s = d.state
        if s.phase == "section_end":
            return [r.text for r in d.last.replies if isinstance(r, Say) and r.buttons][-1]
        step = d.course.step(s.section or "", s.step or "")
        if isinstance(step, Explain):
            d.send("go")
        elif hasattr(step, "solution"):
            d.send("answer")
        else:
            d.send(right_answer(step, lang))
    raise AssertionError(f"{section_id} did not end: {d.text()}")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_section_that_completes_a_part_ends_with_the_parts_recap(lang: str) -> None:
    c = course()
    part1, part2 = c.parts[0], c.parts[1]
    ids = [sec.id for sec in part1.sections]
    d = Driver(c, LearnerState(lang=lang, lang_chosen=True, phase="map", seq=1))
    d.send("go")
    first_end = play_to_the_end_of(d, ids[0], lang)
    assert ("Part 1 complete" if lang == "en" else "Part 1 完成") not in first_end  # one section is no Part
    last = part1.sections[-1]
    d.state = LearnerState(lang=lang, lang_chosen=True, phase="explain", section=last.id, step=last.steps[0].id,
                           done_sections=tuple(ids[:-1]), seq=9)
    end = play_to_the_end_of(d, last.id, lang)
    assert end.startswith("🏁")  # the section's own end comes first, in the same message
    head = f"Part 1 complete: {part1.title.en}!" if lang == "en" else f"Part 1 完成：{part1.title.zh}！"
    assert head in end
    recap = end[end.index(head):]
    for si, sec in enumerate(part1.sections):
        assert f"**1{'ABCDE'[si]}** {sec.cards[0].q.get(lang)} — {sec.cards[0].a.get(lang)}" in recap
    upcoming = (f"Next comes **Part 2 — {part2.title.en}**" if lang == "en"
                else f"接下来是 **Part 2 —— {part2.title.zh}**")
    assert upcoming in recap
    assert all(sec.title.get(lang) in recap for sec in part2.sections)
    assert end.index(last.mnemonic.get(lang)) < end.index(head) < end.index("2A · ")  # before "next up"
    d.start()  # shown again (welcome back): the same message
    assert head in d.text()


def test_the_last_part_of_the_course_has_a_recap_without_a_next_part() -> None:
    c = mini_course()
    ids = c.section_ids
    d = Driver(c, LearnerState(phase="question", section=ids[-1], step=c.section(ids[-1]).steps[0].id,
                               done_sections=ids[:-1], seq=3))
    end = play_to_the_end_of(d, ids[-1], "en")
    assert "Part 1 complete: Basics!" in end and "Next comes" not in end
    assert "• **1A** Where does the gradient go?" in end and "• **1B** square?" in end
    assert end.rstrip().endswith("Continue to finish 🎉")


def test_the_section_end_message_with_a_part_recap_fits_telegram() -> None:
    """Each Part's closing message stays well under Telegram's 4096 characters (it is one message)."""
    c = course()
    for pi, part in enumerate(c.parts):
        last = part.sections[-1]
        done = tuple(sid for p in c.parts[: pi + 1] for sid in (s.id for s in p.sections))
        for lang in ("en", "zh"):
            d = Driver(c, LearnerState(lang=lang, phase="section_end", section=last.id, done_sections=done, seq=2))
            d.start()
            end = [r.text for r in d.last.replies if isinstance(r, Say) and r.buttons][-1]
            assert "🏆" in end and len(end) < 3500, (part.id, lang, len(end))


def test_the_engine_reads_the_terminal_wording_only_from_the_course_it_is_given() -> None:
    """The same engine, two courses: Telegram's wording and the terminal's; nothing else differs."""
    d_tg = Driver(mini_course())
    d_term = Driver(console.for_terminal(mini_course()))
    for d in (d_tg, d_term):
        d.start()
        d.send("go")
        d.send("go")
    assert "or tap it" in d_tg.text() and "or its number" in d_term.text()
    assert d_tg.state == d_term.state

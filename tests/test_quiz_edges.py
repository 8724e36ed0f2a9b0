"""/quiz's rough edges (issue 13): a quiz of N is numbered 1/N to N/N, ``/quiz`` alone asks a small set,
an answer is logged under the question's own section, a quiz shows no lines written for the lesson's flow
and ends with a one-line summary instead of the section's flashcards."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.content import load_course
from bot.service import Tutor
from bot.storage import Repository
from dialogs.course import Course
from dialogs.messages import Command, Edit, LogAnswer, Say, Text, Turn
from dialogs.state import LearnerState
from tests.support.driver import NOW, Driver, Inbox, mini_course

ROOT = Path(__file__).resolve().parent.parent
RIGHT = {"m1.one.single": "b", "m1.one.multi": "ac", "m1.one.tf": "T F T", "m1.one.predict": "4"}
HEADER = re.compile(r"(?:Quiz|小测验) (\d+)/(\d+)")


def real_course() -> Course:
    return load_course(ROOT / "content")


def after_section_one(lang: str = "en") -> Driver:
    """Section one of the mini course done: its four questions are covered; the flashcards are on screen."""
    d = Driver(mini_course(), LearnerState(lang=lang))
    d.start()
    d.go_to("m1.one.predict")
    d.send("4")
    assert d.state.phase == "section_end"
    return d


def header(d: Driver) -> str:
    found = HEADER.findall(d.text())
    assert len(found) == 1, d.text()
    return "/".join(found[0])


def everything(turn: Turn) -> str:
    """Every text of a turn: messages, edited questions and their notes, quiz polls."""
    texts: list[str] = []
    for r in turn.replies:
        if isinstance(r, Say):
            texts.append(r.text)
            if r.poll is not None:
                texts += [r.poll.question, *r.poll.options]
        elif isinstance(r, Edit):
            texts += [r.text, r.note]
    return "\n".join(texts)


def restarted(d: Driver) -> None:
    """The state goes through the database's JSON and back, as between two updates."""
    d.state = LearnerState.from_dict(json.loads(json.dumps(d.state.to_dict())))


def test_a_quiz_of_three_is_numbered_one_to_three_after_an_earlier_quiz() -> None:
    d = after_section_one()
    d.command("quiz", "1")
    d.send("answer")
    assert d.state.mode == "course"
    d.command("quiz", "3")
    seen = [header(d)]
    for _ in range(2):
        restarted(d)
        d.send("answer")
        seen.append(header(d))
    assert seen == ["1/3", "2/3", "3/3"]
    restarted(d)
    d.send("answer")
    assert d.state.mode == "course" and not HEADER.search(d.text())


def test_quiz_alone_asks_five_different_questions() -> None:
    d = Driver(real_course())
    d.go_to("p1.backward.predict")  # sections 1A and 1B done: 7 questions covered
    d.command("quiz")
    asked, seen = [d.state.step], [header(d)]
    for _ in range(4):
        d.send("answer")
        asked.append(d.state.step)
        seen.append(header(d))
    assert seen == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert len(set(asked)) == 5
    d.send("answer")
    assert d.state.mode == "course" and d.state.step == "p1.backward.predict"
    assert d.course.t("en", "quiz_summary", right=0, n=5) in d.text()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_quiz_asks_no_more_than_is_covered_and_never_twice(lang: str) -> None:
    d = after_section_one(lang)
    d.command("quiz")  # 4 questions covered: all four, no note (5 is only the default)
    assert header(d) == "1/4" and d.course.t(lang, "quiz_fewer", n=4) not in d.text()
    while d.state.mode == "quiz":
        d.send("answer")
    d.command("quiz", "10")
    assert d.course.t(lang, "quiz_fewer", n=4) in d.text() and header(d) == "1/4"
    asked = [d.state.step]
    while d.state.mode == "quiz":
        d.send("answer")
        asked.append(d.state.step)
    assert len(asked) == 5 and len(set(asked[:4])) == 4  # the last is the lesson's position again


async def test_a_quiz_answer_is_logged_under_the_questions_section(tmp_path: Path) -> None:
    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    try:
        course = mini_course()
        tutor, inbox = Tutor(course, repo, None, clock=lambda: NOW), Inbox()
        for text in ("hi", "go", "go", "b", "ac", "T F T", "4", "go"):
            await tutor.handle("u1", Text(text), inbox)
        assert repo.load("u1").section == "m1.two"  # type: ignore[union-attr]
        before = len(repo.answers("u1"))
        await tutor.handle("u1", Command("quiz", "2"), inbox)
        for _ in range(2):
            await tutor.handle("u1", Text("answer"), inbox)
        quizzed = repo.answers("u1")[before:]
        assert [a.section for a in quizzed] == ["m1.one", "m1.one"]
        assert [a.tags for a in quizzed] == [",".join(course.step("m1.one", a.step).tags) for a in quizzed]
        assert repo.load("u1").section == "m1.two"  # type: ignore[union-attr]
    finally:
        repo.close()


def test_quiz_answers_name_their_own_section_from_question_to_question() -> None:
    d = Driver(real_course())
    d.go_to("p1.leaf.intro")  # 1A to 1C done
    d.command("quiz", "10")
    sections = {st.id: sec.id for sec in d.course.sections() for st in sec.steps}
    logged = []
    while d.state.mode == "quiz":
        d.send("answer")
        logged += d.effects(LogAnswer)
    assert len(logged) == 10
    assert [log.section for log in logged] == [sections[log.step] for log in logged]
    assert len({log.section for log in logged}) == 3


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("section, lesson_words", [
    ("p1.why", {"en": "Warm-up", "zh": "热身题"}),
    ("p1.backward", {"en": "Last round for this section", "zh": "本节最后一轮"}),
    ("p1.no-grad", {"en": "final boss", "zh": "最终 boss"}),
])
def test_a_quiz_shows_no_lines_written_for_the_lesson(lang: str, section: str, lesson_words: dict[str, str]) -> None:
    course = real_course()
    d = Driver(course, LearnerState(lang=lang, lang_chosen=True, phase="section_end", section=section,
                                    step=course.section(section).steps[-1].id, done_sections=(section,)))
    d.command("quiz", "10")  # every question of the section
    shown = [everything(d.last)]
    while d.state.mode == "quiz":
        d.send("answer")
        shown.append(everything(d.last))
    assert all(lesson_words[lang] not in text for text in shown)
    words_in_lesson = [st.prompt.get(lang) for st in course.section(section).steps if hasattr(st, "prompt")]
    assert any(lesson_words[lang] in p for p in words_in_lesson)  # the lesson keeps its own wording


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_quiz_at_a_sections_end_ends_with_a_summary_not_the_flashcards(lang: str) -> None:
    d = after_section_one(lang)
    table_head = d.course.t(lang, "card_q")
    assert table_head in d.text()  # the section's end shows its flashcards...
    d.command("quiz", "2")
    d.send(RIGHT[d.state.step or ""])  # right at the first try
    if d.state.step == "m1.one.tf":
        d.send("F F F")  # a batch of statements is answered once
    else:
        d.send({"m1.one.single": "a", "m1.one.multi": "c"}.get(d.state.step or "", "7"))  # wrong
        d.send(RIGHT[d.state.step or ""])  # right at the second try
    end = d.text()
    assert d.course.t(lang, "quiz_summary", right=1, n=2) in end
    assert table_head not in end and d.course.t(lang, "mnemonic", text="") not in end  # ...a quiz does not again
    assert d.state.mode == "course" and d.state.phase == "section_end"
    assert [b.label for b in d.buttons()] == [d.course.t(lang, "btn_go")]
    d.press("go")  # its Continue button goes on with the course
    assert d.state.section == "m1.two" and d.state.phase == "question"


def test_quiz_from_a_card_review_goes_straight_to_the_quiz() -> None:
    d = after_section_one()
    tomorrow = NOW + timedelta(days=1)
    d.state = d.engine.step(d.state, Command("cards"), tomorrow).state
    assert d.state.mode == "cards"
    d.command("quiz", "1")
    assert d.course.t("en", "cards_stopped") in d.text() and header(d) == "1/1"
    assert d.course.t("en", "card_q") not in d.text()  # no flashcard table in between

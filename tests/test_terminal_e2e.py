"""The real terminal chat, end to end: play Part 1, get killed midway, resume at the same step."""

from __future__ import annotations

import sqlite3
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.content import load_course
from dialogs import markup
from dialogs.course import Choice, CodeTask, Course, Explain, Ponder, Predict, Statements
from tests.support.terminal import ROOT, ChatProcess

LETTERS = "abcdefgh"


@cache
def course() -> Course:
    return load_course(ROOT / "content")


def first_line(text: str) -> str:
    for line in text.split("\n"):
        line = markup.plain(line).strip()
        if line and not line.startswith(("```", "|")):
            return line[:25]
    raise AssertionError(f"no plain line in {text!r}")


def right_answer(step: Any, lang: str) -> str:
    if isinstance(step, Choice):
        return "".join(LETTERS[i] for i, o in enumerate(step.options) if o.correct)
    if isinstance(step, Statements):
        yes, no = ("对", "错") if lang == "zh" else ("T", "F")
        return " ".join(yes if s.answer else no for s in step.statements)
    if isinstance(step, Predict):
        return LETTERS[step.options.index(step.answer)] if step.options else step.answer
    raise AssertionError(step)


def wrong_answer(step: Any) -> str | None:
    if isinstance(step, Choice):
        wrong = [i for i, o in enumerate(step.options) if not o.correct]
        return LETTERS[wrong[0]] if wrong else None
    return None


def play_step(chat: ChatProcess, step: Any, lang: str, *, try_wrong: bool) -> None:
    if isinstance(step, Ponder):  # think first: the prompt; a guess brings the explanation, quoted
        chat.expect(first_line(step.prompt.get(lang)))
        chat.send("my guess: 2x")
        chat.expect("my guess: 2x")
    if isinstance(step, Explain):
        chat.expect(first_line(step.text.get(lang)))
        chat.send("")
        return
    chat.expect(first_line(step.prompt.get(lang)))
    if isinstance(step, CodeTask):
        for line in step.solution.rstrip().split("\n"):
            chat.send(line)
        chat.send("EOF")
        chat.expect(first_line(step.right.get(lang)), timeout=60)
        return
    wrong = wrong_answer(step) if try_wrong else None
    if wrong is not None:
        chat.send(wrong)
        chat.expect("Try again (just answer)" if lang == "en" else "再答一次就好")
    chat.send(right_answer(step, lang))


def play_section(chat: ChatProcess, section_index: int, lang: str, *, start_at: int = 0,
                 stop_before: int | None = None) -> None:
    section = course().parts[0].sections[section_index]
    steps = section.steps[start_at:stop_before]
    for i, step in enumerate(steps):
        play_step(chat, step, lang, try_wrong=(i % 2 == 0))
    if stop_before is None:
        chat.expect("Section done" if lang == "en" else "本节完成")
        chat.expect(section.mnemonic.get(lang)[:20])
        chat.send("go")


def answers_in(db: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT step, verdict, correct FROM answerlog ORDER BY id").fetchall()


@pytest.mark.slow
def test_play_part1_killed_midway_resumes(tmp_path: Path) -> None:
    part1 = course().parts[0]
    db = tmp_path / "tutor.db"
    with ChatProcess(db, "--lang", "en") as chat:
        chat.expect("Course map")
        chat.expect("Ready?")
        chat.send("go")
        play_section(chat, 0, "en")
        play_section(chat, 1, "en")
        third = part1.sections[2]
        play_section(chat, 2, "en", stop_before=2)
        # wait until the third step is on screen (its state is stored), then kill -9
        waiting_at = third.steps[2]
        text = waiting_at.text if isinstance(waiting_at, Explain) else waiting_at.prompt
        chat.expect(first_line(text.get("en")))
        chat.kill()
    before = answers_in(db)
    assert any(v == "wrong" for _, v, _ in before) and any(c for _, _, c in before)
    with ChatProcess(db) as chat:
        chat.expect("Welcome back")
        play_section(chat, 2, "en", start_at=2)
        for i in range(3, len(part1.sections)):
            play_section(chat, i, "en")
        nxt = course().parts[1].sections[0]
        deadline = time.monotonic() + 30  # the last lines may still be on their way (a loaded machine)
        while f"2A · {nxt.title.en}" not in chat.out:  # next up: Part 2
            assert time.monotonic() < deadline, chat.out[-3000:]
            time.sleep(0.01)
        assert "Quick recap" in chat.out
        chat.send("/progress")
        chat.expect(f"{len(part1.sections)}/{len(course().section_ids)} sections done")
        chat.send("/quit")
        chat.expect("Bye")
        assert chat.wait() == 0
    after = answers_in(db)
    assert after[: len(before)] == before  # earlier answers kept
    questions = [s.id for sec in part1.sections for s in sec.steps if not isinstance(s, Explain)]
    assert {step for step, _, correct in after if correct} == set(questions)


@pytest.mark.slow
def test_chinese_learner_plays_a_section_and_leaves_on_eof(tmp_path: Path) -> None:
    db = tmp_path / "tutor.db"
    with ChatProcess(db, "--lang", "zh") as chat:
        chat.expect("课程地图")
        chat.send("好")
        play_section(chat, 0, "zh")
        chat.send("/lang en")
        chat.expect("Language: English")
        chat.send("/lang zh")
        chat.send("/frobnicate")
        chat.expect("/frobnicate")
        chat.close_stdin()
        chat.expect("再见")
        assert chat.wait() == 0
    assert len(answers_in(db)) >= 1


@pytest.mark.slow
def test_code_task_in_the_terminal_runs_real_code(tmp_path: Path) -> None:
    fixtures = ROOT / "tests" / "fixtures" / "mini"
    db = tmp_path / "tutor.db"
    with ChatProcess(db, "--lang", "en", content=fixtures) as chat:
        chat.expect("Ready?")
        for line in ("go", "go", "b", "ac", "T F T", "4", "go"):
            chat.send(line)
        chat.expect("Define square(t)")
        chat.expect("end with a line EOF")
        chat.send("def square(t):")
        chat.send("    return t + t")
        chat.send("")
        chat.send("")
        chat.expect("square(3) is 6, expected 9", timeout=60)
        chat.send("hint")
        chat.expect("What is t times t?")
        chat.send("def square(t):")
        chat.send("    print('computing', t)")
        chat.send("    return t * t")
        chat.send("EOF")
        chat.expect("Squared!", timeout=60)
        assert "computing 3" in chat.out
        chat.send("/quit")
        assert chat.wait() == 0


def test_a_question_at_a_code_task_is_asked_not_run(tmp_path: Path) -> None:
    """In the terminal a code task reads a multi-line entry; a first line that is a question is not code."""
    fixtures = ROOT / "tests" / "fixtures" / "mini"
    with ChatProcess(tmp_path / "tutor.db", "--lang", "en", content=fixtures) as chat:
        chat.expect("Ready?")
        for line in ("go", "go", "b", "ac", "T F T", "4", "go"):
            chat.send(line)
        chat.expect("Define square(t)")
        chat.send("where does the gradient go?")
        chat.expect("/goto 1")  # answered from the (mini) course: 1A's card, with the way there
        chat.expect("end with a line EOF")  # and the task is still open for code
        assert "Running your code" not in chat.out
        chat.send("/quit")
        assert chat.wait() == 0


def code_tasks() -> list[tuple[str, str]]:
    return [(sec.id, st.id) for sec in course().sections() for st in sec.steps if isinstance(st, CodeTask)]


@pytest.mark.slow
@pytest.mark.parametrize(("section_id", "step_id"), code_tasks())
def test_course_exercises_in_the_terminal(tmp_path: Path, section_id: str, step_id: str) -> None:
    """Each exercise of Parts 3 and 5: a typical wrong solution is caught by its check, then the
    reference solution passes, through the real sandbox."""
    from bot.storage import Repository
    from dialogs.state import LearnerState
    from tests.support.driver import NOW

    db = tmp_path / "tutor.db"
    ids = course().section_ids
    state = LearnerState(phase="question", section=section_id, step=step_id, seq=1,
                         done_sections=ids[: ids.index(section_id)])
    repo = Repository(f"sqlite:///{db}")
    repo.save_turn("console:local", state, (), NOW)
    repo.close()
    task = course().step(section_id, step_id)
    wrong = next(w for w in task.wrong_solutions if w.fails != "error")
    failing = next(c for c in task.checks if c.id == wrong.fails)
    with ChatProcess(db, "--lang", "en") as chat:
        chat.expect("Welcome back")
        chat.expect(first_line(task.prompt.get("en")))
        for line in wrong.code.rstrip().split("\n"):
            chat.send(line)
        chat.send("EOF")
        chat.expect("❌ " + markup.plain(failing.says.get("en"))[:30], timeout=60)
        chat.send("hint")
        chat.expect(first_line(task.hints[0].get("en")))
        for line in task.solution.rstrip().split("\n"):
            chat.send(line)
        chat.send("EOF")
        chat.expect(first_line(task.right.get("en")), timeout=60)
        chat.send("/quit")
        assert chat.wait() == 0


@pytest.mark.slow
def test_graph_in_the_terminal_with_a_multi_line_entry(tmp_path: Path) -> None:
    with ChatProcess(tmp_path / "tutor.db", "--lang", "en", env={"DATA_DIR": str(tmp_path)}) as chat:
        chat.expect("Ready?")
        chat.send("/graph z:")
        chat.send("x = torch.tensor([1.0, 2.0], requires_grad=True)")
        chat.send("z = (x ** 2 + 1).sin()")
        chat.send("EOF")
        chat.expect("The autograd graph of z", timeout=60)
        chat.expect("PowBackward0")
        chat.expect("Picture saved: ")
        saved = chat.expect(".png")
        path = Path(saved.strip())
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        chat.send("/quit")
        assert chat.wait() == 0

"""Go anywhere: /map's buttons, /goto (labels, ids, a free answer's numbers), /back (undoes every jump and
walks back through the steps), /skip, /redo; in both languages, in every phase a learner can be in."""

from __future__ import annotations

import pytest

from bot.content import default_content_dir, load_course
from bot.telegram.app import MENU
from dialogs.course import Course
from tests.support.driver import Driver


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


@pytest.fixture
def d(course: Course) -> Driver:
    return Driver(course)


def test_the_map_has_a_button_per_section_that_goes_there(d: Driver, course: Course) -> None:
    d.start()
    d.command("map")
    goto = [b for b in d.buttons() if b.action == "goto"]
    assert [b.arg for b in goto] == list(course.section_ids)
    assert goto[10].label.startswith("3A")
    assert "/goto 3A" in d.text()
    d.press("goto", "p3.contract")
    assert (d.state.section, d.state.step) == ("p3.contract", "p3.contract.intro")
    assert "3A" in d.text()


def test_an_old_map_button_still_goes_there(d: Driver) -> None:
    d.start()
    d.command("map")
    old = d.state.seq
    d.send("go")
    d.send("go")
    d.press("goto", "p2.function", seq=old)
    assert d.state.section == "p2.function"


@pytest.mark.parametrize("where", ["3A", "3a", "3", "p3.contract", "３Ａ"])
def test_goto_reads_labels_and_ids(d: Driver, where: str) -> None:
    d.start()
    d.command("goto", where)
    assert d.state.section == "p3.contract"


def test_goto_a_step_id_opens_that_step(d: Driver) -> None:
    d.start()
    d.command("goto", "p4.retain-graph.rnn")
    assert (d.state.section, d.state.step) == ("p4.retain-graph", "p4.retain-graph.rnn")


def test_jumping_ahead_gets_a_gentle_note_and_back_undoes_it(d: Driver) -> None:
    d.go_to("p1.why.q-where")
    d.command("goto", "3A")
    assert "Jumping ahead" in d.text() and "1B" in d.text() and "2E" in d.text()
    d.command("back")
    assert (d.state.section, d.state.step, d.state.phase) == ("p1.why", "p1.why.q-where", "question")
    assert "Back to 1A" in d.text()


def test_back_walks_back_through_the_steps(d: Driver) -> None:
    d.go_to("p1.why.by-hand")  # intro -> q-where (answered) -> by-hand
    d.command("back")
    assert d.state.step == "p1.why.q-where" and d.state.phase == "question"
    d.command("back")
    assert d.state.step == "p1.why.intro"
    d.command("back")
    assert d.state.phase == "map"
    d.command("back")
    assert "nowhere to go back" in d.text()


def test_goto_alone_and_goto_nonsense_answer_kindly_with_the_map(d: Driver) -> None:
    d.start()
    d.command("goto")
    assert "/goto 3A" in d.text() and any(b.action == "goto" for b in d.buttons())
    d.command("goto", "9Z <b>")
    assert "can't find" in d.text() and "9Z" in d.text()
    assert d.state.phase == "map"


def test_skip_marks_the_section_and_moves_on(d: Driver) -> None:
    d.go_to("p1.why.intro")
    d.command("skip")
    assert "1A skipped" in d.text()
    assert d.state.section == "p1.requires-grad"
    d.command("map")
    assert "⏭️ A." in d.text()
    assert any(b.label == "1A⏭️" for b in d.buttons())
    d.command("progress")
    assert "Skipped: 1A" in d.text()


def test_a_skipped_section_is_not_where_go_leads_and_redo_plays_it(d: Driver) -> None:
    d.go_to("p1.why.intro")
    d.command("skip")
    d.command("redo", "1A")
    assert (d.state.section, d.state.step) == ("p1.why", "p1.why.intro")
    for _ in range(40):  # play 1A to its end
        if d.state.phase == "section_end":
            break
        d.send("answer" if d.state.phase in ("question", "retry") else "go")
    assert d.state.phase == "section_end" and "p1.why" in d.state.done_sections
    assert "p1.why" not in d.state.skipped
    d.command("progress")
    assert "Skipped" not in d.text()


def test_redo_a_finished_section_keeps_it_done_and_back_returns(d: Driver) -> None:
    d.go_to("p1.requires-grad.intro")  # 1A is done
    d.command("redo", "1A")
    assert "done it before" in d.text()
    assert d.state.step == "p1.why.intro" and "p1.why" in d.state.done_sections
    d.command("back")
    assert d.state.step == "p1.requires-grad.intro"


def test_a_finished_course_can_be_revisited(d: Driver, course: Course) -> None:
    d.start()
    d.state = d.state.but(done_sections=course.section_ids)
    d.send("go")
    assert d.state.phase == "done"
    d.command("goto", "2B")
    assert d.state.section == "p2.derivatives" and d.state.phase in ("explain", "question")


def test_a_jump_waits_for_running_code(d: Driver) -> None:
    d.start()
    d.state = d.state.but(phase="evaluating", section="p3.contract", step="p3.contract.intro", pending="r1")
    d.command("goto", "1A")
    assert d.state.phase == "evaluating" and d.state.section == "p3.contract"


def test_a_jump_from_a_quiz_leaves_the_quiz(d: Driver) -> None:
    d.go_to("p1.requires-grad.intro")
    d.command("quiz")
    assert d.state.mode == "quiz"
    d.command("goto", "2A")
    assert d.state.mode == "course" and d.state.section == "p2.function"


def test_navigation_in_chinese(d: Driver) -> None:
    d.command("lang", "zh")
    d.start()
    d.command("goto", "3A")
    assert "往前跳" in d.text()
    d.command("back")
    assert "回到" in d.text()
    d.command("goto", "火星")
    assert "找不到" in d.text()


def test_help_and_the_command_menu_name_the_new_commands(d: Driver) -> None:
    for lang in ("en", "zh"):
        d.command("lang", lang)
        d.command("help")
        for cmd in ("/goto", "/back", "/skip", "/redo", "/ask", "/map"):
            assert cmd in d.text(), (lang, cmd)
        names = [name for name, _ in MENU[lang]]
        assert {"ask", "goto", "back", "skip", "redo", "map"} <= set(names), lang


def test_goto_as_the_very_first_message_greets_then_goes(d: Driver) -> None:
    d.command("goto", "p3.contract.relu")
    assert "Hi!" in d.text()
    assert (d.state.step, d.state.phase) == ("p3.contract.relu", "question")


def test_a_jump_within_the_section_you_are_in_needs_no_note(d: Driver) -> None:
    d.start()
    d.command("goto", "3A")
    d.command("goto", "p3.contract.relu")
    assert "Jumping ahead" not in d.text() and d.state.step == "p3.contract.relu"

"""Coming back tomorrow, with a fixed clock: flashcards (FSRS), daily push, streaks, /quiz, /settings."""

from datetime import UTC, date, datetime, timedelta

import pytest

from dialogs import schedule
from dialogs.messages import Command, LogAnswer, LogReview, Press, Push, Say, Text
from dialogs.state import LearnerState
from tests.support.driver import NOW, Driver, mini_course


def finish_section_one(d: Driver) -> None:
    d.go_to("m1.one.predict")
    d.send("4")
    assert d.state.phase == "section_end"


@pytest.fixture
def d() -> Driver:
    return Driver(mini_course())


def step_at(d: Driver, when: datetime, event: object) -> None:
    turn = d.engine.step(d.state, event, when)  # type: ignore[arg-type]
    d.state = turn.state
    d.turns.append(turn)


def test_finished_section_adds_its_cards_due_next_local_midnight(d: Driver) -> None:
    finish_section_one(d)
    assert list(d.state.deck) == ["m1.one.c-where-grad-goes", "m1.one.c-square-derivative"]  # YAML order
    assert {v["due"] for v in d.state.deck.values()} == {"2026-11-26T00:00:00+00:00"}
    d.command("cards")
    assert "Nothing due right now" in d.text() and "2026-11-26 00:00 (UTC)" in d.text()


def test_review_session_with_ratings_and_intervals(d: Driver) -> None:
    finish_section_one(d)
    tomorrow = NOW + timedelta(days=1)
    step_at(d, tomorrow, Command("cards"))
    assert "2 to review now" in d.text() and "Where does the gradient go?" in d.text()
    assert d.state.mode == "cards"
    step_at(d, tomorrow, Text(""))  # Enter shows the answer
    assert "Into `.grad` of leaves" in d.text()
    assert [b.label for b in d.buttons()] == ["😵 Again", "😬 Hard", "🙂 Good", "😎 Easy"]
    step_at(d, tomorrow, Text("3"))
    review = d.effects(LogReview)[0]
    assert review.card == "m1.one.c-where-grad-goes" and review.rating == 3
    assert d.state.deck["m1.one.c-where-grad-goes"]["due"] == "2026-11-28T12:00:00+00:00"  # Good on a new card: 2 days
    assert "d(x*x)/dx?" in d.text()  # the next card
    step_at(d, tomorrow, Press("card_show", "m1.one.c-square-derivative"))
    step_at(d, tomorrow, Press("rate", "m1.one.c-square-derivative:1"))
    assert d.state.deck["m1.one.c-square-derivative"]["due"] == "2026-11-27T12:00:00+00:00"  # Again: tomorrow
    assert "All due cards reviewed" in d.text() and "Back to the lesson" in d.text()
    assert d.state.mode == "course" and d.state.phase == "section_end"
    assert d.state.reviews_today == 2 and d.state.streak == 2  # active yesterday and today


def test_daily_maximum_is_a_gentle_stop(d: Driver) -> None:
    finish_section_one(d)
    d.command("settings", "max 1")
    later = NOW + timedelta(days=1)
    step_at(d, later, Command("cards"))
    assert "1 to review now (2 due)" in d.text()
    step_at(d, later, Text("show"))
    step_at(d, later, Text("good"))
    assert "today's maximum" in d.text()
    step_at(d, later, Command("cards"))
    assert "gentle stop" in d.text()


def test_card_typing_help(d: Driver) -> None:
    finish_section_one(d)
    later = NOW + timedelta(days=1)
    step_at(d, later, Command("cards"))
    assert "Show answer" in d.text() and "`show`" in d.text()  # the card says how to see its answer
    step_at(d, later, Text("what?"))  # a typed attempt: shown beside the card's answer, then rated
    assert "You wrote: what?" in d.text() and "Into `.grad` of leaves" in d.text() and d.state.card_shown
    step_at(d, later, Text("7"))
    assert "1 Again" in d.text()
    step_at(d, later, Text("²"))
    assert "0–9" in d.text() and "1 Again" in d.text()  # no rating: a note and the ratings


def test_push_carries_a_due_card_and_the_streak(d: Driver) -> None:
    finish_section_one(d)  # active on 2026-11-25: streak 1
    first = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
    assert d.state.push_due == first.isoformat()
    step_at(d, first, Push())  # the new cards are due from tomorrow: a teaser tonight
    assert "Today's teaser" in d.text() and "1B · Write code" in d.text()
    push_time = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)
    assert d.state.push_due == push_time.isoformat()
    step_at(d, push_time, Push())
    text = d.text()
    assert "Your daily card" in text and "Where does the gradient go?" in text
    assert "Streak: 1 (best: 1)" in text and "Keep your 1-day streak" in text
    assert d.state.push_due == (push_time + timedelta(days=1)).isoformat()
    old_seq = d.state.seq
    d.send("go")  # the learner carries on with the lesson first; the push's button still works
    assert d.state.seq != old_seq
    step_at(d, push_time, Press("card_show", "m1.one.c-where-grad-goes", old_seq))
    assert "Into `.grad` of leaves" in d.text() and d.state.mode == "cards"


def test_push_without_due_cards_teases_the_next_section(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.send("b")
    step_at(d, datetime(2026, 11, 25, 19, 0, tzinfo=UTC), Push())
    assert "Today's teaser" in d.text() and "1A · First steps" in d.text()


def test_push_missed_while_down_is_not_sent_late(d: Driver) -> None:
    d.go_to("m1.one.single")
    step_at(d, datetime(2026, 11, 25, 23, 30, tzinfo=UTC), Push())
    assert d.last.replies == ()
    assert d.state.push_due == "2026-11-26T19:00:00+00:00"


def test_paused_learners_get_no_push_unless_forced(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.command("settings", "pause")
    assert d.state.push_due is None
    step_at(d, datetime(2026, 11, 25, 19, 0, tzinfo=UTC), Push())
    assert d.last.replies == ()
    step_at(d, datetime(2026, 11, 25, 19, 0, tzinfo=UTC), Push(force=True))
    assert "Today's teaser" in d.text()


def test_new_learners_get_no_push(d: Driver) -> None:
    step_at(d, NOW, Push(force=True))
    assert d.last.replies == () and d.state.phase == "new"


def test_settings_time_zone_and_push_plan(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.command("settings")
    assert "19:00" in d.text() and "UTC" in d.text()
    assert any(b.arg == "tz Asia/Shanghai" for b in d.buttons())
    d.command("settings", "tz Asia/Shanghai")
    assert d.state.tz == "Asia/Shanghai"
    assert d.state.push_due == "2026-11-26T11:00:00+00:00"  # 19:00 in Shanghai (12:00 UTC now, 20:00 there)
    d.command("settings", "time 7am")
    assert d.state.push_time == "07:00" and d.state.push_due == "2026-11-25T23:00:00+00:00"
    d.command("settings", "tz +05:30")
    assert d.state.tz == "UTC+05:30"
    d.command("settings", "tz Mars/Olympus")
    assert "don't know the time zone" in d.text() and d.state.tz == "UTC+05:30"
    d.command("settings", "time 25:99")
    assert "can't read" in d.text()
    d.press("set", "max 50")
    assert d.state.daily_max == 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Asia/Shanghai", "Asia/Shanghai"), ("asia/shanghai", "Asia/Shanghai"), ("UTC", "UTC"), ("+8", "UTC+08:00"),
     ("UTC-05:30", "UTC-05:30"), ("gmt+1", "UTC+01:00"), ("+15", None), ("Nowhere/City", None), ("", None)],
)
def test_zone_parsing(text: str, expected: str | None) -> None:
    assert schedule.parse_zone(text) == expected


def test_next_push_across_daylight_saving_changes() -> None:
    # Berlin springs forward on 2026-03-29 (UTC+1 -> UTC+2) and falls back on 2026-10-25.
    before_spring = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    assert schedule.next_push(before_spring, "Europe/Berlin", "19:00") == datetime(2026, 3, 29, 17, 0, tzinfo=UTC)
    before_fall = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    assert schedule.next_push(before_fall, "Europe/Berlin", "19:00") == datetime(2026, 10, 25, 18, 0, tzinfo=UTC)
    # 02:30 does not exist in Berlin on 2026-03-29: the push still happens that night, once
    t = schedule.next_push(datetime(2026, 3, 29, 0, 0, tzinfo=UTC), "Europe/Berlin", "02:30")
    assert datetime(2026, 3, 29, 0, 0, tzinfo=UTC) < t < datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_push(datetime(2026, 1, 1), "UTC", "19:00")


def test_streak_arithmetic() -> None:
    d1, d2, d4 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 4)
    assert schedule.bump_streak(0, 0, None, d1) == (1, 1)
    assert schedule.bump_streak(1, 1, d1, d1) == (1, 1)
    assert schedule.bump_streak(1, 1, d1, d2) == (2, 2)
    assert schedule.bump_streak(5, 7, d2, d4) == (1, 7)
    assert schedule.live_streak(5, d2, d4) == 0 and schedule.live_streak(5, d2, date(2026, 11, 3)) == 5


def test_days_are_cut_at_local_midnight(d: Driver) -> None:
    d.state = LearnerState(tz="Asia/Shanghai")
    late = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    step_at(d, late, Command("start"))
    for text in ("go", "go"):
        step_at(d, late, Text(text))
    step_at(d, late, Text("b"))
    assert d.state.last_day == "2026-11-25" and d.state.streak == 1
    after_midnight = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)  # 00:30 next day in Shanghai, same UTC day
    step_at(d, after_midnight, Text("ac"))
    assert d.state.last_day == "2026-11-26" and d.state.streak == 2


def test_quiz_asks_weakest_concept_first_and_returns_to_the_lesson(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.send("b")  # backward: right
    d.send("b")  # leaf: wrong
    d.send("ac")
    d.send("T F T")
    d.command("quiz", "1")  # (/quiz alone would ask all three questions covered)
    assert d.state.mode == "quiz" and d.state.step in ("m1.one.multi", "m1.one.tf")  # leaf: the weakest concept
    assert "Quiz 1/1" in d.text()
    asked = d.state.step
    d.send("ac" if asked == "m1.one.multi" else "T F T")
    assert d.effects(LogAnswer)[0].step == asked
    assert "Quiz done" in d.text() and "What does this print?" in d.text()
    assert d.state.mode == "course" and d.state.step == "m1.one.predict"


def test_quiz_of_three_and_poll_spec(d: Driver) -> None:
    finish_section_one(d)
    d.command("quiz", "3")
    asked = []
    for _ in range(3):
        asked.append(d.state.step)
        say = [r for r in d.last.replies if isinstance(r, Say) and r.anchor][-1]
        if d.state.step == "m1.one.single":
            assert say.poll is not None and say.poll.correct == 1 and say.poll.options == ("A. 3", "B. 6", "C. 9")
        d.send("answer")
    assert len(set(asked)) == 3
    assert d.state.mode == "course" and d.state.phase == "section_end"
    d.command("quiz", "99")
    assert "/quiz N" in d.text()


def test_quiz_before_anything_is_covered(d: Driver) -> None:
    d.go_to("m1.one.intro")
    d.command("quiz")
    assert "Nothing to quiz you on yet" in d.text()


def test_recap_by_part_shows_flashcards(d: Driver) -> None:
    d.command("recap", "1")
    assert "haven't finished" in d.text()
    finish_section_one(d)
    d.command("recap", "1")
    assert "| Where does the gradient go? | Into `.grad` of leaves |" in d.text()
    d.command("recap", "9")
    assert "/recap N" in d.text()


def test_progress_shows_streak_and_cards(d: Driver) -> None:
    finish_section_one(d)
    d.command("progress")
    assert "Streak: 1 (best: 1)" in d.text() and "cards due: 0 of 2" in d.text()


def test_state_with_deck_round_trips(d: Driver) -> None:
    finish_section_one(d)
    assert LearnerState.from_dict(d.state.to_dict()) == d.state

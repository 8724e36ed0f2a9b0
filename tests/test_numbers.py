"""Numbers that learners type (and that buttons carry) are read by one parser, ``dialogs/numbers.py``:
the ASCII digits 0-9 (full-width digits, typed by a Chinese input method, are the same digits) and
nothing else. Whatever else looks like a number -- ``²``, ``①``, ``٣`` (Arabic-Indic), ``𝟐``, ``1e3``,
``-1``, ``+2``, twenty nines -- is refused with a kind and specific answer in the learner's language
and changes nothing: no question answered, no card rated, no setting taken.

The parser on its own; then every numeric argument through the pure engine (``/quiz N``, ``/recap N``,
``/settings max N``, ``/settings time HH:MM``, ``/settings tz ±HH:MM``, ratings typed during ``/cards``,
choice answers ``1 3``, true/false answers ``1 0 1``, predicted outputs) in English and Chinese; then
end to end in the terminal chat (a real ``python -m bot chat`` process) and in Telegram.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dialogs import actions, answers, markup, numbers, schedule
from dialogs.actions import Action
from dialogs.messages import Command, Event, LogReview, Press, Text
from tests.support.driver import NOW, Driver, mini_course
from tests.support.fake_bot_api import FakeBotAPI
from tests.support.telegram_bot import Chat, TelegramBot, texts
from tests.support.terminal import ROOT, ChatProcess

#: The odd inputs of the issue, fed to every numeric argument.
ODD = ["²", "①", "٣", "３", "1e3", "-1", "+2", "99999999999999999999", "", "  7  "]
#: What each of them shows as "only looks like a digit" (the others are plain text, or digits we read).
LOOKALIKE = {"²": "²", "①": "①", "٣": "٣"}
LANGS = ["en", "zh"]


# ------------------------------------------------------------------------------------ the parser


def test_pythons_own_readers_are_the_trap() -> None:
    """Why a parser of our own: what ``str.isdigit``/``int``/``re`` accept (the code used them)."""
    assert "²".isdigit() and "①".isdigit() and "٣".isdigit()
    assert int("٣") == 3 and int("1_000") == 1000 and int(" +7 ") == 7
    with pytest.raises(ValueError):
        int("²")


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("7", 7), ("007", 7), ("123456789", 123456789)])
def test_digits_reads_plain_ascii_digits(text: str, value: int) -> None:
    assert numbers.digits(text) == value


@pytest.mark.parametrize(
    "text", ["", " 7", "7 ", "7\n", "+1", "-1", "1_0", "1.0", "1e3", "²", "①", "٣", "３", "𝟐", "1234567890", "0x1"])
def test_digits_refuses_everything_else(text: str) -> None:
    """The exact form buttons carry: no space, no sign, no other script, no more than 9 digits."""
    assert numbers.digits(text) is None


@pytest.mark.parametrize(
    ("text", "lo", "hi", "value"),
    [("7", None, None, 7), ("  7  ", None, None, 7), ("\t12\n", 1, 20, 12), ("３", None, None, 3),
     ("１２", 1, 20, 12), ("\u3000５\u3000", 1, 10, 5), ("1", 1, 10, 1), ("10", 1, 10, 10), ("0", 0, 0, 0),
     ("999999999", None, None, 999_999_999)],
)
def test_parse_int_reads_what_learners_type(text: str, lo: int | None, hi: int | None, value: int) -> None:
    assert numbers.parse_int(text, lo, hi) == value


@pytest.mark.parametrize(
    "text",
    [*[o for o in ODD if o not in ("３", "  7  ")], "𝟐", "½", "Ⅷ", "⑫", "1 2", "1.0", "1_000", "1,000", "0x10",
     "١٠", "x", " ", "\u3000", "1234567890", "9" * 10_000, "７ｘ"],
)
def test_parse_int_refuses_what_is_not_a_plain_number(text: str) -> None:
    assert numbers.parse_int(text) is None


@pytest.mark.parametrize(("text", "lo", "hi"), [("0", 1, 10), ("11", 1, 10), ("5", 1, 4), ("200", None, 199),
                                                  ("1", 2, None)])
def test_parse_int_keeps_to_its_bounds(text: str, lo: int | None, hi: int | None) -> None:
    assert numbers.parse_int(text, lo, hi) is None


@pytest.mark.parametrize(
    ("text", "odd"),
    [("x²", "²"), ("①②①", "①②"), ("٣", "٣"), ("𝟐", "𝟐"), ("½", "½"), ("Ⅷ", "Ⅷ"), ("㍘", "㍘"), ("1 ³ ²", "³²"),
     ("123", ""), ("１２３", ""), ("三个", ""), ("对 错 对", ""), ("tensor([6.])", ""), ("", ""), ("b²" * 5000, "²")],
)
def test_odd_digits_names_what_only_looks_like_a_digit(text: str, odd: str) -> None:
    assert numbers.odd_digits(text) == odd


def test_fold_fullwidth_changes_only_fullwidth_forms() -> None:
    assert numbers.fold_fullwidth("＋０８：００\u3000") == "+08:00 "
    assert numbers.fold_fullwidth("²①٣𝟐") == "²①٣𝟐"


# ------------------------------------------------------------------------- the readers built on it


@pytest.mark.parametrize(("text", "clock"), [("٣:30", None), ("08:٣٠", None), ("²:00", None), ("①", None),
                                             ("３:30", "03:30"), ("８：３０", "08:30"), ("7", "07:00"),
                                             ("99999999999999999999", None)])
def test_clock_times(text: str, clock: str | None) -> None:
    assert schedule.parse_clock(text) == clock


@pytest.mark.parametrize(("text", "zone"), [("+٣", None), ("+08:٣٠", None), ("UTC+²", None), ("-①", None),
                                            ("＋０８：００", "UTC+08:00"), ("-1", "UTC-01:00"), ("+2", "UTC+02:00"),
                                            ("+99999999999999999999", None)])
def test_zone_offsets(text: str, zone: str | None) -> None:
    assert schedule.parse_zone(text) == zone


@pytest.mark.parametrize(("text", "picked"), [("²", None), ("① ③", None), ("1 ³", None), ("٢", None), ("𝟐", None),
                                              ("⑫", None), ("１ ３", (0, 2)), ("1 3", (0, 2)), ("13", (0, 2))])
def test_choice_answers(text: str, picked: tuple[int, ...] | None) -> None:
    assert answers.parse_choice(text, 3) == picked


@pytest.mark.parametrize(("text", "verdicts"), [("① ⓪ ①", None), ("¹⁰¹", None), ("١٠١", None), ("①", None),
                                                ("１０１", (True, False, True)), ("1 0 1", (True, False, True))])
def test_true_false_answers(text: str, verdicts: tuple[bool, ...] | None) -> None:
    assert answers.parse_judgements(text, 3) == verdicts


@pytest.mark.parametrize("data", ["1_0|go|", " 1|go|", "+1|go|", "-1|go|", "１|go|", "٣|go|", "1234567890|go|"])
def test_callback_data_with_an_odd_version_is_unknown(data: str) -> None:
    assert actions.decode(data) == Press("unknown", "", -1)


def test_button_arguments_are_exact() -> None:
    assert actions.index_of(Press("pick", "３", 0)) is None
    assert actions.judgement_of(Press("judge", "1_0:1", 0)) is None
    assert actions.rating_of(Press("rate", "c:٣", 0)) is None
    assert actions.rating_of(Press("rate", "c:3", 0)) == ("c", 3)


# ------------------------------------------------------------------------- through the pure engine


def says(d: Driver, key: str, **values: object) -> str:
    return d.course.t(d.state.lang, key, **values)


def refusal(d: Driver, typed: str, key: str, **values: object) -> str:
    """What a refused number gets: the look-alike line (when there is one), then the place's own hint."""
    odd = LOOKALIKE.get(typed.strip(), "")
    return (says(d, "number_odd_digits", chars=odd) + "\n" if odd else "") + says(d, key, **values)


def learner(lang: str) -> Driver:
    d = Driver(mini_course())
    d.state = replace(d.state, lang=lang)
    d.start()
    return d


def after_section_one(lang: str) -> Driver:
    """Section one done (its cards are in the deck, its questions can be quizzed)."""
    d = learner(lang)
    d.go_to("m1.one.predict")
    d.send("4")
    assert d.state.phase == "section_end"
    return d


def refused(d: Driver, event: Event, expected: str) -> None:
    """The event is answered with exactly ``expected`` and changes nothing."""
    here = d.state
    d.event(event)
    assert d.text() == expected, event
    assert d.state == here, event
    assert not d.last.effects, event


@pytest.mark.parametrize("lang", LANGS)
def test_quiz_n(lang: str) -> None:
    d = after_section_one(lang)
    here = d.state
    taken = {"３": 3, "  7  ": 4, "": 4}  # 4 questions are covered: a quiz asks no more (/quiz alone: 5)
    for typed in ODD:
        d.state = here
        if typed in taken:
            d.command("quiz", typed.strip())
            assert d.state.mode == "quiz" and d.state.quiz_left == taken[typed] - 1, typed
            assert d.state.phase == "question"
        else:
            refused(d, Command("quiz", typed), refusal(d, typed, "quiz_usage", max=10))


@pytest.mark.parametrize("lang", LANGS)
def test_quiz_n_with_odd_digits_does_not_stop_a_review(lang: str) -> None:
    d = after_section_one(lang)
    at(d, NOW + timedelta(days=1), Command("cards"))
    assert d.state.mode == "cards"
    refused(d, Command("quiz", "²"), refusal(d, "²", "quiz_usage", max=10))


@pytest.mark.parametrize("lang", LANGS)
def test_recap_n(lang: str) -> None:
    d = after_section_one(lang)
    here = d.state
    for typed in [*ODD, "１", " 1 ", "part ٣"]:
        d.state = here
        d.command("recap", typed)
        if typed.strip() in ("", "１", "1"):
            card = d.course.section("m1.one").cards[0].q.get(lang)
            assert says(d, "recap_title") in d.text() and card in d.text(), typed
            assert d.state == here
        else:
            odd = "٣" if typed == "part ٣" else typed
            assert d.text() == refusal(d, odd, "recap_usage", n=1), typed
            assert d.state == here


@pytest.mark.parametrize("lang", LANGS)
def test_settings_max_n(lang: str) -> None:
    d = after_section_one(lang)
    here = d.state
    taken = {"３": 3, "  7  ": 7}
    for typed in [*ODD, "0", "201", "１２"]:
        d.state = here
        if typed in taken:
            d.command("settings", f"max {typed}")
            assert d.state.daily_max == taken[typed] and says(d, "settings_saved") in d.text()
        elif typed == "１２":
            d.command("settings", f"上限 {typed}")
            assert d.state.daily_max == 12
        elif typed == "":
            refused(d, Command("settings", "max"), says(d, "settings_usage"))
        else:
            refused(d, Command("settings", f"max {typed}"),
                    refusal(d, typed, "settings_bad_max", value=typed, max=200))
    # a button that carries an odd value is answered the same way
    d.state = here
    refused(d, Press(Action.SET, "max ①", here.seq), refusal(d, "①", "settings_bad_max", value="①", max=200))


@pytest.mark.parametrize("lang", LANGS)
def test_settings_time(lang: str) -> None:
    d = after_section_one(lang)
    here = d.state
    taken = {"３": "03:00", "  7  ": "07:00", "８：３０": "08:30", "7:30": "07:30"}
    lookalike = {"٣:30": "٣", "08:٣٠": "٣٠", "²:⁰⁰": "²⁰"}
    for typed in [*ODD, *taken, *lookalike]:
        d.state = here
        if typed in taken:
            d.command("settings", f"time {typed}")
            assert d.state.push_time == taken[typed] and says(d, "settings_saved") in d.text(), typed
        elif typed == "":
            refused(d, Command("settings", "time"), says(d, "settings_usage"))
        elif typed in lookalike:
            refused(d, Command("settings", f"time {typed}"),
                    says(d, "number_odd_digits", chars=lookalike[typed]) + "\n"
                    + says(d, "settings_bad_time", value=typed))
        else:
            refused(d, Command("settings", f"time {typed}"), refusal(d, typed, "settings_bad_time", value=typed))


@pytest.mark.parametrize("lang", LANGS)
def test_settings_tz(lang: str) -> None:
    d = after_section_one(lang)
    here = d.state
    taken = {"-1": "UTC-01:00", "+2": "UTC+02:00", "+08:00": "UTC+08:00", "＋０８：００": "UTC+08:00",
             "+３": "UTC+03:00"}
    lookalike = {"+٣": "٣", "+08:٣٠": "٣٠", "UTC+²": "²", "-①": "①"}
    for typed in [*ODD, *taken, *lookalike]:
        d.state = here
        if typed in taken:
            d.command("settings", f"tz {typed}")
            assert d.state.tz == taken[typed] and says(d, "settings_saved") in d.text(), typed
        elif typed == "":
            refused(d, Command("settings", "tz"), says(d, "settings_usage"))
        elif typed in lookalike:
            refused(d, Command("settings", f"tz {typed}"),
                    says(d, "number_odd_digits", chars=lookalike[typed]) + "\n"
                    + says(d, "settings_bad_zone", value=typed))
        else:
            refused(d, Command("settings", f"tz {typed}"),
                    refusal(d, typed, "settings_bad_zone", value=typed.strip()))


def at(d: Driver, when: datetime, event: Event) -> None:
    turn = d.engine.step(d.state, event, when)
    d.state = turn.state
    d.turns.append(turn)


@pytest.mark.parametrize("lang", LANGS)
def test_ratings_typed_during_a_review(lang: str) -> None:
    d = after_section_one(lang)
    tomorrow = NOW + timedelta(days=1)
    at(d, tomorrow, Command("cards"))
    at(d, tomorrow, Text("show"))
    assert d.state.mode == "cards" and d.state.card_shown
    here = d.state
    for typed in [*ODD, "⁴", "④", "5", "0"]:
        d.state = here
        at(d, tomorrow, Text(typed))
        if typed == "３":
            assert [e.rating for e in d.effects(LogReview) if isinstance(e, LogReview)] == [3]
            assert d.state.card != here.card
        else:
            odd = {"⁴": "⁴", "④": "④"}.get(typed) or LOOKALIKE.get(typed, "")
            expected = (says(d, "number_odd_digits", chars=odd) + "\n" if odd else "") + says(d, "cards_say_rate")
            assert d.text() == expected, typed
            assert d.state == here and not d.last.effects, typed


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("step", ["m1.one.single", "m1.one.multi"])
def test_choice_answers_typed_as_numbers(lang: str, step: str) -> None:
    d = learner(lang)
    d.go_to(step)
    here = d.state
    key = "parse_choice_multi" if step.endswith("multi") else "parse_choice_single"
    lookalike = {"1 ³": "³", "① ③": "①③", "²³": "²³", "⑫": "⑫", "𝟐": "𝟐"}
    for typed in [*ODD, *lookalike]:
        d.state = here
        if typed == "３":  # option C: a real (wrong) answer
            d.send(typed)
            assert d.state.phase == "retry" and "C" in d.text()
        elif typed in lookalike:
            refused(d, Text(typed), says(d, "number_odd_digits", chars=lookalike[typed]) + "\n"
                    + says(d, key, last="c"))
        else:
            refused(d, Text(typed), refusal(d, typed, key, last="c"))
    d.state = here
    d.send("１ ３" if step.endswith("multi") else "２")  # full-width, as a Chinese keyboard types them
    assert d.state.step != step  # right: the lesson goes on


@pytest.mark.parametrize("lang", LANGS)
def test_true_false_answers_typed_as_digits(lang: str) -> None:
    d = learner(lang)
    d.go_to("m1.one.tf")
    here = d.state
    lookalike = {"¹ ⁰ ¹": "¹⁰", "① ⓪ ①": "①⓪", "١ ٠ ١": "١٠", "¹⁰¹": "¹⁰"}
    for typed in [*ODD, *lookalike]:
        d.state = here
        if typed in lookalike:
            expected = says(d, "number_odd_digits", chars=lookalike[typed]) + "\n" + says(d, "parse_statements", n=3)
        else:
            expected = refusal(d, typed, "parse_statements", n=3)
        refused(d, Text(typed), expected)
    for typed in ("1 0 1", "１ ０ １"):
        d.state = here
        d.send(typed)
        assert d.state.step == "m1.one.predict", typed  # all three right: on to the next step


@pytest.mark.parametrize("lang", LANGS)
def test_predicted_output_with_lookalike_digits_is_asked_again(lang: str) -> None:
    d = learner(lang)
    d.go_to("m1.one.predict")
    here = d.state
    refused(d, Text("tensor([٤.])"), says(d, "number_odd_digits", chars="٤") + "\n" + says(d, "how_predict"))
    refused(d, Text("⁴"), says(d, "number_odd_digits", chars="⁴") + "\n" + says(d, "how_predict"))
    d.state = here
    d.send("tensor([４.])")
    assert d.state.phase == "section_end"  # right


# ------------------------------------------------------------------------------------ the terminal


def plain(lang: str, key: str, **values: object) -> str:
    return markup.plain(mini_course().t(lang, key, **values))


@pytest.mark.slow
def test_terminal_chat_answers_odd_numbers_kindly(tmp_path: Path) -> None:
    with ChatProcess(tmp_path / "tutor.db", "--lang", "en", content=ROOT / "tests" / "fixtures" / "mini") as chat:
        chat.expect("Ready?")
        for lang in LANGS:
            if lang == "zh":
                chat.send("/lang zh")
                chat.expect(plain("zh", "lang_set"))
            chat.send("/quiz ²")
            chat.expect(plain(lang, "number_odd_digits", chars="²"))
            chat.expect(plain(lang, "quiz_usage", max=10))
            chat.send("/settings max ①")
            chat.expect(plain(lang, "number_odd_digits", chars="①"))
            chat.expect(plain(lang, "settings_bad_max", value="①", max=200))
            chat.send("/recap ٣")
            chat.expect(plain(lang, "number_odd_digits", chars="٣"))
            chat.expect(plain(lang, "recap_usage", n=1))
            chat.send("/settings time ٣:30")
            chat.expect(plain(lang, "settings_bad_time", value="٣:30"))
        chat.send("/settings")
        chat.expect("19:00")  # nothing odd was taken
        chat.expect("20")
        chat.send("/settings max ３")  # full-width digits are digits
        chat.expect(plain("zh", "settings_saved"))
        chat.expect("3")
        chat.send("/quit")
        chat.expect(plain("zh", "bye")[:10])
        assert chat.wait() == 0
        assert "Traceback" not in chat.out + chat.stderr()


# ------------------------------------------------------------------------------------ Telegram


def telegram(lang: str, key: str, **values: object) -> str:
    return markup.plain(mini_course().t(lang, key, **values))


async def test_telegram_answers_odd_numbers_kindly(server: FakeBotAPI, bot: TelegramBot) -> None:
    chat = Chat(server, bot, 7301)
    await chat.send("/start")
    for lang in LANGS:
        if lang == "zh":
            assert telegram("zh", "lang_set") in texts(await chat.send("/lang zh"))
        said = texts(await chat.send("/quiz ²"))
        assert telegram(lang, "number_odd_digits", chars="²") in said
        assert telegram(lang, "quiz_usage", max=10) in said
        said = texts(await chat.send("/settings max ①"))
        assert telegram(lang, "number_odd_digits", chars="①") in said
        assert telegram(lang, "settings_bad_max", value="①", max=200) in said
        said = texts(await chat.send("/recap ٣"))
        assert telegram(lang, "number_odd_digits", chars="٣") in said
        assert telegram(lang, "recap_usage", n=1) in said
        said = texts(await chat.send("/settings tz +٣"))
        assert telegram(lang, "settings_bad_zone", value="+٣") in said
    state = chat.state()
    assert (state.mode, state.daily_max, state.tz, state.lang) == ("course", 20, "UTC", "zh")
    assert telegram("zh", "settings_saved") in texts(await chat.send("/settings max ３"))
    assert chat.state().daily_max == 3

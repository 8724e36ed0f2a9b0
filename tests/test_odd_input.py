"""Whatever a learner sends, at whatever point, gets an answer and never a crash: odd digits
(superscripts, circled, full-width, other scripts), control characters, huge texts, every command with
odd arguments, every button action with odd arguments, stale versions. Played through the pure engine
at every step of the mini course, in both languages, and through the whole flashcard/quiz/settings
side; every turn also passes the state machine's check (the engine runs it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dialogs.actions import Action
from dialogs.engine import COMMANDS
from dialogs.messages import Command, Press, Text
from tests.support.driver import Driver, mini_course

ODD = ["²", "①", "٣", "５", "1²", "²³", "b²", "-1", "0", "99999999999999999999", "1e9", "½", "Ⅷ", "",
       " ", "\x00", "\u202e", "\x1b[2J", "🤖", "a" * 10_000, "```", "**x**", "| a | b |", "/", "//", "?"]
ARGS = ["", "²", "①", "٣", "５", "-1", "0", "11", "99999999999999999999", "max ²", "max ①", "time ²:⁰⁰",
        "tz +²", "tz ../../etc/passwd", "part ²", "en ²", "yes", "y: \x00", "\x1b]52;c;aGk=\x07", "x" * 5000]
PRESS_ARGS = ["", "²", "①", "-1", "0:1", "²:1", "9:1", "x:y", "p1.why#²", "m1.one.c-none:²", "time ²", "max ①",
              "tz Mars/Base", "zz", "x" * 60]


def steps_of(d: Driver) -> list[str]:
    return [st.id for section in d.course.sections() for st in section.steps]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_step_survives_odd_text_commands_and_buttons(lang: str) -> None:
    d = Driver(mini_course())
    d.state = replace(d.state, lang=lang)
    d.start()
    for step_id in steps_of(d):
        d.go_to(step_id)
        here = d.state
        for text in ODD:
            d.state = here
            d.send(text)
            assert d.last.replies, (step_id, text)
        for name in COMMANDS:
            if name in ("reset", "quit"):
                continue
            for args in ARGS:
                d.state = here
                d.event(Command(name, args))
                assert d.last.replies or name == "graph", (step_id, name, args)
        for action in [*Action, "unknown", "²"]:
            for arg in PRESS_ARGS:
                for seq in (here.seq, here.seq - 1, None, -1):
                    d.state = here
                    d.event(Press(str(action), arg, seq))
        d.state = here


def test_reviews_and_settings_survive_odd_input() -> None:
    d = Driver(mini_course())
    d.start()
    d.go_to("m1.two.square")  # m1.one is done: its cards are in the deck
    assert d.state.deck
    for name, args in [("cards", ""), ("quiz", "2"), ("settings", "")]:
        d.event(Command(name, args))
        here = d.state
        for text in ODD:
            d.state = here
            d.event(Text(text))
            assert d.last.replies, (name, text)
        for action in (Action.RATE, Action.CARD_SHOW, Action.SET, Action.CARDS):
            for arg in PRESS_ARGS:
                d.state = here
                d.event(Press(action, arg, here.seq))
                assert d.last.replies, (name, action, arg)
        d.state = here
    for args in ARGS:
        d.event(Command("settings", args))
        assert d.last.replies
    assert d.state.daily_max == 20 and d.state.tz == "UTC"  # nothing odd was taken for a setting

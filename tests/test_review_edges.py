"""The flashcard review's rough edges (issue 13), in both languages: how to reveal a card, a typed attempt
compared with the card's answer, any command ends the review, and a resumed chat shows the card again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from dialogs.messages import Command, LogReview, Start, Text
from tests.support.driver import NOW, Driver, mini_course

LATER = NOW + timedelta(days=1)  # the first section's cards are due
Q1 = {"en": "Where does the gradient go?"}
A1 = {"en": "Into `.grad` of leaves"}


def reviewing(lang: str) -> Driver:
    """A learner whose first section is done (its cards are in the deck), in a review the next day."""
    d = Driver(mini_course())
    d.state = replace(d.state, lang=lang)
    d.go_to("m1.one.predict")
    d.send("4")
    assert d.state.phase == "section_end"
    at(d, Command("cards"))
    assert d.state.mode == "cards" and not d.state.card_shown
    return d


def at(d: Driver, event: object) -> None:
    turn = d.engine.step(d.state, event, LATER)  # type: ignore[arg-type]
    d.state = turn.state
    d.turns.append(turn)


def card_texts(d: Driver, lang: str) -> tuple[str, str]:
    assert d.state.card is not None
    card = d.course.card(d.state.card)
    return card.q.get(lang), card.a.get(lang)


# -- 1. the card says how to see its answer, in words that work typed ---------------------------------


@pytest.mark.parametrize(("lang", "words"), [("en", ("Show answer", "show")), ("zh", ("看答案", "看答案"))])
def test_card_prompt_says_how_to_reveal_it(lang: str, words: tuple[str, str]) -> None:
    d = reviewing(lang)
    q, _ = card_texts(d, lang)
    prompt = d.text().split(q, 1)[1]  # what follows the card's question
    button, typed = words
    assert button in prompt and f"`{typed}`" in prompt
    # the typed word it names works (the terminal has no buttons)
    at(d, Text(typed))
    assert d.state.card_shown


# -- 2. a typed attempt is compared with the card's answer, then the learner rates ---------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_typed_attempt_is_shown_beside_the_answer_then_rated(lang: str) -> None:
    d = reviewing(lang)
    q, a = card_texts(d, lang)
    at(d, Text("into x.grad I think"))
    text = d.text()
    assert "into x.grad I think" in text and a in text and q in text
    assert d.state.card_shown and d.state.mode == "cards"
    assert len(d.buttons()) == 4 and all(b.action == "rate" for b in d.buttons())
    assert not d.effects(LogReview)  # not graded for the learner: they rate
    at(d, Text("2"))
    assert d.effects(LogReview)[0].rating == 2


def test_typed_attempt_is_echoed_safely_and_briefly() -> None:
    d = reviewing("en")
    at(d, Text("**bold** `x` " + "a" * 5000))
    text = d.text()
    assert len(text) < 2000 and "Into `.grad` of leaves" in text
    assert d.state.card_shown


# -- 3. stop, /stop and any command end the review ----------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("stop", [Text("stop"), Command("stop"), Text("停止")])
def test_stop_ends_the_review(lang: str, stop: object) -> None:
    d = reviewing(lang)
    at(d, stop)
    assert d.state.mode == "course" and d.state.phase == "section_end" and d.state.card is None
    assert d.buttons() and d.buttons()[-1].action == "go"  # the lesson is shown again
    assert not d.effects(LogReview)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("shown", [False, True])
def test_map_ends_the_review_and_shows_the_map(lang: str, shown: bool) -> None:
    d = reviewing(lang)
    if shown:
        at(d, Text(""))
    at(d, Command("map"))
    assert d.state.mode == "course" and d.state.card is None
    map_text = Driver(d.course, d.state).engine.step(d.state, Command("map"), LATER).replies[-1]
    assert d.last.replies[-1] == map_text  # the map, as /map shows it outside a review


@pytest.mark.parametrize("name", ["progress", "help", "recap", "settings", "quiz", "nonsense"])
def test_any_command_ends_the_review(name: str) -> None:
    d = reviewing("en")
    at(d, Command(name))
    assert d.state.mode != "cards" and d.state.card is None
    d.send("stop")  # no review to stop: nothing odd happens
    assert d.last.replies


def test_cards_command_in_a_review_shows_the_card_again() -> None:
    d = reviewing("en")
    q, _ = card_texts(d, "en")
    at(d, Command("cards"))
    assert d.state.mode == "cards" and q in d.text()


# -- 4. a resumed chat shows the card on screen again -------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("shown", [False, True])
def test_resume_shows_the_card_again(lang: str, shown: bool) -> None:
    d = reviewing(lang)
    if shown:
        at(d, Text(""))
    q, a = card_texts(d, lang)
    stored = d.state
    at(d, Start())  # the terminal chat restarted with the stored state
    assert d.state.mode == "cards" and d.state.card == stored.card and d.state.card_shown == shown
    text = d.text()
    assert q in text and (a in text) == shown
    actions = {b.action for b in d.buttons()}
    assert actions == ({"rate"} if shown else {"card_show"})


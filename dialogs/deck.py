"""Flashcards: the learner's deck (FSRS, whole days), ``/cards`` reviews with Again / Hard / Good / Easy,
and the cards a finished section adds. Plain functions over the engine's ``Host``."""

from __future__ import annotations

from datetime import datetime

from dialogs import answers, aside, cards, daily, numbers, schedule
from dialogs.actions import Action, card_show, rate, rating_of
from dialogs.context import Host, Out, literal, odd_digits_note
from dialogs.messages import LogReview, Press
from dialogs.migrations.card_ids import CARD_IDS
from dialogs.state import LearnerState

RATE_WORDS = {"again": 1, "hard": 2, "good": 3, "easy": 4, "重来": 1, "困难": 2, "良好": 3, "简单": 4,
              "忘了": 1, "难": 2, "好": 3, "易": 4}
SHOW_WORDS = {"", "show", "show answer", "answer", "flip", "go", "ok", "?", "看答案", "答案", "翻面", "好", "继续"}
#: Typed words that end a review (``/stop`` and any other command end it too, in the engine).
STOP_WORDS = {"stop", "/stop", "quit", "exit", "停", "停止", "退出", "结束"}
#: How much of a typed attempt is shown back beside the card's answer.
ATTEMPT_LIMIT = 300
#: UI keys of the four FSRS ratings (Again, Hard, Good, Easy), named once each.
RATE_BUTTON_KEYS = {1: "btn_rate_1", 2: "btn_rate_2", 3: "btn_rate_3", 4: "btn_rate_4"}
RATED_KEYS = {1: "rated_1", 2: "rated_2", 3: "rated_3", 4: "rated_4"}


def add_section(host: Host, s: LearnerState, section_id: str, now: datetime) -> LearnerState:
    """A finished section's cards join the deck, due from the learner's next local midnight."""
    due = daily.next_midnight(s, now)
    deck = dict(s.deck)
    for card in host.course.section(section_id).cards:
        deck.setdefault(card.id, cards.new_card(card.id, due))
    return s.but(deck=deck)


def when(s: LearnerState, at: datetime | None) -> str:
    """A moment in the learner's time zone, for a sentence."""
    if at is None:
        return "—"
    local = at.astimezone(schedule.zone(s.tz))
    return local.strftime("%Y-%m-%d %H:%M") + f" ({s.tz})"


def command(host: Host, s: LearnerState, out: Out) -> LearnerState:
    """``/cards``: review the cards due now, up to the daily maximum."""
    if s.phase == "evaluating":
        out.say(host.t(s, "still_running"))
        return s
    if s.mode == "cards" and s.card:
        return show(host, s, out)
    if s.mode == "quiz":
        s = aside.restore(host, s, out, "quiz_stopped")
    if not s.deck:
        out.say(host.t(s, "cards_none"))
        return s
    due = cards.due_cards(s.deck, out.now)
    if not due:
        out.say(host.t(s, "cards_nothing_due", when=when(s, cards.next_due(s.deck))))
        return s
    s, left = daily.reviews_left(s, out.now)
    if left <= 0:
        out.say(host.t(s, "cards_daily_max", n=s.daily_max))
        return s
    out.say(host.t(s, "cards_start", n=min(len(due), left), total=len(due)))
    s = aside.save(s).moved(mode="cards", card=due[0], card_shown=False)
    return show(host, s, out)


def show(host: Host, s: LearnerState, out: Out, attempt: str | None = None) -> LearnerState:
    """The card under review: its question (answer behind a button, and how to see it), or the question,
    the learner's typed ``attempt`` if any beside the card's answer, and the ratings."""
    assert s.card is not None
    card = host.course.card(s.card)
    q, a = card.q.get(s.lang), card.a.get(s.lang)
    if not s.card_shown:
        out.say(f"🃏 **{q}**\n\n" + host.t(s, "cards_how_show"),
                ((card_show(host.t(s, "btn_show_answer"), s.card),),), seq=s.seq)
        return s
    buttons = tuple(rate(host.t(s, RATE_BUTTON_KEYS[i]), s.card, i) for i in range(1, 5))
    if attempt is None:
        body = f"💡 {a}\n\n"
    else:
        body = (host.t(s, "cards_attempt", answer=literal(attempt, ATTEMPT_LIMIT)) + "\n"
                + host.t(s, "cards_card_answer", answer=a) + "\n\n" + host.t(s, "cards_compare")
                + ("" if s.lang == "zh" else " "))
    out.say(f"🃏 **{q}**\n\n{body}" + host.t(s, "cards_rate"), (buttons,), seq=s.seq)
    return s


def stop(host: Host, s: LearnerState, out: Out) -> LearnerState:
    """``stop`` / ``/stop``: end the review (the cards left stay due) and show the lesson again."""
    return aside.restore(host, s, out, "cards_ended")


def leave(host: Host, s: LearnerState, out: Out) -> LearnerState:
    """Any other command during a review ends it with a note; the command then does what it does (so the
    lesson is not shown again first)."""
    quiet = Out(out.now)
    s = aside.restore(host, s, quiet, "cards_ended")
    out.effects.extend(quiet.effects)
    out.say(host.t(s, "cards_ended"))
    return s


def typed(host: Host, s: LearnerState, text: str, out: Out) -> LearnerState:
    """Text during a review: ``stop``; show the answer, or a typed attempt beside it (the learner compares
    and rates: no grading here); then a rating (a word or 1-4; ``²`` or ``①`` is no rating)."""
    word = answers.normalise(text)
    if word in STOP_WORDS:
        return stop(host, s, out)
    if not s.card_shown:
        if word in SHOW_WORDS:
            return show(host, s.but(card_shown=True), out)
        return show(host, s.but(card_shown=True), out, attempt=text)
    rating = RATE_WORDS.get(word) or numbers.parse_int(text, 1, 4)
    if rating is None:
        out.say(odd_digits_note(host, s, text) + host.t(s, "cards_say_rate"))
        return s
    return review(host, s, s.card or "", rating, out)


def pressed(host: Host, s: LearnerState, press: Press, out: Out) -> LearnerState:
    """A card's buttons (checked by what they carry, not by version: a push's button may be days old)."""
    if "#" in press.arg:  # a button sent before cards had ids: "<section>#<i>[:rating]"
        cid, colon, rest = press.arg.partition(":")
        press = Press(press.action, CARD_IDS.get(cid, cid) + colon + rest, press.seq)
    if press.action == Action.CARD_SHOW:
        cid = press.arg
        if cid not in s.deck:
            host.stale(s, out)
            return s
        if s.mode == "cards" and s.card == cid:
            return show(host, s.but(card_shown=True), out)
        if s.phase == "evaluating":
            out.say(host.t(s, "still_running"))
            return s
        if s.mode == "quiz":
            s = aside.restore(host, s, out, "quiz_stopped")
        s = aside.save(s).moved(mode="cards", card=cid, card_shown=True)
        return show(host, s, out)
    if press.action == Action.RATE:
        rated = rating_of(press)
        if rated is None or s.mode != "cards" or s.card != rated[0] or not s.card_shown:
            host.stale(s, out)
            return s
        return review(host, s, rated[0], rated[1], out)
    return command(host, s, out)  # Action.CARDS: start a review (the push's button)


def review(host: Host, s: LearnerState, cid: str, rating: int, out: Out) -> LearnerState:
    """Rate the card: FSRS plans its next review; the next due card, or back to the lesson."""
    record, log = cards.review(cid, s.deck[cid], rating, out.now)
    out.effects.append(LogReview(cid, rating, log))
    s, _ = daily.reviews_left(s, out.now)
    s = daily.active(s.but(deck={**s.deck, cid: record}, reviews_today=s.reviews_today + 1), out.now)
    out.say(host.t(s, RATED_KEYS[rating], when=when(s, cards.due_at(record))))
    due = cards.due_cards(s.deck, out.now)
    left = s.daily_max - s.reviews_today
    if due and left > 0:
        return show(host, s.moved(card=due[0], card_shown=False), out)
    note = "cards_done" if not due else "cards_daily_max_reached"
    return aside.restore(host, s.but(card=None), out, note)

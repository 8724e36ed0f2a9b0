"""The daily rhythm: what an answer or a review counts for (mastery, streak), the daily push, the
progress lines. Plain functions; days are cut at the learner's local midnight."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from dialogs import cards, schedule
from dialogs.actions import Action, button, card_show
from dialogs.context import Host, Out
from dialogs.messages import LogAnswer, Push
from dialogs.state import LearnerState

#: A push later than this (the bot was down) is skipped, not sent late.
PUSH_GRACE = timedelta(hours=1)


def local_today(s: LearnerState, now: datetime) -> date:
    return schedule.local_day(now, s.tz)


def next_midnight(s: LearnerState, now: datetime) -> datetime:
    return schedule.next_push(now, s.tz, "00:00")


def active(s: LearnerState, now: datetime) -> LearnerState:
    """The learner did something that counts for the streak today."""
    day = local_today(s, now)
    last = date.fromisoformat(s.last_day) if s.last_day else None
    streak, best = schedule.bump_streak(s.streak, s.best_streak, last, day)
    return s.but(streak=streak, best_streak=best, last_day=day.isoformat())


def answered(s: LearnerState, out: Out, step: Any, answer: str, verdict: str, correct: bool) -> LearnerState:
    """Grade recorded: the answer log (under the step's own section, which ``s.section`` is, in a quiz
    too), the mastery of the step's concepts, the streak."""
    out.effects.append(LogAnswer(step.id, answer[:500], verdict, correct, tuple(step.tags), s.section))
    mastery = {k: list(v) for k, v in s.mastery.items()}
    for tag in step.tags:
        right, total = mastery.get(tag, [0, 0])
        mastery[tag] = [right + int(correct), total + 1]
    return active(s.but(mastery=mastery), out.now)


def settle(host: Host, s: LearnerState, now: datetime) -> LearnerState:
    """After every turn: cards the course no longer has leave the deck; a push is planned once the
    learner has started."""
    known = host.course.card_ids
    if not known.issuperset(s.deck):  # a card deleted from the course since it entered the deck
        s = s.but(deck={cid: record for cid, record in s.deck.items() if cid in known})
    if s.push_due is None and not s.paused and s.phase != "new":
        s = s.but(push_due=schedule.next_push(now, s.tz, s.push_time).isoformat())
    return s


def reviews_left(s: LearnerState, now: datetime) -> tuple[LearnerState, int]:
    """Cards the learner may still review today (the counter starts afresh each local day)."""
    day = local_today(s, now).isoformat()
    if s.reviews_day != day:
        s = s.but(reviews_day=day, reviews_today=0)
    return s, max(0, s.daily_max - s.reviews_today)


def push(host: Host, s: LearnerState, event: Push, out: Out) -> LearnerState:
    """The daily push: a due card with its answer behind a button, or a teaser of the next section,
    and the streak. Early by more than a minute: not yet; late by more than ``PUSH_GRACE``: skipped."""
    now = out.now
    if s.phase == "new" or (s.paused and not event.force):
        return s
    due_at = datetime.fromisoformat(s.push_due) if s.push_due else None
    s = s.but(push_due=schedule.next_push(now, s.tz, s.push_time).isoformat())
    if not event.force and due_at is not None and now - due_at > PUSH_GRACE:
        return s  # missed while the bot was down: not sent late
    if not event.force and due_at is not None and due_at - now > timedelta(minutes=1):
        return s.but(push_due=due_at.isoformat())  # not yet
    day = local_today(s, now)
    last = date.fromisoformat(s.last_day) if s.last_day else None
    streak = schedule.live_streak(s.streak, last, day)
    lines = []
    if streak:
        lines.append(host.t(s, "push_streak", n=streak, best=s.best_streak))
        if last != day:
            lines.append(host.t(s, "push_streak_risk", n=streak))
    due = cards.due_cards(s.deck, now)
    s, left = reviews_left(s, now)
    if due and left > 0:
        q = host.course.card(due[0]).q.get(s.lang)
        head = host.t(s, "push_card", n=len(due))
        text = "\n".join([head, "", f"🃏 **{q}**", *(["", *lines] if lines else [])])
        out.say(text, ((card_show(host.t(s, "btn_show_answer"), due[0]),),), seq=s.seq)
        return s
    nxt = next((sid for sid in host.course.section_ids if sid not in s.done_sections), None)
    if nxt is None:
        if lines:
            out.say("\n".join([host.t(s, "push_all_done"), "", *lines]))
        return s
    section = host.course.section(nxt)
    teaser = host.t(s, "push_teaser", label=host.section_label(nxt), title=section.title.get(s.lang),
                    point=section.steps[0].point.get(s.lang))
    out.say("\n".join([teaser, *(["", *lines] if lines else [])]),
            ((button(host.t(s, "btn_go"), Action.RESUME),),), seq=s.seq)
    return s


def progress_lines(host: Host, s: LearnerState, now: datetime) -> str:
    last = date.fromisoformat(s.last_day) if s.last_day else None
    streak = schedule.live_streak(s.streak, last, local_today(s, now))
    due = len(cards.due_cards(s.deck, now))
    return host.t(s, "progress_daily", streak=streak, best=s.best_streak, due=due, deck=len(s.deck))

"""``/quiz``: questions from what the learner has covered, weakest concept first (mastery per concept,
Laplace-smoothed, from the answers). Plain functions over the engine's ``Host``."""

from __future__ import annotations

from typing import Any

from dialogs import aside, numbers
from dialogs.context import LETTERS, Host, Out, odd_digits_note
from dialogs.course import Choice, Predict, Statements
from dialogs.markup import plain
from dialogs.messages import QuizPoll
from dialogs.state import LearnerState

QUIZ_KINDS = (Choice, Statements, Predict)
MAX_QUIZ = 10
POLL_QUESTION, POLL_OPTION, POLL_EXPLANATION = 300, 100, 200


def covered(host: Host, s: LearnerState) -> list[tuple[str, Any]]:
    """(section id, question) of every question the learner has already met."""
    found: list[tuple[str, Any]] = []
    position = s.saved if s.mode != "course" and s.saved else {"section": s.section, "step": s.step}
    for section in host.course.sections():
        if section.id in s.done_sections:
            steps = list(section.steps)
        elif section.id == position.get("section"):
            ids = [x.id for x in section.steps]
            step_id = position.get("step")
            upto = ids.index(step_id) if isinstance(step_id, str) and step_id in ids else 0
            steps = list(section.steps[:upto])
        else:
            continue
        found.extend((section.id, st) for st in steps if isinstance(st, QUIZ_KINDS))
    return found


def weakness(s: LearnerState, step: Any) -> float:
    """Estimated mastery of the question's weakest concept (Laplace-smoothed right/total)."""
    scores = [(s.mastery.get(tag, [0, 0])[0] + 1) / (s.mastery.get(tag, [0, 0])[1] + 2)
              for tag in (step.tags or ("untagged",))]
    return min(scores)


def choose(host: Host, s: LearnerState) -> tuple[str, Any] | None:
    pool = covered(host, s)
    if not pool:
        return None
    fresh = [q for q in pool if q[1].id not in s.quiz_asked] or pool
    ranked = sorted(enumerate(fresh), key=lambda iq: (weakness(s, iq[1][1]), -iq[0]))
    return ranked[0][1]


def command(host: Host, s: LearnerState, args: str, out: Out) -> LearnerState:
    """``/quiz`` or ``/quiz N``."""
    if s.phase == "evaluating":
        out.say(host.t(s, "still_running"))
        return s
    n = 1
    arg = args.strip()
    if arg:  # read before anything changes: a number we cannot read stops no review
        parsed = numbers.parse_int(arg, 1, MAX_QUIZ)
        if parsed is None:
            out.say(odd_digits_note(host, s, arg) + host.t(s, "quiz_usage", max=MAX_QUIZ))
            return s
        n = parsed
    if s.mode == "quiz":
        return host.resend(s, out)
    if s.mode == "cards":
        s = aside.restore(host, s, out, "cards_stopped")
    picked = choose(host, s)
    if picked is None:
        out.say(host.t(s, "quiz_none"))
        return s
    s = aside.save(s).moved(mode="quiz", quiz_left=n - 1, quiz_asked=s.quiz_asked[-5:])
    return ask(host, s, picked, n, out)


def ask(host: Host, s: LearnerState, picked: tuple[str, Any], total: int, out: Out) -> LearnerState:
    section_id, step = picked
    number = total - s.quiz_left
    out.say(host.t(s, "quiz_header", i=number, n=total, label=host.section_label(section_id),
                   title=host.course.section(section_id).title.get(s.lang)))
    s = s.moved(section=section_id, step=step.id, phase="question", attempts=0, selected=(), judged=())
    return host.ask(s, step, out)


def next_question(host: Host, s: LearnerState, out: Out) -> LearnerState:
    """The quiz question is done: the next one, or back to the lesson."""
    asked = (*s.quiz_asked, s.step or "")[-6:]
    s = s.but(quiz_asked=asked)
    if s.quiz_left > 0:
        picked = choose(host, s)
        if picked is not None:
            total = s.quiz_left + len([a for a in asked if a])  # only used for the "i of n" header
            s = s.but(quiz_left=s.quiz_left - 1)
            return ask(host, s, picked, min(total, MAX_QUIZ), out)
    return aside.restore(host, s, out, "quiz_done")


def poll(s: LearnerState, step: Any) -> QuizPoll | None:
    """The question as a Telegram quiz poll, when it is a plain single choice that fits the limits."""
    if s.mode != "quiz" or not isinstance(step, Choice) or step.multi or step.code:
        return None
    question = plain(step.prompt.get(s.lang))
    options = tuple(f"{LETTERS[i]}. {plain(o.text.get(s.lang))}" for i, o in enumerate(step.options))
    if "\n" in question or len(question) > POLL_QUESTION or any(len(o) > POLL_OPTION for o in options):
        return None
    correct = next(i for i, o in enumerate(step.options) if o.correct)
    explanation = plain(step.options[correct].feedback.get(s.lang)).lstrip("✅ ").strip()
    if len(explanation) > POLL_EXPLANATION:
        explanation = explanation[: POLL_EXPLANATION - 1].rstrip() + "…"
    return QuizPoll(question, options, correct, explanation)

"""``/quiz``: a few questions from what the learner has covered, weakest concept first (mastery per
concept, Laplace-smoothed, from the answers), numbered "i/n", ended by a one-line summary. Plain
functions over the engine's ``Host``."""

from __future__ import annotations

from typing import Any

from dialogs import aside, numbers
from dialogs.context import LETTERS, Host, Out, odd_digits_note
from dialogs.course import Choice, Predict, Statements
from dialogs.markup import plain
from dialogs.messages import LogAnswer, QuizPoll
from dialogs.state import LearnerState

QUIZ_KINDS = (Choice, Statements, Predict)
MAX_QUIZ = 10
QUIZ_SIZE = 5  # ``/quiz`` alone
RECENT = 5  # questions of the latest quizzes that a new quiz asks last
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


def choose(host: Host, s: LearnerState, skip: tuple[str, ...] = ()) -> tuple[str, Any] | None:
    """The next question: none of ``skip`` (this quiz's), one not asked lately if there is one, the
    weakest concept first, and of equals the latest covered."""
    pool = [q for q in covered(host, s) if q[1].id not in skip]
    if not pool:
        return None
    fresh = [q for q in pool if q[1].id not in s.quiz_asked] or pool
    ranked = sorted(enumerate(fresh), key=lambda iq: (weakness(s, iq[1][1]), -iq[0]))
    return ranked[0][1]


def prompt(s: LearnerState, step: Any) -> str:
    """The question's prompt; in a quiz its ``quiz_prompt`` when it has one (a quiz asks it out of its
    lesson, where "Last round for this section" means nothing)."""
    quiz_prompt = getattr(step, "quiz_prompt", None)
    return (quiz_prompt if s.mode == "quiz" and quiz_prompt is not None else step.prompt).get(s.lang)


def command(host: Host, s: LearnerState, args: str, out: Out) -> LearnerState:
    """``/quiz`` (``QUIZ_SIZE`` questions) or ``/quiz N``; fewer when fewer are covered."""
    if s.phase == "evaluating":
        out.say(host.t(s, "still_running"))
        return s
    n = QUIZ_SIZE
    arg = args.strip()
    if arg:  # read before anything changes: a number we cannot read stops no review
        parsed = numbers.parse_int(arg, 1, MAX_QUIZ)
        if parsed is None:
            out.say(odd_digits_note(host, s, arg) + host.t(s, "quiz_usage", max=MAX_QUIZ))
            return s
        n = parsed
    if s.mode == "quiz":
        return host.resend(s, out)
    available = len(covered(host, s))
    if not available:
        if s.mode == "cards":
            s = aside.restore(host, s, out, "cards_stopped")
        out.say(host.t(s, "quiz_none"))
        return s
    if s.mode == "cards":  # the quiz follows at once: no need to show the lesson in between
        s = aside.back(s)
        out.say(host.t(s, "cards_stopped"))
    if arg and n > available:
        out.say(host.t(s, "quiz_fewer", n=available))
    n = min(n, available)
    s = aside.save(s).moved(mode="quiz", quiz_left=n - 1, quiz_total=n, quiz_right=0,
                            quiz_asked=s.quiz_asked[-RECENT:])
    picked = choose(host, s)
    assert picked is not None
    return ask(host, s, picked, out)


def ask(host: Host, s: LearnerState, picked: tuple[str, Any], out: Out) -> LearnerState:
    section_id, step = picked
    total = max(s.quiz_total, s.quiz_left + 1)  # a quiz stored before quiz_total existed counts from here
    out.say(host.t(s, "quiz_header", i=total - s.quiz_left, n=total, label=host.section_label(section_id),
                   title=host.course.section(section_id).title.get(s.lang)))
    s = s.moved(section=section_id, step=step.id, phase="question", attempts=0, hints=0, selected=(), judged=())
    return host.ask(s, step, out)


def next_question(host: Host, s: LearnerState, out: Out) -> LearnerState:
    """The quiz question is done (its grade is among this turn's effects): the next one, or the end."""
    right = s.attempts == 0 and any(isinstance(e, LogAnswer) and e.step == s.step and e.correct
                                    for e in out.effects)
    asked = (*s.quiz_asked, s.step or "")[-(RECENT + MAX_QUIZ):]
    s = s.but(quiz_asked=asked, quiz_right=s.quiz_right + int(right))
    if s.quiz_left > 0:
        this_quiz = asked[-max(1, s.quiz_total - s.quiz_left):]
        picked = choose(host, s, skip=this_quiz)
        if picked is not None:
            return ask(host, s.but(quiz_left=s.quiz_left - 1), picked, out)
    return finish(host, s, out)


def finish(host: Host, s: LearnerState, out: Out) -> LearnerState:
    """The end of a quiz: how it went in one line, and back to the lesson. At a section's end that is
    what comes next and its Continue button, not the section's flashcards again."""
    done = s.quiz_total - s.quiz_left
    summary = host.t(s, "quiz_summary", right=s.quiz_right, n=max(done, s.quiz_right))
    s = aside.back(s)
    if s.phase in ("new", "done"):
        out.say(summary)
        return s
    summary += ("" if s.lang == "zh" else " ") + host.t(s, "back_to_lesson")
    if s.phase != "section_end":
        out.say(summary)
        return host.resend(s, out)
    nxt = next((sid for sid in host.course.section_ids if sid not in s.done_sections), None)
    if nxt is None:
        line = host.t(s, "next_is_end")
    else:
        line = host.t(s, "next_up", label=host.section_label(nxt), title=host.course.section(nxt).title.get(s.lang))
    out.say(summary + "\n\n" + line, host.go_button(s), seq=s.seq)
    return s


def poll(s: LearnerState, step: Any) -> QuizPoll | None:
    """The question as a Telegram quiz poll, when it is a plain single choice that fits the limits."""
    if s.mode != "quiz" or not isinstance(step, Choice) or step.multi or step.code:
        return None
    question = plain(prompt(s, step))
    options = tuple(f"{LETTERS[i]}. {plain(o.text.get(s.lang))}" for i, o in enumerate(step.options))
    if "\n" in question or len(question) > POLL_QUESTION or any(len(o) > POLL_OPTION for o in options):
        return None
    correct = next(i for i, o in enumerate(step.options) if o.correct)
    explanation = plain(step.options[correct].feedback.get(s.lang)).lstrip("✅ ").strip()
    if len(explanation) > POLL_EXPLANATION:
        explanation = explanation[: POLL_EXPLANATION - 1].rstrip() + "…"
    return QuizPoll(question, options, correct, explanation)

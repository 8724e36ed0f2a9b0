"""What every step kind has, and the helpers questions share."""

from __future__ import annotations

from typing import Any

from dialogs import quiz
from dialogs.actions import Action, button
from dialogs.context import Host, Keyboard, Out
from dialogs.course import Choice, Explain, Predict
from dialogs.messages import Edit, Press
from dialogs.state import LearnerState


class StepKind:
    """A kind of step. ``present`` shows it; ``expect_key`` names what the learner can send meanwhile."""

    expect_key = "say_go"

    def present(self, host: Host, s: LearnerState, step: Any, out: Out) -> LearnerState:
        raise NotImplementedError


class Question(StepKind):
    """A step that asks: its message (``text`` and ``buttons``), grading of a typed answer (``typed``)
    and of its buttons (``pressed``), the answer shown on request (``reveal``), hints (``hint``)."""

    def present(self, host: Host, s: LearnerState, step: Any, out: Out) -> LearnerState:
        return host.ask(s.but(phase="question"), step, out)

    def text(self, host: Host, s: LearnerState, step: Any) -> str:
        text = quiz.prompt(s, step)
        if getattr(step, "code", None):
            text += f"\n\n```python\n{step.code.rstrip()}\n```"
        return text + self.body(host, s, step)

    def body(self, host: Host, s: LearnerState, step: Any) -> str:
        """What follows the prompt (options, statements, how to answer)."""
        return ""

    def buttons(self, host: Host, s: LearnerState, step: Any) -> Keyboard:
        return ()

    def typed(self, host: Host, s: LearnerState, step: Any, text: str, out: Out) -> LearnerState:
        raise NotImplementedError

    def pressed(self, host: Host, s: LearnerState, step: Any, press: Press, out: Out) -> LearnerState:
        """A button of this question's keyboard (the version was checked already)."""
        host.stale(s, out)
        return s

    def reveal(self, host: Host, s: LearnerState, step: Any, out: Out) -> LearnerState:
        raise NotImplementedError

    def hint(self, host: Host, s: LearnerState, step: Any, out: Out) -> LearnerState:
        """The next rung of the ladder (``hints``): a pointer to the idea, then the authored hint, if any;
        past the last one, say so and offer the answer."""
        ladder = hints(host, s, step)
        if s.hints >= len(ladder):
            out.say(host.t(s, "question_hints_done"), reveal_button(host, s), seq=s.seq)
            return s
        s = s.but(hints=s.hints + 1)
        more = s.hints < len(ladder)
        keyboard = ((button(host.t(s, "btn_hint"), Action.HINT),),) if more else (
            reveal_button(host, s) if s.phase == "retry" else ())
        label = host.t(s, "hint_label", i=s.hints, n=len(ladder))
        out.say(label + "\n" + ladder[s.hints - 1], keyboard, seq=s.seq)
        return s

    def wrong(self, host: Host, s: LearnerState, step: Any, shown: str, feedback: str, out: Out) -> LearnerState:
        """Not right (yet): the question stays open where it is, the verdict and feedback under it, with a
        button to see the answer; the learner simply answers again."""
        s = s.moved(phase="retry", attempts=s.attempts + 1, selected=(), judged=())
        keyboard = (*self.buttons(host, s, step), *reveal_button(host, s))
        note = "\n\n".join([host.t(s, "you_answered", answer=shown), feedback, host.t(s, "retry_or_reveal")])
        out.replies.append(Edit(anchor(s), self.text(host, s, step), keyboard, s.seq, note=note))
        return s

    def close(self, host: Host, s: LearnerState, step: Any, shown: str, out: Out, note: str = "") -> None:
        """Edit the question message: show the answer given, drop the keyboard; ``note`` (the verdict and
        feedback, when nothing else needs saying) goes with it."""
        clean = self.text(host, s.but(selected=(), judged=()), step)
        out.replies.append(Edit(anchor(s), clean + "\n\n" + host.t(s, "you_answered", answer=shown), note=note))


def hints(host: Host, s: LearnerState, step: Any) -> list[str]:
    """A question's hints in the learner's language: first a pointer to the idea it rests on (never its
    answer), then the hint written for it (``hint:`` in the content), if there is one."""
    ladder = [pointer(host, s, step)]
    authored = getattr(step, "hint", None)
    if authored is not None:
        ladder.append(authored.get(s.lang))
    return ladder


def pointer(host: Host, s: LearnerState, step: Any) -> str:
    """The point of the nearest explanation before ``step`` in its section ("think back to: ..."); with
    none before it, the question of the section's first flashcard (a question, not its answer). A text
    that holds the answer (a right option's text, the printed answer) is passed over for the next one."""
    assert s.section is not None
    section = host.course.section(s.section)
    before = section.steps[:next(i for i, st in enumerate(section.steps) if st.id == step.id)]
    candidates = [("hint_pointer", "point", st.point) for st in reversed(before)
                  if isinstance(st, Explain)]  # ``ponder`` steps too: they explain, after asking
    candidates += [("hint_card", "question", card.q) for card in section.cards]
    candidates.append(("hint_pointer", "point", section.title))
    for key, name, text in candidates:
        if not gives_away(step, text.get(s.lang), s.lang):
            return host.t(s, key, **{name: text.get(s.lang)})
    return host.t(s, "hint_pointer", point=section.title.get(s.lang))


def gives_away(step: Any, text: str, lang: str) -> bool:
    """Does ``text`` hold the answer of ``step``: the text of a right option, or the printed answer?"""
    if isinstance(step, Choice):
        answers = [o.text.get(lang) for o in step.options if o.correct]
    elif isinstance(step, Predict):
        answers = [step.answer, *step.accept]
    else:
        answers = []
    folded = text.casefold()
    return any(a.strip().casefold() in folded for a in answers if a.strip())


def anchor(s: LearnerState) -> str:
    """The name of the question's message, for later edits."""
    return f"{'quiz' if s.mode == 'quiz' else 'q'}:{s.step}"


def reveal_button(host: Host, s: LearnerState) -> Keyboard:
    return ((button(host.t(s, "btn_reveal"), Action.REVEAL),),)


def rows_of(buttons: tuple[Any, ...], width: int = 4) -> Keyboard:
    return tuple(buttons[i:i + width] for i in range(0, len(buttons), width))

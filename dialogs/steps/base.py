"""What every step kind has, and the helpers questions share."""

from __future__ import annotations

from typing import Any

from dialogs import quiz
from dialogs.actions import Action, button
from dialogs.context import Host, Keyboard, Out
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
        out.say(host.t(s, "no_hints"), reveal_button(host, s) if s.phase == "retry" else (), seq=s.seq)
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


def anchor(s: LearnerState) -> str:
    """The name of the question's message, for later edits."""
    return f"{'quiz' if s.mode == 'quiz' else 'q'}:{s.step}"


def reveal_button(host: Host, s: LearnerState) -> Keyboard:
    return ((button(host.t(s, "btn_reveal"), Action.REVEAL),),)


def rows_of(buttons: tuple[Any, ...], width: int = 4) -> Keyboard:
    return tuple(buttons[i:i + width] for i in range(0, len(buttons), width))

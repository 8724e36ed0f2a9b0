"""What every step kind has, and the helpers questions share."""

from __future__ import annotations

from typing import Any

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
        text = step.prompt.get(s.lang)
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
        out.say(host.t(s, "no_hints"), retry_buttons(host, s) if s.phase == "retry" else (), seq=s.seq)
        return s

    def close(self, host: Host, s: LearnerState, step: Any, shown: str, out: Out) -> None:
        """Edit the question message: show the answer given, drop the keyboard."""
        clean = self.text(host, s.but(selected=(), judged=()), step)
        out.replies.append(Edit(anchor(s), clean + "\n\n" + host.t(s, "you_answered", answer=shown)))


def anchor(s: LearnerState) -> str:
    """The name of the question's message, for later edits."""
    return f"{'quiz' if s.mode == 'quiz' else 'q'}:{s.step}"


def retry_buttons(host: Host, s: LearnerState) -> Keyboard:
    return ((button(host.t(s, "btn_retry"), Action.RETRY), button(host.t(s, "btn_reveal"), Action.REVEAL)),)


def praise(host: Host, s: LearnerState) -> str:
    return host.pick(s, "praise") if s.attempts == 0 else host.pick(s, "praise_retry")


def rows_of(buttons: tuple[Any, ...], width: int = 4) -> Keyboard:
    return tuple(buttons[i:i + width] for i in range(0, len(buttons), width))

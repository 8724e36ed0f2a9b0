"""An explanation: text, maybe a runnable example with its real output, a quote of the docs, a
picture of the example's autograd graph; the learner continues with "go"."""

from __future__ import annotations

from dialogs import pictures
from dialogs.context import Host, Out
from dialogs.course import Explain
from dialogs.state import LearnerState
from dialogs.steps.base import StepKind


class ExplainKind(StepKind):
    expect_key = "say_go"

    def present(self, host: Host, s: LearnerState, step: Explain, out: Out) -> LearnerState:
        text = step.text.get(s.lang)
        if step.code:
            text += f"\n\n```python\n{step.code.rstrip()}\n```"
        if step.output is not None:
            text += "\n\n" + host.t(s, "output") + f"\n```\n{step.output.rstrip()}\n```"
        if step.quote:
            text += "\n\n" + host.t(s, "quote", text=step.quote.text.strip(), source=step.quote.source)
            if s.lang == "zh" and step.quote.translation:
                text += "\n" + step.quote.translation.strip()
        # with a picture to come, "Continue" waits for it (it comes under the picture: pictures.after_lesson)
        out.say(text, () if pictures.draws(step) else host.go_button(s), seq=s.seq)
        pictures.lesson(step, out)
        return s.but(phase="explain")

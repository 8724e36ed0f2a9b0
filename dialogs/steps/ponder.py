"""Think, then see: a question the learner answers in their head (or types a guess), then the explanation.

For an explanation that would otherwise ask and answer in the same breath ("where does the gradient end
up? ... in ``a.grad``"): the learner gets to think first. Nothing is graded or logged; any message (a guess,
``go``, Enter) or the button shows the explanation, the guess quoted above it.
"""

from __future__ import annotations

from dialogs import answers
from dialogs.actions import Action, button
from dialogs.context import Host, Keyboard, Out, literal
from dialogs.course import Ponder
from dialogs.messages import Edit
from dialogs.state import LearnerState
from dialogs.steps.base import Question, anchor
from dialogs.steps.explain import ExplainKind

#: Words that only ask to see (no guess to quote)
SEE_WORDS = frozenset({"", "go", "ok", "okay", "next", "show", "show me", "continue", "idk", "dunno", "?",
                       "继续", "好", "不知道", "看答案", "显示"})
GUESS_SHOWN = 300


class PonderKind(Question):
    expect_key = "expect_ponder"

    def text(self, host: Host, s: LearnerState, step: Ponder) -> str:
        return step.prompt.get(s.lang) + "\n\n" + host.t(s, "how_ponder")

    def buttons(self, host: Host, s: LearnerState, step: Ponder) -> Keyboard:
        return ((button(host.t(s, "btn_ponder"), Action.REVEAL),),)

    def typed(self, host: Host, s: LearnerState, step: Ponder, text: str, out: Out) -> LearnerState:
        guess = text.strip()
        if answers.normalise(guess) in SEE_WORDS:
            return self.reveal(host, s, step, out)
        return self.reveal(host, s, step, out, guess=guess)

    def hint(self, host: Host, s: LearnerState, step: Ponder, out: Out) -> LearnerState:
        out.say(host.t(s, "ponder_hint"))
        return s

    def reveal(self, host: Host, s: LearnerState, step: Ponder, out: Out, guess: str = "") -> LearnerState:
        """The prompt stays (its button goes); the learner's guess, quoted literally, then the explanation."""
        note = host.t(s, "ponder_yours", guess=literal(guess, GUESS_SHOWN)) if guess else ""
        self.close_prompt(host, s, step, out, note)
        return ExplainKind().present(host, s.moved(phase="explain"), step, out)

    def close_prompt(self, host: Host, s: LearnerState, step: Ponder, out: Out, note: str) -> None:
        out.replies.append(Edit(anchor(s), step.prompt.get(s.lang), note=note))

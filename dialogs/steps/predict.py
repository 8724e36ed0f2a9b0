""""What does this print?": type the output (``tensor([6.])``, ``tensor([6.0])`` and ``6`` count the
same), or pick one of the options."""

from __future__ import annotations

from dialogs import answers, daily, markup, numbers
from dialogs.actions import Action, index_of, pick
from dialogs.context import LETTERS, MAX_ECHO, Host, Keyboard, Out, odd_digits_note
from dialogs.course import Predict
from dialogs.messages import Press
from dialogs.state import LearnerState
from dialogs.steps.base import Question, rows_of
from dialogs.steps.lines import praise, predict_wrong

#: A typed prediction longer than this is not an output we could compare.
MAX_PREDICTION = 500


class PredictKind(Question):
    expect_key = "expect_predict"

    def body(self, host: Host, s: LearnerState, step: Predict) -> str:
        if not step.options:
            return "\n\n" + host.t(s, "how_predict")
        text = "".join(f"\n**{LETTERS[i]}.** `{o}`" for i, o in enumerate(step.options))
        return text + "\n\n" + host.t(s, "how_predict_options")

    def buttons(self, host: Host, s: LearnerState, step: Predict) -> Keyboard:
        return rows_of(tuple(pick(LETTERS[i], i) for i in range(len(step.options))))

    def typed(self, host: Host, s: LearnerState, step: Predict, text: str, out: Out) -> LearnerState:
        if numbers.odd_digits(text):  # "tensor([٤.])", "x²": not graded, asked again (no attempt spent)
            out.say(odd_digits_note(host, s, text) + host.t(s, "how_predict_options" if step.options
                                                                else "how_predict"))
            return s
        if step.options and not any(ch in numbers.ASCII_DIGITS for ch in numbers.fold_fullwidth(text)):
            # a letter picks an option; digits are read as the output itself ("2 2" is not "b")
            picked = answers.parse_choice(text, len(step.options))
            if picked is not None and len(picked) == 1:
                return self.answer(host, s, step, step.options[picked[0]], out)
        if len(text) > MAX_PREDICTION:
            out.say(host.t(s, "parse_predict"))
            return s
        return self.answer(host, s, step, text, out)

    def pressed(self, host: Host, s: LearnerState, step: Predict, press: Press, out: Out) -> LearnerState:
        index = index_of(press) if press.action == Action.PICK else None
        if index is None or index >= len(step.options):
            host.stale(s, out)
            return s
        return self.answer(host, s, step, step.options[index], out)

    def answer(self, host: Host, s: LearnerState, step: Predict, typed: str, out: Out) -> LearnerState:
        ok = answers.predict_matches(typed, step.answer, step.match, step.accept)
        echo = typed.strip() if len(typed.strip()) <= MAX_ECHO else typed.strip()[:MAX_ECHO] + "…"
        shown = f"`{markup.literal(echo)}`"
        if ok:
            head, s = praise(host, s)
            self.close(host, s, step, shown, out, note=head + "\n\n" + host.t(s, "real_output")
                       + f"\n```\n{step.answer.rstrip()}\n```\n" + step.right.get(s.lang))
            s = daily.answered(s, out, step, typed, "right", True)
            return host.complete(s, out)
        head, s = predict_wrong(host, s, typed, step.answer, step.match)
        s = daily.answered(s, out, step, typed, "wrong", False)
        return self.wrong(host, s, step, shown, head + "\n\n" + step.wrong.get(s.lang), out)

    def reveal(self, host: Host, s: LearnerState, step: Predict, out: Out) -> LearnerState:
        self.close(host, s, step, "—", out, note=host.t(s, "reveal_head") + "\n```\n" + step.answer.rstrip()
                   + "\n```\n" + step.right.get(s.lang))
        s = daily.answered(s, out, step, "", "revealed", False)
        return host.complete(s, out)

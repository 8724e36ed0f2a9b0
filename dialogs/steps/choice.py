"""Single and multiple choice: tap (multi-select toggles, then Submit) or type ``b``, ``bc``, ``2 3``."""

from __future__ import annotations

from dialogs import answers, daily
from dialogs.actions import Action, button, index_of, pick, toggle
from dialogs.context import LETTERS, Host, Keyboard, Out, feedback, odd_digits_note
from dialogs.course import Choice
from dialogs.messages import Edit, Press
from dialogs.state import LearnerState
from dialogs.steps.base import Question, anchor, rows_of
from dialogs.steps.lines import not_yet, praise


class ChoiceKind(Question):
    expect_key = "expect_choice"

    def body(self, host: Host, s: LearnerState, step: Choice) -> str:
        text = ""
        for i, o in enumerate(step.options):
            mark = ("✅ " if i in s.selected else "▫️ ") if step.multi else ""
            text += f"\n{mark}**{LETTERS[i]}.** {o.text.get(s.lang)}"
        return text + "\n\n" + host.t(s, "how_multi" if step.multi else "how_single")

    def buttons(self, host: Host, s: LearnerState, step: Choice) -> Keyboard:
        if step.multi:
            marks = tuple(toggle(("✅ " if i in s.selected else "▫️ ") + LETTERS[i], i)
                          for i in range(len(step.options)))
            return (*rows_of(marks), (button(host.t(s, "btn_submit"), Action.SUBMIT),))
        return rows_of(tuple(pick(LETTERS[i], i) for i in range(len(step.options))))

    def typed(self, host: Host, s: LearnerState, step: Choice, text: str, out: Out) -> LearnerState:
        picked = answers.parse_choice(text, len(step.options))
        if picked is None or (not step.multi and len(picked) != 1):
            key = "parse_choice_multi" if step.multi else "parse_choice_single"
            out.say(odd_digits_note(host, s, text) + host.t(s, key, last=LETTERS[len(step.options) - 1].lower()))
            return s
        return self.answer(host, s, step, picked, out)

    def pressed(self, host: Host, s: LearnerState, step: Choice, press: Press, out: Out) -> LearnerState:
        if press.action == Action.SUBMIT and step.multi:
            if not s.selected:
                out.say(host.t(s, "pick_first"))
                out.toast = host.t(s, "pick_first")
                return s
            return self.answer(host, s, step, s.selected, out)
        index = index_of(press)
        if index is None or index >= len(step.options):
            host.stale(s, out)
            return s
        if press.action == Action.PICK:
            return self.answer(host, s, step, (index,), out)
        if press.action == Action.TOGGLE and step.multi:
            s = s.but(selected=tuple(sorted(set(s.selected) ^ {index})))
            out.replies.append(Edit(anchor(s), self.text(host, s, step), self.buttons(host, s, step), s.seq))
            return s
        host.stale(s, out)
        return s

    def answer(self, host: Host, s: LearnerState, step: Choice, picked: tuple[int, ...], out: Out) -> LearnerState:
        lang = s.lang
        right = {i for i, o in enumerate(step.options) if o.correct}
        chosen = set(picked)
        shown = "".join(LETTERS[i] for i in sorted(chosen))
        lines = []
        for i in sorted(chosen):
            o = step.options[i]
            lines.append(f"{'✅' if o.correct else '❌'} **{LETTERS[i]}.** {feedback(o.feedback.get(lang))}")
        if chosen == right:
            head, s = praise(host, s)
            s = daily.answered(s, out, step, shown, "right", True)
            others = [f"▫️ **{LETTERS[i]}.** {feedback(step.options[i].feedback.get(lang))}"
                      for i in range(len(step.options)) if i not in chosen]
            text = head + "\n\n" + "\n".join(lines)
            if others:
                text += "\n\n" + host.t(s, "about_others") + "\n" + "\n".join(others)
            self.close(host, s, step, shown, out, note=text)
            return host.complete(s, out)
        good = len(chosen & right)
        if step.multi and good:
            missed = len(right - chosen)
            extra = len(chosen - right)
            gap = "" if s.lang == "zh" else " "  # Chinese sentences are not separated by spaces
            head = host.t(s, "partial_multi", good=good, total=len(right))
            if missed:
                head += gap + host.t(s, "missed", n=missed)
            if extra:
                head += gap + host.t(s, "extra", n=extra)
            s = daily.answered(s, out, step, shown, "partial", False)
        else:
            head, s = not_yet(host, s)
            s = daily.answered(s, out, step, shown, "wrong", False)
        return self.wrong(host, s, step, shown, head + "\n\n" + "\n".join(lines), out)

    def reveal(self, host: Host, s: LearnerState, step: Choice, out: Out) -> LearnerState:
        lines = [f"{'✅' if o.correct else '❌'} **{LETTERS[i]}.** {feedback(o.feedback.get(s.lang))}"
                 for i, o in enumerate(step.options)]
        self.close(host, s, step, "—", out, note=host.t(s, "reveal_head") + "\n\n" + "\n".join(lines))
        s = daily.answered(s, out, step, "", "revealed", False)
        return host.complete(s, out)

"""A batch of true/false statements: tap ✓/✗ per statement, or type them all (``F T T``, ``错 对 对``,
``1 0 1``) or a few at a time."""

from __future__ import annotations

from dialogs import answers, daily
from dialogs.actions import Action, judge, judgement_of
from dialogs.context import Host, Keyboard, Out, feedback, odd_digits_note
from dialogs.course import Statements
from dialogs.messages import Edit, Press
from dialogs.state import LearnerState
from dialogs.steps.base import Question, anchor
from dialogs.steps.lines import listing, praise


class StatementsKind(Question):
    expect_key = "expect_statements"

    def body(self, host: Host, s: LearnerState, step: Statements) -> str:
        text = ""
        for i, st in enumerate(step.statements):
            mark = ""
            if s.judged and s.judged[i] != -1:
                mark = " → " + ("✓" if s.judged[i] == 1 else "✗")
            text += f"\n**{i + 1}.** {st.text.get(s.lang)}{mark}"
        return text + "\n\n" + host.t(s, "how_statements", n=len(step.statements))

    def buttons(self, host: Host, s: LearnerState, step: Statements) -> Keyboard:
        rows = []
        for i in range(len(step.statements)):
            j = s.judged[i] if s.judged else -1
            rows.append((judge(f"{i + 1} ✓" + (" •" if j == 1 else ""), i, True),
                         judge(f"{i + 1} ✗" + (" •" if j == 0 else ""), i, False)))
        return tuple(rows)

    def typed(self, host: Host, s: LearnerState, step: Statements, text: str, out: Out) -> LearnerState:
        n = len(step.statements)
        verdicts = answers.parse_judgements(text, n)
        if verdicts is None or not verdicts:
            out.say(odd_digits_note(host, s, text) + host.t(s, "parse_statements", n=n))
            return s
        if len(verdicts) == n:
            return self.answer(host, s, step, verdicts, out)
        judged = list(s.judged or (-1,) * n)
        todo = [i for i, j in enumerate(judged) if j == -1]
        if len(verdicts) > len(todo):
            out.say(host.t(s, "parse_statements", n=n))
            return s
        for i, v in zip(todo, verdicts, strict=False):
            judged[i] = 1 if v else 0
        s = s.but(judged=tuple(judged))
        if -1 in judged:
            nxt = judged.index(-1)
            out.say(host.t(s, "one_by_one", done=n - judged.count(-1), n=n, next=nxt + 1))
            return s
        return self.answer(host, s, step, tuple(j == 1 for j in judged), out)

    def pressed(self, host: Host, s: LearnerState, step: Statements, press: Press, out: Out) -> LearnerState:
        judgement = judgement_of(press) if press.action == Action.JUDGE else None
        if judgement is None or judgement[0] >= len(step.statements):
            host.stale(s, out)
            return s
        index, value = judgement
        judged = list(s.judged or [-1] * len(step.statements))
        judged[index] = 1 if value else 0
        s = s.but(judged=tuple(judged))
        if -1 in judged:
            out.replies.append(Edit(anchor(s), self.text(host, s, step), self.buttons(host, s, step), s.seq))
            return s
        return self.answer(host, s, step, tuple(j == 1 for j in judged), out)

    def answer(self, host: Host, s: LearnerState, step: Statements, verdicts: tuple[bool, ...],
               out: Out) -> LearnerState:
        tf = host.t(s, "true_false").split("/")
        shown = " ".join(tf[0] if v else tf[1] for v in verdicts)
        lines = []
        wrong_ones = []
        for i, (st, v) in enumerate(zip(step.statements, verdicts, strict=True)):
            ok = v == st.answer
            if not ok:
                wrong_ones.append(i + 1)
            said = "" if ok else host.t(s, "you_said", answer=tf[0] if v else tf[1])
            line = statement_line(i + 1, tf[0] if st.answer else tf[1], said, feedback(st.feedback.get(s.lang)))
            lines.append(f"{'✅' if ok else '❌'} {line}")
        n = len(verdicts)
        good = n - len(wrong_ones)
        if not wrong_ones:
            head, s = praise(host, s)
            verdict = "right"
        elif good == 0:
            head = host.t(s, "statements_none", n=n)
            verdict = "wrong"
        else:
            traps = listing(host, s, [str(i) for i in wrong_ones])
            key = "statements_partial" if len(wrong_ones) == 1 else "statements_partial_many"
            head = host.t(s, key, good=good, n=n, traps=traps)
            verdict = "partial"
        self.close(host, s, step, shown, out, note=head + "\n\n" + "\n".join(lines))
        s = daily.answered(s, out, step, shown, verdict, not wrong_ones)
        return host.complete(s, out)

    def reveal(self, host: Host, s: LearnerState, step: Statements, out: Out) -> LearnerState:
        tf = host.t(s, "true_false").split("/")
        lines = [statement_line(i + 1, tf[0] if st.answer else tf[1], "", feedback(st.feedback.get(s.lang)))
                 for i, st in enumerate(step.statements)]
        self.close(host, s, step, "—", out, note=host.t(s, "reveal_head") + "\n\n" + "\n".join(lines))
        s = daily.answered(s, out, step, "", "revealed", False)
        return host.complete(s, out)


#: What may follow a verdict word that opens a statement's feedback ("True, and that's the trap!", "对：…").
_AFTER_WORD = ",.:;!?，。：；！？、"


def statement_line(number: int, truth: str, said: str, text: str) -> str:
    """One statement's line: its number and truth, what the learner said when it differs, its feedback.
    Feedback that opens with the truth word itself ("True, and that's the trap!") continues the bold
    verdict instead of repeating it ("**3. True**, and that's the trap!", not "**3. True** — True, …")."""
    said = f" {said}" if said and not said.startswith("（") else said  # no space before a full-width bracket
    rest = text[len(truth):]
    if text[:len(truth)].casefold() == truth.casefold() and (not rest.strip() or rest[0] in _AFTER_WORD):
        return f"**{number}. {truth}**{rest.rstrip()}{said}"
    return f"**{number}. {truth}**{said} — {text}"

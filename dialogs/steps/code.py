"""Code tasks: the learner sends code; the sandbox runs it against the hidden checks (an ``Evaluate``
effect, whose result comes back as an ``EvalResult``); hints climb, and only ``answer`` shows the
solution, after the hints."""

from __future__ import annotations

from dialogs import daily
from dialogs.actions import Action, button
from dialogs.context import Host, Keyboard, Out, output_block
from dialogs.course import CodeTask
from dialogs.evaluation import CheckSpec, EvalOutcome
from dialogs.messages import Evaluate
from dialogs.runs import busy_key, check_detail, code_of, run_problem
from dialogs.state import LearnerState
from dialogs.steps.base import Question
from dialogs.steps.lines import code_failed, praise


class CodeKind(Question):
    expect_key = "expect_code"

    def body(self, host: Host, s: LearnerState, step: CodeTask) -> str:
        text = ""
        if step.starter:
            text += "\n\n" + host.t(s, "starter") + f"\n```python\n{step.starter.rstrip()}\n```"
        text += "\n\n" + host.t(s, "checks_intro") + "\n" + "\n".join(f"• {c.says.get(s.lang)}" for c in step.checks)
        return text + "\n\n" + host.t(s, "how_code")

    def typed(self, host: Host, s: LearnerState, step: CodeTask, text: str, out: Out) -> LearnerState:
        code = code_of(host, s, text, "expect_code", out)
        if code is None:
            return s
        request = f"{step.id}#{s.evals + 1}"
        out.effects.append(Evaluate(request, code, tuple(CheckSpec(c.id, c.code) for c in step.checks)))
        out.say(host.t(s, "running"))
        return s.moved(phase="evaluating", pending=request, evals=s.evals + 1)

    def hint(self, host: Host, s: LearnerState, step: CodeTask, out: Out) -> LearnerState:
        if s.hints >= len(step.hints):
            out.say(host.t(s, "no_more_hints"), ((button(host.t(s, "btn_solution"), Action.REVEAL),),), seq=s.seq)
            return s
        s = s.but(hints=s.hints + 1)
        label = host.t(s, "hint_label", i=s.hints, n=len(step.hints))
        out.say(label + "\n" + step.hints[s.hints - 1].get(s.lang), self.help_buttons(host, s, step), seq=s.seq)
        return s

    def help_buttons(self, host: Host, s: LearnerState, step: CodeTask) -> Keyboard:
        """The next hint while there is one, then the solution."""
        if s.hints < len(step.hints):
            return ((button(host.t(s, "btn_hint"), Action.HINT),),)
        return ((button(host.t(s, "btn_solution"), Action.REVEAL),),)

    def reveal(self, host: Host, s: LearnerState, step: CodeTask, out: Out) -> LearnerState:
        if s.hints < len(step.hints):
            out.say(host.t(s, "hints_first", left=len(step.hints) - s.hints))
            return self.hint(host, s, step, out)
        s = daily.answered(s, out, step, "", "revealed", False)
        out.say(host.t(s, "solution") + f"\n```python\n{step.solution.rstrip()}\n```\n\n" + step.right.get(s.lang))
        return host.complete(s, out)

    def result(self, host: Host, s: LearnerState, step: CodeTask, o: EvalOutcome, out: Out) -> LearnerState:
        """The sandbox's verdict on the learner's code: a check list, what it printed, what next."""
        lang = s.lang
        s = s.but(pending=None)
        if o.status == "unavailable":
            out.say(host.t(s, "sandbox_down"))
            return s.moved(phase="question")
        if o.status == "busy":  # not run at all: not an attempt
            out.say(host.t(s, busy_key(o)))
            return s.moved(phase="question")
        parts: list[str] = []
        if o.status == "ok":
            for c in step.checks:
                res = next((r for r in o.checks if r.id == c.id), None)
                if res is not None and res.passed:
                    parts.append(f"✅ {c.says.get(lang)}")
                else:
                    parts.append(f"❌ {c.says.get(lang)} — {c.fail.get(lang)}" + check_detail(host, s, res))
        else:
            parts.append(run_problem(host, s, o))
        if o.stdout.strip():
            parts.append(host.t(s, "your_output") + "\n" + output_block(o.stdout))
        if o.passed:
            head, s = praise(host, s)
            s = daily.answered(s, out, step, "<code>", "right", True)
            out.say(head + "\n\n" + "\n".join(parts) + "\n\n" + step.right.get(lang))
            return host.complete(s, out)
        s = daily.answered(s, out, step, "<code>", o.status if o.status != "ok" else "wrong", False)
        head, s = code_failed(host, s.moved(phase="retry", attempts=s.attempts + 1), o)
        out.say(head + "\n\n" + "\n".join(parts) + "\n\n" + host.t(s, "code_next"),
                self.help_buttons(host, s, step), seq=s.seq)
        return s

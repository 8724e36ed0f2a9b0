"""The tutoring engine: ``step(course, state, event, now) -> Turn``. A pure function.

It reads no clock (``now`` is passed in), draws no random numbers (variety comes from the state's
``seq``), does no I/O. The shell stores the new state, performs the effects and sends the replies.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from dialogs import answers, markup
from dialogs import graph as graphs
from dialogs.course import END, Choice, CodeTask, Course, Explain, Predict, Section, Statements, next_step_id
from dialogs.evaluation import CheckSpec, EvalOutcome
from dialogs.messages import (
    Button,
    Command,
    Edit,
    Effect,
    EvalResult,
    Evaluate,
    Event,
    GraphView,
    LogAnswer,
    Photo,
    Press,
    Push,
    Quit,
    QuizPoll,
    Reply,
    Say,
    SectionDone,
    Start,
    Turn,
    Unsupported,
)
from dialogs.review import ReviewMixin
from dialogs.state import LearnerState

LETTERS = "ABCDEFGH"
MAX_CODE_CHARS = 20_000
MAX_ECHO = 60
UNSUPPORTED_KINDS = ("sticker", "photo", "voice", "video", "document", "other")
# UI keys named in one place each (tests/test_ui_keys.py checks every one exists in both languages)
KIND_KEYS = {"sticker": "kind_sticker", "photo": "kind_photo", "voice": "kind_voice", "video": "kind_video",
             "document": "kind_document", "other": "kind_other"}
NOTE_KEYS = {"edited": "edited_note", "forwarded": "forwarded_note"}
STATUS_KEYS = {"ok": "status_ok", "error": "status_error", "timeout": "status_timeout", "memory": "status_memory",
               "crashed": "status_crashed", "output_limit": "status_output_limit",
               "unavailable": "status_unavailable", "busy": "busy_queue"}
GRAPH_PROBLEM_KEYS = {"no_tensor": "graph_no_tensor", "no_grad": "graph_no_grad", "leaf": "graph_leaf",
                      "not_found": "graph_not_found", "not_tensor": "graph_not_tensor", "failed": "graph_failed"}
COMMANDS = ("start", "map", "recap", "progress", "lang", "reset", "help", "quit", "hint", "answer", "cards", "quiz",
            "settings", "graph")
ONE_SHOT_ACTIONS = ("lang", "reset")  # their keyboard is stale once pressed, whatever the state's version
GRAPH_REQUEST = "graph:"  # requests of graph pictures start so; they never touch the course position
KEEP_ON_RESET = ("lang", "lang_chosen", "tz", "push_time", "paused", "daily_max")


class _Out:
    """Collects replies and effects while a turn is computed."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.replies: list[Reply] = []
        self.effects: list[Effect] = []
        self.toast = ""  # a note for the tapped button (see Turn.toast)

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = (), anchor: str | None = None,
            seq: int = 0, poll: QuizPoll | None = None) -> None:
        self.replies.append(Say(text, buttons, anchor, seq, poll))


class Engine(ReviewMixin):
    """The course-bound engine. ``step`` is pure: same inputs, same outputs."""

    def __init__(self, course: Course) -> None:
        self.course = course

    # ------------------------------------------------------------------------------------ helpers

    def t(self, s: LearnerState, key: str, **values: Any) -> str:
        return self.course.t(s.lang, key, **values)

    def pick(self, s: LearnerState, key: str, **values: Any) -> str:
        """One of the ``||``-separated variants of a UI string, chosen by the state's version."""
        variants = [v.strip() for v in self.t(s, key, **values).split("||")]
        return variants[s.seq % len(variants)]

    def _stale(self, s: LearnerState, out: _Out) -> None:
        """A button from a message that is behind us: say so (and on the button), change nothing."""
        out.say(self.t(s, "stale"))
        out.toast = self.t(s, "stale_toast")

    def _go(self, s: LearnerState, label_key: str = "btn_go") -> tuple[tuple[Button, ...], ...]:
        return ((Button(self.t(s, label_key), "go"),),)

    def _section(self, s: LearnerState) -> Section:
        assert s.section is not None
        return self.course.section(s.section)

    def _current(self, s: LearnerState) -> Any:
        assert s.section is not None and s.step is not None
        return self.course.step(s.section, s.step)

    def _section_label(self, section_id: str) -> str:
        part = self.course.part_of(section_id)
        pi = self.course.parts.index(part) + 1
        si = [x.id for x in part.sections].index(section_id)
        return f"{pi}{LETTERS[si] if si < len(LETTERS) else si + 1}"

    # --------------------------------------------------------------------------------------- step

    def step(self, state: LearnerState, event: Event, now: datetime) -> Turn:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        out = _Out(now)
        s = self._dispatch(state, event, out)
        s = self._account(s, out)
        toast, stale = "", False
        if isinstance(event, Press):
            # One-shot buttons (language, reset) are done once pressed; the others belong to the version
            # of the state they were made for.
            stale = event.action in ONE_SHOT_ACTIONS or event.seq != s.seq
            toast = out.toast
        return Turn(s, tuple(out.replies), tuple(out.effects), toast, stale)

    def _dispatch(self, s: LearnerState, event: Event, out: _Out) -> LearnerState:
        if isinstance(event, Start):
            return self._start(s, out)
        if isinstance(event, Command):
            return self._command(s, event, out)
        if isinstance(event, EvalResult):
            return self._eval_result(s, event, out)
        if isinstance(event, Push):
            return self._push(s, event, out)
        if s.phase == "new":
            return self._start(s, out)
        if isinstance(event, Unsupported):
            if event.what in ("edited", "forwarded"):
                text = self.t(s, NOTE_KEYS[event.what])
            else:
                kind = event.what if event.what in UNSUPPORTED_KINDS else "other"
                text = self.t(s, "unsupported", what=self.t(s, KIND_KEYS[kind]))
            out.say(text + "\n\n" + self._expected(s))
            return s
        if isinstance(event, Press):
            return self._press(s, event, out)
        if s.confirm_reset:
            return self._confirm_reset(s, event.text, out)
        return self._text(s, event.text, out)

    # ----------------------------------------------------------------------------------- commands

    def _start(self, s: LearnerState, out: _Out) -> LearnerState:
        if s.phase == "new":
            out.say(self.t(s, "welcome", title=self.course.title.get(s.lang)))
            out.say(self._map_text(s) + "\n\n" + self.t(s, "map_go"), self._go(s), seq=s.seq + 1)
            return s.moved(phase="map")
        out.say(self.t(s, "welcome_back"))
        return self._resend(s, out)

    def _command(self, s: LearnerState, cmd: Command, out: _Out) -> LearnerState:
        name = cmd.name
        if name == "start":
            return self._start(s, out)
        if name == "graph":
            return self._graph_command(s, cmd.args, out)
        if s.phase == "new" and name not in ("lang", "help", "quit"):
            s = self._start(s, out)
            if name == "map":
                return s
        if name == "map":
            out.say(self._map_text(s))
            return s
        if name == "recap":
            out.say(self._recap_text(s, cmd.args))
            return s
        if name == "progress":
            out.say(self._progress_text(s) + "\n" + self._daily_lines(s, out.now))
            return s
        if name == "cards":
            return self._cards_command(s, out)
        if name == "quiz":
            return self._quiz_command(s, cmd.args, out)
        if name == "settings":
            return self._settings_command(s, cmd.args, out)
        if name == "lang":
            return self._lang(s, cmd.args, out)
        if name == "reset":
            out.say(self.t(s, "reset_confirm"),
                    ((Button(self.t(s, "btn_reset_yes"), "reset", "yes"),
                      Button(self.t(s, "btn_reset_no"), "reset", "no")),), seq=s.seq)
            return s.but(confirm_reset=True)
        if name == "help":
            out.say(self.t(s, "help"))
            return s
        if name == "quit":
            out.say(self.t(s, "bye"))
            out.effects.append(Quit())
            return s
        if name in ("hint", "answer"):
            if s.phase not in ("question", "retry"):
                out.say(self.t(s, "no_question"))
                return s
            step = self._current(s)
            if name == "hint":
                return self._hint(s, step, out)
            return self._reveal(s, step, out)
        shown = name if len(name) <= 30 else name[:30] + "…"
        out.say(self.t(s, "unknown_command", name=markup.literal(shown)))
        return s

    def _lang(self, s: LearnerState, args: str, out: _Out) -> LearnerState:
        choice = answers.normalise(args)
        aliases = {"en": "en", "english": "en", "英文": "en", "英语": "en",
                   "zh": "zh", "cn": "zh", "chinese": "zh", "中文": "zh", "汉语": "zh", "zh-cn": "zh"}
        if choice not in aliases:
            out.say(self.t(s, "lang_ask"),
                    ((Button("English", "lang", "en"), Button("简体中文", "lang", "zh")),), seq=s.seq)
            return s
        s = s.but(lang=aliases[choice], lang_chosen=True)
        out.say(self.t(s, "lang_set"))
        if s.phase not in ("new", "done"):
            s = self._resend(s, out)
        return s

    def _confirm_reset(self, s: LearnerState, text: str, out: _Out) -> LearnerState:
        if answers.normalise(text) in ("yes", "y", "reset", "是", "确定", "确认", "好", "对"):
            fresh = LearnerState(seq=s.seq + 1, **{k: getattr(s, k) for k in KEEP_ON_RESET})
            out.say(self.t(s, "reset_done"))
            return self._start(fresh, out)
        out.say(self.t(s, "reset_cancelled"))
        return s.but(confirm_reset=False)

    # -------------------------------------------------------------------------------- text & press

    def _press(self, s: LearnerState, p: Press, out: _Out) -> LearnerState:
        if p.action == "lang":
            return self._lang(s, p.arg, out)
        if p.action == "reset":
            if not s.confirm_reset:
                self._stale(s, out)
                return s
            return self._confirm_reset(s, "yes" if p.arg == "yes" else "no", out)
        if p.action in ("card_show", "rate", "cards"):  # checked by content, not by version: pushes age
            return self._card_press(s, p.action, p.arg, out)
        if p.action == "set":
            return self._settings_command(s, p.arg, out)
        if p.action == "resume":
            return self._resend(s, out) if s.phase != "new" else self._start(s, out)
        if p.seq is not None and p.seq != s.seq:
            self._stale(s, out)
            return s
        s = s.but(confirm_reset=False)
        if p.action == "go":
            return self._text(s, "go", out)
        if s.phase not in ("question", "retry"):
            self._stale(s, out)
            return s
        step = self._current(s)
        if p.action == "retry":
            return self._ask(s.moved(phase="question"), step, out)
        if p.action == "reveal":
            return self._reveal(s, step, out)
        if p.action == "hint":
            return self._hint(s, step, out)
        if isinstance(step, Choice) and p.action == "submit":
            if not s.selected:
                out.say(self.t(s, "pick_first"))
                return s
            return self._answer_choice(s, step, s.selected, out)
        try:
            arg = int(p.arg.split(":")[0])
        except ValueError:
            self._stale(s, out)
            return s
        if isinstance(step, Choice) and p.action == "pick" and 0 <= arg < len(step.options):
            return self._answer_choice(s, step, (arg,), out)
        if isinstance(step, Choice) and p.action == "toggle" and 0 <= arg < len(step.options):
            selected = tuple(sorted(set(s.selected) ^ {arg}))
            s = s.but(selected=selected)
            out.replies.append(Edit(self._anchor(s), self._question_text(s, step),
                                    self._question_buttons(s, step), s.seq))
            return s
        if isinstance(step, Predict) and p.action == "pick" and 0 <= arg < len(step.options):
            return self._answer_predict(s, step, step.options[arg], out)
        if isinstance(step, Statements) and p.action == "judge" and 0 <= arg < len(step.statements):
            value = p.arg.endswith(":1")
            judged = list(s.judged or [-1] * len(step.statements))
            judged[arg] = 1 if value else 0
            s = s.but(judged=tuple(judged))
            if -1 in judged:
                out.replies.append(Edit(self._anchor(s), self._question_text(s, step),
                                        self._question_buttons(s, step), s.seq))
                return s
            return self._answer_statements(s, step, tuple(j == 1 for j in judged), out)
        self._stale(s, out)
        return s

    def _text(self, s: LearnerState, text: str, out: _Out) -> LearnerState:
        if s.mode == "cards":
            return self._cards_text(s, text, out)
        if s.phase in ("map", "explain", "section_end"):
            if answers.is_continue(text):
                return self._advance(s, out)
            out.say(self.t(s, "say_go"), self._go(s), seq=s.seq)
            return s
        if s.phase == "done":
            out.say(self.t(s, "course_done_again"))
            return s
        if s.phase == "evaluating":
            out.say(self.t(s, "still_running"))
            return s
        step = self._current(s)
        word = answers.normalise(text)
        if word in answers.REVEAL_WORDS:
            return self._reveal(s, step, out)
        if word in answers.HINT_WORDS:
            return self._hint(s, step, out)
        if s.phase == "retry" and word in answers.RETRY_WORDS:
            return self._ask(s.moved(phase="question"), step, out)
        if isinstance(step, Choice):
            picked = answers.parse_choice(text, len(step.options))
            if picked is None or (not step.multi and len(picked) != 1):
                key = "parse_choice_multi" if step.multi else "parse_choice_single"
                out.say(self.t(s, key, last=LETTERS[len(step.options) - 1].lower()))
                return s
            return self._answer_choice(s, step, picked, out)
        if isinstance(step, Statements):
            return self._typed_statements(s, step, text, out)
        if isinstance(step, Predict):
            if step.options and not any(ch.isdigit() for ch in text):
                # a letter picks an option; digits are read as the output itself ("2 2" is not "b")
                picked = answers.parse_choice(text, len(step.options))
                if picked is not None and len(picked) == 1:
                    return self._answer_predict(s, step, step.options[picked[0]], out)
            if len(text) > 500:
                out.say(self.t(s, "parse_predict"))
                return s
            return self._answer_predict(s, step, text, out)
        if isinstance(step, CodeTask):
            return self._submit_code(s, step, text, out)
        raise AssertionError(f"unexpected step kind {type(step).__name__}")  # pragma: no cover

    def _expected(self, s: LearnerState) -> str:
        """What the learner can send right now, in one line."""
        if s.mode == "cards":
            return self.t(s, "cards_say_rate" if s.card_shown else "cards_say_show")
        if s.phase in ("map", "explain", "section_end", "new"):
            return self.t(s, "say_go")
        if s.phase in ("question", "retry"):
            step = self._current(s)
            key = {Choice: "expect_choice", Statements: "expect_statements", Predict: "expect_predict",
                   CodeTask: "expect_code"}[type(step)]
            return self.t(s, key)
        if s.phase == "evaluating":
            return self.t(s, "still_running")
        return self.t(s, "course_done_again")

    # ------------------------------------------------------------------------------------ movement

    def _advance(self, s: LearnerState, out: _Out) -> LearnerState:
        """'go' pressed: leave the map/explanation/section end for what comes next."""
        if s.phase == "map" or s.phase == "section_end":
            target = self._first_undone(s)
            if target is None:
                return self._course_done(s, out)
            return self._enter_section(s, target, out)
        # explain: the step is complete
        return self._complete(s, out)

    def _first_undone(self, s: LearnerState) -> str | None:
        if s.section is not None and s.section not in s.done_sections and s.phase == "map":
            return s.section
        for sid in self.course.section_ids:
            if sid not in s.done_sections:
                return sid
        return None

    def _enter_section(self, s: LearnerState, section_id: str, out: _Out) -> LearnerState:
        section = self.course.section(section_id)
        part = self.course.part_of(section_id)
        out.say(self.t(s, "section_header", label=self._section_label(section_id),
                       part=part.title.get(s.lang), title=section.title.get(s.lang)))
        s = s.moved(section=section_id, step=section.steps[0].id, recent=())
        return self._present(s, out)

    def _present(self, s: LearnerState, out: _Out) -> LearnerState:
        """Show the current step and wait for the learner."""
        step = self._current(s)
        s = s.moved(attempts=0, hints=0, selected=(), judged=(), pending=None)
        if step.image:
            out.replies.append(Photo(str(self.course.root / step.image), step.point.get(s.lang)))
        if isinstance(step, Explain):
            text = step.text.get(s.lang)
            if step.code:
                text += f"\n\n```python\n{step.code.rstrip()}\n```"
            if step.output is not None:
                text += "\n\n" + self.t(s, "output") + f"\n```\n{step.output.rstrip()}\n```"
            if step.quote:
                text += "\n\n" + self.t(s, "quote", text=step.quote.text.strip(), source=step.quote.source)
                if s.lang == "zh" and step.quote.translation:
                    text += "\n" + step.quote.translation.strip()
            out.say(text, self._go(s), seq=s.seq)
            self._lesson_graph(s, step, out)
            return s.but(phase="explain")
        return self._ask(s.but(phase="question"), step, out)

    def _resend(self, s: LearnerState, out: _Out) -> LearnerState:
        """Show again whatever the learner is in the middle of."""
        if s.phase == "map":
            out.say(self._map_text(s) + "\n\n" + self.t(s, "map_go"), self._go(s), seq=s.seq)
            return s
        if s.phase == "section_end":
            return self._section_end(s, out, again=True)
        if s.phase == "done":
            out.say(self.t(s, "course_done_again"))
            return s
        if s.phase == "evaluating":
            out.say(self.t(s, "still_running"))
            return s
        if s.phase == "explain":
            return self._present(s, out)
        return self._ask(s.moved(phase="question", selected=(), judged=()), self._current(s), out)

    def _complete(self, s: LearnerState, out: _Out) -> LearnerState:
        """The current step is done: recap if due, then the next step or the section's end."""
        if s.mode == "quiz":
            return self._quiz_next(s, out)
        section = self._section(s)
        index = [x.id for x in section.steps].index(s.step)
        recent = (*s.recent, section.steps[index].id)
        nxt = next_step_id(section, index)
        if nxt == END:
            return self._section_end(s.but(recent=recent), out)
        if len(recent) >= self.course.recap_every:
            points = [self.course.step(section.id, sid).point.get(s.lang) for sid in recent]
            out.say(self.t(s, "recap_header") + "\n" + "\n".join(f"• {p}" for p in points))
            recent = ()
        return self._present(s.moved(step=nxt, recent=recent), out)

    def _section_end(self, s: LearnerState, out: _Out, again: bool = False) -> LearnerState:
        section = self._section(s)
        rows = [(self.t(s, "card_q"), self.t(s, "card_a"))]
        rows += [(c.q.get(s.lang), c.a.get(s.lang)) for c in section.cards]
        table = "\n".join(f"| {q} | {a} |" for q, a in rows)
        text = (self.t(s, "section_done", title=section.title.get(s.lang)) + "\n\n" + table
                + "\n\n" + self.t(s, "mnemonic", text=section.mnemonic.get(s.lang)))
        done = s.done_sections if section.id in s.done_sections else (*s.done_sections, section.id)
        if not again:
            out.effects.append(SectionDone(section.id))
        nxt = next((sid for sid in self.course.section_ids if sid not in done), None)
        if nxt is None:
            text += "\n\n" + self.t(s, "next_is_end")
        else:
            text += "\n\n" + self.t(s, "next_up", label=self._section_label(nxt),
                                    title=self.course.section(nxt).title.get(s.lang))
        s = s.moved(phase="section_end", done_sections=done, recent=())
        out.say(text, self._go(s), seq=s.seq)
        return s

    def _course_done(self, s: LearnerState, out: _Out) -> LearnerState:
        out.say(self.t(s, "course_done", sections=len(s.done_sections)))
        return s.moved(phase="done", section=None, step=None)

    # ------------------------------------------------------------------------------------ questions

    def _anchor(self, s: LearnerState) -> str:
        return f"{'quiz' if s.mode == 'quiz' else 'q'}:{s.step}"

    def _question_text(self, s: LearnerState, step: Any) -> str:
        lang = s.lang
        text = step.prompt.get(lang)
        if getattr(step, "code", None):
            text += f"\n\n```python\n{step.code.rstrip()}\n```"
        if isinstance(step, Choice):
            for i, o in enumerate(step.options):
                mark = ("✅ " if i in s.selected else "▫️ ") if step.multi else ""
                text += f"\n{mark}**{LETTERS[i]}.** {o.text.get(lang)}"
            text += "\n\n" + self.t(s, "how_multi" if step.multi else "how_single")
        elif isinstance(step, Statements):
            for i, st in enumerate(step.statements):
                mark = ""
                if s.judged and s.judged[i] != -1:
                    mark = " → " + ("✓" if s.judged[i] == 1 else "✗")
                text += f"\n**{i + 1}.** {st.text.get(lang)}{mark}"
            text += "\n\n" + self.t(s, "how_statements", n=len(step.statements))
        elif isinstance(step, Predict):
            if step.options:
                for i, o in enumerate(step.options):
                    text += f"\n**{LETTERS[i]}.** `{o}`"
                text += "\n\n" + self.t(s, "how_predict_options")
            else:
                text += "\n\n" + self.t(s, "how_predict")
        elif isinstance(step, CodeTask):
            if step.starter:
                text += "\n\n" + self.t(s, "starter") + f"\n```python\n{step.starter.rstrip()}\n```"
            text += "\n\n" + self.t(s, "checks_intro") + "\n" + "\n".join(
                f"• {c.says.get(lang)}" for c in step.checks)
            text += "\n\n" + self.t(s, "how_code")
        return text

    def _question_buttons(self, s: LearnerState, step: Any) -> tuple[tuple[Button, ...], ...]:
        if isinstance(step, Choice):
            if step.multi:
                rows = [(Button(("✅ " if i in s.selected else "▫️ ") + LETTERS[i], "toggle", str(i)),)
                        for i in range(len(step.options))]
                flat = tuple(b for r in rows for b in r)
                grid = tuple(flat[i:i + 4] for i in range(0, len(flat), 4))
                return (*grid, (Button(self.t(s, "btn_submit"), "submit"),))
            flat = tuple(Button(LETTERS[i], "pick", str(i)) for i in range(len(step.options)))
            return tuple(flat[i:i + 4] for i in range(0, len(flat), 4))
        if isinstance(step, Statements):
            rows = []
            for i in range(len(step.statements)):
                j = s.judged[i] if s.judged else -1
                rows.append((Button(f"{i + 1} ✓" + (" •" if j == 1 else ""), "judge", f"{i}:1"),
                             Button(f"{i + 1} ✗" + (" •" if j == 0 else ""), "judge", f"{i}:0")))
            return tuple(rows)
        if isinstance(step, Predict) and step.options:
            flat = tuple(Button(LETTERS[i], "pick", str(i)) for i in range(len(step.options)))
            return tuple(flat[i:i + 4] for i in range(0, len(flat), 4))
        return ()

    def _ask(self, s: LearnerState, step: Any, out: _Out) -> LearnerState:
        out.say(self._question_text(s, step), self._question_buttons(s, step), anchor=self._anchor(s), seq=s.seq,
                poll=self.quiz_poll(s, step))
        return s

    def _close_question(self, s: LearnerState, step: Any, shown: str, out: _Out) -> None:
        """Edit the question message: show the answer given, drop the keyboard."""
        clean = self._question_text(s.but(selected=(), judged=()), step)
        out.replies.append(Edit(self._anchor(s), clean + "\n\n" + self.t(s, "you_answered", answer=shown)))

    def _retry_buttons(self, s: LearnerState) -> tuple[tuple[Button, ...], ...]:
        return ((Button(self.t(s, "btn_retry"), "retry"), Button(self.t(s, "btn_reveal"), "reveal")),)

    def _log(self, out: _Out, step: Any, answer: str, verdict: str, correct: bool) -> None:
        out.effects.append(LogAnswer(step.id, answer[:500], verdict, correct, tuple(step.tags)))

    def _answer_choice(self, s: LearnerState, step: Choice, picked: tuple[int, ...], out: _Out) -> LearnerState:
        lang = s.lang
        right = {i for i, o in enumerate(step.options) if o.correct}
        chosen = set(picked)
        shown = "".join(LETTERS[i] for i in sorted(chosen))
        self._close_question(s, step, shown, out)
        lines = []
        for i in sorted(chosen):
            o = step.options[i]
            lines.append(f"{'✅' if o.correct else '❌'} **{LETTERS[i]}.** {_feedback(o.feedback.get(lang))}")
        if chosen == right:
            self._log(out, step, shown, "right", True)
            head = self.pick(s, "praise") if s.attempts == 0 else self.pick(s, "praise_retry")
            others = [f"▫️ **{LETTERS[i]}.** {_feedback(step.options[i].feedback.get(lang))}"
                      for i in range(len(step.options)) if i not in chosen]
            text = head + "\n\n" + "\n".join(lines)
            if others:
                text += "\n\n" + self.t(s, "about_others") + "\n" + "\n".join(others)
            out.say(text)
            return self._complete(s, out)
        good = len(chosen & right)
        if step.multi and good:
            missed = len(right - chosen)
            extra = len(chosen - right)
            gap = "" if s.lang == "zh" else " "  # Chinese sentences are not separated by spaces
            head = self.t(s, "partial_multi", good=good, total=len(right))
            if missed:
                head += gap + self.t(s, "missed", n=missed)
            if extra:
                head += gap + self.t(s, "extra", n=extra)
            self._log(out, step, shown, "partial", False)
        else:
            head = self.pick(s, "wrong")
            self._log(out, step, shown, "wrong", False)
        s = s.moved(phase="retry", attempts=s.attempts + 1, selected=())
        out.say(head + "\n\n" + "\n".join(lines) + "\n\n" + self.t(s, "retry_or_reveal"),
                self._retry_buttons(s), seq=s.seq)
        return s

    def _typed_statements(self, s: LearnerState, step: Statements, text: str, out: _Out) -> LearnerState:
        n = len(step.statements)
        verdicts = answers.parse_judgements(text, n)
        if verdicts is None or not verdicts:
            out.say(self.t(s, "parse_statements", n=n))
            return s
        if len(verdicts) == n:
            return self._answer_statements(s, step, verdicts, out)
        judged = [j for j in (s.judged or (-1,) * n)]
        todo = [i for i, j in enumerate(judged) if j == -1]
        if len(verdicts) > len(todo):
            out.say(self.t(s, "parse_statements", n=n))
            return s
        for i, v in zip(todo, verdicts, strict=False):
            judged[i] = 1 if v else 0
        s = s.but(judged=tuple(judged))
        if -1 in judged:
            nxt = judged.index(-1)
            out.say(self.t(s, "one_by_one", done=n - judged.count(-1), n=n, next=nxt + 1))
            return s
        return self._answer_statements(s, step, tuple(j == 1 for j in judged), out)

    def _answer_statements(self, s: LearnerState, step: Statements, verdicts: tuple[bool, ...],
                           out: _Out) -> LearnerState:
        lang = s.lang
        tf = self.t(s, "true_false").split("/")
        shown = " ".join(tf[0] if v else tf[1] for v in verdicts)
        self._close_question(s, step, shown, out)
        lines = []
        wrong_ones = []
        for i, (st, v) in enumerate(zip(step.statements, verdicts, strict=True)):
            ok = v == st.answer
            if not ok:
                wrong_ones.append(i + 1)
            truth = tf[0] if st.answer else tf[1]
            said = "" if ok else " " + self.t(s, "you_said", answer=tf[0] if v else tf[1])
            lines.append(f"{'✅' if ok else '❌'} **{i + 1}. {truth}**{said} — {_feedback(st.feedback.get(lang))}")
        n = len(verdicts)
        good = n - len(wrong_ones)
        if not wrong_ones:
            head = self.pick(s, "praise")
            verdict = "right"
        elif good == 0:
            head = self.t(s, "statements_none", n=n)
            verdict = "wrong"
        else:
            traps = ", ".join(str(i) for i in wrong_ones)
            head = self.t(s, "statements_partial", good=good, n=n, traps=traps)
            verdict = "partial"
        self._log(out, step, shown, verdict, not wrong_ones)
        out.say(head + "\n\n" + "\n".join(lines))
        return self._complete(s, out)

    def _answer_predict(self, s: LearnerState, step: Predict, typed: str, out: _Out) -> LearnerState:
        ok = answers.predict_matches(typed, step.answer, step.match, step.accept)
        shown = typed.strip() if len(typed.strip()) <= MAX_ECHO else typed.strip()[:MAX_ECHO] + "…"
        self._close_question(s, step, f"`{markup.literal(shown)}`", out)
        if ok:
            self._log(out, step, typed, "right", True)
            head = self.pick(s, "praise") if s.attempts == 0 else self.pick(s, "praise_retry")
            out.say(head + "\n\n" + self.t(s, "real_output") + f"\n```\n{step.answer.rstrip()}\n```\n"
                    + step.right.get(s.lang))
            return self._complete(s, out)
        self._log(out, step, typed, "wrong", False)
        s = s.moved(phase="retry", attempts=s.attempts + 1)
        out.say(self.pick(s, "wrong") + "\n\n" + step.wrong.get(s.lang) + "\n\n" + self.t(s, "retry_or_reveal"),
                self._retry_buttons(s), seq=s.seq)
        return s

    def _reveal(self, s: LearnerState, step: Any, out: _Out) -> LearnerState:
        lang = s.lang
        if isinstance(step, CodeTask):
            if s.hints < len(step.hints):
                out.say(self.t(s, "hints_first", left=len(step.hints) - s.hints))
                return self._hint(s, step, out)
            self._log(out, step, "", "revealed", False)
            out.say(self.t(s, "solution") + f"\n```python\n{step.solution.rstrip()}\n```\n\n"
                    + step.right.get(lang))
            return self._complete(s, out)
        self._close_question(s, step, "—", out)
        self._log(out, step, "", "revealed", False)
        if isinstance(step, Choice):
            lines = [f"{'✅' if o.correct else '❌'} **{LETTERS[i]}.** {_feedback(o.feedback.get(lang))}"
                     for i, o in enumerate(step.options)]
            out.say(self.t(s, "reveal_head") + "\n\n" + "\n".join(lines))
        elif isinstance(step, Statements):
            tf = self.t(s, "true_false").split("/")
            lines = [f"**{i + 1}. {tf[0] if st.answer else tf[1]}** — {_feedback(st.feedback.get(lang))}"
                     for i, st in enumerate(step.statements)]
            out.say(self.t(s, "reveal_head") + "\n\n" + "\n".join(lines))
        elif isinstance(step, Predict):
            out.say(self.t(s, "reveal_head") + "\n```\n" + step.answer.rstrip() + "\n```\n" + step.right.get(lang))
        return self._complete(s, out)

    def _hint(self, s: LearnerState, step: Any, out: _Out) -> LearnerState:
        if not isinstance(step, CodeTask):
            out.say(self.t(s, "no_hints"), self._retry_buttons(s) if s.phase == "retry" else (), seq=s.seq)
            return s
        if s.hints >= len(step.hints):
            out.say(self.t(s, "no_more_hints"),
                    ((Button(self.t(s, "btn_solution"), "reveal"),),), seq=s.seq)
            return s
        s = s.but(hints=s.hints + 1)
        label = self.t(s, "hint_label", i=s.hints, n=len(step.hints))
        out.say(label + "\n" + step.hints[s.hints - 1].get(s.lang), self._code_buttons(s, step), seq=s.seq)
        return s

    def _code_buttons(self, s: LearnerState, step: CodeTask) -> tuple[tuple[Button, ...], ...]:
        if s.hints < len(step.hints):
            return ((Button(self.t(s, "btn_hint"), "hint"),),)
        return ((Button(self.t(s, "btn_solution"), "reveal"),),)

    # ---------------------------------------------------------------------------------------- code

    def _code_of(self, s: LearnerState, text: str, empty_key: str, out: _Out) -> str | None:
        """The code in a message (fences removed), or None after telling the learner what is wrong."""
        code = answers.extract_code(text)
        if not code.strip():
            out.say(self.t(s, empty_key))
            return None
        if len(code) > MAX_CODE_CHARS:
            out.say(self.t(s, "code_too_long", limit=MAX_CODE_CHARS, got=len(code)))
            return None
        return code

    def _submit_code(self, s: LearnerState, step: CodeTask, text: str, out: _Out) -> LearnerState:
        code = self._code_of(s, text, "expect_code", out)
        if code is None:
            return s
        request = f"{step.id}#{s.evals + 1}"
        out.effects.append(Evaluate(request, code, tuple(CheckSpec(c.id, c.code) for c in step.checks)))
        out.say(self.t(s, "running"))
        return s.moved(phase="evaluating", pending=request, evals=s.evals + 1)

    # -------------------------------------------------------------------------------------- graphs

    def _graph_command(self, s: LearnerState, args: str, out: _Out) -> LearnerState:
        """``/graph <code>`` or ``/graph y: <code>``: ask the sandbox for a picture; the course waits."""
        target, rest = graphs.split_target(args.strip())
        code = self._code_of(s, rest, "graph_usage", out)
        if code is None:
            return s
        out.effects.append(Evaluate(f"{GRAPH_REQUEST}{s.seq}:{len(code)}", code, (), graph=target or ""))
        return s

    def _lesson_graph(self, s: LearnerState, step: Explain, out: _Out) -> None:
        if step.graph and step.code:
            out.effects.append(Evaluate(f"{GRAPH_REQUEST}lesson:{step.id}", step.code, (), graph=step.graph,
                                        cacheable=True))

    def _graph_result(self, s: LearnerState, o: EvalOutcome, out: _Out) -> LearnerState:
        graph = o.extra.get("graph") if o.status == "ok" else None
        if isinstance(graph, dict):
            # names come from the learner's process: literal spans, never markup
            facts = {k: _literal(v, 200 if k == "leaf_names" else MAX_ECHO) if isinstance(v, str) else v
                     for k, v in graphs.summary(graph).items()}
            caption = self.t(s, "graph_caption", **facts)
            if graph.get("truncated"):
                caption += "\n" + self.t(s, "graph_truncated", **facts)
            out.replies.append(GraphView(graph, caption, graphs.tree(graph), self.t(s, "graph_no_picture"),
                                         self.t(s, "graph_saved")))
            return s
        if o.status == "ok":
            problem = o.extra.get("graph_problem")
            problem = problem if isinstance(problem, dict) else {}
            reason = problem.get("reason")
            if reason not in GRAPH_PROBLEM_KEYS:
                reason = "failed"
            out.say(self.t(s, GRAPH_PROBLEM_KEYS[reason], name=_literal(problem.get("name") or "?", MAX_ECHO),
                           type=_literal(problem.get("type") or "?", MAX_ECHO)))
            return s
        if o.status == "unavailable":
            out.say(self.t(s, "graph_down"))
            return s
        if o.status == "busy":
            out.say(self.t(s, _busy_key(o)))
            return s
        text = self.t(s, STATUS_KEYS[o.status]) + _error_block(o.error)
        if o.stdout.strip():
            text += "\n\n" + self.t(s, "your_output") + "\n" + _output_block(o.stdout)
        out.say(self.t(s, "graph_none") + "\n\n" + text)
        return s

    def _eval_result(self, s: LearnerState, event: EvalResult, out: _Out) -> LearnerState:
        if event.request.startswith(GRAPH_REQUEST):
            return self._graph_result(s, event.outcome, out)
        if s.phase != "evaluating" or event.request != s.pending:
            return s  # a result for a submission we no longer wait for
        step = self._current(s)
        assert isinstance(step, CodeTask)
        o: EvalOutcome = event.outcome
        lang = s.lang
        s = s.but(pending=None)
        if o.status == "unavailable":
            out.say(self.t(s, "sandbox_down"))
            return s.moved(phase="question")
        if o.status == "busy":  # not run at all: not an attempt
            out.say(self.t(s, _busy_key(o)))
            return s.moved(phase="question")
        parts: list[str] = []
        if o.status == "ok":
            for c in step.checks:
                res = next((r for r in o.checks if r.id == c.id), None)
                if res is not None and res.passed:
                    parts.append(f"✅ {c.says.get(lang)}")
                else:
                    detail = res.detail if res is not None else self.t(s, "check_missing")
                    parts.append(f"❌ {c.says.get(lang)} — {c.fail.get(lang)}"
                                 + (f"\n   `{_literal(detail, 300)}`" if detail.strip() else ""))
        else:
            parts.append(self.t(s, STATUS_KEYS[o.status]) + _error_block(o.error))
        if o.stdout.strip():
            parts.append(self.t(s, "your_output") + "\n" + _output_block(o.stdout))
        if o.passed:
            self._log(out, step, "<code>", "right", True)
            head = self.pick(s, "praise") if s.attempts == 0 else self.pick(s, "praise_retry")
            out.say(head + "\n\n" + "\n".join(parts) + "\n\n" + step.right.get(lang))
            return self._complete(s, out)
        self._log(out, step, "<code>", o.status if o.status != "ok" else "wrong", False)
        s = s.moved(phase="retry", attempts=s.attempts + 1)
        out.say(self.pick(s, "code_failed") + "\n\n" + "\n".join(parts) + "\n\n" + self.t(s, "code_next"),
                self._code_buttons(s, step), seq=s.seq)
        return s

    # ---------------------------------------------------------------------------------- overviews

    def _map_text(self, s: LearnerState) -> str:
        lines = [self.t(s, "map_title", title=self.course.title.get(s.lang))]
        for pi, part in enumerate(self.course.parts, 1):
            done = sum(sec.id in s.done_sections for sec in part.sections)
            lines.append(f"\n**{self.t(s, 'part')} {pi} — {part.title.get(s.lang)}** ({done}/{len(part.sections)})")
            for si, sec in enumerate(part.sections):
                if sec.id in s.done_sections:
                    mark = "✅"
                elif sec.id == s.section and s.phase not in ("map", "new"):
                    mark = "👉"
                else:
                    mark = "▫️"
                lines.append(f"{mark} {LETTERS[si]}. {sec.title.get(s.lang)}")
        return "\n".join(lines)

    def _recap_text(self, s: LearnerState, args: str = "") -> str:
        lang = s.lang
        ids = list(s.done_sections[-2:])
        arg = args.strip().lower().removeprefix("part").strip()
        if arg:
            part = next((p for i, p in enumerate(self.course.parts, 1) if arg in (str(i), p.id)), None)
            if part is None:
                return self.t(s, "recap_usage", n=len(self.course.parts))
            ids = [sec.id for sec in part.sections if sec.id in s.done_sections]
            if not ids:
                return self.t(s, "recap_part_empty", part=part.title.get(lang))
        blocks = []
        for sid in ids:
            sec = self.course.section(sid)
            rows = "\n".join(f"| {c.q.get(lang)} | {c.a.get(lang)} |" for c in sec.cards)
            header = f"| {self.t(s, 'card_q')} | {self.t(s, 'card_a')} |"
            blocks.append(f"**{self._section_label(sid)} · {sec.title.get(lang)}**\n\n{header}\n{rows}\n\n"
                          + self.t(s, "mnemonic", text=sec.mnemonic.get(lang)))
        if arg:
            return self.t(s, "recap_title") + "\n\n" + "\n\n".join(blocks)
        if s.section and s.section not in s.done_sections and s.phase not in ("map", "new"):
            sec = self.course.section(s.section)
            order = [x.id for x in sec.steps]
            upto = order.index(s.step) if s.step in order else 0
            if upto:
                points = "\n".join(f"• {st.point.get(lang)}" for st in sec.steps[:upto])
                blocks.append(f"**{self._section_label(sec.id)} · {sec.title.get(lang)}** "
                              f"({self.t(s, 'in_progress')})\n{points}")
        if not blocks:
            return self.t(s, "recap_empty")
        return self.t(s, "recap_title") + "\n\n" + "\n\n".join(blocks)

    def _progress_text(self, s: LearnerState) -> str:
        total = len(self.course.section_ids)
        done = len(s.done_sections)
        bar = "▓" * round(10 * done / total) + "░" * (10 - round(10 * done / total))
        where = ""
        if s.section and s.phase not in ("map", "new", "done"):
            where = self.t(s, "progress_where", label=self._section_label(s.section),
                           title=self.course.section(s.section).title.get(s.lang))
        return self.t(s, "progress", done=done, total=total, bar=bar, where=where)


_MARKS = re.compile(r"^(?:[✅❌✔✗✘❎☑️]\ufe0f?\s*)+")


def _feedback(text: str) -> str:
    """Feedback without a leading verdict mark: the engine puts its own ✅/❌ in front."""
    return _MARKS.sub("", text.lstrip())


# What the learner's code produced (output, tracebacks, check details, names from the sandbox) is
# shown as literal text, never as markup: in a code block no line of it can close, or in a literal span.


def _literal(text: str, limit: int) -> str:
    """Learner text for a sentence: whitespace runs made one space, cut at ``limit``, a literal span."""
    flat = " ".join(str(text).split())
    return markup.literal(flat if len(flat) <= limit else flat[:limit] + "…")


def _error_block(error: str) -> str:
    """A traceback's last 1500 characters as a code block, after a newline; nothing for no error."""
    return "\n" + markup.block(error.rstrip()[-1500:]) if error.strip() else ""


def _output_block(stdout: str) -> str:
    """What the code printed (its first 1500 characters) as a code block."""
    shown = stdout.rstrip()
    return markup.block(shown if len(shown) <= 1500 else shown[:1500] + "\n…")


def _busy_key(outcome: EvalOutcome) -> str:
    """The UI string for a run that was not started: the learner's own run is still going, or the
    sandbox's queue is full."""
    return "busy_learner" if outcome.extra.get("busy") == "learner" else "busy_queue"

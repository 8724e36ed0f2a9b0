"""The tutoring engine: ``Engine(course).step(state, event, now) -> Turn``. A pure function.

It reads no clock (``now`` is passed in), draws no random numbers (variety comes from the state's
``seq``), does no I/O. The shell stores the new state, performs the effects and sends the replies.

The engine is a dispatch table: an event goes to its handler (``EVENTS``), a command to its own
(``COMMANDS``), a button to its action's (``PRESSES``); what a step does lives in its kind
(``dialogs/steps``); flashcards, quizzes, settings, the daily push and pictures are modules of plain
functions (``deck``, ``quiz``, ``settings``, ``daily``, ``pictures``) that call back only through the
``Host`` services this class offers. Every change of the learner's phase and mode is checked against
``dialogs/machine``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from dialogs import answers, ask, daily, deck, machine, markup, navigation, overview, parts, pictures, quiz, settings
from dialogs.actions import ONE_SHOT, SEQ_FREE, Action, action_of, button, setting_of
from dialogs.context import LETTERS, Keyboard, Out
from dialogs.course import END, Course, Predict, Section, next_step_id
from dialogs.messages import (
    Command,
    EvalResult,
    Event,
    Photo,
    Press,
    Push,
    Quit,
    SectionDone,
    Start,
    Text,
    Turn,
    Unsupported,
)
from dialogs.state import LearnerState
from dialogs.steps import kind_of, question_of
from dialogs.steps.base import anchor
from dialogs.steps.code import CodeKind

KEEP_ON_RESET = ("lang", "lang_chosen", "tz", "push_time", "paused", "daily_max")
LANG_ALIASES = {"en": "en", "english": "en", "英文": "en", "英语": "en",
                "zh": "zh", "cn": "zh", "chinese": "zh", "中文": "zh", "汉语": "zh", "zh-cn": "zh"}
YES_WORDS = ("yes", "y", "reset", "是", "确定", "确认", "好", "对")
#: "Continue" words that are no prediction of an output (unlike "c", "n", "y", "好" or "对", which answer
#: other kinds of question)
GO_WORDS = frozenset({"", "go", "ok", "okay", "next", "continue", "go on", "let's go", "lets go", "ready",
                      "继续", "下一步", "开始", "走"})
# UI keys named in one place each (tests/test_ui_keys.py checks every one exists in both languages)
UNSUPPORTED_KINDS = ("sticker", "photo", "voice", "video", "document", "other")
KIND_KEYS = {"sticker": "kind_sticker", "photo": "kind_photo", "voice": "kind_voice", "video": "kind_video",
             "document": "kind_document", "other": "kind_other"}
NOTE_KEYS = {"edited": "edited_note", "forwarded": "forwarded_note"}
EXPECT_KEYS = {"map": "say_go", "explain": "say_go", "section_end": "say_go", "new": "say_go",
               "evaluating": "still_running", "done": "course_done_again"}

Handler = Callable[["Engine", LearnerState, Any, Out], LearnerState]


class Engine:
    """The course-bound engine. ``step`` is pure: same inputs, same outputs. It is also the ``Host``
    (``dialogs.context``) of the modules it dispatches to."""

    def __init__(self, course: Course) -> None:
        self.course = course

    # ------------------------------------------------------------------------------ the Host services

    def t(self, s: LearnerState, key: str, **values: Any) -> str:
        return self.course.t(s.lang, key, **values)

    def stale(self, s: LearnerState, out: Out) -> None:
        """A button from a message that is behind us: say so (and on the button), change nothing."""
        out.say(self.t(s, "stale"))
        out.toast = self.t(s, "stale_toast")

    def section_label(self, section_id: str) -> str:
        part = self.course.part_of(section_id)
        pi = self.course.parts.index(part) + 1
        si = [x.id for x in part.sections].index(section_id)
        return f"{pi}{LETTERS[si] if si < len(LETTERS) else si + 1}"

    def go_button(self, s: LearnerState, label_key: str = "btn_go") -> Keyboard:
        return ((button(self.t(s, label_key), Action.GO),),)

    def ask(self, s: LearnerState, step: Any, out: Out) -> LearnerState:
        """Send the question (its message is anchored, to be edited when it is answered)."""
        kind = question_of(step)
        out.say(kind.text(self, s, step), kind.buttons(self, s, step), anchor=anchor(s), seq=s.seq,
                poll=quiz.poll(s, step))
        return s

    def resend(self, s: LearnerState, out: Out) -> LearnerState:
        """Show again whatever the learner is in the middle of."""
        if s.mode == "cards" and s.card:
            return deck.show(self, s, out)
        if s.phase == "map":
            out.say(overview.map_text(self, s) + "\n\n" + self.t(s, "map_go"), self.go_button(s), seq=s.seq)
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
        return self.ask(s.moved(phase="question", selected=(), judged=()), self._current(s), out)

    def complete(self, s: LearnerState, out: Out) -> LearnerState:
        """The current step is done: recap if due, then the next step or the section's end."""
        if s.mode == "quiz":
            return quiz.next_question(self, s, out)
        section = self._section(s)
        index = [x.id for x in section.steps].index(s.step or "")
        recent = (*s.recent, section.steps[index].id)
        nxt = next_step_id(section, index)
        if nxt == END:
            return self._section_end(s.but(recent=recent), out)
        if len(recent) >= self.course.recap_every:
            points = [self.course.step(section.id, sid).point.get(s.lang) for sid in recent]
            out.say(self.t(s, "recap_header") + "\n" + "\n".join(f"• {p}" for p in points))
            recent = ()
        return self._present(s.moved(step=nxt, recent=recent), out)

    # ------------------------------------------------------------------------------------- the step

    def step(self, state: LearnerState, event: Event, now: datetime) -> Turn:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        out = Out(now)
        s = EVENTS[type(event)](self, state, event, out)
        if not _is_back(event):
            s = navigation.remember(state, s)
        s = daily.settle(self, s, now)
        machine.check(state, s)
        stale = False
        if isinstance(event, Press):
            # One-shot buttons (language, reset) are done once pressed; the others belong to the version
            # of the state they were made for. A Continue just used stays where it is (one call less per
            # step; tapped again, it is answered as behind us and taken away then).
            fresh_go = event.action == Action.GO and event.seq == state.seq
            stale = event.action in ONE_SHOT or (event.seq != s.seq and not fresh_go)
        return Turn(s, tuple(out.replies), tuple(out.effects), out.toast, stale)

    def _section(self, s: LearnerState) -> Section:
        assert s.section is not None
        return self.course.section(s.section)

    def _current(self, s: LearnerState) -> Any:
        assert s.section is not None and s.step is not None
        return self.course.step(s.section, s.step)

    # ------------------------------------------------------------------------------------- events

    def _on_start(self, s: LearnerState, event: Start, out: Out) -> LearnerState:
        return self._start(s, out)

    def _on_push(self, s: LearnerState, event: Push, out: Out) -> LearnerState:
        return daily.push(self, s, event, out)

    def _on_eval_result(self, s: LearnerState, event: EvalResult, out: Out) -> LearnerState:
        if pictures.is_picture(event.request):
            s = pictures.result(self, s, event.outcome, out, event.request)
            pictures.after_lesson(self, s, event.request, out)
            return s
        if s.phase != "evaluating" or event.request != s.pending:
            return s  # a result for a submission we no longer wait for
        step = self._current(s)
        kind = kind_of(step)
        assert isinstance(kind, CodeKind)
        return kind.result(self, s, step, event.outcome, out)

    def _on_unsupported(self, s: LearnerState, event: Unsupported, out: Out) -> LearnerState:
        if s.phase == "new":
            return self._start(s, out)
        if event.what in NOTE_KEYS:
            text = self.t(s, NOTE_KEYS[event.what])
        else:
            kind = event.what if event.what in UNSUPPORTED_KINDS else "other"
            text = self.t(s, "unsupported", what=self.t(s, KIND_KEYS[kind]))
        out.say(text + "\n\n" + self._expected(s))
        return s

    def _on_press(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        if s.phase == "new":
            return self._start(s, out)
        action = action_of(press)
        if action is None or (action not in SEQ_FREE and press.seq is not None and press.seq != s.seq):
            self.stale(s, out)
            return s
        return PRESSES[action](self, s, press, out)

    def _on_text(self, s: LearnerState, event: Text, out: Out) -> LearnerState:
        if s.phase == "new":
            return self._start(s, out)
        if s.confirm_reset:
            return self._confirm_reset(s, event.text, out)
        return self._text(s, event.text, out)

    def _on_command(self, s: LearnerState, cmd: Command, out: Out) -> LearnerState:
        name = cmd.name
        # Any command ends a review ("/stop" only that); /cards shows its card again, and /quiz ends it
        # itself once its N is read (an N it cannot read stops no review).
        if s.mode == "cards" and name not in ("cards", "quiz"):
            if name == "stop":
                return deck.stop(self, s, out)
            s = deck.leave(self, s, out)
        handler = COMMANDS.get(name)
        if handler is None:
            if s.phase == "new":
                s = self._start(s, out)
            shown = name if len(name) <= 30 else name[:30] + "…"
            out.say(self.t(s, "unknown_command", name=markup.literal(shown)))
            return s
        if s.phase == "new" and name not in ("start", "graph", "lang", "help", "quit"):
            s = self._start(s, out)
            if name == "map":
                return s
        return handler(self, s, cmd.args, out)

    # ----------------------------------------------------------------------------------- commands

    def _start(self, s: LearnerState, out: Out) -> LearnerState:
        if s.phase == "new":
            out.say(self.t(s, "welcome", title=self.course.title.get(s.lang)))
            out.say(overview.map_text(self, s) + "\n\n" + self.t(s, "map_go"), self.go_button(s), seq=s.seq + 1)
            return s.moved(phase="map")
        out.say(self.t(s, "welcome_back"))
        return self.resend(s, out)

    def _cmd_start(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return self._start(s, out)

    def _cmd_map(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        out.say(overview.map_text(self, s) + "\n\n" + self.t(s, "map_goto"), navigation.map_keyboard(self, s),
                seq=s.seq)
        return s

    def _cmd_ask(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        if not args.strip():
            out.say(self.t(s, "ask_usage"))
            return s
        return ask.answer(self, s, args, out)

    def _cmd_goto(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return navigation.goto(self, self._to_course(s), args, out)

    def _cmd_back(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return navigation.back(self, self._to_course(s), out)

    def _cmd_skip(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return navigation.skip(self, self._to_course(s), args, out)

    def _cmd_redo(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return navigation.redo(self, self._to_course(s), args, out)

    def _to_course(self, s: LearnerState) -> LearnerState:
        """Leave a quiz without a word (a move is about to show the course)."""
        if s.mode != "quiz":
            return s
        saved = dict(s.saved or {})
        for key in ("recent", "selected", "judged"):
            saved[key] = tuple(saved.get(key, ()))
        return s.moved(mode="course", saved=None, quiz_left=0, **saved)

    def _cmd_recap(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        out.say(overview.recap_text(self, s, args))
        return s

    def _cmd_progress(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        out.say(overview.progress_text(self, s) + "\n" + daily.progress_lines(self, s, out.now))
        return s

    def _cmd_cards(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return deck.command(self, s, out)

    def _cmd_quiz(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return quiz.command(self, s, args, out)

    def _cmd_settings(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return settings.command(self, s, args, out)

    def _cmd_graph(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        return pictures.command(self, s, args, out)

    def _cmd_lang(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        choice = answers.normalise(args)
        if choice not in LANG_ALIASES:
            out.say(self.t(s, "lang_ask"),
                    ((button("English", Action.LANG, "en"), button("简体中文", Action.LANG, "zh")),), seq=s.seq)
            return s
        s = s.but(lang=LANG_ALIASES[choice], lang_chosen=True)
        out.say(self.t(s, "lang_set"))
        if s.phase not in ("new", "done"):
            s = self.resend(s, out)
        return s

    def _cmd_reset(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        out.say(self.t(s, "reset_confirm"),
                ((button(self.t(s, "btn_reset_yes"), Action.RESET, "yes"),
                  button(self.t(s, "btn_reset_no"), Action.RESET, "no")),), seq=s.seq)
        return s.but(confirm_reset=True)

    def _cmd_help(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        out.say(self.t(s, "help"))
        return s

    def _cmd_quit(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        out.say(self.t(s, "bye"))
        out.effects.append(Quit())
        return s

    def _cmd_hint(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        if s.phase not in ("question", "retry"):
            out.say(self.t(s, "no_question"))
            return s
        step = self._current(s)
        return question_of(step).hint(self, s, step, out)

    def _cmd_answer(self, s: LearnerState, args: str, out: Out) -> LearnerState:
        if s.phase not in ("question", "retry"):
            out.say(self.t(s, "no_question"))
            return s
        step = self._current(s)
        return question_of(step).reveal(self, s, step, out)

    def _confirm_reset(self, s: LearnerState, text: str, out: Out) -> LearnerState:
        if answers.normalise(text) in YES_WORDS:
            fresh = LearnerState(seq=s.seq + 1, **{k: getattr(s, k) for k in KEEP_ON_RESET})
            out.say(self.t(s, "reset_done"))
            return self._start(fresh, out)
        out.say(self.t(s, "reset_cancelled"))
        return s.but(confirm_reset=False)

    # ------------------------------------------------------------------------------------ buttons

    def _press_lang(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        return self._cmd_lang(s, press.arg, out)

    def _press_reset(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        if not s.confirm_reset:
            self.stale(s, out)
            return s
        return self._confirm_reset(s, "yes" if press.arg == "yes" else "no", out)

    def _press_card(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        return deck.pressed(self, s, press, out)

    def _press_set(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        chosen = setting_of(press)
        if chosen is None:
            self.stale(s, out)
            return s
        return settings.apply(self, s, chosen[0], chosen[1], out)

    def _press_goto(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        if s.mode == "cards":
            s = deck.leave(self, s, out)
        s = self._to_course(s)
        found = navigation.target(self, s.but(ask_hits=()), press.arg)
        if found is None:
            self.stale(s, out)
            return s
        return navigation.jump(self, s, found[0], found[1], out)

    def _press_resume(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        return self.resend(s, out)

    def _press_go(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        return self._text(s.but(confirm_reset=False), "go", out)

    def _press_question(self, s: LearnerState, press: Press, out: Out) -> LearnerState:
        """A button of the question on screen (its version was checked)."""
        s = s.but(confirm_reset=False)
        if s.phase not in ("question", "retry"):
            self.stale(s, out)
            return s
        step = self._current(s)
        kind = question_of(step)
        if press.action == Action.RETRY:
            return self.ask(s.moved(phase="question"), step, out)
        if press.action == Action.REVEAL:
            return kind.reveal(self, s, step, out)
        if press.action == Action.HINT:
            return kind.hint(self, s, step, out)
        return kind.pressed(self, s, step, press, out)

    # ------------------------------------------------------------------------------- typed text

    def _text(self, s: LearnerState, text: str, out: Out) -> LearnerState:
        if s.mode == "cards":
            if ask.clearly_a_question(text):  # not a typed attempt at the card's answer
                return ask.answer(self, s, text, out, then=self._expected(s))
            return deck.typed(self, s, text, out)
        if s.phase in ("map", "explain", "section_end"):
            if answers.is_continue(text):
                return self._advance(s, out)
            if ask.reads_as_question(text):
                return ask.answer(self, s, text, out, then=self.t(s, "say_go"))
            out.say(self.t(s, "say_go"), self.go_button(s), seq=s.seq)
            return s
        if s.phase in ("done", "evaluating"):
            if ask.reads_as_question(text):
                return ask.answer(self, s, text, out, then=self.t(s, EXPECT_KEYS[s.phase]))
            out.say(self.t(s, EXPECT_KEYS[s.phase]))
            return s
        step = self._current(s)
        kind = question_of(step)
        if ask.reads_as_question(text) and not ask.reads_as_answer(step, text):
            return ask.answer(self, s, text, out, then=self._expected(s))
        word = answers.normalise(text)
        if word in GO_WORDS and isinstance(step, Predict) and not ask.reads_as_answer(step, text):
            # "go" at "what does it print?" is no guess (other kinds say what they read instead)
            out.say(self.t(s, "answer_first") + ("" if s.lang == "zh" else " ") + self._expected(s))
            return s
        if word in answers.REVEAL_WORDS:
            return kind.reveal(self, s, step, out)
        if word in answers.HINT_WORDS:
            return kind.hint(self, s, step, out)
        if s.phase == "retry" and word in answers.RETRY_WORDS:
            return self.ask(s.moved(phase="question"), step, out)
        return kind.typed(self, s, step, text, out)

    def _expected(self, s: LearnerState) -> str:
        """What the learner can send right now, in one line."""
        if s.mode == "cards":
            return self.t(s, "cards_say_rate" if s.card_shown else "cards_say_show")
        if s.phase in ("question", "retry"):
            return self.t(s, kind_of(self._current(s)).expect_key)
        return self.t(s, EXPECT_KEYS[s.phase])

    # ------------------------------------------------------------------------------------ movement

    def _advance(self, s: LearnerState, out: Out) -> LearnerState:
        """'go': leave the map/explanation/section end for what comes next."""
        if s.phase in ("map", "section_end"):
            target = self._first_undone(s)
            if target is None:
                out.say(self.t(s, "course_done", sections=len(s.done_sections)))
                return s.moved(phase="done", section=None, step=None)
            return self._enter_section(s, target, out)
        return self.complete(s, out)  # explain: the step is complete

    def _first_undone(self, s: LearnerState) -> str | None:
        if s.section is not None and s.section not in s.done_sections and s.phase == "map":
            return s.section
        return navigation.next_section(self, s)

    def _enter_section(self, s: LearnerState, section_id: str, out: Out) -> LearnerState:
        return self.enter_section(s, section_id, out)

    def enter_section(self, s: LearnerState, section_id: str, out: Out, step_id: str | None = None) -> LearnerState:
        """Show a section's header and its first step (or the step named)."""
        section = self.course.section(section_id)
        part = self.course.part_of(section_id)
        out.say(self.t(s, "section_header", label=self.section_label(section_id),
                       part=part.title.get(s.lang), title=section.title.get(s.lang)))
        s = s.moved(section=section_id, step=step_id or section.steps[0].id, recent=(), confirm_reset=False)
        return self._present(s, out)

    def section_end_again(self, s: LearnerState, out: Out) -> LearnerState:
        return self._section_end(s, out, again=True)

    def _present(self, s: LearnerState, out: Out) -> LearnerState:
        """Show the current step and wait for the learner."""
        step = self._current(s)
        s = s.moved(attempts=0, hints=0, selected=(), judged=(), pending=None)
        if step.image:
            out.replies.append(Photo(self.course.picture(step.image), step.point.get(s.lang)))
        return kind_of(step).present(self, s, step, out)

    def _section_end(self, s: LearnerState, out: Out, again: bool = False) -> LearnerState:
        section = self._section(s)
        rows = [(self.t(s, "card_q"), self.t(s, "card_a"))]
        rows += [(c.q.get(s.lang), c.a.get(s.lang)) for c in section.cards]
        table = "\n".join(f"| {q} | {a} |" for q, a in rows)
        text = (self.t(s, "section_done", title=section.title.get(s.lang)) + "\n\n" + table
                + "\n\n" + self.t(s, "mnemonic", text=section.mnemonic.get(s.lang)))
        done = s.done_sections if section.id in s.done_sections else (*s.done_sections, section.id)
        if not again:
            out.effects.append(SectionDone(section.id))
            s = deck.add_section(self, s, section.id, out.now)
        s = s.but(skipped=tuple(x for x in s.skipped if x != section.id))  # finished after all
        nxt = navigation.next_section(self, s.but(done_sections=done))
        whole_part = parts.recap(self, s, section.id, done, nxt)  # this section completes its Part
        if whole_part:
            text += "\n\n" + whole_part
        if nxt is None:
            text += "\n\n" + self.t(s, "next_is_end")
        else:
            text += "\n\n" + self.t(s, "next_up", label=self.section_label(nxt),
                                    title=self.course.section(nxt).title.get(s.lang))
        s = s.moved(phase="section_end", done_sections=done, recent=())
        out.say(text, self.go_button(s), seq=s.seq)
        return s

# -- the dispatch tables -------------------------------------------------------------------------

EVENTS: dict[type, Handler] = {
    Start: Engine._on_start,
    Command: Engine._on_command,
    EvalResult: Engine._on_eval_result,
    Push: Engine._on_push,
    Unsupported: Engine._on_unsupported,
    Press: Engine._on_press,
    Text: Engine._on_text,
}

COMMANDS: dict[str, Handler] = {
    "start": Engine._cmd_start,
    "map": Engine._cmd_map,
    "recap": Engine._cmd_recap,
    "progress": Engine._cmd_progress,
    "cards": Engine._cmd_cards,
    "quiz": Engine._cmd_quiz,
    "settings": Engine._cmd_settings,
    "graph": Engine._cmd_graph,
    "lang": Engine._cmd_lang,
    "reset": Engine._cmd_reset,
    "help": Engine._cmd_help,
    "quit": Engine._cmd_quit,
    "hint": Engine._cmd_hint,
    "answer": Engine._cmd_answer,
    "ask": Engine._cmd_ask,
    "goto": Engine._cmd_goto,
    "back": Engine._cmd_back,
    "skip": Engine._cmd_skip,
    "redo": Engine._cmd_redo,
}

PRESSES: dict[Action, Handler] = {
    Action.LANG: Engine._press_lang,
    Action.RESET: Engine._press_reset,
    Action.CARD_SHOW: Engine._press_card,
    Action.RATE: Engine._press_card,
    Action.CARDS: Engine._press_card,
    Action.SET: Engine._press_set,
    Action.RESUME: Engine._press_resume,
    Action.GOTO: Engine._press_goto,
    Action.GO: Engine._press_go,
    Action.PICK: Engine._press_question,
    Action.TOGGLE: Engine._press_question,
    Action.SUBMIT: Engine._press_question,
    Action.JUDGE: Engine._press_question,
    Action.RETRY: Engine._press_question,
    Action.REVEAL: Engine._press_question,
    Action.HINT: Engine._press_question,
}
assert set(PRESSES) == set(Action), "every action has its handler"


def _is_back(event: Event) -> bool:
    """``/back`` walks the trail back; it must not lay a new entry on it."""
    return isinstance(event, Command) and event.name == "back"

"""Going anywhere in the course: ``/goto``, ``/back``, ``/skip``, ``/redo`` and the map's buttons.

Every move of the learner's position in the course (the next step, a new section, a jump) leaves the
position it left on ``state.trail``; ``/back`` takes the last one off and shows it again, so a jump is
undone by one ``/back`` and, otherwise, ``/back`` walks back through the steps.

A target is written as the map shows it (``3A``, or ``3`` for a part's first section), as a section or
step id (``p3.contract``, ``p3.contract.q1``), or, right after a free answer, as the number of one of its
passages (``/goto 1``). Plain functions over the engine's ``Host``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Protocol

from dialogs.actions import Action, button
from dialogs.context import LETTERS, Host, Keyboard, Out
from dialogs.machine import AT_A_STEP
from dialogs.markup import literal
from dialogs.state import LearnerState

TRAIL = 30  # positions kept for /back
LABEL = re.compile(r"^(\d+)\s*([a-z])?$")


class Mover(Host, Protocol):
    """What moving needs of the engine besides the ``Host`` services."""

    def enter_section(self, s: LearnerState, section_id: str, out: Out, step_id: str | None = None) -> LearnerState: ...

    def section_end_again(self, s: LearnerState, out: Out) -> LearnerState: ...


def position(s: LearnerState) -> str:
    """Where the learner is in the course, as one trail entry (a step's question and its retry are one
    place)."""
    phase = "step" if s.phase in AT_A_STEP else s.phase
    step = (s.step or "") if phase == "step" else ""
    return f"{phase}|{s.section or ''}|{step}"


def remember(before: LearnerState, after: LearnerState) -> LearnerState:
    """Put the place ``before`` was at on the trail when a turn moved the learner in the course."""
    if before.mode != "course" or after.mode != "course" or before.phase == "new" or after.phase == "map":
        return after
    here, there = position(before), position(after)
    if here == there or (after.trail and after.trail[-1] == here):
        return after
    return after.but(trail=(*after.trail, here)[-TRAIL:])


# -- reading a target ------------------------------------------------------------------------------


def target(host: Host, s: LearnerState, arg: str) -> tuple[str, str | None] | None:
    """(section id, step id or None) for what the learner wrote, or None when it names nothing."""
    text = unicodedata.normalize("NFKC", arg).strip().lower()  # full-width ３Ａ as typed by Chinese IMEs
    if not text:
        return None
    course = host.course
    if text in course.section_ids:
        return text, None
    for section in course.sections():
        if any(st.id == text for st in section.steps):
            return section.id, text
    if text in course.card_ids:
        return _card_home(host, text)
    if s.ask_hits and text.isdigit() and 1 <= int(text) <= len(s.ask_hits):
        return target(host, s.but(ask_hits=()), s.ask_hits[int(text) - 1])
    m = LABEL.match(text)
    if m:
        part = int(m.group(1))
        if 1 <= part <= len(course.parts):
            sections = course.parts[part - 1].sections
            index = LETTERS.lower().find(m.group(2)) if m.group(2) else 0
            if 0 <= index < len(sections):
                return sections[index].id, None
    return None


def _card_home(host: Host, card_id: str) -> tuple[str, str | None]:
    """A flashcard's place: its section, from the start (cards sum a section up)."""
    for section in host.course.sections():
        if any(c.id == card_id for c in section.cards):
            return section.id, None
    raise KeyError(card_id)


# -- the commands ----------------------------------------------------------------------------------


def blocked(host: Host, s: LearnerState, out: Out) -> bool:
    """A move now would lose something: code is being run."""
    if s.phase == "evaluating":
        out.say(host.t(s, "still_running"))
        return True
    return False


def goto(host: Mover, s: LearnerState, arg: str, out: Out) -> LearnerState:
    if not arg.strip():
        out.say(host.t(s, "goto_usage"), map_keyboard(host, s), seq=s.seq)
        return s
    found = target(host, s, arg)
    if found is None:
        shown = arg.strip()[:30]
        out.say(host.t(s, "goto_unknown", what=literal(shown)), map_keyboard(host, s), seq=s.seq)
        return s
    return jump(host, s, found[0], found[1], out)


def jump(host: Mover, s: LearnerState, section_id: str, step_id: str | None, out: Out) -> LearnerState:
    """Go to a section (from its start) or a step of it, with a word on what it builds on."""
    if blocked(host, s, out):
        return s
    order = host.course.section_ids
    missing = [sid for sid in order[: order.index(section_id)]
               if sid not in s.done_sections and sid != s.section]
    if missing and section_id not in s.done_sections and section_id != s.section:
        labels = [host.section_label(sid) for sid in missing]
        comma = "、" if s.lang == "zh" else ", "
        shown = comma.join(labels) if len(labels) <= 4 else f"{labels[0]} … {labels[-1]} ({len(labels)})"
        out.say(host.t(s, "goto_ahead", builds_on=shown))
    elif step_id is None and section_id in s.done_sections:
        out.say(host.t(s, "goto_done_before", label=host.section_label(section_id)))
    return host.enter_section(s, section_id, out, step_id)


def back(host: Mover, s: LearnerState, out: Out) -> LearnerState:
    if blocked(host, s, out):
        return s
    if not s.trail:
        out.say(host.t(s, "back_nothing"))
        return s
    *rest, last = s.trail
    phase, section_id, step_id = last.split("|")
    s = s.but(trail=tuple(rest))
    if phase == "map" or section_id not in host.course.section_ids:  # the map (or a section since removed)
        out.say(host.t(s, "back_to_map"))
        return host.resend(s.moved(phase="map"), out)
    out.say(host.t(s, "back_to", label=host.section_label(section_id)))
    if phase == "section_end":
        last = host.course.section(section_id).steps[-1].id
        return host.section_end_again(s.moved(section=section_id, step=last), out)
    if phase == "step" and step_id:
        return host.enter_section(s, section_id, out, step_id)
    return host.enter_section(s, section_id, out)


def skip(host: Mover, s: LearnerState, args: str, out: Out) -> LearnerState:
    """Pass over a section (the current one, the next one at a section's end, or the one named)."""
    if blocked(host, s, out):
        return s
    if args.strip():
        found = target(host, s, args)
        if found is None:
            out.say(host.t(s, "goto_unknown", what=literal(args.strip()[:30])))
            return s
        section_id = found[0]
    elif s.phase in AT_A_STEP and s.section and s.section not in s.done_sections:
        section_id = s.section
    else:
        nxt = next_section(host, s)
        if nxt is None:
            out.say(host.t(s, "skip_nothing"))
            return s
        section_id = nxt
    if section_id in s.done_sections:
        out.say(host.t(s, "skip_done", label=host.section_label(section_id)))
        return s
    skipped = s.skipped if section_id in s.skipped else (*s.skipped, section_id)
    s = s.but(skipped=skipped)
    out.say(host.t(s, "skipped", label=host.section_label(section_id)))
    if section_id != s.section and s.phase in AT_A_STEP:
        return s  # a section further on: the learner stays where they are
    nxt = next_section(host, s)
    if nxt is None:
        out.say(host.t(s, "skip_last"))
        return host.section_end_again(s, out) if s.phase == "section_end" else s
    return host.enter_section(s, nxt, out)


def redo(host: Mover, s: LearnerState, args: str, out: Out) -> LearnerState:
    if not args.strip():
        if s.section is None:
            out.say(host.t(s, "redo_usage"))
            return s
        return jump(host, s, s.section, None, out)
    found = target(host, s, args)
    if found is None:
        out.say(host.t(s, "goto_unknown", what=literal(args.strip()[:30])))
        return s
    return jump(host, s, found[0], None, out)


def next_section(host: Host, s: LearnerState) -> str | None:
    """The first section neither done nor skipped (after the current one when it was skipped)."""
    return next((sid for sid in host.course.section_ids
                 if sid not in s.done_sections and sid not in s.skipped), None)


# -- the map's buttons -----------------------------------------------------------------------------


def map_keyboard(host: Host, s: LearnerState) -> Keyboard:
    """A button per section (its label and a mark), a row per part."""
    rows: list[tuple[Any, ...]] = []
    for pi, part in enumerate(host.course.parts, 1):
        row = []
        for si, sec in enumerate(part.sections):
            mark = "✅" if sec.id in s.done_sections else "⏭️" if sec.id in s.skipped else ""
            row.append(button(f"{pi}{LETTERS[si]}{mark}", Action.GOTO, sec.id))
        rows.extend(tuple(row[i:i + 5]) for i in range(0, len(row), 5))
    return tuple(rows)

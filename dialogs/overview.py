"""What the learner sees of the whole course: the map, ``/recap``, ``/progress``."""

from __future__ import annotations

from dialogs import navigation, numbers
from dialogs.context import LETTERS, Host, odd_digits_note
from dialogs.state import LearnerState


def map_text(host: Host, s: LearnerState) -> str:
    """The course map: parts and sections, with what the learner has done."""
    lines = [host.t(s, "map_title", title=host.course.title.get(s.lang))]
    for pi, part in enumerate(host.course.parts, 1):
        done = sum(sec.id in s.done_sections for sec in part.sections)
        lines.append(f"\n**{host.t(s, 'part')} {pi} — {part.title.get(s.lang)}** ({done}/{len(part.sections)})")
        for si, sec in enumerate(part.sections):
            if sec.id in s.done_sections:
                mark = "✅"
            elif sec.id == s.section and s.phase not in ("map", "new"):
                mark = "👉"
            elif sec.id in s.skipped:
                mark = "⏭️"
            else:
                mark = "▫️"
            lines.append(f"{mark} {LETTERS[si]}. {sec.title.get(s.lang)}")
    return "\n".join(lines)

def recap_text(host: Host, s: LearnerState, args: str = "") -> str:
    """``/recap``: key points and flashcards of the latest sections (or of one part)."""
    lang = s.lang
    ids = list(s.done_sections[-2:])
    arg = args.strip().lower().removeprefix("part").strip()
    if arg:
        parts = host.course.parts
        number = numbers.parse_int(arg, 1, len(parts))
        part = parts[number - 1] if number is not None else next((p for p in parts if p.id == arg), None)
        if part is None:
            return odd_digits_note(host, s, arg) + host.t(s, "recap_usage", n=len(parts))
        ids = [sec.id for sec in part.sections if sec.id in s.done_sections]
        if not ids:
            return host.t(s, "recap_part_empty", part=part.title.get(lang))
    blocks = []
    for sid in ids:
        sec = host.course.section(sid)
        rows = "\n".join(f"| {c.q.get(lang)} | {c.a.get(lang)} |" for c in sec.cards)
        header = f"| {host.t(s, 'card_q')} | {host.t(s, 'card_a')} |"
        blocks.append(f"**{host.section_label(sid)} · {sec.title.get(lang)}**\n\n{header}\n{rows}\n\n"
                      + host.t(s, "mnemonic", text=sec.mnemonic.get(lang)))
    if arg:
        return host.t(s, "recap_title") + "\n\n" + "\n\n".join(blocks)
    if s.section and s.section not in s.done_sections and s.phase not in ("map", "new"):
        sec = host.course.section(s.section)
        order = [x.id for x in sec.steps]
        upto = order.index(s.step) if s.step in order else 0
        if upto:
            points = "\n".join(f"• {st.point.get(lang)}" for st in sec.steps[:upto])
            blocks.append(f"**{host.section_label(sec.id)} · {sec.title.get(lang)}** "
                          f"({host.t(s, 'in_progress')})\n{points}")
    if not blocks:
        return host.t(s, "recap_empty")
    return host.t(s, "recap_title") + "\n\n" + "\n\n".join(blocks)

def progress_text(host: Host, s: LearnerState) -> str:
    total = len(host.course.section_ids)
    done = len(s.done_sections)
    bar = "▓" * round(10 * done / total) + "░" * (10 - round(10 * done / total))
    where = ""
    if s.section and s.phase == "section_end":  # the section is done; "go" starts the next one
        done_as = {"done_label": host.section_label(s.section),
                   "done_title": host.course.section(s.section).title.get(s.lang)}
        nxt = navigation.next_section(host, s)  # what "go" starts, as the section's end says
        if nxt is None:
            where = host.t(s, "progress_done_last", **done_as)
        else:
            where = host.t(s, "progress_done_next", label=host.section_label(nxt),
                           title=host.course.section(nxt).title.get(s.lang), **done_as)
    elif s.section and s.phase not in ("map", "new", "done"):
        where = host.t(s, "progress_where", label=host.section_label(s.section),
                       title=host.course.section(s.section).title.get(s.lang))
    skipped = [host.section_label(sid) for sid in s.skipped if sid not in s.done_sections]
    if skipped:
        where += "\n" + host.t(s, "progress_skipped", labels=", ".join(skipped))
    return host.t(s, "progress", done=done, total=total, bar=bar, where=where)

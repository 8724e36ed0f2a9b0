"""A whole Part finished: its recap (one key card from each of its sections) and what the next Part is about.

Shown with the section-end message of the section that completes a Part (``Engine._section_end``).
"""

from __future__ import annotations

from collections.abc import Sequence

from dialogs.context import Host
from dialogs.state import LearnerState


def recap(host: Host, s: LearnerState, section_id: str, done: Sequence[str], nxt: str | None) -> str:
    """The Part recap when ``section_id`` completes its Part (every section of it in ``done``), else "".

    One key card per section (its first: the section's headline), then a line on the Part of ``nxt`` (the
    next section the learner will do) when that is another Part."""
    course = host.course
    part = course.part_of(section_id)
    if not all(sec.id in done for sec in part.sections):
        return ""
    lang = s.lang
    lines = [host.t(s, "part_recap_head", n=course.parts.index(part) + 1, title=part.title.get(lang))]
    for sec in part.sections:
        if sec.cards:
            card = sec.cards[0]
            lines.append(f"• **{host.section_label(sec.id)}** {card.q.get(lang)} — {card.a.get(lang)}")
    text = "\n".join(lines)
    if nxt is not None:
        upcoming = course.part_of(nxt)
        if upcoming is not part:
            sections = " · ".join(sec.title.get(lang) for sec in upcoming.sections)
            text += "\n\n" + host.t(s, "part_recap_next", n=course.parts.index(upcoming) + 1,
                                    title=upcoming.title.get(lang), sections=sections)
    return text

"""The size of the course per part and language, and the sections below the bar."""

from __future__ import annotations

import re
from collections import Counter

from dialogs.course import Choice, CodeTask, Course, Explain, Predict, Section, Statements, Text

MIN_STEPS = 3
MIN_CARDS = 3
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _texts(section: Section) -> list[Text]:
    out: list[Text] = [section.title, section.mnemonic]
    for step in section.steps:
        out.append(step.point)
        for attr in ("text", "prompt", "right", "wrong"):
            value = getattr(step, attr, None)
            if isinstance(value, Text):
                out.append(value)
        for o in getattr(step, "options", ()):
            if not isinstance(o, str):
                out += [o.text, o.feedback]
        for st in getattr(step, "statements", ()):
            out += [st.text, st.feedback]
        out += list(getattr(step, "hints", ()))
    for card in section.cards:
        out += [card.q, card.a]
    return out


def words(text: str, lang: str) -> int:
    """English words; for Chinese, CJK characters count as words at 2 characters per word."""
    if lang == "zh":
        cjk = len(_CJK.findall(text))
        return cjk // 2 + len(re.findall(r"[A-Za-z_][\w.]*", text))
    return len(text.split())


def proofs(section: Section) -> int:
    n = 0
    for step in section.steps:
        if (isinstance(step, Explain) and step.output is not None) or isinstance(step, Predict):
            n += 1
        elif isinstance(step, Choice):
            n += sum(o.proof is not None for o in step.options)
        elif isinstance(step, Statements):
            n += sum(s.proof is not None for s in step.statements)
        elif isinstance(step, CodeTask):
            n += 1 + len(step.wrong_solutions)
    return n


def minutes(section: Section, lang: str) -> float:
    """A rough time to play a section: reading at 200 wpm (zh: 300 characters/min) plus thinking time."""
    reading = sum(words(t.get(lang), lang) for t in _texts(section)) / 200
    thinking = sum({"choice": 0.5, "statements": 0.75, "predict": 0.75, "code": 4.0}.get(s.kind, 0.1)
                   for s in section.steps)
    return reading + thinking


def below_bar(section: Section) -> list[str]:
    problems = []
    if len(section.steps) < MIN_STEPS:
        problems.append(f"{len(section.steps)} steps (< {MIN_STEPS})")
    if not any(s.kind != "explain" for s in section.steps):
        problems.append("no question")
    if len(section.cards) < MIN_CARDS:
        problems.append(f"{len(section.cards)} cards (< {MIN_CARDS})")
    return problems


def course_report(course: Course) -> tuple[str, list[str]]:
    lines = ["part      sections steps questions (choice/multi/tf/predict/code) cards proofs  words en/zh  min en/zh"]
    problems: list[str] = []
    total: Counter[str] = Counter()
    for part in course.parts:
        c: Counter[str] = Counter()
        for sec in part.sections:
            c["sections"] += 1
            c["steps"] += len(sec.steps)
            for s in sec.steps:
                key = "multi" if isinstance(s, Choice) and s.multi else s.kind
                c[key] += 1
            c["cards"] += len(sec.cards)
            c["proofs"] += proofs(sec)
            for lang in ("en", "zh"):
                c["words_" + lang] += sum(words(t.get(lang), lang) for t in _texts(sec))
                c["min_" + lang] += round(minutes(sec, lang))
            problems += [f"{sec.id}: {p}" for p in below_bar(sec)]
        questions = c["choice"] + c["multi"] + c["statements"] + c["predict"] + c["code"]
        lines.append(
            f"{part.id:<9} {c['sections']:>8} {c['steps']:>5} {questions:>9} "
            f"({c['choice']}/{c['multi']}/{c['statements']}/{c['predict']}/{c['code']})".ljust(66)
            + f"{c['cards']:>5} {c['proofs']:>6} {c['words_en']:>6}/{c['words_zh']:<6} {c['min_en']:>4}/{c['min_zh']}"
        )
        total += c
    lines.append(f"total: {total['sections']} sections, {total['steps']} steps, {total['cards']} cards, "
                 f"{total['proofs']} proofs, ~{total['min_en']} min (en) / ~{total['min_zh']} min (zh)")
    return "\n".join(lines), problems

"""The free-question benchmark set (tests/fixtures/questions.yaml) is well-formed and points at real content.

Every answer id must name a step or a flashcard of the course, so a renamed or removed step shows up
here instead of silently lowering the retrieval benchmark's hit rates.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import default_content_dir, load_course
from dialogs.course import Course

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "questions.yaml"

# What a pasted torch error or warning looks like: an exception/warning class name or torch's
# own phrasing of the autograd errors.
PASTED = re.compile(r"(RuntimeError|TypeError|ValueError|GradcheckError|UserWarning|Error:|Warning:)")
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    data = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    assert isinstance(data, list), "questions.yaml must be a list of entries"
    return data


def all_ids(course: Course) -> set[str]:
    steps = {step.id for section in course.sections() for step in section.steps}
    return steps | set(course.card_ids)


def test_entries_have_the_documented_shape(entries: list[dict[str, Any]]) -> None:
    for i, e in enumerate(entries):
        assert isinstance(e, dict), f"entry {i} is not a mapping"
        extra = set(e) - {"q", "lang", "answers", "note"}
        assert not extra, f"entry {i}: unknown fields {extra}"
        assert isinstance(e.get("q"), str) and e["q"].strip(), f"entry {i}: empty question"
        assert e.get("lang") in ("en", "zh"), f"entry {i}: lang must be en or zh, got {e.get('lang')!r}"
        answers = e.get("answers")
        assert isinstance(answers, list) and answers, f"entry {i} ({e['q'][:40]!r}): no answer ids"
        assert all(isinstance(a, str) for a in answers), f"entry {i}: answer ids must be strings"
        assert len(set(answers)) == len(answers), f"entry {i}: an answer id is listed twice"


def test_counts(entries: list[dict[str, Any]]) -> None:
    langs = Counter(e["lang"] for e in entries)
    assert len(entries) >= 80, f"only {len(entries)} questions"
    assert langs["zh"] >= 40, f"only {langs['zh']} Chinese questions"
    assert langs["en"] >= 40, f"only {langs['en']} English questions"
    pasted = [e for e in entries if PASTED.search(e["q"])]
    assert len(pasted) >= 10, f"only {len(pasted)} pasted torch errors/warnings"


def test_lang_matches_the_text(entries: list[dict[str, Any]]) -> None:
    for e in entries:
        has_chinese = bool(HAN.search(e["q"]))
        assert has_chinese == (e["lang"] == "zh"), f"lang {e['lang']} but the text says otherwise: {e['q'][:60]!r}"


def test_no_duplicate_questions(entries: list[dict[str, Any]]) -> None:
    folded = Counter(" ".join(e["q"].lower().split()) for e in entries)
    dupes = [q for q, n in folded.items() if n > 1]
    assert not dupes, f"duplicate questions: {dupes}"


def test_every_answer_id_exists(entries: list[dict[str, Any]], course: Course) -> None:
    known = all_ids(course)
    missing = sorted({a for e in entries for a in e["answers"] if a not in known})
    assert not missing, f"answer ids not in the course: {missing}"


def test_every_part_is_covered(entries: list[dict[str, Any]], course: Course) -> None:
    part_of_section = {s.id: part.id for part in course.parts for s in part.sections}
    covered = Counter()
    for e in entries:
        parts = {part_of_section[a.rsplit(".", 1)[0]] for a in e["answers"] if a.rsplit(".", 1)[0] in part_of_section}
        covered.update(parts)
    missing = [p.id for p in course.parts if covered[p.id] < 5]
    assert not missing, f"parts with fewer than 5 questions: {missing} ({dict(covered)})"


def test_the_id_check_can_fail(course: Course) -> None:
    known = all_ids(course)
    assert "p1.leaf.intro" in known and "p1.leaf.c-where-grad-lands" in known
    assert "p1.leaf.nope" not in known and "p1.leaf" not in known

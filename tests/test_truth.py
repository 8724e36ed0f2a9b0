"""Truth is a feature: every runnable claim of the real course holds in torch 2.13.

Explain outputs, predict answers, proofs of statements and options run in one torch child process
(tests/support/truth.py). Code exercises run through the real sandbox: each reference solution
passes every check, each typical wrong solution fails the check it names.
"""

from __future__ import annotations

import asyncio
from functools import cache

import pytest

from bot.content import load_course
from bot.sandbox import Sandbox, SandboxConfig
from dialogs.course import CodeTask, Course
from dialogs.evaluation import CheckSpec
from dialogs.stats import below_bar, course_report
from tests.support.truth import ROOT, claims_of, run_claims


@cache
def course() -> Course:
    return load_course(ROOT / "content")


def test_the_real_course_loads_in_full() -> None:
    c = course()
    assert [p.id for p in c.parts] == ["p1", "p2", "p3", "p4", "p5", "bonus", "p7"]
    assert len(c.section_ids) == 34


def test_every_section_meets_the_bar() -> None:
    problems = {s.id: below_bar(s) for s in course().sections() if below_bar(s)}
    assert problems == {}
    report, listed = course_report(course())
    assert listed == [] and "total: 34 sections" in report


def test_part1_has_every_question_kind() -> None:
    kinds = {(s.kind, getattr(s, "multi", False)) for sec in course().parts[0].sections for s in sec.steps}
    assert {("choice", False), ("choice", True), ("statements", False), ("predict", False)} <= kinds


@pytest.mark.slow
def test_every_runnable_claim_holds() -> None:
    claims = [c for s in course().sections() for c in claims_of(s) if c.kind not in ("solution", "wrong")]
    assert len(claims) > 100
    failures = [f"{c.where}: {problem}" for c, problem in run_claims(claims) if problem]
    assert failures == [], "\n\n".join(failures)


def _code_tasks() -> list[CodeTask]:
    return [s for sec in course().sections() for s in sec.steps if isinstance(s, CodeTask)]


@pytest.mark.slow
def test_code_exercises_through_the_real_sandbox() -> None:
    tasks = _code_tasks()
    assert len(tasks) >= 4  # MyReLU, f(x, w), LeakyReLU + gradcheck, manual SGD

    async def run() -> list[str]:
        problems: list[str] = []
        async with Sandbox(SandboxConfig(workers=2, wall_seconds=20)) as sb:
            for task in tasks:
                checks = [CheckSpec(c.id, c.code) for c in task.checks]
                good = await sb.evaluate(task.solution, checks)
                if not good.passed:
                    problems.append(f"{task.id}: the reference solution does not pass: {good.to_dict()}")
                for i, wrong in enumerate(task.wrong_solutions, 1):
                    out = await sb.evaluate(wrong.code, checks)
                    if wrong.fails in {c.id for c in task.checks}:
                        failed = {r.id for r in out.checks if not r.passed}
                        if out.status != "ok" or wrong.fails not in failed:
                            problems.append(f"{task.id}: wrong solution {i} should fail {wrong.fails!r}: "
                                            f"{out.to_dict()}")
                    elif out.status != wrong.fails:
                        problems.append(f"{task.id}: wrong solution {i} should end in {wrong.fails!r}: "
                                        f"{out.to_dict()}")
        return problems

    assert asyncio.run(run()) == []


def test_readme_lists_the_curriculum() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for part in course().parts:
        assert part.title.en in readme
        for section in part.sections:
            title = section.title.en.rstrip(" 🕵️🎧🔁🍱🪆🎮🧹📊").strip()
            assert title in readme, title

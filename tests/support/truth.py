"""Truth checking: run every claim of the course with real torch and compare.

Claims: explain code with a shown ``output``; predict answers; statement/option ``proof``s; code
steps' reference solutions (must pass every check) and typical wrong solutions (must fail the named
check). All run in ONE child process that imports torch once; each claim gets a fresh namespace.

    python -m tests.support.truth [content dir or section files...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.content import load_course, load_section_file
from dialogs.course import Choice, CodeTask, Explain, Predict, Section, Statements

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Claim:
    where: str  # "p1.leaf.q2 statement 3"
    kind: str  # output | raises | runs | solution | wrong
    code: str
    expect: Any = None  # output text / (type, match) / list of checks / (checks, failing id)


def claims_of(section: Section) -> list[Claim]:
    out: list[Claim] = []
    for step in section.steps:
        if isinstance(step, Explain) and step.code is not None and step.output is not None:
            out.append(Claim(f"{step.id} (explain output)", "output", step.code, step.output))
        elif isinstance(step, Predict):
            out.append(Claim(f"{step.id} (predict answer)", "output", step.code, step.answer))
        elif isinstance(step, Choice):
            for i, o in enumerate(step.options):
                if o.proof is not None:
                    out.append(_proof_claim(f"{step.id} option {'ABCDEFGH'[i]}", o.proof))
        elif isinstance(step, Statements):
            for i, st in enumerate(step.statements):
                if st.proof is not None:
                    out.append(_proof_claim(f"{step.id} statement {i + 1}", st.proof))
        elif isinstance(step, CodeTask):
            checks = [{"id": c.id, "code": c.code} for c in step.checks]
            out.append(Claim(f"{step.id} (reference solution)", "solution", step.solution, checks))
            for i, w in enumerate(step.wrong_solutions):
                out.append(Claim(f"{step.id} (wrong solution {i + 1})", "wrong", w.code, [checks, w.fails]))
    return out


def _proof_claim(where: str, proof: Any) -> Claim:
    if proof.output is not None:
        return Claim(where, "output", proof.code, proof.output)
    if proof.raises is not None:
        return Claim(where, "raises", proof.code, [proof.raises, proof.match or ""])
    return Claim(where, "runs", proof.code)


def run_claims(claims: list[Claim], timeout: float = 600) -> list[tuple[Claim, str | None]]:
    """Run claims in a torch child process; returns (claim, problem or None) for each."""
    payload = json.dumps([{"kind": c.kind, "code": c.code, "expect": c.expect} for c in claims])
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    env.update(OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.truth_worker"], input=payload, capture_output=True,
        text=True, cwd=ROOT, env=env, timeout=timeout, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"truth worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    problems = json.loads(proc.stdout.splitlines()[-1])
    return list(zip(claims, problems, strict=True))


def main(argv: list[str]) -> int:
    targets = argv or [str(ROOT / "content")]
    sections: list[Section] = []
    for t in targets:
        p = Path(t)
        if p.is_dir():
            sections.extend(load_course(p).sections())
        else:
            sections.append(load_section_file(p))
    claims = [c for s in sections for c in claims_of(s)]
    results = run_claims(claims)
    bad = [(c, p) for c, p in results if p]
    for c, p in bad:
        print(f"✗ {c.where}: {p}\n")
    print(f"{len(claims) - len(bad)} of {len(claims)} claims hold in {len(sections)} sections")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Code tasks are not given away (issue 14): the learner writes the code before anyone shows it.

A code task's reference solution is compared with everything a learner can read before writing it:
the code of the earlier steps of its section and of earlier sections (step code, the code blocks and
inline code of their texts, options, feedback, hints, earlier tasks' revealed solutions), its own
prompt, hints and check texts. Code is compared after normalisation: comments, whitespace and blank
lines go; a line given by the task's ``starter`` is not part of the answer.

Two measures:

- **runs**: the longest run of consecutive solution lines that also stand, consecutively, in one piece
  of earlier code. Scaffolding is skipped on both sides (imports, decorators, ``def``/``class``
  headers, ``...``/``pass``, ``ctx.save_for_backward(...)``, ``... = ctx.saved_tensors``, ``a = None``,
  ``if ctx.needs_input_grad[i]:``, a ``return`` of bare names): that is the API the lesson must teach,
  the same in every Function. A run of 3 computing lines is a copied solution.
- **gradient formulas**: for a custom Function, the expressions its ``backward`` computes from the
  incoming gradient (``grad_output * (x > 0)``). No piece of earlier code, no hint, no point of a
  step and no flashcard (both reachable by /ask at any time) may hold all of them.

Check texts (``fail``, ``says``) hold no code of the solution, and a ``fail`` text reports what was
observed: no fix ("use...", "must...", "instead") and no guessed cause ("usually...").
Hints climb: at least three, a question first with no code, a skeleton with blanks (``...``) last.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from bot.content import load_course
from dialogs import markup
from dialogs.course import Check, CodeTask, Course, Section, Text

ROOT = Path(__file__).resolve().parents[1]
MAX_RUN = 2  # a run of 3 identical computing lines gives the answer away

_SCAFFOLD = [
    re.compile(p) for p in (
        r"^(import |from \S+ import )",
        r"^@",
        r"^(async )?def ",
        r"^class ",
        r"^(\.\.\.|pass)$",
        r"^ctx\.save_for_backward\(.*\)$",
        r"^[\w\s,]+=\s*ctx\.saved_tensors$",
        r"^[\w\s]+(=[\w\s]+)*=\s*None$",
        r"^if ctx\.needs_input_grad\[\d+\]:$",
        r"^return [\w\s,]+$",
    )
]
#: a fail text that prescribes or diagnoses instead of reporting
_PRESCRIBES = re.compile(
    r"\b(usually|instead|make sure|should|must|remember|remove|keep|append|use|try|update it)\b"
    r"|通常|应该|请|改为|记得|去掉|必须|务必|换成|别忘",
    re.IGNORECASE,
)


@cache
def course() -> Course:
    return load_course(ROOT / "content")


def _strip_comment(line: str) -> str:
    out, quote = [], ""
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out)


def _squeeze(line: str) -> str:
    return re.sub(r"\s+", "", line)


def lines_of(code: str) -> list[str]:
    """Normalised code lines: no comments, no whitespace, no blank lines."""
    out = []
    for raw in code.split("\n"):
        line = _strip_comment(raw).strip()
        if line:
            out.append(line)
    return out


def scaffold(line: str) -> bool:
    return any(p.search(line) for p in _SCAFFOLD)


def computing(code_lines: list[str]) -> list[str]:
    """The lines that compute something, squeezed (scaffolding dropped)."""
    return [_squeeze(line) for line in code_lines if not scaffold(line)]


def code_in(text: str) -> list[str]:
    """The code a learner reads in a text, in order: lines of code blocks and inline code spans."""
    out: list[str] = []

    def spans(s: str) -> None:
        codes = (_strip_comment(c).strip() for kind, c in markup.inline(s) if kind == "code")
        out.extend(c for c in codes if c)

    for block in markup.parse(text):
        if isinstance(block, markup.CodeBlock):
            out.extend(lines_of(block.code))
        elif isinstance(block, markup.Para):
            spans(block.text)
        else:
            for row in block.rows:
                for cell in row:
                    spans(cell)
    return out


def texts(value: Text | None) -> list[str]:
    return [] if value is None else [value.en, value.zh]


@dataclass(frozen=True)
class Piece:
    where: str
    lines: list[str]  # normalised code lines, scaffolding included


def shown(section: Section, upto: str | None = None) -> Iterator[Piece]:
    """What a learner reads in ``section`` before step ``upto`` (all of it when None)."""
    for step in section.steps:
        if step.id == upto:
            return
        where = step.id
        for attr in ("code", "starter", "solution"):
            code = getattr(step, attr, None)
            if code:
                yield Piece(f"{where} {attr}", lines_of(code))
        pieces: list[tuple[str, Text | None]] = [("point", step.point)]
        pieces += [(a, getattr(step, a, None)) for a in ("text", "prompt", "right", "wrong")]
        for i, o in enumerate(getattr(step, "options", ())):
            if isinstance(o, str):
                yield Piece(f"{where} option {i + 1}", lines_of(o))
            else:
                pieces += [(f"option {i + 1}", o.text), (f"option {i + 1} feedback", o.feedback)]
        for i, st in enumerate(getattr(step, "statements", ())):
            pieces += [(f"statement {i + 1}", st.text), (f"statement {i + 1} feedback", st.feedback)]
        pieces += [(f"hint {i + 1}", h) for i, h in enumerate(getattr(step, "hints", ()))]
        for c in getattr(step, "checks", ()):
            pieces += [(f"check {c.id} says", c.says), (f"check {c.id} fail", c.fail)]
        for name, value in pieces:
            for text in texts(value):
                yield Piece(f"{where} {name}", code_in(text))


@dataclass(frozen=True)
class Answer:
    task: CodeTask
    lines: list[str]  # the solution's computing lines, squeezed, starter lines left out
    formulas: list[str]  # the backward's gradient expressions, squeezed (empty for a script)


def formulas(solution: str) -> list[str]:
    """What a Function's ``backward`` computes from its incoming gradients, one expression each."""
    tree = ast.parse(solution)
    out: list[str] = []
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name == "backward"):
            continue
        grads = [a.arg for a in fn.args.args[1:]]
        uses = re.compile(r"\b(" + "|".join(map(re.escape, grads)) + r")\b")
        for stmt in ast.walk(fn):
            if isinstance(stmt, ast.Return | ast.Assign) and stmt.value is not None:
                value = stmt.value
                parts = value.elts if isinstance(value, ast.Tuple) else [value]
                out += [e for e in (_squeeze(ast.unparse(p)) for p in parts) if uses.search(e)]
    return out


def answer(task: CodeTask) -> Answer:
    """The solution minus what the task hands out: the starter's lines, and a line whose expression the
    prompt spells out (the spec: ``f(x, w) = x * w + w ** 2``)."""
    given = {_squeeze(line) for line in lines_of(task.starter or "")}
    spec = [_squeeze(c) for t in texts(task.prompt) for c in code_in(t)]

    def in_spec(line: str) -> bool:
        expr = line.removeprefix("return")
        return any(expr in c for c in spec)

    lines = [line for line in computing(lines_of(task.solution)) if line not in given and not in_spec(line)]
    return Answer(task, lines, formulas(task.solution))


def longest_run(a: list[str], b: list[str]) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def holds_formulas(ans: Answer, code_lines: list[str]) -> bool:
    """Does this code hold every gradient formula of the answer (a Function's whole backward)?"""
    squeezed = [_squeeze(line) for line in code_lines]
    return bool(ans.formulas) and all(any(f in line for line in squeezed) for f in ans.formulas)


def giveaway(ans: Answer, piece: Piece) -> str | None:
    run = longest_run(ans.lines, computing(piece.lines))
    if run > MAX_RUN:
        return f"{piece.where}: {run} consecutive lines of the solution"
    if holds_formulas(ans, piece.lines):
        return f"{piece.where}: the backward's gradient formulas {ans.formulas}"
    return None


def code_tasks() -> list[tuple[str, str]]:
    return [(sec.id, st.id) for sec in course().sections() for st in sec.steps if isinstance(st, CodeTask)]


def task_of(section_id: str, step_id: str) -> CodeTask:
    step = course().step(section_id, step_id)
    assert isinstance(step, CodeTask)
    return step


# ---------------------------------------------------------------------------------------- the measures


def test_the_measures_catch_a_copied_solution() -> None:
    relu = textwrap.dedent("""\
        import torch

        class MyReLU(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x.clamp(min=0)

            @staticmethod
            def backward(ctx, grad_output):
                x, = ctx.saved_tensors   # the input
                return grad_output * (x > 0)
        """)
    task = CodeTask(id="t.x.relu", kind="code", point=Text(en="p", zh="p"), prompt=Text(en="p", zh="p"),
                    checks=(Check(id="ok", code="pass", says=Text(en="s", zh="s"), fail=Text(en="f", zh="f")),),
                    hints=(Text(en="h", zh="h"), Text(en="h", zh="h")), solution=relu,
                    right=Text(en="r", zh="r"))
    ans = answer(task)
    assert ans.formulas == ["grad_output*(x>0)"]
    assert ans.lines == ["returnx.clamp(min=0)", "returngrad_output*(x>0)"]
    # the same class under another name, reformatted: its backward is still there
    copy = relu.replace("MyReLU", "Mine").replace("x > 0", "x>0")
    assert giveaway(ans, Piece("copy", lines_of(copy)))
    # a hint that spells the lines out inline
    hint = "In `forward`: `ctx.save_for_backward(x)`. In `backward`: `return grad_output * (x > 0)`."
    assert giveaway(ans, Piece("hint", code_in(hint)))
    # a skeleton with blanks, and another op's Function, are not the answer
    skeleton = "```python\nx, = ctx.saved_tensors\nreturn grad_output * (...)\n```"
    assert giveaway(ans, Piece("skeleton", code_in(skeleton))) is None
    square = relu.replace("x.clamp(min=0)", "x ** 2").replace("grad_output * (x > 0)", "grad_output * 2 * x")
    assert giveaway(ans, Piece("square", lines_of(square))) is None
    # a backward returning a pair: one formula per input
    pair = relu.replace("return grad_output * (x > 0)", "return grad_output * (x + 2 * x), None")
    assert formulas(pair) == ["grad_output*(x+2*x)"]
    # a script: three consecutive computing lines are a run
    loop = answer(task.model_copy(update={"solution": "a = 1\nb = a + 1\nc = b * 2\nprint(c)\n"}))
    assert longest_run(loop.lines, computing(lines_of("a = 1\nb = a + 1\nc = b * 2"))) == 3
    assert longest_run(loop.lines, computing(lines_of("a = 1\nb = a + 1\nc = b * 3"))) == 2


def test_there_are_code_tasks_with_formulas() -> None:
    tasks = code_tasks()
    assert len(tasks) >= 5
    functions = [t for t in tasks if answer(task_of(*t)).formulas]
    assert len(functions) >= 4, functions


# ---------------------------------------------------------------------------------------- the course


@pytest.mark.parametrize(("section_id", "step_id"), code_tasks())
def test_no_earlier_step_shows_the_solution(section_id: str, step_id: str) -> None:
    ans = answer(task_of(section_id, step_id))
    problems = []
    for section in course().sections():
        if section.id == section_id:
            problems += [p for piece in shown(section, upto=step_id) if (p := giveaway(ans, piece))]
            break
        problems += [p for piece in shown(section) if (p := giveaway(ans, piece))]
    assert problems == [], f"{step_id} is given away by:\n" + "\n".join(problems)


@pytest.mark.parametrize(("section_id", "step_id"), code_tasks())
def test_the_task_itself_does_not_show_the_solution(section_id: str, step_id: str) -> None:
    """Its prompt, hints and check texts; its point and every card and point of the course, which /ask
    may show at any time."""
    task = task_of(section_id, step_id)
    ans = answer(task)
    pieces = [Piece(f"{step_id} prompt", code_in(t)) for t in texts(task.prompt)]
    pieces += [Piece(f"{step_id} hint {i + 1}", code_in(t)) for i, h in enumerate(task.hints) for t in texts(h)]
    for section in course().sections():
        pieces += [Piece(f"{st.id} point", code_in(t)) for st in section.steps for t in texts(st.point)]
        pieces += [Piece(f"{c.id}", code_in(t)) for c in section.cards for t in texts(c.a) + texts(c.q)]
    problems = [p for piece in pieces if (p := giveaway(ans, piece))]
    assert problems == [], f"{step_id} is given away by:\n" + "\n".join(problems)


@pytest.mark.parametrize(("section_id", "step_id"), code_tasks())
def test_check_texts_report_what_happened(section_id: str, step_id: str) -> None:
    task = task_of(section_id, step_id)
    ans = answer(task)
    problems = []
    for check in task.checks:
        for field in ("says", "fail"):
            for text in texts(getattr(check, field)):
                for span in code_in(text):
                    code = _squeeze(span)
                    if len(code) >= 3 and re.search(r"[=*+\-/\[(.<>]", code) and any(
                            code in line for line in ans.lines):
                        problems.append(f"{check.id} {field}: solution code {span!r}")
                    if any(f in code for f in ans.formulas):
                        problems.append(f"{check.id} {field}: a gradient formula {span!r}")
        for text in texts(check.fail):
            prose = " ".join(c for kind, c in markup.inline(text) if kind != "code")
            bad = _PRESCRIBES.search(prose)
            if bad:
                problems.append(f"{check.id} fail prescribes or guesses ({bad.group(0)!r}): {text!r}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(("section_id", "step_id"), code_tasks())
def test_hints_climb(section_id: str, step_id: str) -> None:
    """A guiding question, a pointer to the idea, a skeleton with blanks; only ``answer`` shows it all."""
    task = task_of(section_id, step_id)
    assert len(task.hints) >= 3, f"{step_id}: {len(task.hints)} hints"
    for lang in ("en", "zh"):
        first, last = task.hints[0].get(lang), task.hints[-1].get(lang)
        assert re.search(r"[?？]", first), f"{step_id} ({lang}): the first hint asks nothing: {first!r}"
        assert not any(isinstance(b, markup.CodeBlock) for b in markup.parse(first)), f"{step_id}: code in hint 1"
        blocks = [b for h in task.hints[:-1] for b in markup.parse(h.get(lang)) if isinstance(b, markup.CodeBlock)]
        assert blocks == [], f"{step_id} ({lang}): a code block before the last hint"
        skeleton = [b for b in markup.parse(last) if isinstance(b, markup.CodeBlock)]
        assert skeleton and all("..." in b.code for b in skeleton), \
            f"{step_id} ({lang}): the last hint is not a skeleton with blanks (...)"

"""Code tasks' rough edges (issue 13): a Chinese learner reads every check detail and what happened to a
run in Chinese; the footer's backticks show as backticks; a gradcheck Jacobian is never cut inside a
number.

The sandbox answers with data (a check's ``say`` and values, a run's ``why`` and limit); the tutor words
it in the learner's language, and what the learner's code produced stays literal and untranslated.
Most tests run the real sandbox with real torch, through the engine as a learner would.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import pytest
import pytest_asyncio

from bot.console import Style, render
from bot.content import load_course
from bot.sandbox import Sandbox, SandboxConfig, protocol
from bot.telegram.render import to_html
from dialogs.course import CodeTask, Course
from dialogs.evaluation import CheckResult, CheckSpec, EvalOutcome
from dialogs.messages import Command, EvalResult, Evaluate, Say
from dialogs.state import LearnerState
from tests.support.driver import Driver, mini_course
from tests.support.fake_bot_api import parse_html
from tests.support.terminal import ChatProcess

ROOT = Path(__file__).resolve().parents[1]
FAKE = "All checks passed"
#: English that only check details and sandbox messages used to say: never shown to a Chinese learner.
ENGLISH = ("expected", "failed", "Jacobian mismatch", "gradcheck on", "Your code", "does backward", "is None",
           "and was stopped", "no need to exit", "segmentation fault")
NUMBER = re.compile(r"-?\d+\.\d{4}")
IN_SANDBOX = pytest.mark.asyncio(loop_scope="module")  # the sandbox fixture's loop


@cache
def course() -> Course:
    return load_course(ROOT / "content")


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(workers=2, wall_seconds=3.0)) as sb:
        yield sb


def at_task(lang: str, section: str = "", step: str = "") -> Driver:
    """A learner at a code task: the mini course's ``square``, or a step of the real course."""
    if not step:
        d = Driver(mini_course(), LearnerState(lang=lang, lang_chosen=True))
        d.go_to("m1.two.square")
        return d
    ids = course().section_ids
    return Driver(course(), LearnerState(phase="question", section=section, step=step, seq=1, lang=lang,
                                         lang_chosen=True, done_sections=ids[: ids.index(section)]))


async def submit(d: Driver, sandbox: Sandbox, source: str) -> str:
    """Send code, run it in the real sandbox, feed the verdict back; what the learner reads."""
    d.send(source)
    (ev,) = d.effects(Evaluate)
    outcome = await sandbox.evaluate(ev.code, list(ev.checks))
    d.event(EvalResult(ev.request, outcome))
    return d.text()


def terminal_text(text: str) -> str:
    return render(text, Style(False))


def html_of(text: str) -> str:
    return "\n".join(to_html(text))


def blocks(text: str) -> list[list[str]]:
    """The lines of each fenced code block of a reply."""
    return [b.split("\n") for b in re.findall(r"^```\n(.*?)\n```$", text, re.S | re.M)]


def matrix_rows(block: list[str], which: str) -> list[str]:
    """The row lines of one of the two Jacobians in a gradcheck block ("…" lines included)."""
    start = block.index(f"{which}:") + 1
    rows = []
    for line in block[start:]:
        if line.endswith(":"):
            break
        rows.append(line)
    return rows


def assert_whole_numbers(rows: list[str]) -> None:
    """Every cell is a whole number (``-1.0000``), a "…" for what was left out, or the ≠ mark."""
    for row in rows:
        for cell in row.split():
            assert NUMBER.fullmatch(cell) or cell in ("…", "≠"), (cell, rows)


# ------------------------------------------------------------------------------ the footer's backticks


@pytest.mark.parametrize(("lang", "shown", "code_words"), [
    ("en", "(a ```python block is fine). Stuck? hint. Out of ideas? answer.", ("```python", "hint", "answer")),
    ("zh", "（用 ```python 代码块也行）。卡住了？输入 提示。想看答案？输入 答案。", ("```python", "提示", "答案")),
])
def test_the_code_task_footer_shows_its_backticks_in_the_terminal_and_telegram(
        lang: str, shown: str, code_words: tuple[str, ...]) -> None:
    d = at_task(lang)
    text = d.text()
    assert shown in terminal_text(text)  # a ```python block, not ``python … answer`
    colored = render(text, Style(True))
    for word in code_words:
        assert f"\033[36m{word}\033[0m" in colored
    html = html_of(text)
    for word in code_words:
        assert f"<code>{word}</code>" in html, html
    plain, _ = parse_html(html_of(text.split("\n\n")[-1]), strict_ampersand=True)
    assert plain.endswith(shown)  # what Telegram shows


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_empty_code_hint_shows_its_backticks_too(lang: str) -> None:
    d = at_task(lang)
    d.send("```python\n```")
    assert "```python" in terminal_text(d.text()) and "<code>```python</code>" in html_of(d.text())
    assert "``python" not in terminal_text(d.text()).replace("```python", "")


# ------------------------------------------------------------------ check details in the learner's language

WRONG_RELU = code(
    """
    import torch

    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return (x > 0).to(x.dtype)
    """
)


@pytest.mark.slow
@IN_SANDBOX
async def test_a_chinese_learner_reads_a_wrong_custom_function_in_chinese(sandbox: Sandbox) -> None:
    d = at_task("zh", "p3.contract", "p3.contract.relu")
    text = await submit(d, sandbox, WRONG_RELU)
    assert d.state.phase == "retry"
    shown = terminal_text(text)
    for english in ENGLISH:
        assert english not in shown, (english, shown)
    # the gradient check: the values, worded in Chinese
    assert "x.grad 是 [0.0, 0.0, 1.0, 1.0]，应为 [0.0, 0.0, 30.0, 40.0]（上游梯度 [10.0, 20.0, 30.0, 40.0]）" in shown
    # gradcheck: which Jacobian, in Chinese, and both matrices whole, the wrong rows marked
    assert "在 x = [-2.0, -0.5, 1.5, 3.0] 上跑 gradcheck：output 0 对 input 0 的 Jacobian 不一致" in shown
    (block,) = blocks(text)
    assert matrix_rows(block, "numerical") == ["  0.0000  0.0000  0.0000  0.0000", "  0.0000  0.0000  0.0000  0.0000",
                                               "  0.0000  0.0000  1.0000  0.0000", "  0.0000  0.0000  0.0000  1.0000"]
    assert matrix_rows(block, "analytical") == [
        "  0.0000  0.0000  0.0000  0.0000", "  0.0000  0.0000  0.0000  0.0000",
        "  1.0000  1.0000  1.0000  1.0000   ≠", "  1.0000  1.0000  1.0000  1.0000   ≠"]
    html = html_of(text)
    assert "<pre>numerical:\n  0.0000" in html and "上游梯度 <code>[10.0, 20.0, 30.0, 40.0]</code>" in html


@pytest.mark.slow
@IN_SANDBOX
async def test_the_english_wording_of_the_same_failure(sandbox: Sandbox) -> None:
    d = at_task("en", "p3.contract", "p3.contract.relu")
    shown = terminal_text(await submit(d, sandbox, WRONG_RELU))
    assert "x.grad is [0.0, 0.0, 1.0, 1.0], expected [0.0, 0.0, 30.0, 40.0] (upstream gradient" in shown
    assert "gradcheck on x = [-2.0, -0.5, 1.5, 3.0]: the Jacobian of output 0 with respect to input 0 differs" in shown


@pytest.mark.slow
@IN_SANDBOX
async def test_a_missing_class_and_a_wrong_forward_in_chinese(sandbox: Sandbox) -> None:
    d = at_task("zh", "p3.multi-io", "p3.multi-io.fxw")
    shown = terminal_text(await submit(d, sandbox, "import torch\nclass Other: pass\n"))
    assert "找不到 MulPlusSquare：是不是改了名？" in shown
    assert "I can't find" not in shown and "NameError" in shown  # later checks: the learner's own error, literal
    d = at_task("zh", "p5.manual-sgd", "p5.manual-sgd.fit")
    shown = terminal_text(await submit(d, sandbox, "import torch\nw = torch.zeros(2, requires_grad=True)\nb = 3\n"))
    assert "w 含 2 个数，而任务要的是一个。" in shown
    assert "b 是 int，不是张量。" not in shown  # one at a time
    assert "should hold one number" not in shown


# ------------------------------------------------------------------------- a Jacobian is never cut mid-number


@pytest.mark.slow
@IN_SANDBOX
async def test_the_3x4_gradcheck_matrix_is_shown_whole(sandbox: Sandbox) -> None:
    task = course().step("p3.errors", "p3.errors.rowsum")
    assert isinstance(task, CodeTask)
    wrong = next(w.code for w in task.wrong_solutions if "torch.ones_like(x)" in w.code)
    d = at_task("en", "p3.errors", "p3.errors.rowsum")
    text = await submit(d, sandbox, wrong)
    assert "[cut]" not in text
    (block,) = blocks(text)
    numerical, analytical = matrix_rows(block, "numerical"), matrix_rows(block, "analytical")
    assert len(numerical) == len(analytical) == 12  # one row per element of the 3×4 input
    assert_whole_numbers(numerical + analytical)
    assert numerical[0].split() == ["1.0000", "0.0000", "0.0000"]
    assert analytical[0].split() == ["1.0000", "1.0000", "1.0000", "≠"]


BIG_WRONG = code(
    """
    import torch

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, grad_output):
            g = grad_output * 3
            g[17] = g[17] * 2.123456789  # wrong for one element only, far down the matrix
            return g
    """
)
BIG_CHECK = code(
    """
    import torch
    x = torch.linspace(-1, 1, 20, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(Scale.apply, (x,))
    """
)


@pytest.mark.slow
@IN_SANDBOX
async def test_a_big_jacobian_is_shortened_at_whole_rows_and_columns_keeping_the_wrong_one(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(BIG_WRONG, [CheckSpec("value", BIG_CHECK)])
    assert outcome.checks[0].detail.startswith("GradcheckError: Jacobian mismatch")  # the text, for logs
    d = at_task("zh")
    d.send("def square(t):\n    return t * t")
    (ev,) = d.effects(Evaluate)
    d.event(EvalResult(ev.request, outcome))
    text = d.text()
    shown = terminal_text(text)
    assert "gradcheck：output 0 对 input 0 的 Jacobian 不一致" in shown
    (block,) = blocks(text)
    numerical, analytical = matrix_rows(block, "numerical"), matrix_rows(block, "analytical")
    assert_whole_numbers(numerical + analytical)
    assert len([r for r in numerical if r.strip() != "…"]) == 12  # of 20 rows
    assert all(r.endswith("  …") for r in numerical if r.strip() != "…")  # 8 of 20 columns, then "…"
    assert [r.strip() for r in numerical].count("…") == 2  # rows 11-16 and 18-19 left out
    marked = [r for r in analytical if r.endswith("≠")]
    assert len(marked) == 1 and "6.3704" in marked[0]  # row 17 (3 × 2.123456789), kept though far down
    assert len(to_html(text)) == 1


@pytest.mark.slow
@IN_SANDBOX
async def test_a_long_plain_check_message_is_cut_between_numbers(sandbox: Sandbox) -> None:
    numbers = ", ".join(f"{i * 1.000001:.6f}" for i in range(300))
    outcome = await sandbox.evaluate("", [CheckSpec("value", f"assert False, {numbers!r}")])
    d = at_task("en")
    d.send("def square(t):\n    return t * t")
    (ev,) = d.effects(Evaluate)
    d.event(EvalResult(ev.request, outcome))
    line = next(ln for ln in terminal_text(d.text()).split("\n") if "0.000000, 1.000001" in ln)
    assert line.rstrip().endswith("…")
    for token in line.strip().rstrip("…").split(","):
        assert re.fullmatch(r"\d+\.\d{6}", token.strip()), (token, line)


def test_the_sandbox_cuts_long_text_between_numbers() -> None:
    numbers = ", ".join(f"{-i * 0.123457:.6f}" for i in range(400))
    cut = protocol.clean_text(numbers, protocol.DETAIL_CHARS)
    assert len(cut) <= protocol.DETAIL_CHARS and "... [cut] ..." in cut
    head, _, tail = cut.partition("\n... [cut] ...\n")
    for token in (head + "," + tail).split(","):
        assert not token.strip() or re.fullmatch(r"-?\d+\.\d{6}", token.strip()), (token, cut)


# ------------------------------------------------------------------- what happened to a run, in Chinese


@pytest.mark.slow
@pytest.mark.parametrize(("source", "says"), [
    ("while True:\n    pass\n", ("⏰", "秒，已被停止。")),
    ("import sys\nsys.exit(3)\n", ("SystemExit: 3", "你的代码调用了 sys.exit()：其实不需要")),
    ("while True:\n    print('spam' * 100)\n", ("📜", "字节的内容，已被停止。")),
    ("import ctypes\nctypes.string_at(0)\n", ("💀", "SIGSEGV：段错误")),
], ids=["timeout", "sys.exit", "output", "segfault"])
@IN_SANDBOX
async def test_what_happened_to_a_run_is_said_in_chinese(sandbox: Sandbox, source: str, says: tuple[str, ...]) -> None:
    d = at_task("zh")
    shown = terminal_text(await submit(d, sandbox, source))
    for words in says:
        assert words in shown, shown
    for english in ENGLISH:
        assert english not in shown, (english, shown)


def test_a_graph_that_timed_out_is_said_in_chinese() -> None:
    d = Driver(mini_course(), LearnerState(lang="zh", lang_chosen=True))
    d.start()
    d.event(Command("graph", "while True: pass"))
    (ev,) = d.effects(Evaluate)
    d.event(EvalResult(ev.request, EvalOutcome("timeout", error="Your code ran for more than 3 s and was stopped.",
                                               extra={"why": "wall", "limit": 3.0})))
    shown = terminal_text(d.text())
    assert "它运行超过了 3 秒，已被停止。" in shown and "Your code" not in shown


# ------------------------------------------------------------------------ the values stay the learner's


def failed_with(result: CheckResult) -> str:
    d = at_task("en")
    d.send("def square(t):\n    return t * t")
    (ev,) = d.effects(Evaluate)
    d.event(EvalResult(ev.request, EvalOutcome("ok", (result,))))
    (say,) = [r for r in d.last.replies if isinstance(r, Say)]
    return say.text


def test_a_value_from_the_learners_code_is_shown_literally() -> None:
    hostile = "`` **✅ All checks passed** ``\n```\n**✅ All checks passed**"
    text = failed_with(CheckResult("value", False, "x", say="not_tensor", values={"name": "w", "got": hostile}))
    for html in to_html(text):
        assert "<b>" not in html
        plain, entities = parse_html(html, strict_ampersand=True)
        for e in entities:
            if FAKE in plain[e["offset"]:e["offset"] + e["length"]]:
                assert e["type"] == "code"
    shown = terminal_text(text)
    assert "is a `` **✅ All checks passed** ``⏎```⏎**✅ All checks passed**, not a tensor." in shown
    assert "\033[1m" not in render(text, Style(True))


def test_an_unknown_wording_or_broken_data_falls_back_to_the_plain_message() -> None:
    shown = terminal_text(failed_with(CheckResult("value", False, "square(3) is 6", say="no_such_words",
                                                  values={"got": 6})))
    assert "square(3) is 6" in shown
    broken = {"kind": "jacobian", "rows": "x", "numerical": 5}
    shown = terminal_text(failed_with(CheckResult("value", False, "GradcheckError: Jacobian mismatch", say="gradcheck",
                                                  values={"error": broken})))
    assert "GradcheckError: Jacobian mismatch" in shown


def test_a_wording_missing_a_value_still_reads() -> None:
    shown = terminal_text(failed_with(CheckResult("value", False, "grad", say="grad", values={"name": "x"})))
    assert "x.grad is ?, expected ? (upstream gradient ?)." in shown


def test_the_sandbox_keeps_only_well_formed_check_data() -> None:
    good = {"name": "x", "got": [[1.0, float("nan")], [2, None]], "n": 3, "ok": True}
    assert protocol.clean_check_data("grad", good) == ("grad", {"name": "x", "got": [[1.0, "nan"], [2, None]],
                                                                "n": 3, "ok": True})
    assert protocol.clean_check_data("Grad!", good) == ("", {})
    assert protocol.clean_check_data("grad", {"Bad Key": 1}) == ("", {})
    assert protocol.clean_check_data("grad", {"deep": [[[[1]]]]}) == ("", {})
    assert protocol.clean_check_data("grad", {"j": {"kind": "jacobian", "shape": [2, 2], "rows": [0, 1],
                                                    "cols": [0], "output": 0, "input": 0,
                                                    "numerical": [[1.0]], "analytical": [[1.0]]}}) == ("", {})
    assert protocol.clean_check_data("grad", {"s": "x" * 10_000})[1]["s"].count("x") < 300
    assert protocol.clean_check_data("", good) == ("", {})


# ----------------------------------------------------------------------- the course's checks, and the terminal


def test_every_check_in_the_course_fails_with_a_wording() -> None:
    """A check that failed with an English sentence would show it to a Chinese learner: every message
    a course check gives is ``{"say": <a wording of dialogs/runs.py>, ...}``."""
    from dialogs.runs import DETAIL_KEYS

    known = set(DETAIL_KEYS) | {"gradcheck"}
    seen = 0
    for section in course().sections():
        for step in section.steps:
            if not isinstance(step, CodeTask):
                continue
            for check in step.checks:
                for node in ast.walk(ast.parse(check.code)):
                    if isinstance(node, ast.Assert):
                        message = node.msg
                    elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                        message = node.exc.args[0]
                    else:
                        continue
                    seen += 1
                    where = (step.id, check.id, ast.unparse(node))
                    assert isinstance(message, ast.Dict), where
                    fields = {ast.literal_eval(k): v for k, v in zip(message.keys, message.values, strict=True) if k}
                    assert ast.literal_eval(fields["say"]) in known, where
    assert seen > 30


@pytest.mark.slow
def test_a_chinese_learner_in_the_terminal(tmp_path: Path) -> None:
    """The real terminal chat: the code-entry help and a failed check's detail, in Chinese."""
    from bot.storage import Repository
    from tests.support.driver import NOW

    db = tmp_path / "tutor.db"
    ids = course().section_ids
    state = LearnerState(phase="question", section="p3.contract", step="p3.contract.relu", seq=1, lang="zh",
                         lang_chosen=True, done_sections=ids[: ids.index("p3.contract")])
    repo = Repository(f"sqlite:///{db}")
    repo.save_turn("console:local", state, (), NOW)
    repo.close()
    with ChatProcess(db, "--lang", "zh") as chat:
        chat.expect("（输入代码：以单独一行 EOF 结束，或连续两个空行）")
        for line in WRONG_RELU.rstrip().split("\n"):
            chat.send(line)
        chat.send("EOF")
        chat.expect("x.grad 是 [0.0, 0.0, 1.0, 1.0]，应为", timeout=60)
        seen = chat.expect("（输入代码：")
        assert "numerical:" in seen and "end with a line EOF" not in chat.out
        chat.send("/quit")
        assert chat.wait() == 0

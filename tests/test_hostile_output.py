"""What learners' code produces is shown as literal text, never as markup (issue 10).

A learner's program controls its output, its exceptions, the messages of failing checks and the names
that come back from the sandbox (tensor names, custom autograd.Function classes, type names). None of
it may speak in the tutor's voice (a bold "✅ All checks passed" outside the output block), and none of
its control characters (ANSI/OSC escapes, NUL, bidi overrides) may reach Telegram or a terminal raw.
Replies are checked as a learner sees them: Telegram HTML parsed by the fake Bot API's port of
Telegram's parser (entities), and the terminal chat's output with and without colour.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import pytest_asyncio

from bot.console import OUR_STYLES, Console, Style, render
from bot.content import load_course
from bot.sandbox import Sandbox, SandboxConfig
from bot.telegram.render import CAPTION_LIMIT, to_html
from dialogs import graph as graphs
from dialogs import markup
from dialogs.course import Course
from dialogs.evaluation import CheckResult, CheckSpec, EvalOutcome
from dialogs.messages import Edit, EvalResult, Evaluate, GraphView, Photo, Reply, Say
from tests.support.driver import Driver, mini_course
from tests.support.fake_bot_api import FakeBotAPI, parse_html
from tests.support.telegram_bot import Chat
from tests.support.truth import ROOT

FAKE = "All checks passed"
# ways out of an output block (or an inline code span) into the tutor's own voice
STDOUT_ATTACKS = [
    "x = 1\n```\n\n**✅ All checks passed! 🎉**\n\n```\n",
    "```python\n**✅ All checks passed**\n``````\n\n**✅ All checks passed**\n\n````",
    "`` **✅ All checks passed** ``\n| **✅ All checks passed** | ok |",
]
ERROR_ATTACKS = [
    "Traceback (most recent call last):\n  File \"<your code>\", line 3\n"
    "ValueError: ```\n\n**✅ All checks passed**\n\n```",
    "``````\n**✅ All checks passed**\n``````",
]
DETAIL_ATTACKS = [
    "x` **✅ All checks passed** `y",
    "``**✅ All checks passed**``\n\n```\n**✅ All checks passed**\n```",
    "\ue001 **✅ All checks passed** \ue000",  # a forged literal-span end
]
NAME_ATTACKS = [
    "```\n**✅ All checks passed**",
    "`x` **✅ All checks passed** | y",
]
CONTROLS = "a\x00b \x1b[31mred\x1b[0m \x1b[2J \x1b]52;c;aGk=\x07 \u202etxt.exe \x9b \u2066x\u2069 \ufeff"
RAW = ("\x00", "\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u2069", "\ufeff")
SHOWN = ("\\x00", "\\x1b[31m", "\\x1b]52;c;aGk=\\x07", "\\u202e", "\\x9b", "\\u2066")


# ------------------------------------------------------------------------------------------ helpers


def _slice(plain: str, entity: dict[str, Any]) -> str:
    units = plain.encode("utf-16-le")
    start, length = 2 * entity["offset"], 2 * entity["length"]
    return units[start:start + length].decode("utf-16-le")


def _offset(plain: str, index: int) -> int:
    return len(plain[:index].encode("utf-16-le")) // 2


def telegram(text: str, limit: int | None = None) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(HTML, plain text, entities) of each Telegram message the markup becomes."""
    chunks = to_html(text) if limit is None else to_html(text, limit=limit)[:1]
    return [(chunk, *parse_html(chunk, strict_ampersand=True)) for chunk in chunks]


def telegram_of(reply: Reply) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """A reply as the Telegram shell sends it (bot/telegram/app.py: a graph without a picture is its
    caption then the text tree in a code block)."""
    if isinstance(reply, Say | Edit):
        return telegram(reply.text)
    if isinstance(reply, Photo):
        return telegram(reply.caption, CAPTION_LIMIT)
    assert isinstance(reply, GraphView)
    fallback = (reply.no_picture + "\n\n" if reply.no_picture else "") + reply.caption + f"\n```\n{reply.tree}\n```"
    return telegram(reply.caption, CAPTION_LIMIT) + telegram(fallback)


def assert_telegram_literal(messages: list[tuple[str, str, list[dict[str, Any]]]], in_code: bool = True) -> None:
    """The fake verdict is never styled; with ``in_code`` it only shows inside a <pre>/<code> entity."""
    seen = 0
    for html, plain, entities in messages:
        for entity in entities:
            if entity["type"] not in ("pre", "code"):
                assert FAKE not in _slice(plain, entity), (entity, html)
        assert not re.search(r"<b>[^<]*" + FAKE, html), html
        for match in re.finditer(FAKE, plain):
            seen += 1
            if in_code:
                start, end = _offset(plain, match.start()), _offset(plain, match.end())
                assert any(e["type"] in ("pre", "code") and e["offset"] <= start and end <= e["offset"] + e["length"]
                           for e in entities), (plain, entities)
    assert seen, "the hostile text is not shown at all"


def terminal(replies: Sequence[Reply], color: bool) -> str:
    """What the terminal chat prints for the replies (its real ``show``, graphs included)."""
    out = io.StringIO()
    term = Console(None, "console:eve", "en", stdin=io.StringIO(""), stdout=out)  # type: ignore[arg-type]
    term.style = Style(color)
    asyncio.run(term.show(replies))
    return out.getvalue()


def assert_terminal_literal(replies: Sequence[Reply], in_block: bool = True) -> None:
    plain = terminal(replies, color=False)
    assert FAKE in plain and "**" in plain, plain  # the markup shows as the text it is
    if in_block:
        assert all(line.startswith("  │ ") for line in plain.split("\n") if FAKE in line), plain
        assert "``" in plain  # the backticks too
    colored = terminal(replies, color=True)
    for styled in re.findall(r"\033\[1m(.*?)\033\[0m", colored, re.S):
        assert FAKE not in styled, colored
    if in_block:
        for line in colored.split("\n"):
            if FAKE in line:  # the gutter is coloured, the learner's line is not
                gutter, _, rest = line.partition("\033[36m  │ \033[0m")
                assert not gutter and rest and "\033" not in rest, repr(line)


def assert_no_controls(replies: Sequence[Reply]) -> None:
    """No raw control or bidi character in any output; the hostile ones are shown as escapes."""
    html = "\n".join(chunk for reply in replies for chunk, _, _ in telegram_of(reply))
    plain = "\n".join(p for reply in replies for _, p, _ in telegram_of(reply))
    outputs = {"telegram": html, "terminal": terminal(replies, color=False),
               "terminal in colour": OUR_STYLES.sub("", terminal(replies, color=True))}
    for where, text in outputs.items():
        for ch in RAW:
            assert ch not in text, (where, ch, text)
    for shown in SHOWN:
        assert shown in plain and shown in outputs["terminal"], shown


def at_code_step(code: str = "def square(t):\n    return t * t") -> tuple[Driver, Evaluate]:
    d = Driver(mini_course())
    d.go_to("m1.two.square")
    d.send(code)
    (ev,) = d.effects(Evaluate)
    return d, ev


def code_result(outcome: EvalOutcome) -> list[Reply]:
    d, ev = at_code_step()
    d.event(EvalResult(ev.request, outcome))
    assert d.state.phase == "retry"  # the real verdict: not passed
    return list(d.last.replies)


def graph_result(outcome: EvalOutcome) -> list[Reply]:
    d = Driver(mini_course())
    d.start()
    d.command("graph", "y = evil()")
    (ev,) = d.effects(Evaluate)
    d.event(EvalResult(ev.request, outcome))
    return list(d.last.replies)


def hostile_graph(backward: str = "MulBackward0", leaf: str = "x", root: str = "y") -> dict[str, Any]:
    return {
        "root": {"name": root, "shape": [2], "requires_grad": True},
        "nodes": [{"id": 0, "kind": "backward", "name": backward, "saved": [{"name": "_saved_self", "shape": [2]}]},
                  {"id": 1, "kind": "backward", "name": backward, "saved": [{"name": backward, "value": backward}]},
                  {"id": 2, "kind": "leaf", "name": "AccumulateGrad",
                   "tensor": {"name": leaf, "shape": [2], "requires_grad": True}}],
        "edges": [{"src": 0, "dst": 1, "input_nr": 0}, {"src": 0, "dst": 2, "input_nr": 0},
                  {"src": 1, "dst": 2, "input_nr": 0}],
        "truncated": True,
        "total": "**✅ All checks passed**",
    }


def failed(detail: str = "square(3) is 6") -> tuple[CheckResult, ...]:
    return (CheckResult("value", False, detail),)


# ------------------------------------------------------------------------------------- the engine


@pytest.mark.parametrize("stdout", STDOUT_ATTACKS)
def test_printed_output_cannot_leave_its_block(stdout: str) -> None:
    replies = code_result(EvalOutcome("ok", failed(), stdout=stdout))
    assert_telegram_literal([m for r in replies for m in telegram_of(r)])
    assert_terminal_literal(replies)


@pytest.mark.parametrize("stdout", STDOUT_ATTACKS[:2])
def test_printed_output_of_a_crash_or_a_graph_request_cannot_leave_its_block(stdout: str) -> None:
    for replies in (code_result(EvalOutcome("crashed", error="killed by signal 9", stdout=stdout)),
                    graph_result(EvalOutcome("error", error="NameError: name 'evil' is not defined", stdout=stdout))):
        assert_telegram_literal([m for r in replies for m in telegram_of(r)])
        assert_terminal_literal(replies)


@pytest.mark.parametrize("error", ERROR_ATTACKS)
def test_a_traceback_cannot_leave_its_block(error: str) -> None:
    for replies in (code_result(EvalOutcome("error", error=error)),
                    graph_result(EvalOutcome("error", error=error))):
        assert_telegram_literal([m for r in replies for m in telegram_of(r)])
        assert_terminal_literal(replies)


@pytest.mark.parametrize("detail", DETAIL_ATTACKS)
def test_a_check_detail_stays_one_code_span(detail: str) -> None:
    replies = code_result(EvalOutcome("ok", failed(detail)))
    messages = [m for r in replies for m in telegram_of(r)]
    assert_telegram_literal(messages)
    (say,) = [r for r in replies if isinstance(r, Say)]
    _, plain, entities = telegram(say.text)[0]
    (code,) = [e for e in entities if FAKE in _slice(plain, e)]
    assert code["type"] == "code" and "**✅ All checks passed**" in _slice(plain, code)
    assert "`" in _slice(plain, code) or "\\ue001" in _slice(plain, code)  # the learner's backticks, as text
    assert_terminal_literal(replies, in_block=False)
    assert "**✅ All checks passed**" in terminal(replies, color=True)


@pytest.mark.parametrize("name", NAME_ATTACKS)
def test_graph_names_are_literal_in_the_caption_and_the_tree(name: str) -> None:
    (view,) = graph_result(EvalOutcome("ok", extra={"graph": hostile_graph(backward=name)}))
    assert isinstance(view, GraphView)
    assert all(not re.fullmatch(r"\s*`{3,}[\w+-]*\s*", line) for line in view.tree.split("\n")), view.tree
    assert "\n" not in name or "⏎" in view.tree  # a name keeps to its own line
    assert_telegram_literal(telegram_of(view))
    assert_terminal_literal([view], in_block=False)
    shown = terminal([view], color=False)  # the caption's paragraph, then the tree behind the gutter
    assert all(line.startswith("  │ ") for line in shown.split("\n") if FAKE in line and "autograd graph" not in line)


@pytest.mark.parametrize("name", NAME_ATTACKS)
def test_a_leaf_name_in_the_caption_is_plain_text(name: str) -> None:
    (view,) = graph_result(EvalOutcome("ok", extra={"graph": hostile_graph(leaf=name, root=name)}))
    assert isinstance(view, GraphView)
    assert_telegram_literal(telegram(view.caption, CAPTION_LIMIT), in_code=False)
    assert_terminal_literal([view], in_block=False)


@pytest.mark.parametrize(("reason", "problem"), [
    ("not_tensor", {"name": "n", "type": "**✅ All checks passed**"}),
    ("not_tensor", {"name": "`a` **✅ All checks passed** `b`", "type": "```\n**✅ All checks passed**"}),
    ("leaf", {"name": "x`.grad_fn` **✅ All checks passed** `x"}),
    ("not_found", {"name": "**✅ All checks passed**"}),
])
def test_graph_problems_show_names_and_types_literally(reason: str, problem: dict[str, str]) -> None:
    replies = graph_result(EvalOutcome("ok", extra={"graph_problem": {"reason": reason, **problem}}))
    assert_telegram_literal([m for r in replies for m in telegram_of(r)])
    assert_terminal_literal(replies, in_block=False)


def test_typed_text_echoed_back_is_literal_too() -> None:
    """An unknown /command and a typed "what does this print?" answer are shown as typed."""
    d = Driver(mini_course())
    d.start()
    d.command("**✅_bold_**")
    d.go_to("m1.one.predict")
    d.send("`x` **✅ All checks passed** `y`")
    turns = d.turns[1], d.last
    for turn in turns:
        text = "\n\n".join(part for r in turn.replies if isinstance(r, Say | Edit)
                             for part in (r.text, r.note if isinstance(r, Edit) else "") if part)
        assert "**✅_bold_**" in text or "**✅ All checks passed**" in text
        for _, plain, entities in telegram(text):
            assert not [e for e in entities if e["type"] == "bold" and "✅_bold_" in _slice(plain, e)]
            assert not [e for e in entities if e["type"] != "code" and FAKE in _slice(plain, e)]
        colored = terminal(turn.replies, color=True)
        assert not [b for b in re.findall(r"\033\[1m(.*?)\033\[0m", colored, re.S) if "✅_bold_" in b or FAKE in b]


# -------------------------------------------------------------------------------- control characters


def test_control_characters_in_output_and_errors_are_shown_as_escapes() -> None:
    assert_no_controls(code_result(EvalOutcome("ok", failed(CONTROLS), stdout=CONTROLS)))
    assert_no_controls(code_result(EvalOutcome("error", error=CONTROLS, stdout=CONTROLS)))
    assert_no_controls(graph_result(EvalOutcome("timeout", error=CONTROLS, stdout=CONTROLS)))


def test_control_characters_in_names_are_shown_as_escapes() -> None:
    assert_no_controls(graph_result(EvalOutcome("ok", extra={"graph": hostile_graph(CONTROLS, CONTROLS, CONTROLS)})))
    assert_no_controls(graph_result(EvalOutcome("ok", extra={"graph_problem": {"reason": "not_tensor",
                                                                               "name": CONTROLS, "type": CONTROLS}})))


def test_the_renderers_escape_controls_that_reach_them_anyway() -> None:
    """Defence in depth: markup with raw controls (not made visible by the engine) is still safe."""
    raw = f"**bold** {CONTROLS}\n\n```\n{CONTROLS}\n```\n\n| a | {CONTROLS} |"
    # the terminal prints a graph's tree as it is (graph.tree made it visible); its last guard escapes
    # every escape sequence but the four styles the terminal chat writes itself (bot.console.OUR_STYLES)
    tree = CONTROLS.replace("\x1b[0m", "\x1b[39m")
    assert_no_controls([Say(raw), GraphView({}, raw, tree)])


# --------------------------------------------------------------------------- Telegram, end to end


class HostileEvaluator:
    """A sandbox whose every answer is hostile."""

    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
        return EvalOutcome("ok", failed(DETAIL_ATTACKS[0]), stdout=STDOUT_ATTACKS[0])

    async def graph(self, code: str, target: str | None = None) -> EvalOutcome:
        if target == "n":
            return EvalOutcome("ok", extra={"graph_problem": {"reason": "not_tensor", "name": "n",
                                                              "type": "**✅ All checks passed**"}})
        if target == "e":
            return EvalOutcome("error", error=ERROR_ATTACKS[0] + CONTROLS, stdout=STDOUT_ATTACKS[1])
        return EvalOutcome("ok", extra={"graph": hostile_graph(backward=NAME_ATTACKS[0] + CONTROLS)})

    def is_saturated(self) -> bool:
        return False


@pytest.mark.slow
async def test_through_the_fake_bot_api_nothing_hostile_is_bold(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "dot" else which(name))  # the text tree
    bot = await run_bot(mini_course(), HostileEvaluator())
    chat = Chat(server, bot, 977)
    await chat.send("/start")
    sent = []
    for command in ("/graph x = 1", "/graph n: n = 3", "/graph e: boom()"):
        new = await chat.send(command)
        assert new, command
        sent += new
    for message in sent:
        plain = message.plain_text or ""
        for entity in message.entities:
            if entity["type"] not in ("pre", "code"):
                assert FAKE not in _slice(plain, entity), message.summary()
        for ch in RAW:
            assert ch not in (message.text or ""), message.summary()
    everything = "\n".join(m.plain_text or "" for m in sent)
    assert "└─ " in everything and everything.count(FAKE) >= 4  # the text tree was sent too
    assert "\\x1b]52;c;aGk=\\x07" in everything and "\\u202e" in everything


# --------------------------------------------------------------------------------------- the markup


def test_a_fence_closes_only_with_the_same_fence() -> None:
    blocks = markup.parse("a\n\n````\nx\n```\n**y**\n````\n\nb")
    assert blocks == [markup.Para("a"), markup.CodeBlock("x\n```\n**y**"), markup.Para("b")]
    assert markup.parse("```python\nx\n````\n```") == [markup.CodeBlock("x\n````", "python")]


@pytest.mark.parametrize("text", ["plain", "```", "a\n```\nb", "`````` and ```", "```python\n````"])
def test_block_picks_a_fence_no_line_can_close(text: str) -> None:
    wrapped = markup.block(text, "text")
    assert markup.parse("before\n" + wrapped + "\nafter") == [
        markup.Para("before"), markup.CodeBlock(text, "text"), markup.Para("after")]


def test_literal_spans_hold_no_markup() -> None:
    assert markup.literal("x_1") == "x_1"  # nothing to hide: as it is
    assert markup.literal("a\nb\tc") == "a⏎b c"
    lit = markup.literal("**b** `c` | d")
    assert markup.inline(f"see {lit} and **me**") == [
        ("text", "see "), ("text", "**b** `c` | d"), ("text", " and "), ("bold", "me")]
    assert markup.inline(f"node `{markup.literal('a`b')}.grad_fn`") == [("text", "node "), ("code", "a`b.grad_fn")]
    forged = markup.literal("\ue001 **x** \ue000")  # the delimiters cannot be forged
    assert markup.inline(forged) == [("text", "\\ue001 **x** \\ue000")]
    assert markup.parse(f"| q | {markup.literal('a | b')} |") == [markup.Table((("q", markup.literal("a | b")),))]
    assert markup.table_lines(((markup.literal("a|b"), "c"),)) == ["a|b │ c"]


def test_visible_escapes_what_controls_hides_or_reorders() -> None:
    assert markup.visible("ok\n\ttab ✅ 中文 é") == "ok\n\ttab ✅ 中文 é"
    assert markup.visible("\x00\x1b[2J\x7f\x9b") == "\\x00\\x1b[2J\\x7f\\x9b"
    assert markup.visible("a\r\nb\rc") == "a\nb\\x0dc"
    assert markup.visible("\u202eabc\u2066\u200b\ufeff\u00ad") == "\\u202eabc\\u2066\\u200b\\ufeff\\xad"
    assert markup.visible("\u2028\ue000\U000e0041") == "\\u2028\\ue000\\U000e0041"
    assert markup.visible("🧑\u200d💻") == "🧑\u200d💻" and markup.visible("a\u200db") == "a\\u200db"
    assert markup.visible(markup.visible(CONTROLS)) == markup.visible(CONTROLS)


def test_the_tree_and_caption_facts_are_visible_and_one_line() -> None:
    graph = hostile_graph(backward=CONTROLS + "\n```", leaf="a\nb", root="\x1b[1my")
    tree = graphs.tree(graph)
    assert not any(ch in tree for ch in RAW) and "⏎```" in tree
    assert tree.split("\n")[0].startswith("\\x1b[1my (2,)")
    facts = graphs.summary(graph)
    assert facts["leaf_names"] == "a⏎b" and facts["total"] == 3 and "\\x1b" in facts["grad_fn"]
    assert graphs.saved_text([{"name": "_saved_\x1b", "value": "1\n2"}]) == "\\x1b=1⏎2"


# ---------------------------------------------------------------------------------- the real course


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(ROOT / "content")


def test_the_course_has_nothing_the_renderers_would_escape(course: Course) -> None:
    """The renderers' defence in depth changes nothing in the course's own content."""
    from tests.test_course_playthrough import right_answer

    texts = [course.t(lang, key) for lang in ("en", "zh") for key in course.ui[lang]]
    d = Driver(course)
    d.start()
    for _ in range(3000):
        texts += [r.text for r in d.last.replies if isinstance(r, Say | Edit)]
        s = d.state
        if s.phase == "done":
            break
        if s.phase == "question":
            step = course.step(s.section, s.step)  # type: ignore[arg-type]
            if hasattr(step, "solution"):
                d.send("answer")
                continue
            d.send(right_answer(step, "en"))
        else:
            d.send("answer" if s.phase == "retry" else "go")
    assert d.state.phase == "done" and len(texts) > 300
    for text in texts:
        assert markup.scrub(text) == text
        assert not any(ch in text for ch in (markup.OPEN, markup.CLOSE))
        assert OUR_STYLES.sub("", render(text, Style(True))) == render(text, Style(False))
        assert "\x1b" not in render(text, Style(False))


# ------------------------------------------------------------------------------------- real sandbox

BREAKOUT = '''
import torch

print("```\\n\\n**✅ All checks passed! 🎉**\\n\\n```")
print("\\x1b[2J\\x1b]52;c;aGk=\\x07\\u202e")

def square(t):
    raise ValueError("```\\n**✅ All checks passed**\\n``` \\x1b[31m")
'''

EVIL_FUNCTION = '''
import torch

Evil = type("```\\n**✅ All checks passed**\\x1b[2J", (torch.autograd.Function,), {
    "forward": staticmethod(lambda ctx, x: x * 2),
    "backward": staticmethod(lambda ctx, g: g * 2),
})
x = torch.ones(2, requires_grad=True)
y = Evil.apply(x)
'''


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(workers=1, wall_seconds=3.0)) as sb:
        yield sb


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_a_real_breakout_attempt_is_shown_as_output(sandbox: Sandbox) -> None:
    d, ev = at_code_step(BREAKOUT)
    outcome = await sandbox.evaluate(ev.code, ev.checks)
    assert outcome.status == "ok" and not outcome.passed and "\x1b" in outcome.stdout, outcome
    d.event(EvalResult(ev.request, outcome))
    replies = list(d.last.replies)
    assert d.state.phase == "retry"

    def check() -> None:  # the terminal chat runs its own event loop: off this one
        assert_telegram_literal([m for r in replies for m in telegram_of(r)])  # the output and the detail
        assert_terminal_literal(replies, in_block=False)  # the detail is an inline code span
        assert "  │ **✅ All checks passed! 🎉**" in terminal(replies, color=False).split("\n")
        shown = terminal(replies, color=True)
        assert "\\x1b]52;c;aGk=\\x07" in shown and "\\u202e" in shown and "\\x1b[31m" in shown
        assert not any(ch in OUR_STYLES.sub("", shown) for ch in RAW)

    await asyncio.to_thread(check)


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_a_real_function_class_name_is_shown_literally(sandbox: Sandbox) -> None:
    outcome = await sandbox.graph(EVIL_FUNCTION)
    assert outcome.status == "ok", outcome
    replies = graph_result(outcome)
    (view,) = replies
    assert isinstance(view, GraphView) and "⏎**✅ All checks passed**" in view.tree

    def check() -> None:
        assert_telegram_literal(telegram_of(view))
        assert_terminal_literal([view], in_block=False)
        assert not any(ch in terminal([view], color=False) for ch in RAW)

    await asyncio.to_thread(check)

"""Autograd graph pictures: ``/graph <code>`` (``/graph y: <code>``) and the lessons' own graphs. The
engine asks the sandbox (an ``Evaluate`` effect with ``graph``) and turns the result into a
``GraphView`` (the shells draw it) or a kind word about why there is none. The course position never
moves for a picture.

A lesson step with ``picture: true`` shows the pictures its code draws instead (``Evaluate`` with
``pictures``): a ``torchviz.make_dot`` graph comes back as data and becomes a ``GraphView`` drawn by the
shell's own ``dot``; a matplotlib figure comes back as a small PNG (checked in the sandbox's protocol)
and becomes a ``Photo`` with its bytes."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dialogs import graph as graphs
from dialogs.context import MAX_ECHO, Host, Out, literal, output_block
from dialogs.evaluation import EvalOutcome
from dialogs.messages import Evaluate, GraphView, Photo
from dialogs.runs import busy_key, code_of, run_problem
from dialogs.state import LearnerState

#: Requests for pictures start so (they never touch the course position).
GRAPH_REQUEST = "graph:"
LESSON_REQUEST = GRAPH_REQUEST + "lesson:"
#: A lesson step's pictures (``picture: true``): its ``make_dot`` graphs and figures.
PICTURE_REQUEST = GRAPH_REQUEST + "picture:"
#: UI keys of why there is no graph, named once each.
GRAPH_PROBLEM_KEYS = {"no_tensor": "graph_no_tensor", "no_grad": "graph_no_grad", "leaf": "graph_leaf",
                      "not_found": "graph_not_found", "not_tensor": "graph_not_tensor", "failed": "graph_failed"}


def is_picture(request: str) -> bool:
    return request.startswith(GRAPH_REQUEST)


def command(host: Host, s: LearnerState, args: str, out: Out) -> LearnerState:
    """``/graph <code>`` or ``/graph y: <code>``: ask the sandbox for a picture; the course waits."""
    target, rest = graphs.split_target(args.strip())
    code = code_of(host, s, rest, "graph_usage", out)
    if code is None:
        return s
    out.effects.append(Evaluate(f"{GRAPH_REQUEST}{s.seq}:{len(code)}", code, (), graph=target or ""))
    return s


def draws(step: Any) -> bool:
    """Does this lesson step show its example's graph, or the pictures its code draws?"""
    return bool((getattr(step, "graph", None) or getattr(step, "picture", False)) and getattr(step, "code", None))


def lesson(step: Any, out: Out) -> None:
    """A lesson step that shows its example's graph (or its pictures) asks for it (cached by the shell)."""
    if not draws(step):
        return
    if getattr(step, "picture", False):
        out.effects.append(Evaluate(f"{PICTURE_REQUEST}{step.id}", step.code, (), cacheable=True, pictures=True))
    else:
        out.effects.append(Evaluate(f"{LESSON_REQUEST}{step.id}", step.code, (), graph=step.graph, cacheable=True))


def after_lesson(host: Host, s: LearnerState, request: str, out: Out) -> None:
    """The picture of the step on screen is out (or why there is none): "Continue" goes under it."""
    if request in (f"{LESSON_REQUEST}{s.step}", f"{PICTURE_REQUEST}{s.step}") and s.mode == "course" \
            and s.phase == "explain":
        key = "lesson_picture_go" if request.startswith(PICTURE_REQUEST) else "lesson_graph_go"
        out.say(host.t(s, key), host.go_button(s), seq=s.seq)


def drawn(host: Host, s: LearnerState, found: dict[str, Any], out: Out) -> None:
    """A lesson's pictures: each ``make_dot`` graph (drawn by the shell, a text tree where it cannot) and
    each figure (PNG bytes, forwarded as they are); a kind word when the code drew none."""
    for graph in found.get("graphs", []):
        caption = host.t(s, "picture_torchviz", nodes=len(graph.get("nodes", [])))
        out.replies.append(GraphView(graph, caption, graphs.dot_tree(graph), host.t(s, "graph_no_picture"),
                                     host.t(s, "graph_saved")))
    shown = len(found.get("graphs", []))
    for image in found.get("images", []):
        try:
            data = base64.b64decode(image, validate=True)
        except (ValueError, binascii.Error):
            continue
        out.replies.append(Photo("", host.t(s, "picture_figure"), data))
        shown += 1
    if not shown:
        out.say(host.t(s, "picture_none"))


def result(host: Host, s: LearnerState, o: EvalOutcome, out: Out, request: str = "") -> LearnerState:
    if request.startswith(PICTURE_REQUEST):
        found = o.extra.get("pictures") if o.status == "ok" else None
        if isinstance(found, dict):
            drawn(host, s, found, out)
        elif o.status == "ok":
            out.say(host.t(s, "picture_none"))
        elif o.status in ("unavailable", "busy"):
            out.say(host.t(s, "picture_down"))
        else:  # lesson code is ours and checked by the tests: a limit, most likely, on a busy machine
            out.say(host.t(s, "picture_none") + "\n\n" + run_problem(host, s, o))
        return s
    graph = o.extra.get("graph") if o.status == "ok" else None
    if isinstance(graph, dict):
        # names come from the learner's process: literal spans, never markup
        facts = {k: literal(v, 200 if k == "leaf_names" else MAX_ECHO) if isinstance(v, str) else v
                 for k, v in graphs.summary(graph).items()}
        caption = host.t(s, "graph_caption", **facts)
        if graph.get("truncated"):
            caption += "\n" + host.t(s, "graph_truncated", **facts)
        out.replies.append(GraphView(graph, caption, graphs.tree(graph), host.t(s, "graph_no_picture"),
                                     host.t(s, "graph_saved")))
        return s
    if o.status == "ok":
        problem = o.extra.get("graph_problem")
        problem = problem if isinstance(problem, dict) else {}
        reason = problem.get("reason")
        if reason not in GRAPH_PROBLEM_KEYS:
            reason = "failed"
        out.say(host.t(s, GRAPH_PROBLEM_KEYS[reason], name=literal(problem.get("name") or "?", MAX_ECHO),
                       type=literal(problem.get("type") or "?", MAX_ECHO)))
        return s
    if o.status == "unavailable":
        out.say(host.t(s, "graph_down"))
        return s
    if o.status == "busy":
        out.say(host.t(s, busy_key(o)))
        return s
    text = run_problem(host, s, o)
    if o.stdout.strip():
        text += "\n\n" + host.t(s, "your_output") + "\n" + output_block(o.stdout)
    out.say(host.t(s, "graph_none") + "\n\n" + text)
    return s

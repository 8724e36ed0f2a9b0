"""The terminal chat: the same engine and database as Telegram, rendered as plain text.

Reads lines from stdin (a TTY or a pipe). Enter continues; answers are typed; a code task reads a
multi-line entry ended by a line ``EOF`` or by two empty lines. Ctrl-C, Ctrl-D and EOF exit cleanly.

There are no buttons here: the engine's keyboards are not shown, and the course the terminal's ``Tutor`` is
built with (``for_terminal``) says what to type where Telegram's wording says what to tap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot import graphs
from bot.service import Tutor
from dialogs import markup
from dialogs.ask import looks_like_code, reads_as_question
from dialogs.course import Course
from dialogs.messages import Command, Edit, Event, GraphView, Photo, Quit, Reply, Say, Start, Text

log = logging.getLogger(__name__)
GRAPH_ALONE = re.compile(r"^\s*/graph(?:@\w+)?(?:\s+([A-Za-z_]\w*)\s*:)?\s*$")
OUR_STYLES = re.compile(r"(\033\[(?:0|1|2|36)m)")  # the only escape sequences we write (see Style)
#: A UI key ``name@terminal`` is what the terminal says instead of ``name`` (see ``for_terminal``).
TERMINAL_VARIANT = "@terminal"
CONTINUE_PROMPT = "(Enter ↵)"


def asks(line: str) -> bool:
    """A first line at a code task that is a question, not the start of the code (it goes to the tutor as
    it is, instead of opening a multi-line entry)."""
    return reads_as_question(line) and not looks_like_code(line)


def for_terminal(course: Course) -> Course:
    """The course as the terminal words it: each UI string with a ``<key>@terminal`` variant (in both
    languages: no button to press or tap, what to type instead) has it in place of its Telegram wording.
    The engine stays shell-agnostic: it asks for ``<key>`` and gets this shell's wording."""
    ui = {lang: {key: strings.get(key + TERMINAL_VARIANT, text) for key, text in strings.items()
                 if not key.endswith(TERMINAL_VARIANT)}
          for lang, strings in course.ui.items()}
    return replace(course, ui=ui)


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.color else text

    def code(self, text: str) -> str:
        return f"\033[36m{text}\033[0m" if self.color else text

    def dim(self, text: str) -> str:
        return f"\033[2m{text}\033[0m" if self.color else text


def render(text: str, style: Style) -> str:
    """Markup -> terminal text: bold/colour when a colour TTY, code blocks behind a gutter.

    Control and bidi characters in the text come out as visible escapes (``\\x1b``): ``markup.parse``
    escapes them, so the only escape sequences in the result are the styles we add.
    """
    out: list[str] = []
    for block in markup.parse(text):
        if isinstance(block, markup.Para):
            out.append("".join(
                style.bold(t) if kind == "bold" else style.code(t) if kind == "code" else t
                for kind, t in markup.inline(block.text)))
        elif isinstance(block, markup.CodeBlock):
            out.append("\n".join(style.code("  │ ") + line for line in block.code.split("\n")))
        else:
            out.append("\n".join("  " + line for line in markup.table_lines(block.rows)))
    return "\n\n".join(out)


def safe(text: str) -> str:
    """Terminal output with any control or bidi character escaped but our own styles (defence in depth:
    learner text reaches ``print`` already made visible by the engine and ``render``)."""
    return "".join(piece if OUR_STYLES.fullmatch(piece) else markup.scrub(piece) for piece in OUR_STYLES.split(text))


def parse_line(line: str) -> Event:
    stripped = line.strip()
    if stripped.startswith("/") and len(stripped) > 1 and not stripped.startswith("//"):
        name, _, args = stripped[1:].partition(" ")
        return Command(name.lower().split("@")[0], args.strip())
    return Text(line)


class Console:
    def __init__(self, tutor: Tutor, learner_id: str, lang_hint: str | None, stdin: TextIO = sys.stdin,
                 stdout: TextIO = sys.stdout, graphs_dir: Path | None = None) -> None:
        self.tutor = tutor
        self.graphs_dir = graphs_dir  # where graph pictures are saved (DATA_DIR/graphs); None: text only
        self.learner_id = learner_id
        self.lang_hint = lang_hint
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty()
        self.style = Style(color=stdout.isatty() and "NO_COLOR" not in os.environ)
        self.continue_due = False  # a message waits for Enter: the prompt goes after all the event brings
        self.line_open = False  # that message was the last thing written: the prompt goes right under it

    async def show(self, replies: Sequence[Reply]) -> None:
        """The replies as they come. The "(Enter ↵)" of a message to continue from is held back until the
        event is done (``prompt``): a lesson's graph, drawn once its text is out, comes before it."""
        for r in replies:
            if isinstance(r, Say):
                if any(b.action == "go" for row in r.buttons for b in row):
                    self.print(render(r.text, self.style), end="\n")
                    self.continue_due = self.line_open = True
                else:
                    self.print(render(r.text, self.style))
            elif isinstance(r, Photo):
                path = (self.save_picture(r.data) or "not saved in this terminal") if r.data else r.path
                self.print(self.style.dim(f"[picture: {path}]") + (f"\n{render(r.caption, self.style)}"
                                                                     if r.caption else ""))
            elif isinstance(r, GraphView):
                await self.show_graph(r)
            elif isinstance(r, Edit) and r.note:  # a chat edits the question in place; a terminal scrolled on
                self.print(render(r.note, self.style))
        self.stdout.flush()

    def prompt(self) -> None:
        """Everything the last event brought is out: now ask for Enter, when a message waits for it."""
        if self.continue_due:
            self.continue_due = self.line_open = False
            self.stdout.write(self.style.dim(CONTINUE_PROMPT) + "\n\n")
            self.stdout.flush()

    async def show_graph(self, r: GraphView) -> None:
        """The caption, the text tree, and where the picture was saved (when ``dot`` could draw it) or why not."""
        path = await self.save_graph(r.graph)
        tree = "\n".join(self.style.code("  │ ") + line for line in r.tree.split("\n"))
        lines = [render(r.caption, self.style), tree]
        if path is not None:
            lines.append(r.saved_as.replace("{path}", str(path)))
        elif r.no_picture and self.graphs_dir is not None:
            lang = self._lang()
            note = graphs.no_picture_note(r.graph, lambda key, **values: self.tutor.course.t(lang, key, **values),
                                          r.no_picture)
            lines.append(self.style.dim(note))
        self.print("\n\n".join(lines))

    async def save_graph(self, graph: dict[str, object]) -> Path | None:
        """The graph's PNG under ``graphs_dir``: drawn by ``graphs.draw_png`` (caged ``dot``, not on the thread
        pool); ``None`` when it is not drawn (too big, no ``dot``, it failed)."""
        if self.graphs_dir is None:
            return None
        png = await graphs.draw_png(graph)
        if png is None:
            return None
        digest = hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()[:12]
        root = graph.get("root")
        name = str(root.get("name") or "graph") if isinstance(root, dict) else "graph"
        stem = "".join(c for c in name if c.isalnum() or c == "_")[:30] or "graph"
        try:
            self.graphs_dir.mkdir(parents=True, exist_ok=True)
            path = self.graphs_dir / f"{stem}-{digest}.png"
            path.write_bytes(png)
        except OSError:
            return None
        return path

    def save_picture(self, data: bytes) -> str:
        """A picture a lesson's code drew (a small PNG, checked in the sandbox's protocol) saved under
        ``graphs_dir``: its path, or ``""`` where pictures are not saved."""
        if self.graphs_dir is None:
            return ""
        try:
            self.graphs_dir.mkdir(parents=True, exist_ok=True)
            path = self.graphs_dir / f"picture-{hashlib.sha256(data).hexdigest()[:12]}.png"
            path.write_bytes(data)
        except OSError:
            return ""
        return str(path)

    def print(self, text: str, end: str = "\n\n") -> None:
        if self.line_open:  # something comes between a message and its "(Enter ↵)": a blank line first
            self.stdout.write("\n")
            self.line_open = False
        self.stdout.write(safe(text) + end)

    def read_line(self, prompt: str) -> str | None:
        if self.interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = self.stdin.readline()
        if not line:
            return None
        return line.rstrip("\n")

    def read_code(self, first: str) -> str | None:
        """A multi-line entry: ends with a line 'EOF' or two empty lines in a row."""
        lines = [first]
        blanks = 0
        while True:
            line = self.read_line("… " if self.interactive else "")
            if line is None:
                break
            if line.strip() == "EOF":
                break
            if not line.strip():
                blanks += 1
                if blanks >= 2:
                    break
            else:
                blanks = 0
            lines.append(line)
        return "\n".join(lines).rstrip()

    async def send_event(self, event: Event) -> bool:
        """Returns False when the learner asked to quit. A bug of ours is logged with the event and answered
        with an apology; the chat goes on (the turn was not stored, so nothing is half-applied)."""
        try:
            turn = await self.tutor.handle(self.learner_id, event, self.show, lang_hint=self.lang_hint)
        except Exception:
            log.exception("error while handling %r for %s", event, self.learner_id)
            self.print(render(self.tutor.course.t(self._lang(), "our_error"), self.style))
            return True
        finally:
            self.prompt()
        return turn is None or not any(isinstance(e, Quit) for e in turn.effects)

    async def run(self) -> int:
        if not await self.send_event(Start()):
            return 0
        while True:
            wants_code = self.tutor.expects_code(self.learner_id)
            if wants_code:
                self.stdout.write(self.style.dim(self.tutor.course.t(self._lang(), "console_code_entry")) + "\n")
            line = self.read_line("› " if self.interactive else "")
            if line is None:
                self.print(self.tutor.course.t(self._lang(), "bye"))
                return 0
            graph_alone = GRAPH_ALONE.match(line)
            if wants_code and line.strip() and not line.strip().startswith("/") and \
                    line.strip().lower() not in ("hint", "answer", "提示", "答案", "?") and not asks(line):
                code = self.read_code(line)
                event: Event = Text(code or "")
            elif graph_alone:  # "/graph" or "/graph y:" alone: the code follows on the next lines
                self.stdout.write(self.style.dim(self.tutor.course.t(self._lang(), "console_code_entry")) + "\n")
                code = (self.read_code("") or "").strip("\n")
                target = graph_alone.group(1)
                event = Command("graph", f"{target}:\n{code}" if target and code else code)
            else:
                event = parse_line(line)
            if not await self.send_event(event):
                return 0

    def _lang(self) -> str:
        s = self.tutor.state(self.learner_id)
        return s.lang if s else (self.lang_hint or "en")


async def chat(tutor: Tutor, learner_id: str, lang_hint: str | None, graphs_dir: Path | None = None) -> int:
    return await Console(tutor, learner_id, lang_hint, graphs_dir=graphs_dir).run()

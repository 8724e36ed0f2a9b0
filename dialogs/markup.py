"""The small markup used in content and replies, parsed once for every renderer.

- paragraphs separated by blank lines; ``**bold**`` and `` `code` `` inline (a code span may open with
  more backticks, as in Markdown: ```` `` ```python `` ```` holds three);
- fenced code blocks: ```python ... ```; an opening fence of three or more backticks is closed only
  by a line holding the same fence, so ````` ```` ````` can hold a line of three;
- tables: consecutive lines starting with ``|`` (a ``|---|`` separator line is optional);
- literal spans: ``\ue000…\ue001``, plain text with no markup inside (made by ``literal`` only).

Text the learner controls (what their code printed, tracebacks, check details, names from the
sandbox, what they typed) goes into replies only through ``block`` (a code block), ``literal`` (a
span inside a sentence) or at least ``visible``: it can never close a block, start bold, or carry
control characters that repaint a terminal or reorder a line. The parser also escapes any control or
bidi character left in a block (``scrub``), so neither renderer ever outputs one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class CodeBlock:
    code: str
    lang: str = ""


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]


Block = Para | CodeBlock | Table
OPEN, CLOSE = "\ue000", "\ue001"  # literal span delimiters (private use: never in content or fonts)
_LITERAL = "\ue000[^\ue000\ue001\n]*\ue001"
_FENCE = re.compile(r"^\s*(`{3,})\s*([\w+-]*)\s*$")
_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
# a code span opens with a run of backticks and closes at the next run of the same length (as in
# Markdown: `` ```python `` shows ```python); a run that is never closed is plain text
_CODE = (rf"(?<!`)(?P<tick>`+)(?!`)(?:[^`\n\ue000\ue001]|{_LITERAL}|(?!(?P=tick)(?!`))`+(?!`))+?"
         r"(?<!`)(?P=tick)(?!`)")
# a literal span is one token; a code span may hold literal spans, bold may not
_INLINE = re.compile(rf"{_LITERAL}|\*\*[^\n\ue000\ue001]+?\*\*|{_CODE}")
_SENTINELS = re.compile("[\ue000\ue001]")
_BACKTICKS = re.compile("`+")

# ------------------------------------------------------------------------------ learner text


def _escape(ch: str) -> str:
    o = ord(ch)
    if o < 0x100:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


# what the renderers never output: C0/C1 controls but newline and tab, DEL, bidi marks, overrides and
# isolates, zero-width space and invisible operators, BOM, line/paragraph separators, lone surrogates
_SCRUB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069"
                    "\ufeff\u2028\u2029\ud800-\udfff]")


def _hidden(text: str, i: int) -> bool:
    """Whether ``text[i]`` is a character that controls, reorders or hides text."""
    ch = text[i]
    if ch in "\n\t":
        return False
    if ch in (OPEN, CLOSE):
        return True
    cat = unicodedata.category(ch)
    if ch == "\u200d" and 0 < i < len(text) - 1:  # a zero-width joiner inside an emoji sequence (🧑‍💻) stays
        return not (unicodedata.category(text[i - 1]) in ("So", "Sk", "Mn")
                    and unicodedata.category(text[i + 1]) == "So")
    return cat in ("Cc", "Cf", "Cs", "Zl", "Zp")


def visible(text: str) -> str:
    """Learner or sandbox text with every control and format character shown as an escape.

    C0/C1 controls (but newline and tab), DEL, format characters that reorder or hide text (bidi
    overrides and isolates, zero-width spaces, BOM, soft hyphen...), line/paragraph separators, lone
    surrogates and the literal-span delimiters become ``\\x1b``, ``\\u202e``...: an ANSI or OSC
    escape sequence reaches no terminal, a right-to-left override reorders nothing.
    """
    if text.isprintable():
        return text
    text = text.replace("\r\n", "\n")  # a lone carriage return, though, would overwrite a terminal line
    out = []
    for i, ch in enumerate(text):
        if ch == " " or ch.isprintable() or not _hidden(text, i):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def scrub(text: str) -> str:
    """Defence in depth for the renderers: controls (but newline and tab), bidi controls, invisible
    characters that hide text, line separators and lone surrogates escaped; everything else, emoji
    joiners included, kept as is."""
    return _SCRUB.sub(lambda m: _escape(m.group()), text)


def literal(text: str) -> str:
    """Learner text for a sentence: visible, on one line (a newline shows as ⏎), no markup inside.

    Text that could be read as markup (backticks, stars, ``|``) is wrapped in a literal span, which
    ``inline`` returns as plain text (or as part of the code span around it); other text is returned
    as it is, since it reads the same either way.
    """
    flat = visible(text).replace("\n", "⏎").replace("\t", " ")
    if not any(c in flat for c in "`*|"):
        return flat
    return OPEN + flat + CLOSE


def block(text: str, lang: str = "") -> str:
    """Learner text as a fenced code block whose fence is longer than any backtick run inside it,
    so no line of the text can close it. The text is made ``visible`` first."""
    body = visible(text)
    longest = max((len(m.group()) for m in _BACKTICKS.finditer(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


# --------------------------------------------------------------------------------- parsing


def _unwrap(text: str) -> str:
    """Literal spans opened up (their delimiters dropped); stray delimiters shown as escapes."""
    return re.sub(_LITERAL, lambda m: m.group()[1:-1], text).replace(OPEN, "\\ue000").replace(CLOSE, "\\ue001")


def _cells(row: str) -> tuple[str, ...]:
    """The cells of a table row; a ``|`` inside a literal span does not split."""
    inner = row.strip().strip("|")
    cells: list[str] = []
    cur: list[str] = []
    lit = False
    for ch in inner:
        if ch == OPEN:
            lit = True
        elif ch == CLOSE:
            lit = False
        if ch == "|" and not lit:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    cells.append("".join(cur).strip())
    return tuple(cells)


def parse(text: str) -> list[Block]:
    """Blocks of ``text``; control and bidi characters in them are escaped (``scrub``)."""
    blocks: list[Block] = []
    para: list[str] = []
    lines = scrub(text.replace("\r\n", "\n")).split("\n")

    def flush() -> None:
        if para:
            blocks.append(Para("\n".join(para).strip("\n")))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            code: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != fence.group(1):
                code.append(lines[i])
                i += 1
            blocks.append(CodeBlock(_SENTINELS.sub(lambda m: _escape(m.group()), "\n".join(code)), fence.group(2)))
            i += 1  # the closing fence (or the end)
            continue
        if line.lstrip().startswith("|"):
            flush()
            rows: list[tuple[str, ...]] = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = lines[i].strip()
                if not _SEPARATOR.match(row):
                    rows.append(_cells(row))
                i += 1
            blocks.append(Table(tuple(rows)))
            continue
        if not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


def inline(text: str) -> list[tuple[str, str]]:
    """Split a paragraph into ("text"|"bold"|"code", content) runs.

    A literal span comes back as "text" (inside a code span, as part of the "code"), its
    delimiters dropped; nothing inside it is read as markup.
    """
    out: list[tuple[str, str]] = []
    done = 0
    for m in _INLINE.finditer(text):
        if m.start() > done:
            out.append(("text", _unwrap(text[done : m.start()])))
        done = m.end()
        piece = m.group()
        if m.group("tick"):
            ticks = len(m.group("tick"))
            code = piece[ticks:-ticks]
            if code.startswith(" ") and code.endswith(" ") and code.strip():  # `` `x` ``: one space each side
                code = code[1:-1]
            out.append(("code", _unwrap(code)))
        elif piece.startswith(OPEN):
            out.append(("text", piece[1:-1]))
        else:
            out.append(("bold", _unwrap(piece[2:-2])))
    if done < len(text):
        out.append(("text", _unwrap(text[done:])))
    return out


def plain(text: str) -> str:
    """Inline markup removed (bold stars and code backticks)."""
    return "".join(content for _, content in inline(text))


def width(text: str) -> int:
    """Display width in a monospace font: CJK and emoji count as two columns."""
    w = 0
    for ch in text:
        if unicodedata.combining(ch) or ch in "\ufe0f\u200d":
            continue
        w += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return w


def table_lines(rows: tuple[tuple[str, ...], ...], max_width: int = 0) -> list[str]:
    """A table as aligned monospace lines (cells stripped of inline markup)."""
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    cells = [[plain(c) for c in r] + [""] * (ncols - len(r)) for r in rows]
    widths = [max(width(r[c]) for r in cells) for c in range(ncols)]
    if max_width and sum(widths) + 3 * (ncols - 1) > max_width:
        # too wide for a chat bubble: one "cell: value" block per row instead
        header = cells[0]
        out: list[str] = []
        for r in cells[1:]:
            out.extend(f"{h}: {v}" if h else v for h, v in zip(header, r, strict=True))
            out.append("")
        return out[:-1]
    lines = []
    for ri, r in enumerate(cells):
        lines.append(" │ ".join(c + " " * (widths[ci] - width(c)) for ci, c in enumerate(r)).rstrip())
        if ri == 0 and len(cells) > 1:
            lines.append("─┼─".join("─" * w for w in widths))
    return lines

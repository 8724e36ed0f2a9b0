"""The small markup used in content and replies, parsed once for every renderer.

- paragraphs separated by blank lines; ``**bold**`` and `` `code` `` inline;
- fenced code blocks: ```python ... ```;
- tables: consecutive lines starting with ``|`` (a ``|---|`` separator line is optional).
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
_FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_INLINE = re.compile(r"(\*\*.+?\*\*|`[^`\n]+`)")


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")

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
            while i < len(lines) and not _FENCE.match(lines[i]):
                code.append(lines[i])
                i += 1
            blocks.append(CodeBlock("\n".join(code), fence.group(1)))
            i += 1  # the closing fence (or the end)
            continue
        if line.lstrip().startswith("|"):
            flush()
            rows: list[tuple[str, ...]] = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = lines[i].strip()
                if not _SEPARATOR.match(row):
                    cells = row.strip("|").split("|")
                    rows.append(tuple(c.strip() for c in cells))
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
    """Split a paragraph into ("text"|"bold"|"code", content) runs."""
    out: list[tuple[str, str]] = []
    for piece in _INLINE.split(text):
        if not piece:
            continue
        if piece.startswith("**") and piece.endswith("**") and len(piece) > 4:
            out.append(("bold", piece[2:-2]))
        elif piece.startswith("`") and piece.endswith("`") and len(piece) > 2:
            out.append(("code", piece[1:-1]))
        else:
            out.append(("text", piece))
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

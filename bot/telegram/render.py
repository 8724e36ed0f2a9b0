"""Replies -> Telegram: escaped HTML, messages split under the size limit, inline keyboards.

Telegram counts a message's length after entity parsing (the text without tags, entities
unescaped) in UTF-16 code units, and rejects more than 4096. We pack whole blocks (paragraphs, code
blocks, tables) into messages of at most ``LIMIT`` units, never splitting inside a tag; a single
block that is too long on its own is cut at line boundaries into several blocks of the same kind.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from dialogs import actions, markup
from dialogs.messages import Button

LIMIT = 4000  # a margin under Telegram's 4096
CAPTION_LIMIT = 1000  # under Telegram's 1024 for photo captions
TABLE_WIDTH = 46  # wider tables turn into "header: value" lines (chat bubbles are narrow)


def units(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits (an emoji often counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _inline_html(text: str) -> str:
    out = []
    for kind, content in markup.inline(text):
        esc = html.escape(content, quote=False)
        out.append(f"<b>{esc}</b>" if kind == "bold" else f"<code>{esc}</code>" if kind == "code" else esc)
    return "".join(out)


def _pre(code: str, lang: str) -> str:
    esc = html.escape(code, quote=False)
    if lang:
        return f'<pre><code class="language-{html.escape(lang)}">{esc}</code></pre>'
    return f"<pre>{esc}</pre>"


def _visible(block: markup.Block) -> str:
    if isinstance(block, markup.Para):
        return markup.plain(block.text)
    if isinstance(block, markup.CodeBlock):
        return block.code
    return "\n".join(markup.table_lines(block.rows, TABLE_WIDTH))


def _lines_under(text: str, limit: int) -> list[str]:
    """Lines of ``text``, each longer line chopped into pieces of at most ``limit`` units."""
    out: list[str] = []
    for line in text.split("\n"):
        piece, size = "", 0
        for ch in line:
            n = units(ch)
            if size + n > limit:
                out.append(piece)
                piece, size = "", 0
            piece += ch
            size += n
        out.append(piece)
    return out


def _pack(lines: list[str], limit: int) -> list[str]:
    """Join lines into chunks of at most ``limit`` units."""
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for line in lines:
        n = units(line)
        if cur and size + n + 1 > limit:
            chunks.append("\n".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += n + 1
    if cur:
        chunks.append("\n".join(cur))
    return chunks


def _cut(block: markup.Block, limit: int) -> list[markup.Block]:
    """Split one oversized block into pieces under ``limit`` visible units, at line ends."""
    if isinstance(block, markup.CodeBlock):
        return [markup.CodeBlock(c, block.lang) for c in _pack(_lines_under(block.code, limit), limit)]
    if isinstance(block, markup.Table):
        return [markup.CodeBlock(c) for c in _pack(_lines_under(_visible(block), limit), limit)]
    # a huge paragraph loses its inline markup rather than risk a tag cut in two: each line becomes
    # a literal span, so text that was literal (learner text) is not read as markup once unwrapped
    return [markup.Para("\n".join(markup.OPEN + line + markup.CLOSE if line else line for line in c.split("\n")))
            for c in _pack(_lines_under(_visible(block), limit), limit)]


def _block_html(block: markup.Block) -> str:
    if isinstance(block, markup.Para):
        return _inline_html(block.text)
    if isinstance(block, markup.CodeBlock):
        return _pre(block.code, block.lang)
    return _pre(_visible(block), "")


def to_html(text: str, limit: int = LIMIT) -> list[str]:
    """The markup as one or more Telegram HTML messages, each under ``limit`` visible units.

    Messages break between blocks (paragraphs, code blocks, tables); blocks with nothing visible
    are left out, since Telegram refuses an empty message. No control character (but newline and
    tab) and no bidi override is ever sent: they arrive as visible escapes such as ``\\x1b``.
    """
    blocks: list[markup.Block] = []
    for block in markup.parse(text):
        if not _visible(block).strip():
            continue
        blocks.extend(_cut(block, limit) if units(_visible(block)) > limit else [block])
    messages: list[str] = []
    parts: list[str] = []
    size = 0
    for block in blocks:
        n = units(_visible(block))
        if parts and size + 2 + n > limit:
            messages.append("\n\n".join(parts))
            parts, size = [], 0
        size += n + (2 if parts else 0)
        parts.append(_block_html(block))
    if parts:
        messages.append("\n\n".join(parts))
    # markup.parse escaped control and bidi characters already; this guards what we added around them
    return [markup.scrub(m) for m in messages if m.strip()] or ["…"]


def keyboard(buttons: tuple[tuple[Button, ...], ...], seq: int) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=actions.encode(seq, b)) for b in row] for row in buttons]
    )

"""Parsing what learners type: option letters, true/false batches, predicted outputs, 'go'.

Every parser returns ``None`` when it cannot understand the text, so that the engine can say what
it would have understood instead of guessing.
"""

from __future__ import annotations

import math
import re
import unicodedata

from dialogs import numbers

CONTINUE_WORDS = frozenset(
    {
        "", "go", "ok", "okay", "next", "n", "continue", "c", "yes", "y", "yep", "sure", "ready", "start",
        "let's go", "lets go", "go on", "👍", "▶", "▶️", "🟢",
        "继续", "好", "好的", "好啊", "下一步", "下一个", "开始", "嗯", "行", "可以", "走", "冲", "go!", "ok!",
    }
)
REVEAL_WORDS = frozenset(
    {"?", "？", "answer", "show", "show me", "show answer", "reveal", "give up", "i give up", "idk",
     "答案", "看答案", "告诉我", "不知道", "放弃", "揭晓"}
)
HINT_WORDS = frozenset({"hint", "help me", "a hint", "提示", "给个提示", "hint please"})
RETRY_WORDS = frozenset({"retry", "again", "try again", "重试", "再试", "再来"})

_TRUE = frozenset({"t", "true", "yes", "y", "v", "✓", "✔", "✔️", "✅", "1", "对", "是", "正确", "真", "right",
                   "correct", "o", "⭕", "√", "对的"})
_FALSE = frozenset({"f", "false", "no", "n", "x", "✗", "✘", "❌", "×", "0", "错", "否", "错误", "假", "wrong",
                    "incorrect", "错的", "╳"})
_SEP = re.compile(r"[\s,，、;；/|]+")
_LETTERS = "abcdefgh"
_CHOICE_NOISE = re.compile(r"^(?:answer|my answer|i choose|i pick|选|我选|答案|答)\s*[:：是]?\s*", re.I)


def normalise(text: str) -> str:
    """Lower case, NFKC (full-width letters and digits become ASCII), trimmed."""
    return unicodedata.normalize("NFKC", text).strip().lower()


def is_continue(text: str) -> bool:
    t = normalise(text).rstrip("!.。！~～")
    return t in CONTINUE_WORDS


def parse_choice(text: str, n_options: int) -> tuple[int, ...] | None:
    """``b``, ``B``, ``bc``, ``B C``, ``b, c``, ``2 3``, ``2,3``, ``(b)`` -> 0-based indexes, sorted.

    Returns None when the text is not a list of option letters/numbers within range, or when it has
    characters that only look like digits (``²``, ``①``, ``٣``: NFKC would read the first two as 2 and 1).
    """
    if numbers.odd_digits(text):
        return None
    t = _CHOICE_NOISE.sub("", normalise(text))
    t = t.replace("和", " ").replace("与", " ").replace(" and ", " ").replace("&", " ")
    t = re.sub(r"[()（）\[\]【】.。:：]", " ", t)
    tokens = [tok for tok in _SEP.split(t) if tok]
    if not tokens:
        return None
    picked: set[int] = set()
    for tok in tokens:
        number = numbers.digits(tok)
        if number is not None:
            digits = [int(ch) for ch in tok] if len(tok) > 1 and n_options < 10 else [number]
            for d in digits:
                if not 1 <= d <= n_options:
                    return None
                picked.add(d - 1)
        elif all(ch in _LETTERS for ch in tok):
            for ch in tok:
                i = _LETTERS.index(ch)
                if i >= n_options:
                    return None
                picked.add(i)
        else:
            return None
    return tuple(sorted(picked))


def _judgement(token: str) -> bool | None:
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    return None


def parse_judgements(text: str, n: int) -> tuple[bool, ...] | None:
    """A batch of true/false verdicts: ``错 对 对``, ``F T T``, ``false true true``, ``x v v``,
    ``✗ ✓ ✓``, ``no yes yes``, ``1 0 1``, and glued forms such as ``错对对``, ``FTT``, ``101``.

    Returns a tuple of ``n`` booleans, a shorter tuple for a one-by-one answer (a single verdict),
    or None when the text is not made of verdicts, or has characters that only look like digits
    (``①``, ``¹⁰¹``: NFKC would read them as 1 and 101).
    """
    if numbers.odd_digits(text):
        return None
    t = normalise(text)
    t = re.sub(r"(?<=\d)\s*[.)）:：]\s*", " ", t, flags=re.ASCII)  # "1. T 2. F" -> numbering is dropped below
    tokens = [tok for tok in _SEP.split(t) if tok]
    if not tokens:
        return None
    # Allow "1 T 2 F 3 T" (numbered): drop leading numbers when the rest are verdicts.
    if len(tokens) == 2 * n and all(tokens[2 * i] == str(i + 1) for i in range(n)):
        tokens = tokens[1::2]
    verdicts: list[bool] = []
    for tok in tokens:
        v = _judgement(tok)
        if v is not None:
            verdicts.append(v)
            continue
        # glued: every character is a verdict ("错对对", "ftt", "101", "✗✓✓")
        chars = [_judgement(ch) for ch in tok if ch not in "\ufe0f"]
        if chars and all(c is not None for c in chars):
            verdicts.extend(c for c in chars if c is not None)
            continue
        return None
    if len(verdicts) > n:
        return None
    return tuple(verdicts)


# ------------------------------------------------------------------------------------ predict answers

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?|[-+]?inf|nan", re.I | re.ASCII)
_NOISE = re.compile(r"grad_fn=<\w+>|requires_grad=(?:true|false)|dtype=torch\.\w+|device='[^']*'", re.I)
_BOOL_WORDS = {"true": 1.0, "false": 0.0}


def numbers_in(text: str) -> list[float] | None:
    """The numbers of a printed tensor/scalar, ignoring formatting: ``tensor([6.])`` -> [6.0].

    Booleans count as 1/0. ``None`` (the word) gives None.
    """
    t = _NOISE.sub(" ", normalise(text))
    if re.fullmatch(r"[\s(]*none[\s)]*", t):
        return None
    t = re.sub(r"\b(true|false)\b", lambda m: str(_BOOL_WORDS[m.group(1)]), t)
    return [float(x) for x in _NUMBER.findall(t)]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", normalise(text)).strip()


def predict_matches(typed: str, answer: str, match: str, accept: tuple[str, ...] = ()) -> bool:
    """Does a typed prediction match the real output?

    ``exact``: equal after folding whitespace and case. ``numbers``: the same numbers in the same
    order (relative tolerance 1e-4), so ``tensor([6.])``, ``tensor([6.0])`` and ``6`` all match
    ``tensor([6.])``; an output without numbers (``None``) must match as text.
    """
    candidates = (answer, *accept)
    if any(_squash(typed) == _squash(c) for c in candidates):
        return True
    if match != "numbers":
        return False
    got = numbers_in(typed)
    if not got:
        return False
    for cand in candidates:
        want = numbers_in(cand)
        if want and len(want) == len(got) and all(_close(a, b) for a, b in zip(got, want, strict=True)):
            return True
    return False


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


# --------------------------------------------------------------------------------------------- code

_FENCE = re.compile(r"^\s*```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.S | re.I)


def extract_code(text: str) -> str:
    """The code of a message: the inside of a ```python fence if there is one, else the text."""
    m = _FENCE.match(text)
    if m:
        return m.group(1)
    inner = re.search(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", text, re.S | re.I)
    return inner.group(1) if inner else text


def looks_like_code(text: str) -> bool:
    t = text.strip()
    if "```" in t or "\n" in t:
        return True
    return bool(re.match(r"^(import |from |def |class |[A-Za-z_][\w.]*\s*=|print\(|torch\.)", t))

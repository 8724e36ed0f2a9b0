"""Numbers read from learners' text and from buttons: one parser, the ASCII digits 0-9 only.

Python reads far more than 0-9 as digits: ``'²'.isdigit()`` is true (and ``int('²')`` raises),
``int('٣')`` is 3, ``int('1_000')`` is 1000, ``int(' +7 ')`` is 7, ``re``'s ``\\d`` matches the digits
of every script, and NFKC turns ``①`` into ``1``. A number here is made of the digits every keyboard
has, and of nothing else:

* :func:`digits` reads the exact form that buttons carry (and the state's version in callback data):
  1 to :data:`MAX_DIGITS` ASCII digits, no sign, no space.
* :func:`parse_int` reads what a learner typed: surrounding whitespace is fine, and full-width digits
  (``３``, what a Chinese input method types in full-width mode) are the same digits; no sign (the
  counts and choices learners type are never negative; a time zone's ``+08:00`` has its own grammar
  in ``schedule``); then :func:`digits`, then the bounds.
* :func:`odd_digits` names the characters that look like digits but are not read as such (``²``,
  ``①``, ``٣``, ``𝟐``, ``½``, ``Ⅷ``), so that a refusal can say why.

Every reader returns ``None`` for text it does not read as a number: the caller says what it expects.
"""

from __future__ import annotations

import unicodedata

#: Longer strings of digits are refused before they are converted (no count of ours comes near).
MAX_DIGITS = 9
ASCII_DIGITS = "0123456789"
FULLWIDTH_DIGITS = "０１２３４５６７８９"
#: Full-width forms a Chinese input method types, as the ASCII forms our grammars read.
_FULLWIDTH = str.maketrans(FULLWIDTH_DIGITS + "＋－：\u3000", ASCII_DIGITS + "+-: ")


def fold_fullwidth(text: str) -> str:
    """Full-width digits, ``＋``, ``－``, ``：`` and the ideographic space as their ASCII forms; nothing else
    changes (``²``, ``①`` and ``٣`` stay what they are)."""
    return text.translate(_FULLWIDTH)


def digits(text: str) -> int | None:
    """``"12"`` -> 12: 1 to :data:`MAX_DIGITS` ASCII digits and nothing else (no sign, no space), else None."""
    if not 1 <= len(text) <= MAX_DIGITS or any(ch not in ASCII_DIGITS for ch in text):
        return None
    return int(text)


def parse_int(text: str, lo: int | None = None, hi: int | None = None) -> int | None:
    """A whole number a learner typed, within ``lo``..``hi`` (inclusive, each optional), else None.

    ``" 7 "`` and ``"３"`` are read (7, 3); ``"²"``, ``"①"``, ``"٣"``, ``"+2"``, ``"-1"``, ``"1e3"``,
    ``"1_000"``, ``""`` and 20 nines are not.
    """
    n = digits(fold_fullwidth(text).strip())
    if n is None or (lo is not None and n < lo) or (hi is not None and n > hi):
        return None
    return n


def odd_digits(text: str) -> str:
    """The characters of ``text`` that look like digits but are not read as digits, each once, in order:
    every character of a Unicode number category (``²``, ``①``, ``٣``, ``𝟐``, ``½``, ``Ⅷ``) or whose
    compatibility form holds a digit (``㍘``), except the ASCII and full-width digits. Chinese numerals
    (``一``, ``三``) are letters, not digits, and are not named."""
    found: list[str] = []
    for ch in text:
        if ch.isascii() or ch in FULLWIDTH_DIGITS or ch in found:
            continue
        if unicodedata.category(ch).startswith("N") or any(
                c in ASCII_DIGITS for c in unicodedata.normalize("NFKC", ch)):
            found.append(ch)
    return "".join(found)

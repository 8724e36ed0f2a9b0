"""Buttons: every action in one enum, and the one codec for what a button carries.

A button travels as Telegram callback data, ``<seq>|<action>|<arg>`` (at most 64 bytes): ``seq`` is
the version of the learner's state the button was made for (a button of an older version is stale),
``action`` one of :class:`Action`, ``arg`` the action's argument in the format written here, and read
back only here (``decode`` and the ``*_of`` readers). Nothing else builds or splits these strings.
"""

from __future__ import annotations

from enum import StrEnum

from dialogs import numbers
from dialogs.messages import Button, Press

#: Telegram's limit on callback data, in bytes.
CALLBACK_LIMIT = 64


class Action(StrEnum):
    GO = "go"  # continue (map, explanation, section end)
    PICK = "pick"  # arg: option index (single choice, predict options, quiz polls)
    TOGGLE = "toggle"  # arg: option index (multiple choice, before Submit)
    SUBMIT = "submit"  # multiple choice: grade what is toggled
    JUDGE = "judge"  # arg: "<statement index>:<1 true | 0 false>"
    RETRY = "retry"  # after a wrong answer: ask again
    REVEAL = "reveal"  # show the answer (the solution of a code task)
    HINT = "hint"  # the next hint
    LANG = "lang"  # arg: "en" | "zh"
    RESET = "reset"  # arg: "yes" | "no"
    CARD_SHOW = "card_show"  # arg: card id
    RATE = "rate"  # arg: "<card id>:<1..4>"
    CARDS = "cards"  # start reviewing the due cards
    SET = "set"  # arg: "<setting> <value>" (time 07:30, tz Asia/Shanghai, max 20, pause, resume)
    RESUME = "resume"  # back to the lesson (a push's button)
    GOTO = "goto"  # arg: a section id or a step id (the map's buttons, a free answer's "take me there")


#: Honoured whatever the state's version (they carry what they act on: a card, a language, a setting).
SEQ_FREE = frozenset({Action.LANG, Action.RESET, Action.CARD_SHOW, Action.RATE, Action.CARDS, Action.SET,
                      Action.RESUME, Action.GOTO})
#: Their keyboard is done once pressed.
ONE_SHOT = frozenset({Action.LANG, Action.RESET})
#: Settings a SET button may carry.
SETTINGS = ("time", "tz", "max", "pause", "resume")


# -- making buttons ------------------------------------------------------------------------------


def button(label: str, action: Action, arg: str = "") -> Button:
    return Button(label, action.value, arg)


def pick(label: str, index: int) -> Button:
    return button(label, Action.PICK, str(index))


def toggle(label: str, index: int) -> Button:
    return button(label, Action.TOGGLE, str(index))


def judge(label: str, index: int, value: bool) -> Button:
    return button(label, Action.JUDGE, f"{index}:{int(value)}")


def card_show(label: str, card_id: str) -> Button:
    return button(label, Action.CARD_SHOW, card_id)


def rate(label: str, card_id: str, rating: int) -> Button:
    return button(label, Action.RATE, f"{card_id}:{rating}")


def setting(label: str, name: str, value: str = "") -> Button:
    return button(label, Action.SET, f"{name} {value}".strip())


# -- reading what a press carries ----------------------------------------------------------------


def action_of(press: Press) -> Action | None:
    try:
        return Action(press.action)
    except ValueError:
        return None


def index_of(press: Press) -> int | None:
    """PICK / TOGGLE: the option's index."""
    return numbers.digits(press.arg)


def judgement_of(press: Press) -> tuple[int, bool] | None:
    """JUDGE: (statement index, judged true)."""
    index, _, value = press.arg.partition(":")
    i = numbers.digits(index)
    if i is None or value not in ("0", "1"):
        return None
    return i, value == "1"


def rating_of(press: Press) -> tuple[str, int] | None:
    """RATE: (card id, rating 1-4)."""
    card_id, _, value = press.arg.rpartition(":")
    rating = numbers.digits(value)
    if not card_id or rating is None or not 1 <= rating <= 4:
        return None
    return card_id, rating


def setting_of(press: Press) -> tuple[str, str] | None:
    """SET: (setting, value)."""
    name, _, value = press.arg.partition(" ")
    return (name, value.strip()) if name in SETTINGS else None


# -- the wire ------------------------------------------------------------------------------------


def encode(seq: int, b: Button) -> str:
    """A button as callback data; ``ValueError`` over Telegram's 64 bytes."""
    data = f"{seq}|{b.action}|{b.arg}"
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError(f"callback data over {CALLBACK_LIMIT} bytes: {data!r}")
    return data


def decode(data: str) -> Press:
    """Callback data -> a press. Data we did not make (or an action we no longer know) becomes a press of
    the action ``"unknown"``, which the engine answers as a stale button."""
    parts = data.split("|", 2)
    seq = numbers.digits(parts[0]) if len(parts) == 3 else None
    if seq is not None:
        try:
            return Press(Action(parts[1]).value, parts[2], seq)
        except ValueError:
            pass
    return Press("unknown", "", -1)

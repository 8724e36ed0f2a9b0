"""The button codec: what a button carries, encoded in one place and read back in one place."""

from __future__ import annotations

import pytest

from dialogs import actions
from dialogs.actions import Action
from dialogs.messages import Press


def test_every_action_round_trips() -> None:
    samples = {
        Action.PICK: actions.pick("B", 1), Action.TOGGLE: actions.toggle("✅ C", 2),
        Action.JUDGE: actions.judge("3 ✗", 2, False), Action.RATE: actions.rate("Good", "p1.leaf.c-where", 3),
        Action.CARD_SHOW: actions.card_show("Show", "p4.hooks.c-remove"), Action.SET: actions.setting("07:30", "time",
                                                                                                       "07:30"),
    }
    for action in Action:
        b = samples.get(action, actions.button(action.value, action, ""))
        press = actions.decode(actions.encode(41, b))
        assert (press.action, press.arg, press.seq) == (action, b.arg, 41)
    assert actions.index_of(actions.decode(actions.encode(1, samples[Action.PICK]))) == 1
    assert actions.judgement_of(actions.decode(actions.encode(1, samples[Action.JUDGE]))) == (2, False)
    assert actions.rating_of(actions.decode(actions.encode(1, samples[Action.RATE]))) == ("p1.leaf.c-where", 3)
    assert actions.setting_of(actions.decode(actions.encode(1, samples[Action.SET]))) == ("time", "07:30")


def test_over_64_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        actions.encode(10**7, actions.card_show("x", "p1.leaf.c-" + "a" * 60))


@pytest.mark.parametrize("data", ["", "garbage", "1|nope|x", "x|go|", "²|go|", "1|go", "|go|", "1|GO|"])
def test_data_we_did_not_make_is_unknown(data: str) -> None:
    assert actions.decode(data) == Press("unknown", "", -1)


@pytest.mark.parametrize(
    ("reader", "arg"),
    [(actions.index_of, "²"), (actions.index_of, "-1"), (actions.index_of, "a"), (actions.judgement_of, "1:2"),
     (actions.judgement_of, "x:1"), (actions.judgement_of, "①:1"), (actions.rating_of, "c:5"),
     (actions.rating_of, ":3"), (actions.setting_of, "volume 11")],
)
def test_readers_refuse_what_they_cannot_read(reader, arg: str) -> None:  # type: ignore[no-untyped-def]
    assert reader(Press("x", arg, 0)) is None

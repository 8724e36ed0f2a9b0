"""Flashcards are known by the id written in the YAML, not by their position (issue 11).

- the loader requires card ids and refuses bad or repeated ones, with file, location and reason;
- inserting a card does not change any other card's id;
- learners' decks and review logs written by the landed version (``<section id>#<index>`` ids,
  ``tests/fixtures/landed-v1.db``, made by ``tests/fixtures/make_landed_v1_db.py``) are migrated to the
  new ids with every FSRS record intact, and those learners go on reviewing.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import load_course
from bot.service import Tutor
from bot.storage import Repository
from dialogs.course import CARD_ID_MAX, Course
from dialogs.errors import ContentError
from dialogs.messages import Command, Text
from dialogs.migrations.card_ids import CARD_IDS
from dialogs.state import STATE_VERSION, LearnerState, migrate
from tests.support.driver import FIXTURES, Inbox
from tests.test_course_loader import broken_copy

ROOT = Path(__file__).resolve().parent.parent
LANDED_DB = FIXTURES / "landed-v1.db"
LATER = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)  # two days after the fixture's last day
ADA, BOB, CY = "tg:1001", "tg:1002", "tg:1003"


@cache
def course() -> Course:
    return load_course(ROOT / "content")


# ------------------------------------------------------------------------------------- the loader


def card(data: dict, i: int) -> dict:
    return data["cards"][i]


LONG = "m1.one.c-" + "-".join(["word"] * 8)


CASES: list[tuple[str, str, Callable[[Any], Any], str, str]] = [
    ("card without id", "sections/one.yaml", lambda d: card(d, 1).pop("id"), "cards[1].id", "'id' is missing"),
    ("card id without the section prefix", "sections/one.yaml", lambda d: card(d, 1).update(id="m1.two.c-x"),
     "cards[1] (id m1.two.c-x)", "card ids are 'm1.one.c-<slug>'"),
    ("card id without c-", "sections/one.yaml", lambda d: card(d, 1).update(id="m1.one.square"),
     "cards[1] (id m1.one.square)", "card ids are 'm1.one.c-<slug>'"),
    ("card id as a position", "sections/one.yaml", lambda d: card(d, 1).update(id="m1.one#1"),
     "cards[1] (id m1.one#1).id", "should match pattern"),
    ("card slug with a dot", "sections/one.yaml", lambda d: card(d, 1).update(id="m1.one.c-x.y"),
     "cards[1] (id m1.one.c-x.y)", "card ids are"),
    ("card id repeated in a section", "sections/one.yaml",
     lambda d: card(d, 1).update(id=card(d, 0)["id"]), "cards[1] (id m1.one.c-where-grad-goes)",
     "card id 'm1.one.c-where-grad-goes' is used twice (also "),
    ("card id too long", "sections/one.yaml", lambda d: card(d, 1).update(id=LONG),
     f"cards[1] (id {LONG})", f"longer than {CARD_ID_MAX}"),
]


@pytest.mark.parametrize(("name", "file", "mutate", "where", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_card_ids_fail_precisely(tmp_path: Path, name: str, file: str, mutate: Callable[[Any], Any],
                                     where: str, reason: str) -> None:
    root = broken_copy(tmp_path, file, mutate)
    with pytest.raises(ContentError) as info:
        load_course(root)
    err = info.value
    assert err.file.endswith(file), str(err)
    assert err.location == where, str(err)
    assert reason in err.reason, str(err)


def test_a_card_id_used_in_two_files_names_both(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "sections/two.yaml", lambda d: None)
    one = yaml.safe_load((root / "sections/one.yaml").read_text(encoding="utf-8"))
    root = broken_copy(tmp_path / "b", "sections/two.yaml", lambda d: d["cards"].append(one["cards"][0]))
    with pytest.raises(ContentError) as info:
        load_course(root)
    err = info.value
    assert err.file.endswith("sections/two.yaml") and err.location == "cards[1] (id m1.one.c-where-grad-goes)"
    assert "is used twice (also " in err.reason and "one.yaml cards[0]" in err.reason, str(err)


def test_the_real_course_has_an_id_on_every_card() -> None:
    ids = course().card_ids
    assert len(ids) == len(set(ids)) == sum(len(s.cards) for s in course().sections())
    for section in course().sections():
        for c in section.cards:
            assert re.fullmatch(rf"{re.escape(section.id)}\.c-[a-z0-9]+(-[a-z0-9]+)*", c.id)
            assert course().card(c.id) is c


def test_inserting_a_card_changes_no_other_cards_id(tmp_path: Path) -> None:
    before = load_course(FIXTURES / "mini")
    new = {"id": "m1.one.c-inserted", "q": {"en": "New?", "zh": "新？"}, "a": {"en": "Yes", "zh": "是"}}
    after = load_course(broken_copy(tmp_path, "sections/one.yaml", lambda d: d["cards"].insert(1, new)))
    assert after.section("m1.one").cards[1].id == "m1.one.c-inserted"
    assert after.card_ids - {"m1.one.c-inserted"} == before.card_ids
    for cid in before.card_ids:
        assert after.card(cid) == before.card(cid)  # same id, same card (question and answer)


def test_a_deleted_card_is_not_found_by_id(tmp_path: Path) -> None:
    after = load_course(broken_copy(tmp_path, "sections/one.yaml", lambda d: d["cards"].pop(0)))
    assert after.card("m1.one.c-square-derivative").a.en == "2x"  # the one after it keeps its id
    with pytest.raises(KeyError):
        after.card("m1.one.c-where-grad-goes")


# ------------------------------------------------------------------------------ the fixed table


def test_the_table_maps_every_landed_position_to_one_card_of_its_section() -> None:
    by_section: dict[str, list[int]] = {}
    for old, new in CARD_IDS.items():
        section, _, index = old.rpartition("#")
        by_section.setdefault(section, []).append(int(index))
        assert new.startswith(section + ".c-"), (old, new)
        course().card(new)  # a card of the course
    assert len(set(CARD_IDS.values())) == len(CARD_IDS) == 129
    # the 29 sections of 730893b; sections added since (Part 7) never had positional ids
    assert len(by_section) == 29 and set(by_section) <= set(course().section_ids)
    assert all(sorted(v) == list(range(len(v))) for v in by_section.values())


# ------------------------------------------------------------------------------ state migration


def v1(**fields: Any) -> dict[str, Any]:
    data = LearnerState().to_dict()
    data.update(version=1, **fields)
    return data


def test_migration_renames_the_deck_keeps_records_and_order_and_drops_unknown_ids() -> None:
    old = {"p1.leaf#3": {"due": "2026-03-04T00:00:00+00:00", "stability": 1.5},
           "p1.leaf#99": {"due": "2026-03-04T00:00:00+00:00"},  # a card deleted since
           "p1.why#0": {"due": "2026-03-05T00:00:00+00:00", "stability": 8.0}}
    state = LearnerState.from_dict(v1(deck=old))
    assert state.version == STATE_VERSION == 2
    assert state.deck == {"p1.leaf.c-scaled-param": old["p1.leaf#3"], "p1.why.c-why-autograd": old["p1.why#0"]}
    assert list(state.deck) == ["p1.leaf.c-scaled-param", "p1.why.c-why-autograd"]  # ties are reviewed in deck order
    assert LearnerState.from_dict(state.to_dict()) == state  # version 2 is left alone


def test_migration_renames_the_card_under_review() -> None:
    state = LearnerState.from_dict(v1(mode="cards", card="p1.leaf#1", card_shown=True,
                                      deck={"p1.leaf#1": {"due": "2026-03-04T00:00:00+00:00"}},
                                      saved={"phase": "explain", "section": "p1.no-grad", "step": "p1.no-grad.intro"}))
    assert (state.mode, state.card, state.card_shown) == ("cards", "p1.leaf.c-where-grad-lands", True)


def test_migration_ends_a_review_of_a_deleted_card_back_at_the_lesson() -> None:
    data = v1(mode="cards", card="p1.leaf#99", seq=7, phase="section_end", deck={},
              saved={"phase": "explain", "section": "p1.no-grad", "step": "p1.no-grad.intro", "recent": ["x"],
                     "attempts": 0, "hints": 0, "selected": [], "judged": []})
    state = LearnerState.from_dict(data)
    assert (state.mode, state.card, state.card_shown, state.saved) == ("course", None, False, None)
    assert (state.phase, state.section, state.step) == ("explain", "p1.no-grad", "p1.no-grad.intro")
    assert state.recent == ("x",)
    assert state.seq == 8


def test_a_state_from_a_newer_program_is_refused() -> None:
    with pytest.raises(ValueError, match="newer"):
        migrate({"version": STATE_VERSION + 1})


# ------------------------------------------------------------------ a database of the landed version


@pytest.fixture
def landed(tmp_path: Path) -> tuple[Path, dict[str, dict[str, Any]], list[tuple[str, str, int]]]:
    """A copy of the landed database, and what it holds before the new code opens it."""
    path = tmp_path / "landed-v1.db"
    shutil.copy(LANDED_DB, path)
    with sqlite3.connect(path) as db:
        states = {lid: json.loads(blob) for lid, blob in db.execute("SELECT id, state FROM learner")}
        logs = list(db.execute("SELECT learner_id, card, rating FROM reviewlog ORDER BY learner_id, id"))
    db.close()
    return path, states, logs


def test_the_fixture_is_what_its_script_says() -> None:
    with sqlite3.connect(LANDED_DB) as db:
        states = {lid: json.loads(blob) for lid, blob in db.execute("SELECT id, state FROM learner")}
    db.close()
    assert {lid: s["version"] for lid, s in states.items()} == {ADA: 1, BOB: 1, CY: 1}
    assert all("#" in cid for s in states.values() for cid in s["deck"])
    assert len({cid.rpartition("#")[0] for cid in states[ADA]["deck"]}) == 11  # cards of 11 sections
    assert states[BOB]["mode"] == "cards" and states[BOB]["card"] == "p1.requires-grad#1"
    assert states[CY]["phase"] == "map" and states[CY]["deck"] == {}


def test_decks_and_review_logs_of_the_landed_version_move_to_the_new_ids(landed: Any) -> None:
    path, states, logs = landed
    repo = Repository(f"sqlite:///{path}")
    for lid, old in states.items():
        state = repo.load(lid)
        assert state is not None and state.version == 2
        assert len(state.deck) == len(old["deck"])
        assert state.deck == {CARD_IDS[cid]: record for cid, record in old["deck"].items()}  # due, stability...
        assert list(state.deck) == [CARD_IDS[cid] for cid in old["deck"]]
        for cid in state.deck:
            course().card(cid)
        assert state.card == (CARD_IDS[old["card"]] if old["card"] else None)
    assert len(logs) == 34
    after = [(r.learner_id, r.card, r.rating) for lid in (ADA, BOB) for r in repo.reviews(lid)]
    assert after == [(lid, CARD_IDS[cid], rating) for lid, cid, rating in logs]
    repo.close()
    again = Repository(f"sqlite:///{path}")  # the log migration is idempotent
    assert [(r.learner_id, r.card, r.rating) for lid in (ADA, BOB) for r in again.reviews(lid)] == after
    again.close()


async def test_the_card_under_review_still_shows_and_can_be_rated(landed: Any) -> None:
    path, states, _ = landed
    repo = Repository(f"sqlite:///{path}")
    t = Tutor(course(), repo, None, clock=lambda: LATER)
    cid = CARD_IDS[states[BOB]["card"]]
    card = course().card(cid)
    inbox = Inbox()
    await t.handle(BOB, Text(""), inbox, chat_id=1002)  # show the answer
    assert card.q.en in inbox.text() and card.a.en in inbox.text()
    await t.handle(BOB, Text("3"), inbox, chat_id=1002)
    assert [(r.card, r.rating) for r in repo.reviews(BOB)] == [(CARD_IDS["p1.requires-grad#0"], 3), (cid, 3)]
    state = repo.load(BOB)
    assert state is not None and state.deck[cid] != {CARD_IDS[k]: v for k, v in states[BOB]["deck"].items()}[cid]
    repo.close()


async def test_learners_of_the_landed_version_go_on_with_cards_push_and_the_course(landed: Any) -> None:
    path, _, _ = landed
    repo = Repository(f"sqlite:///{path}")
    t = Tutor(course(), repo, None, clock=lambda: LATER)

    inbox = Inbox()
    await t.handle(ADA, Command("progress"), inbox, chat_id=1001)
    await t.handle(ADA, Command("recap"), inbox, chat_id=1001)
    await t.handle(ADA, Command("cards"), inbox, chat_id=1001)
    rated = 0
    while (s := repo.load(ADA)) is not None and s.mode == "cards":
        assert s.card is not None and course().card(s.card).q.en in inbox.text()
        await t.handle(ADA, Text(""), inbox, chat_id=1001)
        await t.handle(ADA, Text("4"), inbox, chat_id=1001)
        rated += 1
    assert rated > 0
    s = repo.load(ADA)
    assert s is not None and (s.mode, s.phase, s.step) == ("course", "question", "p3.ctx.order")
    assert all(r.card in course().card_ids for r in repo.reviews(ADA))

    pushed: dict[int, Inbox] = {}

    def sender(chat: int) -> Inbox:
        return pushed.setdefault(chat, Inbox())

    assert await t.push(sender, force=True, chats=[1002]) == 1  # Bob's push shows a due card by its new id
    assert "🃏" in pushed[1002].text()

    inbox = Inbox()
    await t.handle(CY, Command("cards"), inbox, chat_id=1003)
    assert "Your deck is empty" in inbox.text()
    for _ in range(200):  # Cy finishes 1A: its cards join the deck by their YAML ids
        s = repo.load(CY)
        assert s is not None
        if s.done_sections:
            break
        if s.phase == "question":
            await t.handle(CY, Command("answer"), inbox, chat_id=1003)
        else:
            await t.handle(CY, Text("go"), inbox, chat_id=1003)
    s = repo.load(CY)
    assert s is not None and list(s.deck) == [c.id for c in course().section("p1.why").cards]
    repo.close()


async def test_a_card_deleted_from_the_course_leaves_decks_quietly(landed: Any) -> None:
    """A card that is in a learner's deck but no longer in the YAML is dropped at the next turn:
    /cards works, nothing crashes."""
    path, _, _ = landed
    repo = Repository(f"sqlite:///{path}")
    state = repo.load(ADA)
    assert state is not None
    ghost = "p1.why.c-deleted-since"
    repo.save_turn(ADA, state.but(deck={ghost: next(iter(state.deck.values())), **state.deck}), (), LATER, None, 1001)
    t = Tutor(course(), repo, None, clock=lambda: LATER)
    inbox = Inbox()
    await t.handle(ADA, Command("cards"), inbox, chat_id=1001)
    after = repo.load(ADA)
    assert after is not None and ghost not in after.deck and len(after.deck) == len(state.deck)
    assert "Sorry" not in inbox.text()
    repo.close()


async def test_a_card_button_sent_before_ids_still_works(landed: Any) -> None:
    """"Show answer" on a push sent by the landed version carries ``<section>#<i>``: it is mapped."""
    from dialogs.messages import Press

    path, states, _ = landed
    repo = Repository(f"sqlite:///{path}")
    t = Tutor(course(), repo, None, clock=lambda: LATER)
    old = states[BOB]["card"]
    card = course().card(CARD_IDS[old])
    inbox = Inbox()
    await t.handle(BOB, Press("card_show", old, None), inbox, chat_id=1002)
    assert card.a.en in inbox.text() and "behind us" not in inbox.text()
    repo.close()

"""Flashcards with spaced repetition: the `fsrs` package (FSRS, as in Anki), used purely.

Cards are stored in the learner's state as fsrs ``Card.to_dict()`` records keyed by the card's id, the
``id`` written in the YAML (``<section id>.c-<slug>``, ``Course.card(id)`` finds the card), never its
position. Scheduling is deterministic: fuzzing is off, time is an argument.
Intervals are whole days (no minute-scale learning steps): reviews happen in a daily rhythm.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from fsrs import Card, Rating, Scheduler

SCHEDULER = Scheduler(enable_fuzzing=False, learning_steps=(), relearning_steps=())
RATINGS = {1: Rating.Again, 2: Rating.Hard, 3: Rating.Good, 4: Rating.Easy}


def _card(cid: str, data: dict[str, Any]) -> Card:
    record: Any = {**data, "card_id": zlib.crc32(cid.encode())}  # fsrs's CardDict, from our JSON
    return Card.from_dict(record)


def _record(card: Card) -> dict[str, Any]:
    """A card as JSON for the learner's state (its fsrs number is derived from our id, not kept)."""
    data: dict[str, Any] = dict(card.to_dict())
    data.pop("card_id")
    return data


def new_card(cid: str, now: datetime) -> dict[str, Any]:
    """A fresh card, due at ``now``."""
    _require_aware(now)
    return _record(Card(card_id=zlib.crc32(cid.encode()), due=now))


def review(cid: str, data: dict[str, Any], rating: int, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rate a card 1..4 (Again, Hard, Good, Easy); returns (new card record, review log record)."""
    _require_aware(now)
    card, log = SCHEDULER.review_card(_card(cid, data), RATINGS[rating], now)
    record: dict[str, Any] = dict(log.to_dict())
    record["card_id"] = cid
    return _record(card), record


def due_at(data: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(data["due"])


def due_cards(deck: dict[str, dict[str, Any]], now: datetime) -> list[str]:
    """Ids of the cards due at ``now``, most overdue first; ties in deck order, which is the order the cards
    joined it: a finished section's cards in their YAML order (JSON keeps a mapping's order)."""
    return sorted((cid for cid, d in deck.items() if due_at(d) <= now), key=lambda cid: due_at(deck[cid]))


def next_due(deck: dict[str, dict[str, Any]]) -> datetime | None:
    return min((due_at(d) for d in deck.values()), default=None)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")

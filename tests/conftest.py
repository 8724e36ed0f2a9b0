"""Shared test set-up: no test may reach the real network."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.networking import block_real_network

# python-telegram-bot 22 warns (an error here) when RetryAfter.retry_after is read as an int;
# opting into timedelta values is its documented way forward.
os.environ.setdefault("PTB_TIMEDELTA", "true")


@pytest.fixture(autouse=True)
def _no_real_network() -> Iterator[None]:
    with block_real_network():
        yield

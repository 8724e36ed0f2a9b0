"""Local time for learners: time zones, the daily push time, day boundaries and streaks.

All times are timezone-aware; a learner's zone is an IANA name (``Asia/Shanghai``) or a fixed UTC
offset (``UTC+08:00``). Days are cut at the learner's local midnight.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dialogs import numbers

# ASCII digits only (re's \d also matches "٣"); full-width digits are folded to ASCII before matching.
_OFFSET = re.compile(r"(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.I | re.ASCII)
_TIME = re.compile(r"(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm)?", re.I | re.ASCII)
COMMON_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
                "Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney")


def parse_zone(text: str) -> str | None:
    """``Asia/Shanghai``, ``asia/shanghai``, ``UTC``, ``+8``, ``UTC+08:00``, ``-05:30``, ``＋８`` -> canonical
    name; None for anything else (``+٣``, ``+²``)."""
    t = numbers.fold_fullwidth(text).strip()
    if not t:
        return None
    if t.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    m = _OFFSET.fullmatch(t)
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            return None
        return f"UTC{sign}{hours:02d}:{minutes:02d}"
    if "/" not in t or len(t) > 64:
        return None
    try:
        ZoneInfo(t)
        return t
    except (ZoneInfoNotFoundError, ValueError):
        lower = {z.lower(): z for z in available_timezones()}
        return lower.get(t.lower())


def zone(name: str) -> tzinfo:
    if name.startswith("UTC") and len(name) > 3:
        sign = 1 if name[3] == "+" else -1
        hours, minutes = int(name[4:6]), int(name[7:9])
        return timezone(sign * timedelta(hours=hours, minutes=minutes), name)
    return ZoneInfo(name)


def parse_clock(text: str) -> str | None:
    """``19:00``, ``7``, ``7pm``, ``07.30``, ``8h15``, ``８：３０`` -> ``HH:MM`` (24 h), or None (``٣:30``)."""
    m = _TIME.fullmatch(numbers.fold_fullwidth(text).strip())
    if not m:
        return None
    hour, minute, ampm = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def local_day(now: datetime, zone_name: str) -> date:
    return now.astimezone(zone(zone_name)).date()


def next_push(after: datetime, zone_name: str, clock: str) -> datetime:
    """The first local ``clock`` strictly after ``after``, in UTC. Handles daylight-saving changes:
    a local time that does not exist that day (spring forward) is sent at the shifted wall time."""
    if after.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    tz = zone(zone_name)
    hh, mm = (int(x) for x in clock.split(":"))
    day = after.astimezone(tz).date()
    for offset in range(0, 3):
        local = datetime.combine(day + timedelta(days=offset), time(hh, mm), tzinfo=tz)
        # normalise through UTC so a non-existent local time maps to a real instant
        candidate = local.astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a day always has the clock time")


def bump_streak(streak: int, best: int, last: date | None, today: date) -> tuple[int, int]:
    """A day with activity: the streak grows on consecutive days, restarts after a gap."""
    if last == today:
        return streak, best
    streak = streak + 1 if last is not None and (today - last).days == 1 else 1
    return streak, max(best, streak)


def live_streak(streak: int, last: date | None, today: date) -> int:
    """The streak as it stands today: kept if the last active day is today or yesterday, else 0."""
    if last is None or (today - last).days > 1:
        return 0
    return streak

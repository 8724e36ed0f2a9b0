"""``/settings``: the daily push's time and time zone, pause/resume, the daily maximum of cards.
Plain functions over the engine's ``Host``."""

from __future__ import annotations

from datetime import datetime

from dialogs import markup, numbers, schedule
from dialogs.actions import setting
from dialogs.context import Host, Out, odd_digits_note
from dialogs.state import LearnerState

TIMES = ("07:30", "12:00", "19:00", "21:30")
MAXES = (10, 20, 50)
#: The largest daily maximum of flashcards a learner may set.
MAX_DAILY = 200
#: Words of a typed ``/settings <word> <value>`` -> the setting.
WORDS = {"time": "time", "时间": "time", "tz": "tz", "zone": "tz", "timezone": "tz", "时区": "tz",
         "pause": "pause", "暂停": "pause", "resume": "resume", "恢复": "resume", "max": "max", "上限": "max"}


def command(host: Host, s: LearnerState, args: str, out: Out) -> LearnerState:
    """``/settings`` (show them, with buttons) or ``/settings <word> <value>``."""
    words = args.split(None, 1)  # any whitespace: "max　30" (an ideographic space) too
    if not words:
        return show(host, s, out)
    name = WORDS.get(words[0].lower())
    if name is None:
        out.say(host.t(s, "settings_usage"))
        return s
    return apply(host, s, name, words[1].strip() if len(words) > 1 else "", out)


def apply(host: Host, s: LearnerState, name: str, value: str, out: Out) -> LearnerState:
    """Change one setting (typed, or a button's); the push is planned anew."""
    if name == "time" and value:
        clock = schedule.parse_clock(value)
        if clock is None:
            out.say(odd_digits_note(host, s, value) + host.t(s, "settings_bad_time", value=markup.literal(value[:20])))
            return s
        s = s.but(push_time=clock)
    elif name == "tz" and value:
        zone = schedule.parse_zone(value)
        if zone is None:
            out.say(odd_digits_note(host, s, value) + host.t(s, "settings_bad_zone", value=markup.literal(value[:40])))
            return s
        s = s.but(tz=zone)
    elif name == "pause":
        s = s.but(paused=True)
    elif name == "resume":
        s = s.but(paused=False)
    elif name == "max" and value:
        daily_max = numbers.parse_int(value, 1, MAX_DAILY)
        if daily_max is None:
            out.say(odd_digits_note(host, s, value)
                    + host.t(s, "settings_bad_max", value=markup.literal(value[:20]), max=MAX_DAILY))
            return s
        s = s.but(daily_max=daily_max)
    else:
        out.say(host.t(s, "settings_usage"))
        return s
    s = replan(s, out.now)
    out.say(host.t(s, "settings_saved"))
    return show(host, s, out)


def replan(s: LearnerState, now: datetime) -> LearnerState:
    due = None if s.paused else schedule.next_push(now, s.tz, s.push_time).isoformat()
    return s.but(push_due=due)


def show(host: Host, s: LearnerState, out: Out) -> LearnerState:
    state_word = host.t(s, "settings_paused" if s.paused else "settings_active")
    text = host.t(s, "settings", time=s.push_time, tz=s.tz, state=state_word, max=s.daily_max)
    times = tuple(setting(t, "time", t) for t in TIMES)
    zones = [setting(z.split("/")[-1].replace("_", " "), "tz", z) for z in schedule.COMMON_ZONES]
    toggle = setting(host.t(s, "btn_resume" if s.paused else "btn_pause"), "resume" if s.paused else "pause")
    maxes = tuple(setting(f"max {n}", "max", str(n)) for n in MAXES)
    out.say(text, (times, tuple(zones[:5]), tuple(zones[5:]), maxes, (toggle,)), seq=s.seq)
    return s

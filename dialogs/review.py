"""Coming back tomorrow: flashcards (FSRS), /quiz, /settings, the daily push and streaks.

A mixin of the engine: reviews run beside the course. Entering one saves the course position in
``state.saved``; leaving restores it and shows the lesson again.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dialogs import answers, cards, markup, schedule
from dialogs.course import Choice, Predict, Statements
from dialogs.markup import plain
from dialogs.messages import Button, LogAnswer, LogReview, Push, QuizPoll, SectionDone
from dialogs.migrations.card_ids import CARD_IDS
from dialogs.state import LearnerState

if TYPE_CHECKING:
    from dialogs.engine import _Out

QUIZ_KINDS = (Choice, Statements, Predict)
LETTERS = "ABCDEFGH"
MAX_QUIZ = 10
PUSH_GRACE = timedelta(hours=1)  # a push later than this (the bot was down) is skipped, not sent late
COURSE_FIELDS = ("phase", "section", "step", "recent", "attempts", "hints", "selected", "judged")
RATE_WORDS = {"again": 1, "hard": 2, "good": 3, "easy": 4, "重来": 1, "困难": 2, "良好": 3, "简单": 4,
              "忘了": 1, "难": 2, "好": 3, "易": 4}
SHOW_WORDS = {"", "show", "show answer", "answer", "flip", "go", "ok", "?", "看答案", "答案", "翻面", "好", "继续"}
POLL_QUESTION, POLL_OPTION, POLL_EXPLANATION = 300, 100, 200


#: UI keys of the four FSRS ratings (Again, Hard, Good, Easy), named once each.
RATE_BUTTON_KEYS = {1: "btn_rate_1", 2: "btn_rate_2", 3: "btn_rate_3", 4: "btn_rate_4"}
RATED_KEYS = {1: "rated_1", 2: "rated_2", 3: "rated_3", 4: "rated_4"}


class ReviewMixin:
    """Cards, quiz, settings, push. Relies on the engine's helpers (``t``, ``_ask``, ``_resend``...)."""

    course: Any

    # ------------------------------------------------------------------------------ bookkeeping

    def _account(self, s: LearnerState, out: _Out) -> LearnerState:
        """After a turn: mastery from answers, streak from activity, new cards from finished sections."""
        mastery = {k: list(v) for k, v in s.mastery.items()}
        active = False
        deck = s.deck
        known = self.course.card_ids
        if not known.issuperset(deck):  # a card deleted from the course since it entered the deck
            deck = {cid: record for cid, record in deck.items() if cid in known}
        for eff in out.effects:
            if isinstance(eff, LogAnswer):
                active = True
                for tag in eff.tags:
                    right, total = mastery.get(tag, [0, 0])
                    mastery[tag] = [right + int(eff.correct), total + 1]
            elif isinstance(eff, LogReview):
                active = True
            elif isinstance(eff, SectionDone):
                deck = dict(deck)
                due = self._next_midnight(s, out.now)
                for card in self.course.section(eff.section).cards:
                    deck.setdefault(card.id, cards.new_card(card.id, due))
        if mastery != s.mastery or deck is not s.deck:
            s = s.but(mastery=mastery, deck=deck)
        if active:
            today = schedule.local_day(out.now, s.tz)
            last = date.fromisoformat(s.last_day) if s.last_day else None
            streak, best = schedule.bump_streak(s.streak, s.best_streak, last, today)
            s = s.but(streak=streak, best_streak=best, last_day=today.isoformat())
        if s.push_due is None and not s.paused and s.phase != "new":
            s = s.but(push_due=schedule.next_push(out.now, s.tz, s.push_time).isoformat())
        return s

    def _next_midnight(self, s: LearnerState, now: datetime) -> datetime:
        return schedule.next_push(now, s.tz, "00:00")

    def _today(self, s: LearnerState, now: datetime) -> date:
        return schedule.local_day(now, s.tz)

    def _save(self, s: LearnerState) -> LearnerState:
        """Enter a review: keep the course position (once)."""
        if s.mode != "course":
            return s
        return s.but(saved={k: getattr(s, k) for k in COURSE_FIELDS})

    def _restore(self, s: LearnerState, out: _Out, note: str) -> LearnerState:
        saved = dict(s.saved or {})
        for key in ("recent", "selected", "judged"):
            saved[key] = tuple(saved.get(key, ()))
        s = s.moved(mode="course", saved=None, card=None, card_shown=False, quiz_left=0, **saved)
        if s.phase in ("new", "done"):
            out.say(self.t(s, note))
            return s
        out.say(self.t(s, note) + ("" if s.lang == "zh" else " ") + self.t(s, "back_to_lesson"))
        return self._resend(s, out)

    # ------------------------------------------------------------------------------ flashcards

    def _reviews_left(self, s: LearnerState, now: datetime) -> tuple[LearnerState, int]:
        today = self._today(s, now).isoformat()
        if s.reviews_day != today:
            s = s.but(reviews_day=today, reviews_today=0)
        return s, max(0, s.daily_max - s.reviews_today)

    def _cards_command(self, s: LearnerState, out: _Out) -> LearnerState:
        if s.phase == "evaluating":
            out.say(self.t(s, "still_running"))
            return s
        if s.mode == "cards" and s.card:
            return self._show_card(s, out)
        if s.mode == "quiz":
            s = self._restore(s, out, "quiz_stopped")
        if not s.deck:
            out.say(self.t(s, "cards_none"))
            return s
        due = cards.due_cards(s.deck, out.now)
        if not due:
            out.say(self.t(s, "cards_nothing_due", when=self._when(s, cards.next_due(s.deck))))
            return s
        s, left = self._reviews_left(s, out.now)
        if left <= 0:
            out.say(self.t(s, "cards_daily_max", n=s.daily_max))
            return s
        out.say(self.t(s, "cards_start", n=min(len(due), left), total=len(due)))
        s = self._save(s).moved(mode="cards", card=due[0], card_shown=False)
        return self._show_card(s, out)

    def _card_text(self, s: LearnerState, cid: str) -> tuple[str, str]:
        card = self.course.card(cid)
        return card.q.get(s.lang), card.a.get(s.lang)

    def _show_card(self, s: LearnerState, out: _Out) -> LearnerState:
        assert s.card is not None
        q, a = self._card_text(s, s.card)
        if not s.card_shown:
            out.say(f"🃏 **{q}**", ((Button(self.t(s, "btn_show_answer"), "card_show", s.card),),), seq=s.seq)
            return s
        labels = [self.t(s, RATE_BUTTON_KEYS[i]) for i in range(1, 5)]
        out.say(f"🃏 **{q}**\n\n💡 {a}\n\n" + self.t(s, "cards_rate"),
                (tuple(Button(labels[i - 1], "rate", f"{s.card}:{i}") for i in range(1, 5)),), seq=s.seq)
        return s

    def _cards_text(self, s: LearnerState, text: str, out: _Out) -> LearnerState:
        word = answers.normalise(text)
        if not s.card_shown:
            if word in SHOW_WORDS:
                return self._show_card(s.but(card_shown=True), out)
            out.say(self.t(s, "cards_say_show"))
            return s
        rating = RATE_WORDS.get(word) or (int(word) if word in ("1", "2", "3", "4") else None)
        if rating is None:
            out.say(self.t(s, "cards_say_rate"))
            return s
        return self._rate(s, s.card or "", rating, out)

    def _card_press(self, s: LearnerState, action: str, arg: str, out: _Out) -> LearnerState:
        if "#" in arg:  # a button sent before cards had ids: "<section>#<i>[:rating]"
            cid, colon, rest = arg.partition(":")
            arg = CARD_IDS.get(cid, cid) + colon + rest
        if action == "card_show":
            if arg not in s.deck:
                self._stale(s, out)
                return s
            if s.mode == "cards" and s.card == arg:
                return self._show_card(s.but(card_shown=True), out)
            if s.phase == "evaluating":
                out.say(self.t(s, "still_running"))
                return s
            if s.mode == "quiz":
                s = self._restore(s, out, "quiz_stopped")
            s = self._save(s).moved(mode="cards", card=arg, card_shown=True)
            return self._show_card(s, out)
        if action == "rate":
            cid, _, value = arg.rpartition(":")
            if s.mode != "cards" or s.card != cid or not s.card_shown or value not in ("1", "2", "3", "4"):
                self._stale(s, out)
                return s
            return self._rate(s, cid, int(value), out)
        # "cards": start a review session (the push's button)
        return self._cards_command(s, out)

    def _rate(self, s: LearnerState, cid: str, rating: int, out: _Out) -> LearnerState:
        record, log = cards.review(cid, s.deck[cid], rating, out.now)
        out.effects.append(LogReview(cid, rating, log))
        s, _ = self._reviews_left(s, out.now)
        s = s.but(deck={**s.deck, cid: record}, reviews_today=s.reviews_today + 1)
        out.say(self.t(s, RATED_KEYS[rating], when=self._when(s, cards.due_at(record))))
        due = cards.due_cards(s.deck, out.now)
        left = s.daily_max - s.reviews_today
        if due and left > 0:
            return self._show_card(s.moved(card=due[0], card_shown=False), out)
        note = "cards_done" if not due else "cards_daily_max_reached"
        return self._restore(s.but(card=None), out, note)

    def _when(self, s: LearnerState, when: datetime | None) -> str:
        if when is None:
            return "—"
        local = when.astimezone(schedule.zone(s.tz))
        return local.strftime("%Y-%m-%d %H:%M") + f" ({s.tz})"

    # ------------------------------------------------------------------------------------ quiz

    def _covered_questions(self, s: LearnerState) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        position = s.saved if s.mode != "course" and s.saved else {"section": s.section, "step": s.step}
        for section in self.course.sections():
            if section.id in s.done_sections:
                steps = list(section.steps)
            elif section.id == position.get("section"):
                ids = [x.id for x in section.steps]
                upto = ids.index(position["step"]) if position.get("step") in ids else 0
                steps = list(section.steps[:upto])
            else:
                continue
            out.extend((section.id, st) for st in steps if isinstance(st, QUIZ_KINDS))
        return out

    def _weakness(self, s: LearnerState, step: Any) -> float:
        """Estimated mastery of the question's weakest concept (Laplace-smoothed right/total)."""
        scores = [(s.mastery.get(tag, [0, 0])[0] + 1) / (s.mastery.get(tag, [0, 0])[1] + 2)
                  for tag in (step.tags or ("untagged",))]
        return min(scores)

    def _pick_question(self, s: LearnerState) -> tuple[str, Any] | None:
        pool = self._covered_questions(s)
        if not pool:
            return None
        fresh = [q for q in pool if q[1].id not in s.quiz_asked] or pool
        ranked = sorted(enumerate(fresh), key=lambda iq: (self._weakness(s, iq[1][1]), -iq[0]))
        return ranked[0][1]

    def _quiz_command(self, s: LearnerState, args: str, out: _Out) -> LearnerState:
        if s.phase == "evaluating":
            out.say(self.t(s, "still_running"))
            return s
        if s.mode == "quiz":
            return self._resend(s, out)
        if s.mode == "cards":
            s = self._restore(s, out, "cards_stopped")
        n = 1
        if args.strip():
            if not args.strip().isdigit() or not 1 <= int(args.strip()) <= MAX_QUIZ:
                out.say(self.t(s, "quiz_usage", max=MAX_QUIZ))
                return s
            n = int(args.strip())
        picked = self._pick_question(s)
        if picked is None:
            out.say(self.t(s, "quiz_none"))
            return s
        s = self._save(s).moved(mode="quiz", quiz_left=n - 1, quiz_asked=s.quiz_asked[-5:])
        return self._quiz_ask(s, picked, n, out)

    def _quiz_ask(self, s: LearnerState, picked: tuple[str, Any], total: int, out: _Out) -> LearnerState:
        section_id, step = picked
        number = total - s.quiz_left
        out.say(self.t(s, "quiz_header", i=number, n=total, label=self._section_label(section_id),
                       title=self.course.section(section_id).title.get(s.lang)))
        s = s.moved(section=section_id, step=step.id, phase="question", attempts=0, selected=(), judged=())
        return self._ask(s, step, out)

    def _quiz_next(self, s: LearnerState, out: _Out) -> LearnerState:
        asked = (*s.quiz_asked, s.step or "")[-6:]
        s = s.but(quiz_asked=asked)
        if s.quiz_left > 0:
            picked = self._pick_question(s)
            if picked is not None:
                total = s.quiz_left + len([a for a in asked if a])  # only used for the "i of n" header
                s = s.but(quiz_left=s.quiz_left - 1)
                return self._quiz_ask(s, picked, min(total, MAX_QUIZ), out)
        return self._restore(s, out, "quiz_done")

    def quiz_poll(self, s: LearnerState, step: Any) -> QuizPoll | None:
        """The question as a Telegram quiz poll, when it is a plain single choice that fits the limits."""
        if s.mode != "quiz" or not isinstance(step, Choice) or step.multi or step.code:
            return None
        question = plain(step.prompt.get(s.lang))
        options = tuple(f"{LETTERS[i]}. {plain(o.text.get(s.lang))}" for i, o in enumerate(step.options))
        if "\n" in question or len(question) > POLL_QUESTION or any(len(o) > POLL_OPTION for o in options):
            return None
        correct = next(i for i, o in enumerate(step.options) if o.correct)
        explanation = plain(step.options[correct].feedback.get(s.lang)).lstrip("✅ ").strip()
        if len(explanation) > POLL_EXPLANATION:
            explanation = explanation[: POLL_EXPLANATION - 1].rstrip() + "…"
        return QuizPoll(question, options, correct, explanation)

    # -------------------------------------------------------------------------------- settings

    def _settings_command(self, s: LearnerState, args: str, out: _Out) -> LearnerState:
        key, _, value = args.strip().partition(" ")
        key, value = key.lower(), value.strip()
        if key in ("time", "时间") and value:
            clock = schedule.parse_clock(value)
            if clock is None:
                out.say(self.t(s, "settings_bad_time", value=markup.literal(value[:20])))
                return s
            s = s.but(push_time=clock)
        elif key in ("tz", "zone", "timezone", "时区") and value:
            name = schedule.parse_zone(value)
            if name is None:
                out.say(self.t(s, "settings_bad_zone", value=markup.literal(value[:40])))
                return s
            s = s.but(tz=name)
        elif key in ("pause", "暂停"):
            s = s.but(paused=True)
        elif key in ("resume", "恢复"):
            s = s.but(paused=False)
        elif key in ("max", "上限") and value.isdigit() and 1 <= int(value) <= 200:
            s = s.but(daily_max=int(value))
        elif key:
            out.say(self.t(s, "settings_usage"))
            return s
        else:
            return self._settings_show(s, out)
        s = self._replan(s, out.now)
        out.say(self.t(s, "settings_saved"))
        return self._settings_show(s, out)

    def _replan(self, s: LearnerState, now: datetime) -> LearnerState:
        due = None if s.paused else schedule.next_push(now, s.tz, s.push_time).isoformat()
        return s.but(push_due=due)

    def _settings_show(self, s: LearnerState, out: _Out) -> LearnerState:
        state_word = self.t(s, "settings_paused" if s.paused else "settings_active")
        text = self.t(s, "settings", time=s.push_time, tz=s.tz, state=state_word, max=s.daily_max)
        times = tuple(Button(t, "set", f"time {t}") for t in ("07:30", "12:00", "19:00", "21:30"))
        zones = [Button(z.split("/")[-1].replace("_", " "), "set", f"tz {z}") for z in schedule.COMMON_ZONES]
        toggle = Button(self.t(s, "btn_resume" if s.paused else "btn_pause"), "set",
                        "resume" if s.paused else "pause")
        maxes = tuple(Button(f"max {n}", "set", f"max {n}") for n in (10, 20, 50))
        rows = (times, tuple(zones[:5]), tuple(zones[5:]), maxes, (toggle,))
        out.say(text, rows, seq=s.seq)
        return s

    # ------------------------------------------------------------------------------------ push

    def _push(self, s: LearnerState, event: Push, out: _Out) -> LearnerState:
        now = out.now
        if s.phase == "new" or (s.paused and not event.force):
            return s
        due_at = datetime.fromisoformat(s.push_due) if s.push_due else None
        s = s.but(push_due=schedule.next_push(now, s.tz, s.push_time).isoformat())
        if not event.force and due_at is not None and now - due_at > PUSH_GRACE:
            return s  # missed while the bot was down: not sent late
        if not event.force and due_at is not None and due_at - now > timedelta(minutes=1):
            return s.but(push_due=due_at.isoformat())  # not yet
        today = self._today(s, now)
        last = date.fromisoformat(s.last_day) if s.last_day else None
        streak = schedule.live_streak(s.streak, last, today)
        lines = []
        if streak:
            lines.append(self.t(s, "push_streak", n=streak, best=s.best_streak))
            if last != today:
                lines.append(self.t(s, "push_streak_risk", n=streak))
        due = cards.due_cards(s.deck, now)
        s, left = self._reviews_left(s, now)
        if due and left > 0:
            q, _ = self._card_text(s, due[0])
            head = self.t(s, "push_card", n=len(due))
            text = "\n".join([head, "", f"🃏 **{q}**", *(["", *lines] if lines else [])])
            out.say(text, ((Button(self.t(s, "btn_show_answer"), "card_show", due[0]),),), seq=s.seq)
            return s
        nxt = next((sid for sid in self.course.section_ids if sid not in s.done_sections), None)
        if nxt is None:
            if lines:
                out.say("\n".join([self.t(s, "push_all_done"), "", *lines]))
            return s
        section = self.course.section(nxt)
        teaser = self.t(s, "push_teaser", label=self._section_label(nxt), title=section.title.get(s.lang),
                        point=section.steps[0].point.get(s.lang))
        out.say("\n".join([teaser, *(["", *lines] if lines else [])]),
                ((Button(self.t(s, "btn_go"), "resume"),),), seq=s.seq)
        return s

    # ---------------------------------------------------------------------------------- progress

    def _daily_lines(self, s: LearnerState, now: datetime) -> str:
        last = date.fromisoformat(s.last_day) if s.last_day else None
        streak = schedule.live_streak(s.streak, last, self._today(s, now))
        due = len(cards.due_cards(s.deck, now))
        return self.t(s, "progress_daily", streak=streak, best=s.best_streak, due=due, deck=len(s.deck))

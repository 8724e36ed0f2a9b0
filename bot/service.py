"""The tutor service: one update, end to end, the same for the terminal and Telegram.

load state -> engine.step -> store state + answer log + update id + the replies to send (one
transaction; a ``Sink`` says what to store: Telegram's outbox rows, nothing for the terminal) -> the sink
delivers -> perform effects (run code in the sandbox, feed the result back as an event: a turn of its
own, stored the same way) -> ...

Updates of one learner are applied one at a time (a lock per learner); different learners run
concurrently. Code evaluation runs outside the lock, so a learner can still type /help meanwhile. A run
a turn starts is recorded with it (``RunningEval``); one a dead process left is reported to its learner
at the next start (``recover``).

Fairness: a learner has at most one run in the sandbox at a time (code and ``/graph`` alike): a
second one is answered "busy" at once (a lesson's own graph waits its turn instead). The sandbox's
queue is bounded in length and in time (``SandboxConfig.queue_limit``/``queue_seconds``); a learner
whose run has to wait is told so.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from bot.storage import Outgoing, Repository
from dialogs.ask import index_for
from dialogs.course import Course
from dialogs.engine import Engine
from dialogs.evaluation import CheckSpec, EvalOutcome
from dialogs.messages import EvalResult, Evaluate, Event, Push, Reply, Say, Turn
from dialogs.state import LearnerState

log = logging.getLogger(__name__)

Send = Callable[[Sequence[Reply]], Awaitable[None]]


class Sink(Protocol):
    """Where one learner's replies go. A durable shell (Telegram) stores them with the turn, as outbox
    rows, and sends them afterwards; the terminal shows them at once."""

    def outbox(self, turn: Turn) -> Sequence[Outgoing]:
        """What to store with this turn, in the same transaction."""
        ...

    async def after(self, turn: Turn) -> None:
        """The turn is stored: deliver (or start delivering) its replies."""
        ...

    async def send(self, replies: Sequence[Reply]) -> None:
        """Replies that belong to no turn (e.g. "your code waits for a free worker")."""
        ...


class Direct:
    """A sink that shows replies as soon as the turn is stored and keeps nothing (terminal, tests)."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def outbox(self, turn: Turn) -> Sequence[Outgoing]:
        return ()

    async def after(self, turn: Turn) -> None:
        await self._send(turn.replies)

    async def send(self, replies: Sequence[Reply]) -> None:
        await self._send(replies)


def as_sink(target: Send | Sink) -> Sink:
    return target if hasattr(target, "outbox") else Direct(target)  # type: ignore[return-value]


class Evaluator(Protocol):
    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome: ...

    def is_saturated(self) -> bool: ...


class GraphEvaluator(Evaluator, Protocol):
    """An evaluator that can also read autograd graphs (``bot.sandbox.Sandbox.graph``)."""

    async def graph(self, code: str, target: str | None = None) -> EvalOutcome: ...


#: Graph and picture results of lesson code kept in memory, by (code, target, pictures).
GRAPH_CACHE_SIZE = 256


def utcnow() -> datetime:
    return datetime.now(UTC)


class Tutor:
    """``background``: a sandbox run a turn asks for goes on after ``handle`` returns (Telegram: the
    learner's next update need not wait for it); otherwise ``handle`` returns once its result is out."""

    def __init__(self, course: Course, repo: Repository, evaluator: Evaluator | None = None,
                 clock: Callable[[], datetime] = utcnow, *, background: bool = False) -> None:
        self.course = course
        self.engine = Engine(course)
        index_for(course)  # free questions' index: built at start-up, not on the first question
        self.repo = repo
        self.evaluator = evaluator
        self.clock = clock
        self.background = background
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._inflight: set[str] = set()
        self._slots: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._graphs: dict[tuple[str, str, bool], EvalOutcome] = {}
        self._runs: set[asyncio.Task[None]] = set()

    def _lock(self, learner_id: str) -> asyncio.Lock:
        lock = self._locks.get(learner_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[learner_id] = lock
        return lock

    def state(self, learner_id: str) -> LearnerState | None:
        return self.repo.load(learner_id)

    def expects_code(self, learner_id: str) -> bool:
        """Is the learner looking at a code task (the terminal then reads a multi-line entry)?"""
        s = self.repo.load(learner_id)
        if s is None or s.phase not in ("question", "retry") or s.section is None or s.step is None:
            return False
        try:
            return self.course.step(s.section, s.step).kind == "code"
        except KeyError:
            return False

    async def handle(self, learner_id: str, event: Event, send: Send | Sink, *, update_id: int | None = None,
                     chat_id: int | None = None, lang_hint: str | None = None) -> Turn | None:
        """Apply one event for one learner: the new state, its logs, the update's id and (for a durable
        sink) the replies to send are stored in one transaction, then the sink delivers. Returns the turn
        applied (``None`` for an update applied before). A sandbox run the turn asks for is performed
        before this returns, or in the background (``background``); its result is a turn of its own."""
        sink = as_sink(send)
        lock = self._lock(learner_id)
        async with lock:
            if update_id is not None and await asyncio.to_thread(self.repo.is_processed, update_id):
                log.info("update %s for %s was already applied; skipped", update_id, learner_id)
                return None
            state = await asyncio.to_thread(self.repo.load, learner_id)
            if state is None:
                state = LearnerState(lang=lang_hint or "en")
            elif not state.lang_chosen and lang_hint and state.phase == "new":
                state = state.but(lang=lang_hint)
            replies: list[Reply] = []
            finished = None
            if state.phase == "evaluating" and state.pending not in self._inflight:
                # The process running that submission is gone (restart): tell the learner, move on.
                lost = EvalOutcome("unavailable", error="interrupted by a restart")
                finished = state.pending
                turn = self.engine.step(state, EvalResult(state.pending or "", lost), self.clock())
                state = turn.state
                replies.extend(turn.replies)
            turn = self.engine.step(state, event, self.clock())
            turn = replace(turn, replies=(*replies, *turn.replies))
            if not await asyncio.to_thread(self._save, learner_id, turn, sink, update_id, chat_id, finished):
                return None
            runs = [e for e in turn.effects if isinstance(e, Evaluate)]
            self._inflight.update(e.request for e in runs)  # before the lock is let go
            await sink.after(turn)
        for effect in runs:
            if self.background:
                task = asyncio.create_task(self._evaluate(learner_id, effect, sink, chat_id, lock),
                                           name=f"run-{effect.request}")
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
            else:
                await self._evaluate(learner_id, effect, sink, chat_id, lock)
        return turn

    def _save(self, learner_id: str, turn: Turn, sink: Sink, update_id: int | None, chat_id: int | None,
              finished: str | None) -> bool:
        return self.repo.save_turn(learner_id, turn.state, turn.effects, self.clock(), update_id, chat_id,
                                   outbox=sink.outbox(turn), finished=finished,
                                   origin=getattr(sink, "origin", None))

    async def _evaluate(self, learner_id: str, effect: Evaluate, sink: Sink, chat_id: int | None,
                        lock: asyncio.Lock) -> None:
        try:  # ``handle`` put the request in ``_inflight`` before letting the learner's lock go
            outcome = await self._run(learner_id, effect, sink)
        finally:
            self._inflight.discard(effect.request)
        async with lock:
            state = await asyncio.to_thread(self.repo.load, learner_id)
            if state is None:
                return
            turn = self.engine.step(state, EvalResult(effect.request, outcome), self.clock())
            await asyncio.to_thread(self._save, learner_id, turn, sink, None, chat_id, effect.request)
            await sink.after(turn)

    async def recover(self, sink_for: Callable[[str, int | None, int | None], Sink]) -> int:
        """Runs a dead process left unfinished (``RunningEval`` rows): each learner is told theirs was
        interrupted and may send it again. ``sink_for(learner id, chat id, origin update)``. Returns how many."""
        lost = EvalOutcome("unavailable", error="interrupted by a restart")
        rows = await asyncio.to_thread(self.repo.running_evals)
        for row in rows:
            if row.request in self._inflight:
                continue
            async with self._lock(row.learner_id):
                state = await asyncio.to_thread(self.repo.load, row.learner_id)
                if state is None:  # the learner is gone (a reset of the database by hand...)
                    await asyncio.to_thread(self.repo.forget_run, row.request)
                    continue
                sink = sink_for(row.learner_id, row.chat_id, row.origin)
                turn = self.engine.step(state, EvalResult(row.request, lost), self.clock())
                await asyncio.to_thread(self._save, row.learner_id, turn, sink, None, row.chat_id, row.request)
                await sink.after(turn)
            log.info("run %s of %s was interrupted by a restart; the learner is told", row.request, row.learner_id)
        return len(rows)

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the runs going on in the background; cancel the rest (a later
        start tells those learners). Returns how many were cancelled."""
        runs = set(self._runs)
        if not runs:
            return 0
        _, late = await asyncio.wait(runs, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1)
        return len(late)

    async def _run(self, learner_id: str, effect: Evaluate, sink: Sink) -> EvalOutcome:
        """Run one effect in the sandbox, one run per learner at a time."""
        if self.evaluator is None:
            return EvalOutcome("unavailable", error="no sandbox is configured")
        key = (effect.code, effect.graph or "", effect.pictures)
        drawing = effect.graph is not None or effect.pictures
        if drawing and effect.cacheable and key in self._graphs:
            return self._graphs[key]
        slot = self._slots.get(learner_id)
        if slot is None:
            slot = asyncio.Lock()
            self._slots[learner_id] = slot
        if slot.locked() and not effect.cacheable:  # a lesson's graph waits; the learner's own runs don't
            return EvalOutcome("busy", error="the learner's previous run is still going", extra={"busy": "learner"})
        async with slot:
            if self.evaluator.is_saturated() and not effect.cacheable:
                await sink.send([Say(self.course.t(await self._lang(learner_id), "queued"))])
            try:
                if effect.pictures:
                    outcome = await self._pictures(effect)
                elif effect.graph is not None:
                    outcome = await self._graph(effect)
                else:
                    outcome = await self.evaluator.evaluate(effect.code, effect.checks)
            except Exception:
                log.exception("sandbox failed on %s for %s", effect.request, learner_id)
                outcome = EvalOutcome("unavailable", error="the sandbox failed")
        if drawing and effect.cacheable and outcome.status == "ok":
            if len(self._graphs) >= GRAPH_CACHE_SIZE:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = outcome
        return outcome

    async def _graph(self, effect: Evaluate) -> EvalOutcome:
        """The autograd graph for a graph request."""
        graph = getattr(self.evaluator, "graph", None)
        if graph is None:
            return EvalOutcome("unavailable", error="this evaluator draws no graphs")
        outcome: EvalOutcome = await graph(effect.code, effect.graph or None)
        return outcome

    async def _pictures(self, effect: Evaluate) -> EvalOutcome:
        """The pictures a lesson's code draws (``bot.sandbox.Sandbox.pictures``)."""
        pictures = getattr(self.evaluator, "pictures", None)
        if pictures is None:
            return EvalOutcome("unavailable", error="this evaluator draws no pictures")
        outcome: EvalOutcome = await pictures(effect.code)
        return outcome

    async def push(self, sender: Callable[[int], Send | Sink], *, force: bool = False,
                   chats: Sequence[int] | None = None, concurrency: int = 32) -> int:
        """Send the daily push to every learner due now (or, with ``force``, to ``chats`` or everyone).

        Pacing under Telegram's limits is the sender's rate limiter's job; this only bounds concurrency.
        Returns the number of learners the push event was applied to.
        """
        now = self.clock()
        if force:
            targets = await asyncio.to_thread(self.repo.chats)
            if chats is not None:
                wanted = set(chats)
                targets = [(lid, cid) for lid, cid in targets if cid in wanted]
        else:
            targets = await asyncio.to_thread(self.repo.due_pushes, now)
        gate = asyncio.Semaphore(concurrency)

        async def one(lid: str, chat_id: int) -> None:
            async with gate:
                try:
                    await self.handle(lid, Push(force=force), sender(chat_id), chat_id=chat_id)
                except Exception:
                    log.exception("push to %s failed", lid)

        await asyncio.gather(*(one(lid, cid) for lid, cid in targets))
        return len(targets)

    async def _lang(self, learner_id: str) -> str:
        state = await asyncio.to_thread(self.repo.load, learner_id)
        return state.lang if state else "en"

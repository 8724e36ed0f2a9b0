"""Drive the pure engine like a learner would, without any shell: ``send``, ``press``, ``command``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.content import load_course
from dialogs.course import Course
from dialogs.engine import Engine
from dialogs.messages import Button, Command, Edit, Effect, Event, GraphView, Press, Reply, Say, Start, Text, Turn
from dialogs.state import LearnerState

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def mini_course() -> Course:
    return load_course(FIXTURES / "mini")


@dataclass
class Driver:
    course: Course
    state: LearnerState = field(default_factory=LearnerState)
    turns: list[Turn] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return Engine(self.course)

    def event(self, event: Event) -> Turn:
        turn = self.engine.step(self.state, event, NOW)
        self.state = turn.state
        self.turns.append(turn)
        return turn

    def start(self) -> Turn:
        return self.event(Start())

    def send(self, text: str) -> Turn:
        return self.event(Text(text))

    def command(self, name: str, args: str = "") -> Turn:
        return self.event(Command(name, args))

    def press(self, action: str, arg: str = "", seq: int | None = None) -> Turn:
        return self.event(Press(action, arg, self.state.seq if seq is None else seq))

    @property
    def last(self) -> Turn:
        return self.turns[-1]

    def text(self, turn: Turn | None = None) -> str:
        """What a learner reads of a turn (default: the last): every Say, and the note of every Edit."""
        turn = turn or self.last
        return "\n---\n".join(r.text if isinstance(r, Say) else r.note for r in turn.replies
                                if isinstance(r, Say) or (isinstance(r, Edit) and r.note))

    def replies(self, kind: type) -> list[Reply]:
        return [r for r in self.last.replies if isinstance(r, kind)]

    def effects(self, kind: type) -> list[Effect]:
        return [e for e in self.last.effects if isinstance(e, kind)]

    def buttons(self) -> list[Button]:
        out: list[Button] = []
        for r in self.last.replies:
            if isinstance(r, Say | Edit):
                out.extend(b for row in r.buttons for b in row)
        return out

    def go_to(self, step_id: str, limit: int = 200) -> None:
        """Answer 'go' / reveal until the given step is current."""
        if self.state.phase == "new":
            self.start()
        for _ in range(limit):
            if self.state.step == step_id and self.state.phase in ("question", "explain"):
                return
            if self.state.phase in ("question", "retry"):
                self.send("answer")
            else:
                self.send("go")
        raise AssertionError(f"never reached {step_id}")


class Inbox:
    """What one chat received from ``Tutor.handle`` (it is the ``send`` the tutor calls)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []

    async def __call__(self, replies: Sequence[Reply]) -> None:
        self.replies.extend(replies)

    def text(self) -> str:
        """What a learner reads: every Say, and the note of every Edit."""
        return "\n".join(r.text if isinstance(r, Say) else r.note for r in self.replies
                         if isinstance(r, Say) or (isinstance(r, Edit) and r.note))

    def graphs(self) -> int:
        return sum(isinstance(r, GraphView) for r in self.replies)

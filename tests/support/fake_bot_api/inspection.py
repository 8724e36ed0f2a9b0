"""What tests read and wait for: requests, messages, chats, callback answers, commands, pending
updates, transcripts; async and sync waiting helpers with a readable report on timeout."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable
from typing import TypeVar

from .protocol import JSONDict
from .records import RecordedRequest, SentMessage

T = TypeVar("T")


class Inspection:
    """Inspection and waiting helpers.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (copies)."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def calls(self, method: str) -> list[RecordedRequest]:
        """The requests to one method (case-insensitive), e.g. ``calls("sendMessage")``."""
        wanted = method.lower()
        with self._lock:
            return [copy.deepcopy(r) for r in self._requests if r.method.lower() == wanted]

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """The bot's messages in the chat as they stand now, oldest first (copies)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(chat_id, []) if include_deleted or not m.deleted]

    def texts(self, chat_id: int) -> list[str]:
        """The plain texts (captions for photos) of the bot's current messages in the chat."""
        return [m.plain_text or "" for m in self.messages(chat_id)]

    def last_message(self, chat_id: int) -> SentMessage:
        messages = self.messages(chat_id)
        if not messages:
            raise LookupError(f"the bot has sent nothing to chat {chat_id}")
        return messages[-1]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        with self._lock:
            message = self._find_message(chat_id, message_id)
            if message is None:
                raise LookupError(f"no message {message_id} from the bot in chat {chat_id}")
            return copy.deepcopy(message)

    @property
    def chats(self) -> list[int]:
        with self._lock:
            return list(self._chats)

    @property
    def answered_callback_queries(self) -> dict[str, JSONDict]:
        """callback_query_id -> the answerCallbackQuery parameters."""
        with self._lock:
            return copy.deepcopy(self._answers)

    def unanswered_callback_queries(self) -> list[str]:
        """Ids of taps the bot has not answered (the learner would see a spinning button)."""
        with self._lock:
            return [qid for qid in self._callback_queries if qid not in self._answers]

    def commands(self, language_code: str = "", scope: JSONDict | None = None) -> list[JSONDict]:
        """The commands set with setMyCommands for that language and scope."""
        with self._lock:
            return copy.deepcopy(self._commands.get((self._scope_key(scope), language_code), []))

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by the bot."""
        with self._lock:
            return [copy.deepcopy(p.update) for p in self._pending]

    def was_delivered(self, update_id: int) -> bool:
        with self._lock:
            return update_id in self._delivered_ids

    @property
    def webhook_info(self) -> JSONDict:
        with self._lock:
            return self._webhook_info()

    def transcript(self, chat_id: int) -> str:
        """A readable dump of the chat (learner and bot), for assertion messages."""
        with self._lock:
            lines = []
            entries: list[tuple[int, str]] = []
            for mid, m in self._learner_messages.get(chat_id, {}).items():
                what = (
                    m.get("text")
                    or m.get("caption")
                    or next((k for k in ("sticker", "photo", "voice", "document") if k in m), "?")
                )
                entries.append((mid, f"  learner #{mid}: {what!r}"))
            for message in self._messages.get(chat_id, []):
                entries.append((message.message_id, f"  bot {message.summary()}"))
            for _, line in sorted(entries):
                lines.append(line)
            return f"chat {chat_id}:\n" + "\n".join(lines)

    # ------------------------------------------------------------------ waiting helpers

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, *, what: str | None = None) -> T:
        """Wait (yielding to the event loop) until ``predicate()`` is truthy and return its value.

        It is re-evaluated, under the server's lock, whenever the server's state changes; on
        timeout a ``TimeoutError`` lists the recent requests and chats.
        """
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._async_waiters.add(entry)
        try:
            deadline = loop.time() + timeout
            while True:
                event.clear()
                with self._lock:
                    value = predicate()
                if value:
                    return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_report(what or "condition", timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                self._async_waiters.discard(entry)

    def wait_for_sync(self, predicate: Callable[[], T], timeout: float = 10.0, *, what: str | None = None) -> T:
        """``wait_for`` for synchronous code (blocks the calling thread: never call it on the
        event loop the bot runs on)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_report(what or "condition", timeout))
                self._cond.wait(remaining)

    def _new_messages(self, chat_id: int, count: int, after: int | None) -> list[SentMessage] | None:
        found = [
            m for m in self._messages.get(chat_id, []) if not m.deleted and (after is None or m.message_id > after)
        ]
        return copy.deepcopy(found) if len(found) >= count else None

    async def wait_for_messages(
        self, chat_id: int, count: int = 1, *, after: int | None = None, timeout: float = 10.0
    ) -> list[SentMessage]:
        """Wait until the chat holds at least ``count`` messages from the bot with an id above
        ``after`` (all of them if None); return those messages (all found, oldest first)."""
        return await self.wait_for(
            lambda: self._new_messages(chat_id, count, after),
            timeout,
            what=f"{count} message(s) in chat {chat_id} after #{after}",
        )

    def wait_for_messages_sync(
        self, chat_id: int, count: int = 1, *, after: int | None = None, timeout: float = 10.0
    ) -> list[SentMessage]:
        return self.wait_for_sync(
            lambda: self._new_messages(chat_id, count, after),
            timeout,
            what=f"{count} message(s) in chat {chat_id} after #{after}",
        )

    async def wait_for_request(
        self,
        method: str,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> RecordedRequest:
        """Wait for a request to ``method`` (matching ``predicate``) among requests number
        ``since`` onwards (``len(server.requests)`` taken earlier); return it once answered."""
        wanted = method.lower()

        def find() -> RecordedRequest | None:
            for request in self._requests[since:]:
                if request.method.lower() == wanted and request.status and (predicate is None or predicate(request)):
                    return copy.deepcopy(request)
            return None

        return await self.wait_for(find, timeout, what=f"a {method} request")

    async def wait_for_callback_answer(self, callback_query_id: str, timeout: float = 10.0) -> JSONDict:
        """Wait until the bot answered that callback query; return the answer's parameters."""
        return await self.wait_for(
            lambda: copy.deepcopy(self._answers.get(callback_query_id)),
            timeout,
            what=f"an answer to callback query {callback_query_id}",
        )

    async def wait_until_delivered(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until the bot has fetched the update (getUpdates or webhook)."""
        await self.wait_for(lambda: update_id in self._delivered_ids, timeout, what=f"delivery of update {update_id}")

    def _timeout_report(self, what: str, timeout: float) -> str:
        with self._lock:
            recent = [str(r) for r in self._requests if r.method.lower() != "getupdates"][-15:]
            chats = "\n".join(self.transcript(chat_id) for chat_id in self._chats)
            pending = [p.update["update_id"] for p in self._pending]
            errors = "\n".join(self.server_errors[-3:])
        return (
            f"timed out after {timeout}s waiting for {what}\n"
            f"recent requests (getUpdates left out):\n  " + "\n  ".join(recent or ["(none)"]) + "\n"
            f"pending updates: {pending}\n{chats}" + (f"\nerrors inside the fake:\n{errors}" if errors else "")
        )

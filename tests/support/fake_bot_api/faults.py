"""Fault injection: errors (429 with retry_after, 5xx...), slow answers and dropped connections on
the next calls, blocked chats, and Telegram's flood limits."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .protocol import GET_UPDATES_CONFLICT, ApiError, JSONDict


def _default_description(error_code: int, retry_after: int | None) -> str:
    return {
        400: "Bad Request: injected failure",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: GET_UPDATES_CONFLICT,
        429: f"Too Many Requests: retry after {retry_after}",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }.get(error_code, f"Error {error_code}")


@dataclass
class _Fault:
    method: str  # lower-case method name or "*"
    chat_id: int | str | None
    times: int
    error: ApiError | None = None
    delay: float = 0.0
    drop: bool = False
    apply: bool = False

    def matches(self, method: str, params: JSONDict) -> bool:
        if self.method != method and (self.method != "*" or method == "getupdates"):
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


class FaultInjection:
    """Fault injection.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        parameters: JSONDict | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (``"*"``: any but getUpdates) with an error.

        429 defaults to ``retry_after=1`` and Telegram's "Too Many Requests: retry after N" with
        ``parameters.retry_after``. The failed request changes nothing. ``chat_id`` narrows it to
        calls for that chat.
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        params = dict(parameters or {})
        if retry_after is not None:
            params["retry_after"] = retry_after
        error = ApiError(error_code, description or _default_description(error_code, retry_after), params)
        self._add_fault(_Fault(method.lower(), chat_id, times, error=error))

    def delay_next(self, method: str, seconds: float, *, times: int = 1, chat_id: int | str | None = None) -> None:
        """Hold the answer to the next call(s) for ``seconds``. The request is applied first, as
        when Telegram did its work but the answer is slow: a client that times out and retries
        sends twice."""
        self._add_fault(_Fault(method.lower(), chat_id, times, delay=seconds, apply=True))

    def drop_next(
        self, method: str, *, times: int = 1, applied: bool = False, chat_id: int | str | None = None
    ) -> None:
        """Close the connection without an answer on the next call(s): PTB raises NetworkError.
        With ``applied`` the request takes effect first (the answer is what gets lost)."""
        self._add_fault(_Fault(method.lower(), chat_id, times, drop=True, apply=applied))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def block_chat(self, chat_id: int, *, send_update: bool = False) -> None:
        """The learner blocks the bot: every call for this chat gets 403 "Forbidden: bot was
        blocked by the user". With ``send_update`` Telegram's ``my_chat_member`` update (member ->
        kicked) is queued too."""
        with self._lock:
            self._blocked.add(chat_id)
            if send_update:
                self._enqueue_my_chat_member(chat_id, "member", "kicked")
            self._changed()

    def unblock_chat(self, chat_id: int, *, send_update: bool = False) -> None:
        with self._lock:
            self._blocked.discard(chat_id)
            if send_update:
                self._enqueue_my_chat_member(chat_id, "kicked", "member")
            self._changed()

    def flood_limits(
        self, overall_per_second: int | None = 30, group_per_minute: int | None = 20, *, retry_after: int = 1
    ) -> None:
        """Answer 429 when the bot sends more messages than Telegram allows (about 30 a second
        overall, 20 a minute in one group): the limits PTB's AIORateLimiter keeps to. Off until
        called; ``flood_limits(None, None)`` turns it off again."""
        with self._lock:
            if overall_per_second is None and group_per_minute is None:
                self._flood = None
            else:
                self._flood = (overall_per_second, group_per_minute, retry_after)
            self._send_times.clear()

    def _take_fault(self, method: str, params: JSONDict) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, params):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _check_flood(self, chat_id: int) -> None:
        assert self._flood is not None
        overall, group_per_minute, retry_after = self._flood
        now = time.monotonic()
        self._send_times = [(t, c) for t, c in self._send_times if now - t < 60]
        too_many = overall is not None and sum(1 for t, _ in self._send_times if now - t < 1) >= overall
        is_group = self._chats[chat_id]["type"] != "private"
        if group_per_minute is not None and is_group:
            too_many = too_many or sum(1 for _, c in self._send_times if c == chat_id) >= group_per_minute
        if too_many:
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        self._send_times.append((now, chat_id))

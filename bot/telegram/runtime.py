"""The bot's life: updates in through a durable inbox, replies out through the outbox, a bounded stop.

    getUpdates / webhook --> inbox (committed) --> confirmed to Telegram
    inbox --> one lane per chat, in update order --> Tutor.handle: state + replies (outbox) + "done", one commit
    outbox --> Sender --> Bot API

- **Nothing confirmed is lost.** Long polling: a batch of updates is committed to the inbox before the next
  ``getUpdates`` moves the offset past it (that call is what tells Telegram we have them). Webhook: the
  POST is answered 200 only after the commit. A kill at any point leaves each update either unconfirmed
  (Telegram sends it again) or in the inbox (handled after the restart, the inbox first).
- **Nothing applied goes unanswered.** A turn's replies are outbox rows of the turn's own transaction.
- **Idempotent, in order.** An update is applied at most once (its id is stored with the turn); one
  chat's updates are handled one at a time, oldest first; different chats run side by side (``lanes``).
- **Bounded memory.** Updates wait in the inbox, not in RAM: at most ``lanes`` are in hand at a time,
  and polling pauses while ``max_backlog`` updates are waiting (the webhook answers 503, so Telegram
  keeps them and tries again).
- **Unreadable updates never stall anyone.** An update python-telegram-bot cannot parse is logged with
  its raw body, stored as ``bad``, confirmed and skipped.
- **A bounded stop** (SIGTERM, SIGINT): stop taking updates, let the lanes finish the update in hand,
  let the sandbox runs finish or leave them to be reported as interrupted, send what the outbox holds,
  and exit within ``shutdown_seconds``. Whatever is left waits in the database for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from telegram import Update
from telegram.ext import Application

from bot.storage import Incoming, Repository
from bot.telegram.sender import Sender

log = logging.getLogger(__name__)
KEEP_DAYS = 7  # handled updates and sent rows kept this long (then pruned)
PRUNE_EVERY = 6 * 3600.0  # seconds
PARSED_KEPT = 256  # updates parsed at intake and kept for their handling (a bigger backlog parses again)


def chat_of(raw: dict[str, Any]) -> int | None:
    """The chat that orders an update (its learner's private chat; a poll answer's voter), from the raw
    JSON: None when it has none."""
    for kind, value in raw.items():
        if kind == "update_id" or not isinstance(value, dict):
            continue
        for path in (("chat", "id"), ("message", "chat", "id"), ("voter_chat", "id"), ("user", "id"), ("from", "id")):
            node: Any = value
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, int) and not isinstance(node, bool):
                return node
    return None


class Runtime:
    """Runs an ``Application`` built by ``build_application`` with the durable inbox and outbox."""

    def __init__(self, app: Application, *, webhook: dict[str, Any] | None = None, lanes: int = 32,
                 poll_timeout: float = 30.0, max_backlog: int = 10_000, shutdown_seconds: float = 10.0,
                 on_handled: Callable[[Update], None] | None = None) -> None:
        self.app = app
        self.shell = app.bot_data["shell"]
        self.repo: Repository = self.shell.repo
        self.settings = app.bot_data["settings"]
        self.webhook = webhook
        self.lanes = lanes
        self.poll_timeout = poll_timeout
        self.max_backlog = max_backlog
        self.shutdown_seconds = shutdown_seconds
        self.on_handled = on_handled
        self.changed = asyncio.Event()  # set whenever an update is handled or an outbox row is settled
        self.sender: Sender = self.shell.sender
        self.sender.on_change = self.changed.set
        self._inbox = asyncio.Event()
        self._lanes: dict[int | None, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self._server: Any = None
        self._backlog = 0
        self._parsed: OrderedDict[int, Update] = OrderedDict()  # read at intake, kept for its handling
        self.polls = 0  # getUpdates calls made (tests: an unreadable update must not make them spin)
        self.paused = 0  # times polling waited because the inbox was full

    # ------------------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        app = self.app
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()  # the job queue (daily push); PTB's own update fetching is not used
        await self._prune()
        counts = await asyncio.to_thread(self.repo.inbox_counts)
        self._backlog = counts.get("new", 0)
        if self._backlog:
            log.info("inbox: %d updates from before the restart are handled first", self._backlog)
        self._tasks.append(asyncio.create_task(self.sender.run(), name="outbox-sender"))
        await self.shell.tutor.recover(self.shell.recovery_sink)
        self._tasks.append(asyncio.create_task(self._dispatch(), name="inbox-dispatch"))
        self._tasks.append(asyncio.create_task(self._upkeep(), name="upkeep"))
        if self.webhook is not None:
            await self._start_webhook()
        else:
            await self.app.bot.delete_webhook()  # a webhook left set would refuse every getUpdates (409)
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=self.poll_timeout + 15))
            self._tasks.append(asyncio.create_task(self._poll(), name="get-updates"))

    async def _prune(self) -> None:
        pruned = await asyncio.to_thread(self.repo.prune, datetime.now(UTC) - timedelta(days=KEEP_DAYS))
        if any(pruned):
            log.info("pruned %d handled updates and %d sent messages older than %d days", *pruned, KEEP_DAYS)

    async def _upkeep(self) -> None:
        """Handled updates and sent messages are kept a week, then forgotten (a few times a day)."""
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            try:
                await self._prune()
            except Exception:
                log.exception("pruning the inbox and outbox failed; trying again later")

    def request_stop(self) -> None:
        self._stop.set()

    async def serve(self) -> None:
        """Start, run until SIGTERM/SIGINT (or ``request_stop``), stop within ``shutdown_seconds``."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop.wait()
            log.info("stopping: no new updates; finishing what is in hand (at most %.0f s)", self.shutdown_seconds)
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_seconds

        def left(share: float = 1.0) -> float:
            return max(0.0, (deadline - loop.time()) * share)

        # 1. no new updates: the poll in progress is abandoned (what it fetched is not confirmed)
        if self._server is not None:
            self._server.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.close_all_connections(), left(0.1))
        self._draining = True
        self._inbox.set()
        for task in self._tasks:
            if task.get_name() == "get-updates":
                task.cancel()
        # 2. the updates in hand are finished (the rest stay in the inbox)
        lanes = set(self._lanes.values())
        if lanes:
            _, late = await asyncio.wait(lanes, timeout=left(0.4))
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        # 3. sandbox runs: finished, or reported as interrupted at the next start
        cancelled = await self.shell.tutor.drain(left(0.4))
        # 4. what the outbox holds goes out while there is time
        pending = await self.sender.stop(max(left() - 1.0, 0.5))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._http is not None:
            await self._http.aclose()
        counts = await asyncio.to_thread(self.repo.inbox_counts)
        log.info("stopped: %d updates wait in the inbox, %d messages in the outbox, %d runs interrupted",
                 counts.get("new", 0), pending, cancelled)
        app = self.app
        with contextlib.suppress(Exception):
            if app.running:
                await app.stop()
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)

    # ------------------------------------------------------------------------------ in: long polling

    async def _poll(self) -> None:
        last = await asyncio.to_thread(self.repo.last_update_id)
        offset = None if last is None else last + 1
        url = f"{self.settings.telegram_api_base_url}{self.settings.token}/getUpdates"
        assert self._http is not None
        failures = 0
        while not self._draining:
            room = self.max_backlog - self._backlog
            if room <= 0:  # backpressure: Telegram keeps them meanwhile
                self.paused += 1
                await asyncio.sleep(0.5)
                continue
            body = {"timeout": int(self.poll_timeout), "allowed_updates": list(Update.ALL_TYPES),
                    "limit": min(100, room)}
            if offset is not None:
                body["offset"] = offset
            try:
                self.polls += 1
                response = await self._http.post(url, json=body)
                answer = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                failures += 1
                log.warning("getUpdates failed (%s); trying again", type(exc).__name__)
                await asyncio.sleep(min(0.5 * 2 ** failures, 30))
                continue
            if not answer.get("ok"):
                failures += 1
                log.warning("getUpdates: %s %s", answer.get("error_code"), answer.get("description"))
                retry = (answer.get("parameters") or {}).get("retry_after")
                await asyncio.sleep(float(retry) if retry else min(0.5 * 2 ** failures, 30))
                continue
            failures = 0
            updates = [u for u in answer.get("result") or [] if isinstance(u, dict)]
            if not updates:
                continue
            await self.ingest(updates)
            offset = max(int(u["update_id"]) for u in updates if isinstance(u.get("update_id"), int)) + 1

    async def ingest(self, raws: list[dict[str, Any]]) -> int:
        """Store updates in the inbox (committed when this returns). One the library can't read is
        logged with its raw body and stored as ``bad``."""
        incoming: list[Incoming] = []
        for raw in raws:
            update_id = raw.get("update_id")
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                log.error("an update without an update_id was skipped: %r", raw)
                continue
            body = json.dumps(raw, ensure_ascii=False)
            try:
                update = Update.de_json(raw, self.app.bot)
            except Exception as exc:
                log.error("update %s could not be read (%s: %s); stored and skipped. Raw: %s", update_id,
                          type(exc).__name__, exc, body)
                incoming.append(Incoming(update_id, chat_of(raw), body, "bad", f"{type(exc).__name__}: {exc}"))
                continue
            incoming.append(Incoming(update_id, chat_of(raw), body))
            self._parsed[update_id] = update
            while len(self._parsed) > PARSED_KEPT:
                self._parsed.popitem(last=False)
        new = await asyncio.to_thread(self.repo.ingest, incoming)
        self._backlog += sum(1 for i in incoming if i.status == "new") if new else 0
        self._inbox.set()
        self.changed.set()
        return new

    # ------------------------------------------------------------------------------ in: a webhook

    async def _start_webhook(self) -> None:
        """Our own small webhook server (tornado, which python-telegram-bot's webhook extra brings): PTB's
        answers 200 before anything is stored."""
        import tornado.httpserver
        import tornado.web

        assert self.webhook is not None
        runtime = self
        secret = self.webhook.get("secret_token")

        class Hook(tornado.web.RequestHandler):
            async def post(self) -> None:
                if secret and self.request.headers.get("X-Telegram-Bot-Api-Secret-Token") != secret:
                    self.set_status(403)
                    return
                if runtime._draining:
                    self.set_status(503)  # Telegram tries again (our next start takes it)
                    return
                if runtime._backlog >= runtime.max_backlog:
                    self.set_status(503)
                    return
                try:
                    raw = json.loads(self.request.body)
                except ValueError:
                    log.error("webhook: a body that is not JSON was skipped: %r", self.request.body[:2000])
                    return  # 200: sending it again would not make it readable
                if not isinstance(raw, dict):
                    log.error("webhook: a body that is not an update was skipped: %r", raw)
                    return
                await runtime.ingest([raw])

        path = "/" + str(self.webhook["url_path"]).lstrip("/")
        web = tornado.web.Application([(path, Hook)])
        self._server = tornado.httpserver.HTTPServer(web, max_body_size=1 << 20)
        self._server.listen(int(self.webhook["port"]), address=self.webhook.get("listen", "0.0.0.0"))
        await self.app.bot.set_webhook(url=self.webhook["webhook_url"], allowed_updates=list(Update.ALL_TYPES),
                                       secret_token=secret, max_connections=40)

    # ------------------------------------------------------------------------------ the inbox, chat by chat

    async def _dispatch(self) -> None:
        while not self._draining:
            self._inbox.clear()
            room = self.lanes - len(self._lanes)
            if room > 0:
                for chat in await asyncio.to_thread(self.repo.inbox_heads, set(self._lanes), room):
                    task = asyncio.create_task(self._lane(chat), name=f"lane-{chat}")
                    self._lanes[chat] = task
                    task.add_done_callback(functools.partial(self._lane_done, chat))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inbox.wait(), 1.0)

    def _lane_done(self, chat: int | None, _: object = None) -> None:
        self._lanes.pop(chat, None)
        self._inbox.set()

    async def _lane(self, chat: int | None) -> None:
        while not self._draining:
            found = await asyncio.to_thread(self.repo.next_update, chat)
            if found is None:
                return
            await self._handle(*found)

    async def _handle(self, update_id: int, body: str) -> None:
        try:
            update = self._parsed.pop(update_id, None) or Update.de_json(json.loads(body), self.app.bot)
        except Exception as exc:  # stored before this version could read it: skip it, never stall
            log.error("update %s could not be read (%s); skipped. Raw: %s", update_id, exc, body)
            await asyncio.to_thread(self.repo.finish_update, update_id, "bad", repr(exc))
            return
        failed, applied = self.shell.failed, self.shell.applied
        try:
            await self.app.process_update(update)  # the handlers; errors go to on_error (an apology)
        finally:
            error = failed.pop(update_id, None)
            stored = update_id in applied
            applied.discard(update_id)
        if error or not stored:  # else the turn's own transaction marked it done
            await asyncio.to_thread(self.repo.finish_update, update_id, "failed" if error else "done", error)
        self._backlog = max(0, self._backlog - 1)
        self.sender.wake()
        self.changed.set()
        if self.on_handled is not None:
            self.on_handled(update)

"""The update queue and its two ways to the bot: ``getUpdates`` (long polling, offsets,
conflicts) and webhooks (POSTed one by one to a loopback URL, retried until 2xx)."""

from __future__ import annotations

import copy
import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .protocol import (
    GET_UPDATES_CONFLICT,
    NOT_DELIVERED_BY_DEFAULT,
    WEBHOOK_CONFLICT,
    ApiError,
    JSONDict,
    bad_request,
)
from .records import _Pending


class UpdateQueue:
    """The update queue, getUpdates and webhooks.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    def send_update(self, update: JSONDict) -> JSONDict:
        """Queue a raw update (``update_id`` is assigned if missing) and return it."""
        with self._lock:
            update = copy.deepcopy(update)
            if "update_id" not in update:
                update["update_id"] = next(self._update_ids)
            self._all_updates[update["update_id"]] = copy.deepcopy(update)
            self._pending.append(_Pending(update))
            self._pending.sort(key=lambda p: p.update["update_id"])
            self._changed()
            return copy.deepcopy(update)

    def redeliver(self, update_id: int) -> JSONDict:
        """Queue an already delivered update again with the same ``update_id`` (as Telegram does
        when a bot crashed before confirming it). It is delivered once even though its id is
        below the confirmed offset."""
        with self._lock:
            if update_id not in self._all_updates:
                raise KeyError(f"no update {update_id} was ever queued")
            update = copy.deepcopy(self._all_updates[update_id])
            self._pending.append(_Pending(update, forced=True))
            self._pending.sort(key=lambda p: p.update["update_id"])
            self._changed()
            return copy.deepcopy(update)

    # ------------------------------------------------------------------ getUpdates and webhooks

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._pending = [
                p for p in self._pending if p.update["update_id"] >= offset or (p.forced and not p.delivered)
            ]
        elif offset < 0:
            self._pending = self._pending[offset:]

    def _deliverable(self, limit: int) -> list[_Pending]:
        allowed = self._allowed_updates
        batch = []
        for pending in list(self._pending):
            kind = next((k for k in pending.update if k != "update_id"), "")
            if (allowed and kind not in allowed) or (not allowed and kind in NOT_DELIVERED_BY_DEFAULT):
                self._pending.remove(pending)  # Telegram never keeps those for this bot
                continue
            batch.append(pending)
            if len(batch) >= limit:
                break
        return batch

    def _get_updates(self, params: JSONDict) -> tuple[list[JSONDict], Callable[[], None]]:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        with self._cond:
            if self._webhook.get("url"):
                raise ApiError(409, WEBHOOK_CONFLICT)
            if "allowed_updates" in params and params["allowed_updates"] is not None:
                self._allowed_updates = list(params["allowed_updates"])
            self._poll_generation += 1
            generation = self._poll_generation
            self._confirm(offset)
            self._changed()  # also wakes a long poll this request preempts
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, GET_UPDATES_CONFLICT)
                batch = self._deliverable(limit)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._stop_event.is_set():
                    break
                self._cond.wait(remaining)
            updates = [copy.deepcopy(p.update) for p in batch]

        def delivered() -> None:
            with self._lock:
                for pending in batch:
                    pending.delivered = True
                    self._delivered_ids.add(pending.update["update_id"])
                self._changed()

        return updates, delivered

    def _webhook_info(self) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook.get("url"):
            info["max_connections"] = self._webhook.get("max_connections", 40)
            info["ip_address"] = "127.0.0.1"
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = self._webhook["allowed_updates"]
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _set_webhook(self, params: JSONDict, files: Any) -> bool:
        url = params.get("url") or ""
        if not url:
            self._delete_webhook(params, files)
            return True
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: Invalid URL specified")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise bad_request("bad webhook: the fake Bot API delivers webhooks to loopback addresses only")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        self._webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "max_connections": int(params.get("max_connections") or 40),
            "allowed_updates": params.get("allowed_updates"),
        }
        self._webhook_error = None
        self._poll_generation += 1  # a waiting getUpdates ends with a conflict
        self._start_webhook_delivery()
        return True

    def _delete_webhook(self, params: JSONDict, files: Any) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if self._webhook.get("url"):
            self._webhook = {"url": ""}
            self._webhook_stop.set()
        return True

    def _start_webhook_delivery(self) -> None:
        self._webhook_stop.set()  # a previous delivery thread ends on its own
        self._webhook_stop = threading.Event()
        thread = threading.Thread(
            target=self._deliver_webhooks, args=(self._webhook_stop,), name="FakeBotAPI-webhook", daemon=True
        )
        self._webhook_threads.append(thread)
        thread.start()

    def _stop_webhook_delivery(self) -> None:
        with self._cond:
            self._webhook_stop.set()
            threads, self._webhook_threads = self._webhook_threads, []
            self._changed()
        for thread in threads:
            thread.join()

    def _deliver_webhooks(self, stop: threading.Event) -> None:
        """POST pending updates one by one to the webhook URL, in order; retry until 2xx."""
        while not stop.is_set() and not self._stop_event.is_set():
            with self._cond:
                webhook = dict(self._webhook)
                batch = self._deliverable(1) if webhook.get("url") else []
                if not batch:
                    self._cond.wait(0.2)
                    continue
                pending = batch[0]
                update = copy.deepcopy(pending.update)
            status, error = self._post_update(webhook, update)
            with self._lock:
                if 200 <= status < 300:
                    self._delivered_ids.add(update["update_id"])
                    if pending in self._pending:
                        self._pending.remove(pending)
                    self._webhook_error = None
                else:
                    self._webhook_error = (self._now(), error)
                self._changed()
            if not 200 <= status < 300:
                stop.wait(0.2)

    @staticmethod
    def _post_update(webhook: JSONDict, update: JSONDict) -> tuple[int, str]:
        parts = urlsplit(webhook["url"])
        headers = {"Content-Type": "application/json"}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            connection.request("POST", path, body=json.dumps(update).encode(), headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, f"Wrong response from the webhook: {response.status} {response.reason}"
        except OSError as exc:
            return 0, f"Connection refused ({exc.__class__.__name__})"
        finally:
            connection.close()

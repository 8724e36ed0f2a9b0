"""The Bot API methods' dispatch table and chat checks, and the methods that are not about
messages: getMe, commands and bot settings, getChat, answerCallbackQuery, sendChatAction,
getFile (``messages.py`` holds sending, editing and deleting)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from .protocol import (
    CHAT_ACTIONS,
    MAX_CALLBACK_ANSWER_LENGTH,
    QUERY_TOO_OLD,
    SENDING_METHODS,
    ApiError,
    JSONDict,
    bad_request,
)


class BotMethods:
    """Method dispatch and the methods that are not about messages.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    # ------------------------------------------------------------------ method dispatch

    def _call(self, method: str, params: JSONDict, files: dict[str, tuple[str, bytes]]) -> tuple[Any, Any]:
        if method == "getupdates":
            return self._get_updates(params)
        handler = self._methods().get(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        with self._lock:
            if "chat_id" in params and method not in ("getchat",):
                self._check_chat(method, params)
            result = handler(params, files)
            self._changed()
            return result, None

    def _methods(self) -> dict[str, Callable[[JSONDict, dict[str, tuple[str, bytes]]], Any]]:
        return {
            "getme": lambda p, f: copy.deepcopy(self.bot_user),
            "logout": lambda p, f: True,
            "close": lambda p, f: True,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": lambda p, f: self._webhook_info(),
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setmydescription": self._set_bot_setting("description"),
            "setmyshortdescription": self._set_bot_setting("short_description"),
            "setmyname": self._set_bot_setting("name"),
            "getmydescription": lambda p, f: {"description": self._bot_settings.get("description", "")},
            "getmyshortdescription": lambda p, f: {
                "short_description": self._bot_settings.get("short_description", "")
            },
            "getmyname": lambda p, f: {"name": self._bot_settings.get("name", self.bot_user["first_name"])},
            "setchatmenubutton": lambda p, f: True,
            "getchat": self._get_chat,
            "sendmessage": self._send_message,
            "sendphoto": self._send_file("photo"),
            "senddocument": self._send_file("document"),
            "sendpoll": self._send_poll,
            "stoppoll": self._stop_poll,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "getfile": self._get_file,
        }

    def _check_chat(self, method: str, params: JSONDict) -> None:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            match = [cid for cid, chat in self._chats.items() if chat.get("username") == chat_id.lstrip("@")]
            if not match:
                raise bad_request("chat not found")
            params["chat_id"] = chat_id = match[0]
        if chat_id in self._blocked:
            if self._chats.get(chat_id, {}).get("type", "private") == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        if chat_id not in self._chats:
            if self.require_known_chats:
                raise bad_request("chat not found")
            self._ensure_chat(chat_id, "private" if chat_id > 0 else "group")
        if method in SENDING_METHODS and self._flood is not None:
            self._check_flood(chat_id)

    # ------------------------------------------------------------------ commands and settings

    @staticmethod
    def _scope_key(scope: JSONDict | None) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _set_my_commands(self, params: JSONDict, files: Any) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name.lstrip("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("command description must be non-empty")
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        key = (self._scope_key(params.get("scope")), language)
        self._commands[key] = [{"command": c["command"].lstrip("/"), "description": c["description"]} for c in commands]
        return True

    def _get_my_commands(self, params: JSONDict, files: Any) -> list[JSONDict]:
        key = (self._scope_key(params.get("scope")), params.get("language_code") or "")
        return copy.deepcopy(self._commands.get(key, []))

    def _delete_my_commands(self, params: JSONDict, files: Any) -> bool:
        self._commands.pop((self._scope_key(params.get("scope")), params.get("language_code") or ""), None)
        return True

    def _set_bot_setting(self, name: str) -> Callable[[JSONDict, Any], bool]:
        def setter(params: JSONDict, files: Any) -> bool:
            self._bot_settings[name] = params.get(name, "")
            return True

        return setter

    def _get_chat(self, params: JSONDict, files: Any) -> JSONDict:
        chat_id = params.get("chat_id")
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        chat = self._chat_json(chat_id)
        chat["accent_color_id"] = 0
        chat["max_reaction_count"] = 11
        return chat

    # ------------------------------------------------------------------ misc methods

    def _answer_callback_query(self, params: JSONDict, files: Any) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callback_queries or query_id in self._answers:
            raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        text = params.get("text") or ""
        if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        self._answers[query_id] = copy.deepcopy(params)
        return True

    def _send_chat_action(self, params: JSONDict, files: Any) -> bool:
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _get_file(self, params: JSONDict, files: Any) -> JSONDict:
        file_id = params.get("file_id")
        if file_id not in self._files:
            raise bad_request("invalid file_id")
        path, data = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data), "file_path": path}

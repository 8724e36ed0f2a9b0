"""The learner's side: chats and users, the actions a learner takes (each one queues an update:
a text, a sticker, a tap on a button, a vote...) and ``Learner``, one learner's shortcuts."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .html import command_entities, utf16_len
from .protocol import MAX_TEXT_LENGTH, JSONDict
from .records import SentMessage

if TYPE_CHECKING:
    from .server import FakeBotAPI


class LearnerActions:
    """Chats, users and learner actions.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    # ------------------------------------------------------------------ chats and users

    def add_chat(
        self,
        chat_id: int,
        *,
        chat_type: str = "private",
        first_name: str | None = None,
        title: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> JSONDict:
        """Make a chat known (as if the learner had written /start), returning its Chat object."""
        with self._lock:
            return copy.deepcopy(self._ensure_chat(chat_id, chat_type, first_name, title, username, language_code))

    def _ensure_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        first_name: str | None = None,
        title: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> JSONDict:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name or f"Learner{chat_id}"
                if username:
                    chat["username"] = username
            else:
                chat["title"] = title or f"Study group {abs(chat_id)}"
            chat["_language_code"] = language_code
            self._chats[chat_id] = chat
            self._messages.setdefault(chat_id, [])
            self._learner_messages.setdefault(chat_id, {})
        return chat

    def _chat_json(self, chat_id: int) -> JSONDict:
        return {k: v for k, v in self._chats[chat_id].items() if not k.startswith("_")}

    def _user(self, chat_id: int, user: int | JSONDict | None, language_code: str | None) -> JSONDict:
        chat = self._chats[chat_id]
        if isinstance(user, dict):
            result = {"is_bot": False, "first_name": f"User{user['id']}", **user}
        else:
            user_id = user if user is not None else (chat_id if chat["type"] == "private" else 1_000_001)
            result = {"id": user_id, "is_bot": False, "first_name": f"Learner{user_id}"}
            if user_id == chat_id and "first_name" in chat:
                result["first_name"] = chat["first_name"]
                if "username" in chat:
                    result["username"] = chat["username"]
        if "language_code" not in result:
            result["language_code"] = language_code or chat.get("_language_code", "en")
        return result

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def last_message_id(self, chat_id: int) -> int:
        """The highest message id used in the chat so far, by the learner or the bot (0 if none):
        pass it as ``after=`` to wait only for what comes next."""
        with self._lock:
            return self._next_message_id.get(chat_id, 1) - 1

    mark = last_message_id

    def learner(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        language_code: str = "en",
        username: str | None = None,
    ) -> Learner:
        """A learner in a private chat (chat id = user id), with send/click/wait shortcuts."""
        with self._lock:
            self._ensure_chat(user_id, "private", first_name, None, username, language_code)
        return Learner(self, user_id, language_code)

    # ------------------------------------------------------------------ learner actions (updates)

    def _learner_message(
        self,
        chat_id: int,
        content: JSONDict,
        *,
        user: int | JSONDict | None,
        language_code: str | None,
        chat_type: str,
        chat_title: str | None = None,
        kind: str = "message",
    ) -> JSONDict:
        with self._lock:
            self._ensure_chat(chat_id, chat_type, None, chat_title, None, language_code or "en")
            message: JSONDict = {
                "message_id": self._new_message_id(chat_id),
                "from": self._user(chat_id, user, language_code),
                "chat": self._chat_json(chat_id),
                "date": self._now(),
                **content,
            }
            self._learner_messages[chat_id][message["message_id"]] = message
            return self.send_update({kind: message})

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user: int | JSONDict | None = None,
        language_code: str | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
        allow_oversize: bool = False,
    ) -> JSONDict:
        """The learner types ``text``; returns the queued update. Commands get ``bot_command``
        entities like Telegram gives them. A group chat needs a negative ``chat_id`` and
        ``chat_type="group"`` (or "supergroup"). Telegram clients split texts over 4096
        characters, so those raise unless ``allow_oversize`` (see ``send_long_text``)."""
        if utf16_len(text) > MAX_TEXT_LENGTH and not allow_oversize:
            raise ValueError("a Telegram client splits texts over 4096 characters: use send_long_text()")
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        content: JSONDict = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        with self._lock:
            if reply_to_message_id is not None:
                content["reply_to_message"] = self._message_json_any(chat_id, reply_to_message_id)
            return self._learner_message(
                chat_id,
                content,
                user=user,
                language_code=language_code,
                chat_type=chat_type,
                chat_title=chat_title,
            )

    def send_long_text(self, chat_id: int, text: str, **kwargs: Any) -> list[JSONDict]:
        """Send ``text`` as a Telegram client would: in pieces of at most 4096 characters,
        cut at a newline or space where possible. Returns the queued updates."""
        pieces: list[str] = []
        rest = text
        while utf16_len(rest) > MAX_TEXT_LENGTH:
            cut = MAX_TEXT_LENGTH
            while utf16_len(rest[:cut]) > MAX_TEXT_LENGTH:
                cut -= 1
            split_at = max(rest.rfind("\n", 0, cut), rest.rfind(" ", 0, cut))
            if split_at <= 0:
                split_at = cut
            pieces.append(rest[:split_at])
            rest = rest[split_at:].lstrip("\n ")
        if rest.strip():
            pieces.append(rest)
        return [self.send_text(chat_id, piece, **kwargs) for piece in pieces]

    def sticker(
        self, chat_id: int, *, emoji: str = "👍", user: int | JSONDict | None = None, chat_type: str = "private"
    ) -> JSONDict:
        """The learner sends a sticker."""
        file_id, unique = self._learner_file(b"STICKER", "stickers/sticker.webp")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "FakeStickers",
            "file_size": 7,
        }
        return self._learner_message(chat_id, {"sticker": sticker}, user=user, language_code=None, chat_type=chat_type)

    def photo(
        self,
        chat_id: int,
        data: bytes = b"\x89PNG\r\n\x1a\n" + b"\0" * 16,
        *,
        caption: str | None = None,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner sends a photo (downloadable by the bot through getFile)."""
        file_id, unique = self._learner_file(data, "photos/learner.jpg")
        sizes = [
            {"file_id": f"{file_id}-s", "file_unique_id": f"{unique}-s", "width": 90, "height": 67},
            {"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 600, "file_size": len(data)},
        ]
        with self._lock:
            self._files[f"{file_id}-s"] = self._files[file_id]
        content: JSONDict = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        return self._learner_message(chat_id, content, user=user, language_code=None, chat_type=chat_type)

    def voice(
        self,
        chat_id: int,
        data: bytes = b"OggS fake voice",
        *,
        duration: int = 3,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner sends a voice message."""
        file_id, unique = self._learner_file(data, "voice/learner.oga")
        voice = {
            "file_id": file_id,
            "file_unique_id": unique,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return self._learner_message(chat_id, {"voice": voice}, user=user, language_code=None, chat_type=chat_type)

    def document(
        self,
        chat_id: int,
        data: bytes = b"print('hello')\n",
        *,
        file_name: str = "solution.py",
        mime_type: str = "text/x-python",
        caption: str | None = None,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner sends a file."""
        file_id, unique = self._learner_file(data, f"documents/{file_name}")
        content: JSONDict = {
            "document": {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(data),
            }
        }
        if caption is not None:
            content["caption"] = caption
        return self._learner_message(chat_id, content, user=user, language_code=None, chat_type=chat_type)

    def edited_text(
        self, chat_id: int, new_text: str, *, message_id: int | None = None, user: int | JSONDict | None = None
    ) -> JSONDict:
        """The learner edits one of their text messages (the last one by default): an
        ``edited_message`` update with the same ``message_id`` and an ``edit_date``."""
        with self._lock:
            sent = self._learner_messages.get(chat_id, {})
            candidates = [m for m in sent.values() if "text" in m]
            if message_id is None:
                if not candidates:
                    raise LookupError(f"the learner has sent no text in chat {chat_id}")
                message_id = candidates[-1]["message_id"]
            if message_id not in sent:
                raise LookupError(f"no learner message {message_id} in chat {chat_id}")
            message = copy.deepcopy(sent[message_id])
            message["text"] = new_text
            message.pop("entities", None)
            entities = command_entities(new_text)
            if entities:
                message["entities"] = entities
            message["edit_date"] = max(self._now(), message["date"] + 1)
            if user is not None:
                message["from"] = self._user(chat_id, user, None)
            sent[message_id] = message
            return self.send_update({"edited_message": message})

    def forwarded_text(
        self,
        chat_id: int,
        text: str,
        *,
        origin: JSONDict | None = None,
        user: int | JSONDict | None = None,
        chat_type: str = "private",
    ) -> JSONDict:
        """The learner forwards someone else's text message (``forward_origin`` as in Bot API 7+)."""
        if origin is None:
            origin = {
                "type": "user",
                "date": self._now() - 3600,
                "sender_user": {"id": 777_000_111, "is_bot": False, "first_name": "Someone Else"},
            }
        content: JSONDict = {"text": text, "forward_origin": origin}
        return self._learner_message(chat_id, content, user=user, language_code=None, chat_type=chat_type)

    def poll_answer(
        self,
        chat_id: int,
        option_ids: Iterable[int],
        *,
        message_id: int | None = None,
        user: int | JSONDict | None = None,
    ) -> JSONDict:
        """The learner votes in a (non-anonymous) poll the bot sent: a ``poll_answer`` update.
        The poll defaults to the bot's last poll in the chat; its voter counts are updated."""
        option_ids = list(option_ids)
        with self._lock:
            polls = [m for m in self._messages.get(chat_id, []) if m.kind == "poll" and not m.deleted]
            if message_id is not None:
                polls = [m for m in polls if m.message_id == message_id]
            if not polls:
                raise LookupError(f"no poll from the bot in chat {chat_id}")
            message = polls[-1]
            poll = message.poll
            assert poll is not None
            if poll["is_closed"]:
                raise LookupError("that poll is closed")
            for option_id in option_ids:
                if not 0 <= option_id < len(poll["options"]):
                    raise LookupError(f"the poll has no option {option_id}")
                poll["options"][option_id]["voter_count"] += 1
            poll["total_voter_count"] += 1
            answer = {
                "poll_id": poll["id"],
                "user": self._user(chat_id, user, None),
                "option_ids": option_ids,
                "option_persistent_ids": [poll["options"][i]["persistent_id"] for i in option_ids],
            }
            return self.send_update({"poll_answer": answer})

    def click(
        self,
        chat_id: int,
        message_id: int,
        callback_data: str,
        *,
        user: int | JSONDict | None = None,
        check: bool = True,
    ) -> JSONDict:
        """The learner taps an inline button: a ``callback_query`` update carrying the message as
        it currently is. With ``check`` (default) the message must be the bot's, not deleted, and
        still show a button with that ``callback_data``; pass ``check=False`` for a forged tap."""
        with self._lock:
            message = self._find_message(chat_id, message_id)
            if check:
                if message is None or message.deleted:
                    raise LookupError(f"no message {message_id} from the bot in chat {chat_id}")
                if callback_data not in message.callback_data:
                    raise LookupError(
                        f"message {message_id} has no button with callback_data {callback_data!r}; "
                        f"it has {message.callback_data}"
                    )
            query_id = str(next(self._ids) * 7919 + 4_000_000_000)
            query: JSONDict = {
                "id": query_id,
                "from": self._user(chat_id, user, None),
                "chat_instance": str(abs(hash(("chat", chat_id))) % 10**18),
                "data": callback_data,
            }
            if message is not None and not message.deleted:
                query["message"] = self._message_json(message)
            else:
                query["message"] = {"chat": self._chat_json(chat_id), "message_id": message_id, "date": 0}
            self._callback_queries[query_id] = {
                "chat_id": chat_id,
                "message_id": message_id,
                "data": callback_data,
            }
            return self.send_update({"callback_query": query})

    def press(
        self,
        chat_id: int,
        button_text: str,
        *,
        message_id: int | None = None,
        user: int | JSONDict | None = None,
    ) -> JSONDict:
        """Tap the button labelled ``button_text`` (exact, else substring) on the given message,
        or on the newest message of the bot that has such a button."""
        with self._lock:
            candidates = [m for m in self._messages.get(chat_id, []) if not m.deleted]
            if message_id is not None:
                candidates = [m for m in candidates if m.message_id == message_id]
            for message in reversed(candidates):
                with contextlib.suppress(LookupError):
                    button = message.button(button_text)
                    if "callback_data" not in button:
                        raise LookupError(f"button {button_text!r} has no callback_data: {button}")
                    return self.click(chat_id, message.message_id, button["callback_data"], user=user)
            shown = [m.button_texts for m in candidates if m.buttons]
            raise LookupError(f"no button {button_text!r} in chat {chat_id}; buttons shown: {shown}")

    def _learner_file(self, data: bytes, path: str) -> tuple[str, str]:
        with self._lock:
            number = next(self._ids)
            file_id = f"AgAD-learner-{number}"
            self._files[file_id] = (path.replace(".", f"_{number}.", 1), data)
            return file_id, f"uniq-{number}"

    def _enqueue_my_chat_member(self, chat_id: int, old: str, new: str) -> None:
        self._ensure_chat(chat_id)
        user = self._user(chat_id, None, None)
        self.send_update(
            {
                "my_chat_member": {
                    "chat": self._chat_json(chat_id),
                    "from": user,
                    "date": self._now(),
                    "old_chat_member": {"status": old, "user": self.bot_user},
                    "new_chat_member": (
                        {"status": new, "user": self.bot_user, "until_date": 0}
                        if new == "kicked"
                        else {"status": new, "user": self.bot_user}
                    ),
                }
            }
        )


class Learner:
    """A learner in a private chat with the bot: shortcuts over the server's learner actions."""

    def __init__(self, server: FakeBotAPI, user_id: int, language_code: str = "en") -> None:
        self.server = server
        self.user_id = user_id
        self.chat_id = user_id
        self.language_code = language_code

    def send(self, text: str) -> JSONDict:
        return self.server.send_text(self.chat_id, text, language_code=self.language_code)

    def click(self, callback_data: str, *, message_id: int | None = None) -> JSONDict:
        """Tap the button with that data on ``message_id`` or on the newest message showing it."""
        if message_id is None:
            for message in reversed(self.server.messages(self.chat_id)):
                if callback_data in message.callback_data:
                    message_id = message.message_id
                    break
            else:
                raise LookupError(f"no message in chat {self.chat_id} has a button {callback_data!r}")
        return self.server.click(self.chat_id, message_id, callback_data)

    def press(self, button_text: str, *, message_id: int | None = None) -> JSONDict:
        return self.server.press(self.chat_id, button_text, message_id=message_id)

    @property
    def messages(self) -> list[SentMessage]:
        return self.server.messages(self.chat_id)

    def mark(self) -> int:
        return self.server.last_message_id(self.chat_id)

    async def wait_for_messages(
        self, count: int = 1, *, after: int | None = None, timeout: float = 10.0
    ) -> list[SentMessage]:
        return await self.server.wait_for_messages(self.chat_id, count, after=after, timeout=timeout)

    async def ask(self, text: str, count: int = 1, *, timeout: float = 10.0) -> list[SentMessage]:
        """Send ``text`` and wait for at least ``count`` new messages from the bot."""
        update = self.send(text)
        return await self.wait_for_messages(count, after=update["message"]["message_id"], timeout=timeout)

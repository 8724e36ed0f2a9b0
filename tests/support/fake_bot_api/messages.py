"""The bot's messages: formatted text checked as Telegram checks it, sendMessage, sendPhoto,
sendDocument, sendPoll and stopPoll, editing and deleting, and the JSON shapes of messages.

Where the fake is stricter than Telegram or guesses, the docstring of the check says so.
"""

from __future__ import annotations

import contextlib
import copy
import struct
from collections.abc import Callable
from typing import Any

from .html import EntityParseError, _finish_entities, _trim, parse_html, utf16_len
from .protocol import (
    MAX_CALLBACK_DATA_BYTES,
    MAX_CAPTION_LENGTH,
    MAX_POLL_EXPLANATION_LENGTH,
    MAX_POLL_OPTION_LENGTH,
    MAX_POLL_OPTIONS,
    MAX_POLL_QUESTION_LENGTH,
    MAX_TEXT_LENGTH,
    NOT_MODIFIED,
    JSONDict,
    bad_request,
)
from .records import SentMessage


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


class MessageMethods:
    """Formatted text, sending, editing, deleting and message JSON.

    Mixed into ``FakeBotAPI`` (``server.py``), whose ``__init__`` holds the state used here.
    """

    # ------------------------------------------------------------------ formatted text

    def _parse_text(
        self, text: Any, parse_mode: Any, entities: Any, *, limit: int, too_long: str, empty: str
    ) -> tuple[str, list[JSONDict]]:
        """Apply parse_mode like Telegram, then trim, then check emptiness and the length."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        mode = (parse_mode or "").strip()
        if mode.lower() == "html":
            try:
                plain, found = parse_html(text, strict_ampersand=self.strict_html)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from exc
            found = _finish_entities(found)
        elif mode == "" or mode.lower() in ("markdown", "markdownv2"):
            # Markdown is not parsed by the fake: the text is kept as sent.
            plain, found = text, list(entities or []) if isinstance(entities, list) else []
        else:
            raise bad_request("unsupported parse_mode")
        plain, found = _trim(plain, found)
        if empty and not plain:
            raise bad_request(empty)
        if utf16_len(plain) > limit:
            raise bad_request(too_long)
        return plain, found

    def _check_reply_markup(self, markup: Any) -> JSONDict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise bad_request("object expected as reply markup")
        if "inline_keyboard" not in markup:
            return markup  # reply keyboards etc. are kept as sent
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        actions = (
            "callback_data",
            "url",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "web_app",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
                if "text" not in button:
                    raise bad_request("can't parse inline keyboard button: Can't find field \"text\"")
                if not isinstance(button["text"], str):
                    raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str):
                        raise bad_request(
                            'can\'t parse inline keyboard button: Field "callback_data" must be of type String'
                        )
                    if not data:
                        raise bad_request(
                            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                        )
                    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif not any(button.get(action) not in (None, "") for action in actions):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
        return markup

    # ------------------------------------------------------------------ sending

    def _reply_to(self, chat_id: int, params: JSONDict) -> int | None:
        reply = params.get("reply_parameters")
        message_id = reply.get("message_id") if isinstance(reply, dict) else params.get("reply_to_message_id")
        if message_id is None:
            return None
        allow = (reply or {}).get("allow_sending_without_reply") if isinstance(reply, dict) else None
        allow = allow or params.get("allow_sending_without_reply")
        known = message_id in self._learner_messages.get(chat_id, {}) or self._find_message(chat_id, message_id)
        if not known:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return int(message_id)

    def _store(self, message: SentMessage) -> JSONDict:
        self._messages.setdefault(message.chat_id, []).append(message)
        return self._message_json(message)

    def _send_message(self, params: JSONDict, files: Any) -> JSONDict:
        chat_id = params["chat_id"]
        if "text" not in params:
            raise bad_request("message text is empty")
        plain, entities = self._parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="message is too long",
            empty="message text is empty",
        )
        markup = self._check_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        return self._store(
            SentMessage(
                chat_id=chat_id,
                message_id=self._new_message_id(chat_id),
                kind="text",
                date=self._now(),
                text=params.get("text"),
                parse_mode=params.get("parse_mode"),
                plain_text=plain,
                entities=entities,
                reply_markup=markup,
                reply_to_message_id=reply_to,
                params=copy.deepcopy(params),
            )
        )

    def _resolve_file(self, kind: str, params: JSONDict, files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
        value = params.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            name = value[len("attach://") :]
            if name not in files:
                raise bad_request(f"there is no {kind} in the request")
            return files[name]
        if kind in files:
            return files[kind]
        if isinstance(value, str) and value:
            if value in self._files:
                path, data = self._files[value]
                return path.rsplit("/", 1)[-1], data
            if value.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")  # the fake fetches nothing
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {kind} in the request")

    def _send_file(self, kind: str) -> Callable[[JSONDict, dict[str, tuple[str, bytes]]], JSONDict]:
        def send(params: JSONDict, files: dict[str, tuple[str, bytes]]) -> JSONDict:
            chat_id = params["chat_id"]
            file_name, data = self._resolve_file(kind, params, files)
            if not data:
                raise bad_request("file must be non-empty")
            if kind == "photo":
                size = _png_size(data)
                if size and (sum(size) > 10000 or max(size) > 20 * max(min(size), 1)):
                    raise bad_request("PHOTO_INVALID_DIMENSIONS")
            plain, entities = self._parse_text(
                params.get("caption") or "",
                params.get("parse_mode"),
                params.get("caption_entities"),
                limit=MAX_CAPTION_LENGTH,
                too_long="message caption is too long",
                empty="",
            )
            markup = self._check_reply_markup(params.get("reply_markup"))
            reply_to = self._reply_to(chat_id, params)
            number = next(self._ids)
            file_id = f"AgAD-{kind}-{number}"
            extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
            folder = "photos" if kind == "photo" else "documents"
            self._files[file_id] = (f"{folder}/file_{number}.{extension}", data)
            return self._store(
                SentMessage(
                    chat_id=chat_id,
                    message_id=self._new_message_id(chat_id),
                    kind=kind,
                    date=self._now(),
                    text=params.get("caption"),
                    parse_mode=params.get("parse_mode"),
                    plain_text=plain,
                    entities=entities,
                    reply_markup=markup,
                    file=data,
                    file_name=file_name,
                    file_ids=[file_id],
                    reply_to_message_id=reply_to,
                    params=copy.deepcopy(params),
                )
            )

        return send

    def _send_poll(self, params: JSONDict, files: Any) -> JSONDict:
        chat_id = params["chat_id"]
        question = params.get("question")
        if not isinstance(question, str) or not question.strip():
            raise bad_request("poll question must be non-empty")
        question_plain, _ = self._parse_text(
            question,
            params.get("question_parse_mode"),
            None,
            limit=10**9,
            too_long="",
            empty="poll question must be non-empty",
        )
        if len(question_plain) > MAX_POLL_QUESTION_LENGTH:
            raise bad_request(f"poll question length must not exceed {MAX_POLL_QUESTION_LENGTH}")
        raw_options = params.get("options")
        if not isinstance(raw_options, list):
            raw_options = []
        if len(raw_options) < self.min_poll_options:
            raise bad_request(
                "poll must have at least 2 option"
                if self.min_poll_options >= 2
                else "poll must have at least one answer option"
            )
        if len(raw_options) > MAX_POLL_OPTIONS:
            raise bad_request(f"poll can't have more than {MAX_POLL_OPTIONS} options")
        options = []
        for raw in raw_options:
            option_text = raw.get("text") if isinstance(raw, dict) else raw
            if not isinstance(option_text, str) or not option_text.strip():
                raise bad_request("poll options must be non-empty")
            if len(option_text) > MAX_POLL_OPTION_LENGTH:
                raise bad_request(f"poll options length must not exceed {MAX_POLL_OPTION_LENGTH}")
            options.append({"text": option_text, "voter_count": 0, "persistent_id": str(len(options))})
        poll_type = params.get("type") or "regular"
        if poll_type not in ("regular", "quiz"):
            raise bad_request("unsupported poll type specified")
        poll_id = str(5_000_000_000_000_000 + next(self._ids))
        poll: JSONDict = {
            "id": poll_id,
            "question": question_plain,
            "options": options,
            "total_voter_count": 0,
            "is_closed": bool(params.get("is_closed", False)),
            "is_anonymous": bool(params.get("is_anonymous", True)),
            "type": poll_type,
            "allows_multiple_answers": bool(params.get("allows_multiple_answers", False)),
            "allows_revoting": bool(params.get("allows_revoting", poll_type == "regular")),
            "members_only": bool(params.get("members_only", False)),
        }
        if poll_type == "quiz":
            correct = params.get("correct_option_ids")
            if correct is None and params.get("correct_option_id") is not None:
                correct = [params["correct_option_id"]]
            if not correct or any(not 0 <= int(c) < len(options) for c in correct):
                raise bad_request("wrong correct option ID specified")
            poll["correct_option_ids"] = [int(c) for c in correct]
            explanation = params.get("explanation")
            if explanation:
                plain, entities = self._parse_text(
                    explanation,
                    params.get("explanation_parse_mode"),
                    params.get("explanation_entities"),
                    limit=10**9,
                    too_long="",
                    empty="",
                )
                if utf16_len(plain) > MAX_POLL_EXPLANATION_LENGTH or plain.count("\n") > 2:
                    raise bad_request("explanation is too long")  # description unverified
                poll["explanation"] = plain
                if entities:
                    poll["explanation_entities"] = entities
        if params.get("open_period"):
            poll["open_period"] = int(params["open_period"])
        markup = self._check_reply_markup(params.get("reply_markup"))
        message = SentMessage(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            kind="poll",
            date=self._now(),
            plain_text=question_plain,
            poll=poll,
            reply_markup=markup,
            params=copy.deepcopy(params),
        )
        self._polls[poll_id] = (chat_id, message.message_id)
        return self._store(message)

    def _stop_poll(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._find_message(params["chat_id"], params.get("message_id"))
        if message is None or message.deleted or message.kind != "poll" or message.poll is None:
            raise bad_request("message with poll to stop not found")
        if message.poll["is_closed"]:
            raise bad_request("poll has already been closed")
        markup = params.get("reply_markup")
        if markup is not None:
            message.reply_markup = self._check_reply_markup(markup)
        message.poll["is_closed"] = True
        return copy.deepcopy(message.poll)

    # ------------------------------------------------------------------ editing and deleting

    def _find_message(self, chat_id: Any, message_id: Any) -> SentMessage | None:
        for message in self._messages.get(chat_id, []):
            if message.message_id == message_id:
                return message
        return None

    def _editable(self, params: JSONDict) -> SentMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # inline messages are not emulated
        if params.get("message_id") in (None, ""):
            raise bad_request("message identifier is not specified")
        message = self._find_message(params["chat_id"], params["message_id"])
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        return message

    def _apply_edit(self, message: SentMessage, **changes: Any) -> JSONDict:
        current = {name: getattr(message, name) for name in changes}
        if current == changes:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.history.append(
            {
                "text": message.text,
                "plain_text": message.plain_text,
                "parse_mode": message.parse_mode,
                "entities": copy.deepcopy(message.entities),
                "reply_markup": copy.deepcopy(message.reply_markup),
            }
        )
        for name, value in changes.items():
            setattr(message, name, value)
        message.edited = True
        message.edit_date = max(self._now(), message.date + 1)
        return self._message_json(message)

    def _edit_message_text(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._editable(params)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        plain, entities = self._parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="MESSAGE_TOO_LONG",
            empty="message text is empty",
        )
        markup = self._check_reply_markup(params.get("reply_markup"))
        result = self._apply_edit(message, plain_text=plain, entities=entities, reply_markup=markup)
        message.text = params.get("text")
        message.parse_mode = params.get("parse_mode")
        return result

    def _edit_message_caption(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._editable(params)
        if message.kind not in ("photo", "document"):
            raise bad_request("there is no caption in the message to edit")
        plain, entities = self._parse_text(
            params.get("caption") or "",
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
            empty="",
        )
        markup = self._check_reply_markup(params.get("reply_markup"))
        result = self._apply_edit(message, plain_text=plain, entities=entities, reply_markup=markup)
        message.text = params.get("caption")
        message.parse_mode = params.get("parse_mode")
        return result

    def _edit_message_reply_markup(self, params: JSONDict, files: Any) -> JSONDict:
        message = self._editable(params)
        markup = self._check_reply_markup(params.get("reply_markup"))
        if markup == {"inline_keyboard": []}:
            markup = None
        current = message.reply_markup if message.reply_markup != {"inline_keyboard": []} else None
        if current == markup:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        return self._apply_edit(message, reply_markup=markup)

    def _delete_message(self, params: JSONDict, files: Any) -> bool:
        message = self._find_message(params["chat_id"], params.get("message_id"))
        if message is None or message.deleted:
            if params.get("message_id") in self._learner_messages.get(params["chat_id"], {}):
                self._learner_messages[params["chat_id"]].pop(params["message_id"])
                return True
            raise bad_request("message to delete not found")
        message.deleted = True
        return True

    def _delete_messages(self, params: JSONDict, files: Any) -> bool:
        for message_id in params.get("message_ids") or []:
            message = self._find_message(params["chat_id"], message_id)
            if message is not None:
                message.deleted = True
        return True

    # ------------------------------------------------------------------ JSON shapes

    def _message_json_any(self, chat_id: int, message_id: int) -> JSONDict:
        learner = self._learner_messages.get(chat_id, {}).get(message_id)
        if learner is not None:
            return copy.deepcopy(learner)
        message = self._find_message(chat_id, message_id)
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return self._message_json(message)

    def _message_json(self, message: SentMessage) -> JSONDict:
        body: JSONDict = {
            "message_id": message.message_id,
            "from": copy.deepcopy(self.bot_user),
            "chat": self._chat_json(message.chat_id),
            "date": message.date,
        }
        if message.edit_date is not None:
            body["edit_date"] = message.edit_date
        if message.reply_to_message_id is not None:
            with contextlib.suppress(LookupError):
                reply = self._message_json_any(message.chat_id, message.reply_to_message_id)
                reply.pop("reply_to_message", None)
                body["reply_to_message"] = reply
        entity_key = "entities" if message.kind == "text" else "caption_entities"
        if message.kind == "text":
            body["text"] = message.plain_text or ""
        elif message.kind in ("photo", "document") and message.plain_text:
            body["caption"] = message.plain_text
        if message.entities and message.kind != "poll":
            body[entity_key] = copy.deepcopy(message.entities)
        if message.kind == "photo":
            body["photo"] = self._photo_sizes(message)
        elif message.kind == "document":
            body["document"] = {
                "file_id": message.file_ids[0],
                "file_unique_id": f"u{message.file_ids[0]}",
                "file_name": message.file_name,
                "file_size": len(message.file or b""),
            }
        elif message.kind == "poll":
            body["poll"] = copy.deepcopy(message.poll)
        if message.reply_markup and message.reply_markup.get("inline_keyboard"):
            body["reply_markup"] = copy.deepcopy(message.reply_markup)
        return body

    @staticmethod
    def _photo_sizes(message: SentMessage) -> list[JSONDict]:
        width, height = _png_size(message.file or b"") or (800, 600)
        file_id = message.file_ids[0]
        scale = 90 / max(width, height, 1)
        thumb = {
            "file_id": f"{file_id}-s",
            "file_unique_id": f"u{file_id}-s",
            "width": max(int(width * scale), 1),
            "height": max(int(height * scale), 1),
        }
        full = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "width": width,
            "height": height,
            "file_size": len(message.file or b""),
        }
        return [thumb, full]

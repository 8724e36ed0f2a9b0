"""A fake Telegram Bot API server over real HTTP on loopback, for end-to-end tests of the bot.

The real python-telegram-bot ``Application`` talks to it exactly as it talks to Telegram::

    server = FakeBotAPI()
    server.start()
    app = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)            # f"{server.url}/bot"; PTB appends the token
        .base_file_url(server.base_file_url)  # f"{server.url}/file/bot"
        .build()
    )

Tests then act as learners (``send_text``, ``click``, ``press``, ``sticker``...), wait for the bot
(``await server.wait_for_messages(chat_id, 2, after=...)``) and inspect what it did
(``messages(chat_id)``, ``requests``, ``answered_callback_queries``).

How it is built: see ``server.py``. One module per idea:

- ``protocol``: JSON objects, Telegram's limits and error descriptions, ``ApiError``;
- ``html``: Telegram HTML (TDLib's ``parse_html``), UTF-16 lengths, command entities;
- ``records``: ``RecordedRequest``, ``SentMessage`` and queued updates;
- ``server``: ``FakeBotAPI`` (state, lifecycle, change notification) and ``running()``;
- ``transport``: the HTTP server and handler, request decoding, routing and recording;
- ``faults``: injected errors, delays, dropped connections, blocked chats, flood limits;
- ``learners``: chats and users, learner actions (updates), ``Learner``;
- ``updates``: the update queue, getUpdates and webhooks;
- ``methods``: the method table, chat checks and the methods not about messages;
- ``messages``: formatted text, sending, polls, editing, deleting, message JSON;
- ``inspection``: what tests read and wait for.

Fidelity: errors carry the descriptions the official server sends (TDLib's ``parse_html`` is
ported byte for byte for HTML parse errors and offsets). Where the fake is stricter than Telegram
or guesses, the docstring of the check says so.

Not emulated: Markdown/MarkdownV2 parsing (kept as sent), automatic entities (URLs, mentions) in
the bot's texts, inline mode, media groups, editMessageMedia, payments, chat administration,
per-private-chat flood limits, ``poll`` updates with vote counts, downloading files from URLs,
HTTPS webhooks (webhooks go to loopback HTTP only) and Telegram's 48-hour edit window.
"""

from .html import EntityParseError, command_entities, parse_html, utf16_len
from .learners import Learner
from .protocol import (
    CHAT_ACTIONS,
    GET_UPDATES_CONFLICT,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_CALLBACK_DATA_BYTES,
    MAX_CAPTION_LENGTH,
    MAX_POLL_EXPLANATION_LENGTH,
    MAX_POLL_OPTION_LENGTH,
    MAX_POLL_OPTIONS,
    MAX_POLL_QUESTION_LENGTH,
    MAX_TEXT_LENGTH,
    NOT_DELIVERED_BY_DEFAULT,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    SENDING_METHODS,
    WEBHOOK_CONFLICT,
    ApiError,
    JSONDict,
    bad_request,
)
from .records import DROPPED, RecordedRequest, SentMessage
from .server import FakeBotAPI, running

__all__ = [
    "CHAT_ACTIONS",
    "DROPPED",
    "GET_UPDATES_CONFLICT",
    "MAX_CALLBACK_ANSWER_LENGTH",
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_CAPTION_LENGTH",
    "MAX_POLL_EXPLANATION_LENGTH",
    "MAX_POLL_OPTIONS",
    "MAX_POLL_OPTION_LENGTH",
    "MAX_POLL_QUESTION_LENGTH",
    "MAX_TEXT_LENGTH",
    "NOT_DELIVERED_BY_DEFAULT",
    "NOT_MODIFIED",
    "QUERY_TOO_OLD",
    "SENDING_METHODS",
    "WEBHOOK_CONFLICT",
    "ApiError",
    "EntityParseError",
    "FakeBotAPI",
    "JSONDict",
    "Learner",
    "RecordedRequest",
    "SentMessage",
    "bad_request",
    "command_entities",
    "parse_html",
    "running",
    "utf16_len",
]

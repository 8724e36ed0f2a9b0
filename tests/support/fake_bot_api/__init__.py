"""A fake Telegram Bot API server over real HTTP on loopback (see ``server``)."""

from .server import (
    DROPPED,
    MAX_TEXT_LENGTH,
    NOT_MODIFIED,
    ApiError,
    EntityParseError,
    FakeBotAPI,
    JSONDict,
    Learner,
    RecordedRequest,
    SentMessage,
    parse_html,
    utf16_len,
)

__all__ = [
    "DROPPED",
    "MAX_TEXT_LENGTH",
    "NOT_MODIFIED",
    "ApiError",
    "EntityParseError",
    "FakeBotAPI",
    "JSONDict",
    "Learner",
    "RecordedRequest",
    "SentMessage",
    "parse_html",
    "utf16_len",
]

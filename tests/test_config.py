"""Settings come from the environment or .env; the token never shows in a repr or a log line."""

from pathlib import Path

import pytest

from bot.config import Settings


def test_token_from_dotenv_and_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    env = tmp_path / ".env"
    env.write_text("TELEGRAM_BOT_TOKEN=123:secret-token\nDATA_DIR=/srv/tutor\n", encoding="utf-8")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.token == "123:secret-token"
    assert settings.db_url == "sqlite:////srv/tutor/tutor.db"
    assert "secret-token" not in repr(settings) and "secret-token" not in str(settings.model_dump())


def test_environment_wins_and_empty_token_means_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("TELEGRAM_BOT_TOKEN=from-file\n", encoding="utf-8")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "  ")
    assert Settings(_env_file=env).token is None  # type: ignore[call-arg]
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/tutor")
    assert Settings(_env_file=None).db_url == "postgresql://u:p@db/tutor"  # type: ignore[call-arg]

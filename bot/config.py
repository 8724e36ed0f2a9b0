"""Settings from the environment and ``.env`` (pydantic-settings). Documented in ``.env.example``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.content import default_content_dir

if TYPE_CHECKING:
    from bot.sandbox import SandboxConfig
    from bot.storage.repo import Pool

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    port: int = 8443
    data_dir: Path = ROOT / "data"
    database_url: str | None = None
    # a database server's connections (PostgreSQL): pool size, extra ones under load, seconds to wait for one
    database_pool_size: int = Field(default=5, ge=1)
    database_pool_overflow: int = Field(default=10, ge=0)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    content_dir: Path = Field(default_factory=default_content_dir)
    sandbox_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    sandbox_wall_seconds: float = Field(default=5.0, gt=0)
    sandbox_memory_mb: int = Field(default=1024, ge=64)
    sandbox_output_bytes: int = Field(default=65536, ge=1024)
    sandbox_queue_limit: int = Field(default=0, ge=0)
    sandbox_queue_seconds: float = Field(default=20.0, gt=0)
    push_tick_seconds: float = Field(default=60.0, gt=0)
    update_lanes: int = Field(default=32, ge=1)  # chats whose updates are handled at the same time
    inbox_backlog: int = Field(default=10_000, ge=1)  # updates waiting in the inbox before intake pauses
    shutdown_seconds: float = Field(default=10.0, gt=0)  # SIGTERM: stop within this
    log_level: str = "INFO"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tutor.db'}"

    def db_pool(self) -> Pool:
        from bot.storage.repo import Pool

        return Pool(size=self.database_pool_size, overflow=self.database_pool_overflow,
                    timeout=self.database_pool_timeout)

    def sandbox_config(self, workers: int | None = None) -> SandboxConfig:
        """The sandbox's limits from these settings (``workers`` overrides the pool size)."""
        from bot.sandbox import SandboxConfig  # imports no torch

        return SandboxConfig(workers=workers or self.sandbox_workers, wall_seconds=self.sandbox_wall_seconds,
                             memory_mb=self.sandbox_memory_mb, output_bytes=self.sandbox_output_bytes,
                             queue_limit=self.sandbox_queue_limit, queue_seconds=self.sandbox_queue_seconds)

    @property
    def token(self) -> str | None:
        if self.telegram_bot_token is None:
            return None
        value = self.telegram_bot_token.get_secret_value().strip()
        return value or None

"""One settings object for the service and the jobs, read from the environment and `.env` (prefix PAYRANK_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Embedded defaults: everything lives under `.payrank/` unless told otherwise."""

    model_config = SettingsConfigDict(env_prefix="PAYRANK_", env_file=".env", extra="ignore")

    home: Path = Path(".payrank")
    tracking_uri: str | None = None  # default: sqlite under `home`; MLFLOW_TRACKING_URI also honoured
    experiment: str = "payrank"
    model_name: str = "payrank"

    @property
    def demo_book(self) -> Path:
        return self.home / "demo-book"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own Settings objects)."""
    return Settings()

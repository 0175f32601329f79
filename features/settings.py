"""Settings from the environment (pydantic-settings); nothing is read or created at import time."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where riskcast keeps its state and which production services it talks to."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    home: Path = Field(default=Path("var"), description="root of the offline store and reports")
    database_url: str | None = Field(
        default=None,
        description="online store, access log and ledger; SQLite under home when unset",
    )

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{(self.home / 'riskcast.sqlite').resolve()}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.sqlite_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

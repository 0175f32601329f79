"""Service settings from the environment (pydantic-settings); nothing is read at import time.

``RISKCAST_MODE=production`` refuses to start with a default secret. ``RISKCAST_PORT`` (or
``PORT``) sets the port; ``RISKCAST_PURPOSES`` (a JSON list) the purposes a person-score read
may state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.errors import ConfigError
from features.settings import Settings as StoreSettings

DEFAULT_TOKEN_PEPPER = "riskcast-dev-pepper-not-for-production"
DEFAULT_PURPOSES = [
    "case_review",
    "prevention_planning",
    "support_referral",
    "supervision",
]


class ServingSettings(BaseSettings):
    """How the service runs: mode, secrets, purposes, model reference, listener."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    mode: Literal["dev", "production"] = "dev"
    home: Path = Field(default=Path("var"), description="RISKCAST_HOME: state of riskcast")
    database_url: str | None = Field(default=None, description="users, decisions, stores")
    token_pepper: SecretStr = Field(
        default=SecretStr(DEFAULT_TOKEN_PEPPER),
        description="HMAC key of the stored token hashes; must be set in production",
    )
    purposes: list[str] = Field(default_factory=lambda: list(DEFAULT_PURPOSES), min_length=1)
    ui_purpose: str | None = Field(
        default=None, description="the purpose pre-selected on the pages (None: the first)"
    )
    host: str = "127.0.0.1"
    port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("RISKCAST_PORT", "PORT")
    )
    workers: int = Field(default=1, ge=1, le=64)
    model_name: str | None = Field(default=None, description="None: configs/training.yaml")
    model_alias: str = "champion"
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI")
    )
    max_ids: int = Field(default=1000, ge=1)
    scorebook: bool = Field(
        default=True,
        description="score and explain every materialised person once, in the background, "
        "and answer from that book (requests are scored directly until it is ready)",
    )
    scorebook_check_seconds: float = Field(
        default=5.0, ge=0.0, description="how often to look for a new materialisation"
    )

    @model_validator(mode="after")
    def _production_secrets(self) -> Self:
        if self.mode == "production":
            pepper = self.token_pepper.get_secret_value()
            if pepper == DEFAULT_TOKEN_PEPPER or len(pepper) < 16:
                raise ValueError(
                    "RISKCAST_TOKEN_PEPPER must be set to a secret of at least 16 characters "
                    "in production mode (the default is for development only)"
                )
        return self

    def default_purpose(self) -> str:
        """The purpose the pages pre-select: ``ui_purpose`` if allowed, else the first."""
        if self.ui_purpose and self.ui_purpose in self.purposes:
            return self.ui_purpose
        return self.purposes[0]

    def store_settings(self) -> StoreSettings:
        """The same home and database as the feature stores use."""
        return StoreSettings(home=self.home, database_url=self.database_url)

    @property
    def effective_database_url(self) -> str:
        return self.store_settings().effective_database_url

    def resolved_model_name(self) -> str:
        if self.model_name:
            return self.model_name
        from training.config import load_training_config

        return load_training_config().training.model_name


def load_serving_settings() -> ServingSettings:
    """Settings from the environment; a refusal becomes a ConfigError (clear, no traceback)."""
    from pydantic import ValidationError

    try:
        return ServingSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(f"service settings: {problems}") from exc

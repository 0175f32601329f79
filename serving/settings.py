"""Service settings from the environment (pydantic-settings); nothing is read at import time.

``RISKCAST_MODE=production`` refuses to start with a default secret. ``RISKCAST_PORT`` (or
``PORT``) sets the port; ``RISKCAST_PURPOSES`` (a JSON list) the purposes a person-score read
may state.

`ServingSettings` reads only the service's own variables. The kernel's (``RISKCAST_HOME``,
``RISKCAST_DATABASE_URL``, ``RISKCAST_MODE``, ``MLFLOW_TRACKING_URI``, ...) are read by the
`riskcast.settings.Settings` it nests as ``kernel``, the chain's by its ``chain``
(`riskcast.chain.settings.ChainSettings`): each variable is read in one place. ``home``,
``database_url``, ``mode`` and ``mlflow_tracking_uri`` may still be handed to the constructor
(they go to ``kernel``) and read as attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskcast.chain.settings import ChainSettings
from riskcast.errors import ConfigError
from riskcast.names import CHAMPION
from riskcast.settings import Mode, describe_settings_error
from riskcast.settings import Settings as StoreSettings

KERNEL_FIELDS = ("home", "database_url", "mode", "config_dir", "mlflow_tracking_uri")
"""Constructor arguments that belong to the nested kernel settings."""

DEFAULT_TOKEN_PEPPER = "riskcast-dev-pepper-not-for-production"
DEFAULT_PURPOSES = [
    "case_review",
    "prevention_planning",
    "support_referral",
    "supervision",
]

DEFAULT_MAX_CAPACITY = {"officer": 500}
"""RISKCAST_MAX_LIST_CAPACITY (JSON, role -> persons): the largest list per role."""
DEFAULT_MAX_PAGE = {"officer": 200}
"""RISKCAST_MAX_PAGE_SIZE (JSON, role -> rows): the largest page of a list per role."""


class ServingSettings(BaseSettings):
    """How the service runs: mode, secrets, purposes, model reference, listener."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    kernel: StoreSettings = Field(
        default_factory=StoreSettings,
        description="RISKCAST_HOME, RISKCAST_DATABASE_URL, RISKCAST_MODE, MLFLOW_TRACKING_URI: "
        "riskcast/settings.py",
    )
    token_pepper: SecretStr = Field(
        default=SecretStr(DEFAULT_TOKEN_PEPPER),
        description="HMAC key of the stored token hashes; must be set in production",
    )
    chain: ChainSettings = Field(
        default_factory=ChainSettings,
        description="RISKCAST_CHAIN_KEY (must be set in production) and RISKCAST_CHAIN_ANCHOR_DIR"
        " of the access log and the ledger: riskcast/chain/settings.py",
    )
    purposes: list[str] = Field(default_factory=lambda: list(DEFAULT_PURPOSES), min_length=1)
    ui_session_idle_seconds: int = Field(
        default=30 * 60,
        ge=60,
        description="a page session ends after this long without a request (serving/sessions.py)",
    )
    ui_session_max_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        description="a page session ends this long after its login, however active",
    )
    host: str = "127.0.0.1"
    port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("RISKCAST_PORT", "PORT")
    )
    workers: int = Field(default=1, ge=1, le=64)
    model_name: str | None = Field(default=None, description="None: configs/training.yaml")
    model_alias: str = CHAMPION
    max_ids: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="the largest request body accepted, on every route (else 413, before "
        "authentication and parsing); 1,000 ids of 64 characters take under 70 KB",
    )
    scorebook: bool = Field(
        default=True,
        description="score and explain every materialised person once, in the background, "
        "and answer from that book (requests are scored directly until it is ready)",
    )
    scorebook_check_seconds: float = Field(
        default=5.0, ge=0.0, description="how often to look for a new materialisation"
    )
    currency: str = Field(
        default="KZT",
        min_length=1,
        max_length=8,
        description="the currency of the register's amounts (obligations, fines), shown with "
        "them: the register contract names none, and its regions (AST, ALA, SHY, KAR) are "
        "Kazakhstan's, so tenge",
    )
    max_list_capacity: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_CAPACITY),
        description="per role, the largest risk list (``capacity``) one request may ask for; "
        "above it the request is refused (422 naming the limit). Why 500 for officers: a "
        "prevention unit acts on tens of persons a week; a whole region (35,000 persons) in "
        "one officer's hands is a bulk export, not a work list. A role not named gets none",
    )
    max_page_size: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_PAGE),
        description="per role, the most rows one page of a list may hold (``limit``); "
        "above it the request is refused (422 naming the limit)",
    )
    large_export_persons: int = Field(
        default=100,
        ge=1,
        description="a read naming more persons than this is a large export: auditors see "
        "how many there were (serving.services.exports.count_large_exports)",
    )

    @model_validator(mode="before")
    @classmethod
    def _kernel_arguments(cls, data: Any) -> Any:
        """``home=...`` etc. handed to the constructor build the nested kernel settings (the
        rest of them from the environment, as `riskcast.settings.Settings` reads it)."""
        if isinstance(data, dict) and "kernel" not in data:
            given = {k: data[k] for k in KERNEL_FIELDS if k in data}
            if given:
                data = {k: v for k, v in data.items() if k not in KERNEL_FIELDS}
                data["kernel"] = StoreSettings(**given)
        return data

    @model_validator(mode="after")
    def _production_secrets(self) -> Self:
        self.chain.check_for(self.mode)
        if self.mode == "production":
            pepper = self.token_pepper.get_secret_value()
            if pepper == DEFAULT_TOKEN_PEPPER or len(pepper) < 16:
                raise ValueError(
                    "RISKCAST_TOKEN_PEPPER must be set to a secret of at least 16 characters "
                    "in production mode (the default is for development only)"
                )
        return self

    @property
    def home(self) -> Path:
        return self.kernel.home

    @property
    def database_url(self) -> str | None:
        return self.kernel.database_url

    @property
    def mode(self) -> Mode:
        return self.kernel.mode

    @property
    def mlflow_tracking_uri(self) -> str | None:
        return self.kernel.mlflow_tracking_uri

    def store_settings(self) -> StoreSettings:
        """The same home and database as the feature stores use (the nested kernel settings)."""
        return self.kernel

    @property
    def effective_database_url(self) -> str:
        return self.kernel.effective_database_url

    def resolved_model_name(self) -> str:
        if self.model_name:
            return self.model_name
        from training.config import load_training_config

        return load_training_config().training.model_name


def load_serving_settings() -> ServingSettings:
    """Settings from the environment; a refusal becomes a ConfigError (clear, no traceback)."""
    try:
        return ServingSettings()
    except ValidationError as exc:
        raise ConfigError(f"service settings: {describe_settings_error(exc)}") from exc

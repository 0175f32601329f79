"""Settings from the environment (pydantic-settings); nothing is read or created at import time.

Each environment variable belongs to exactly one settings group, read in one place:

- `Settings` (this module), the kernel group every stage shares: ``RISKCAST_HOME``,
  ``RISKCAST_DATABASE_URL``, ``RISKCAST_MODE``, ``RISKCAST_CONFIG_DIR``,
  ``RISKCAST_DASK_SCHEDULER`` (`riskcast.cluster`) and ``MLFLOW_TRACKING_URI``;
- `riskcast.chain.settings.ChainSettings`: ``RISKCAST_CHAIN_KEY``, ``RISKCAST_CHAIN_ANCHOR_DIR``
  (the production check takes the mode from `Settings`);
- `serving.settings.ServingSettings`: the service's own variables; it nests one `Settings` and
  one `ChainSettings` instead of reading their variables again.

`get_settings` is the cached instance the CLIs use (tests that change the environment clear it);
`read_settings` reads afresh, for lookups that must follow the environment as it is now (the
configuration folder, the tracking URI) and turns a bad value into a `ConfigError`.

Every command that reads or writes the home takes ``--home`` (help text `HOME_HELP`); commands
that read the settings deep inside (or start processes that do, like `riskcast serve`'s
workers) apply it with `use_home`, which sets ``RISKCAST_HOME`` for the process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskcast.errors import ConfigError

Mode = Literal["dev", "production"]


class Settings(BaseSettings):
    """Where riskcast keeps its state, which production services it talks to, and its mode."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    home: Path = Field(default=Path("var"), description="root of the offline store and reports")
    database_url: str | None = Field(
        default=None,
        description="online store, access log, ledger and service tables; SQLite under home "
        "when unset",
    )
    mode: Mode = Field(
        default="dev",
        description="production refuses the development secrets (token pepper, chain key)",
    )
    config_dir: Path | None = Field(
        default=None,
        description="RISKCAST_CONFIG_DIR: where configuration files are looked for first "
        "(riskcast/configio.py)",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("mlflow_tracking_uri", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry; None: SQLite under home (training/tracking.py)",
    )
    dask_scheduler: str | None = Field(
        default=None,
        pattern=r"^(local(:[1-9][0-9]{0,2})?|(tcp|tls|ucx|inproc)://\S+)$",
        description="RISKCAST_DASK_SCHEDULER: the heavy steps run on this Dask scheduler "
        "(tcp://host:8786, or local / local:N for a LocalCluster of N process workers); "
        "None: everything runs in this process (riskcast/cluster.py)",
    )

    @field_validator("config_dir", "mlflow_tracking_uri", "dask_scheduler", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable means "not set" for these (as it always has)."""
        return None if value == "" else value

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{(self.home / 'riskcast.sqlite').resolve()}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.sqlite_url


def describe_settings_error(exc: ValidationError) -> str:
    """``field: message`` for each refused value (pydantic's "Value error, " prefix dropped)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    )


def read_settings() -> Settings:
    """The kernel settings as the environment holds them now (not cached); a bad value is a
    `ConfigError` naming the field."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"settings: {describe_settings_error(exc)}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The kernel settings, read once per process (``get_settings.cache_clear()`` re-reads)."""
    return read_settings()


HOME_HELP = "riskcast home: stores, reports, SQLite files (default: RISKCAST_HOME, else ./var)"
"""The help text of ``--home``, the same on every command."""


def use_home(home: Path | None) -> Path | None:
    """``--home``'s callback: ``RISKCAST_HOME`` becomes ``home`` for this process and the
    processes it starts, and the cached settings are forgotten; nothing changes without it."""
    if home is not None:
        os.environ["RISKCAST_HOME"] = str(home)
        get_settings.cache_clear()
    return home

"""The chain key and the anchor directory of the hash chains (access log, promotion ledger).

One source of truth for both the service and the CLIs: `serving.settings.ServingSettings`
holds one of these (so ``riskcast serve`` refuses a production start with the development key,
exactly as it refuses the development token pepper), and `open_access_log` / `open_ledger` load
one from the environment when they are not handed one (the CLIs).

- ``RISKCAST_CHAIN_KEY``: the HMAC key of every entry's ``hash``. The database never holds it,
  so someone who can write the tables cannot re-hash an edited entry or the entries after it.
  In production mode (``RISKCAST_MODE``, read by `riskcast.settings.Settings`, not here) the
  development default and keys under 16 characters are refused (`ChainSettings.check_for`).
- ``RISKCAST_PSEUDONYM_KEY``: the HMAC key of the persons' pseudonyms in the access log
  (`serving.pseudonyms`); derived from the chain key when unset.
- ``RISKCAST_CHAIN_ANCHOR_DIR``: where each chain's committed heads are appended (default
  ``RISKCAST_HOME/anchors``), outside the database, so that deleting the newest entries is
  found without an operator remembering the head (`riskcast.chain.anchors`).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskcast.errors import ConfigError
from riskcast.settings import Mode, describe_settings_error, read_settings

DEFAULT_CHAIN_KEY = "riskcast-dev-chain-key-not-for-production"


class ChainSettings(BaseSettings):
    """The secret and the place that make the chains tamper-evident without outside help."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    chain_key: SecretStr = Field(
        default=SecretStr(DEFAULT_CHAIN_KEY),
        description="HMAC key of the access log's and the ledger's entry hashes; must be set "
        "in production and never stored in the database",
    )
    chain_anchor_dir: Path | None = Field(
        default=None,
        description="append-only files of the chains' committed heads (None: RISKCAST_HOME/"
        "anchors); must not be writable by the database's user",
    )

    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of the persons' pseudonyms in the access log (None: derived "
        "from RISKCAST_CHAIN_KEY); never stored in the database",
    )

    @model_validator(mode="after")
    def _some_key(self) -> Self:
        if not self.chain_key.get_secret_value():
            raise ValueError("RISKCAST_CHAIN_KEY must not be empty")
        return self

    def check_for(self, mode: Mode) -> None:
        """Raise ValueError if this key may not be used in ``mode`` (production refuses the
        development default and keys under 16 characters)."""
        key = self.chain_key.get_secret_value()
        if mode == "production" and (key == DEFAULT_CHAIN_KEY or len(key) < 16):
            raise ValueError(
                "RISKCAST_CHAIN_KEY must be set to a secret of at least 16 characters "
                "in production mode (the default is for development only)"
            )

    @property
    def key(self) -> bytes:
        return self.chain_key.get_secret_value().encode()

    @property
    def pseudonym_secret(self) -> bytes:
        """The key of the access log's person pseudonyms: ``RISKCAST_PSEUDONYM_KEY``, else one
        derived from the chain key (HMAC of a fixed label), so a deployment needs no new secret
        and the pseudonyms are never the chain's own hashes."""
        if self.pseudonym_key is not None and self.pseudonym_key.get_secret_value():
            return self.pseudonym_key.get_secret_value().encode()
        return derived_pseudonym_key(self.key)

    def anchor_dir(self, home: Path) -> Path:
        """``RISKCAST_CHAIN_ANCHOR_DIR``, else ``anchors`` under ``home`` (absolute, so that
        every process of one deployment finds the same files)."""
        return (self.chain_anchor_dir or home / "anchors").resolve()


def derived_pseudonym_key(chain_key: bytes) -> bytes:
    """The pseudonym key derived from a chain key (when ``RISKCAST_PSEUDONYM_KEY`` is unset)."""
    return hmac.new(chain_key, b"riskcast person pseudonyms", hashlib.sha256).digest()


def load_chain_settings(mode: Mode | None = None) -> ChainSettings:
    """From the environment, checked for ``mode`` (None: the kernel settings' mode); a refusal
    becomes a ConfigError (clear, no traceback)."""
    try:
        chain = ChainSettings()
        chain.check_for(mode or read_settings().mode)
    except ValidationError as exc:
        raise ConfigError(f"chain settings: {describe_settings_error(exc)}") from exc
    except ValueError as exc:
        raise ConfigError(f"chain settings: {exc}") from exc
    return chain

"""Who is acting, proven by a token: the seam between the stages and the service's users.

The users table lives in the service (`serving.users.UserStore`), but a stage's command may
need an authenticated person too: an auditor's override of the fairness gate
(`riskcast promote --override`) must be made by a user who holds the auditor role, proven by
that user's token. Stages may not import `serving` (docs/ARCHITECTURE.md), so they depend on
the two protocols here; the command root (`serving/cli.py`) hands them the real store
(`UserStore` satisfies `Authenticator` as it is).

`read_token` reads the token the way every command does: ``--token-file`` if given, else the
``RISKCAST_TOKEN`` environment variable; never from a command-line argument (it would be in the
shell history and the process list).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from riskcast.errors import InputError

TOKEN_ENV = "RISKCAST_TOKEN"


class Principal(Protocol):
    """An authenticated user: the name and role the users table holds (not what a flag says)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


class Authenticator(Protocol):
    """Finds the active user holding a token (None: unknown or revoked)."""

    def authenticate(self, token: str) -> Principal | None: ...


AuthenticatorFactory = Callable[[], Authenticator]
"""Opens the deployment's users (called only when a command needs to authenticate someone)."""


def read_token(token_file: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The token from ``token_file`` (first line, stripped) or ``RISKCAST_TOKEN``; None if
    neither holds one. `InputError` naming the file if it cannot be read."""
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--token-file {token_file}: cannot read it ({exc})") from exc
        lines = text.strip().splitlines()
        return lines[0].strip() if lines and lines[0].strip() else None
    value = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return value or None

"""Service users managed by admins over HTTP: the same rules as `riskcast users add|revoke`,
refusals as riskcast errors (422 naming ``regions``, 409 for a taken name or a revoked user)."""

from __future__ import annotations

from riskcast.errors import ConflictError, FieldError
from serving.users import Role, User, UserConflict, UserStore, taken_message


def create_account(users: UserStore, name: str, role: Role, regions: list[str]) -> tuple[User, str]:
    """A new user and their bearer token (shown once). Officers need at least one region,
    every other role none; a name taken, or one that looks like a taken one (`DEMO-ADMIN`
    beside `demo-admin`), is a 409 whose message starts with ``name:``."""
    regions = sorted(set(regions))
    if role is Role.officer and not regions:
        raise FieldError(["body", "regions"], "an officer needs at least one region")
    if role is not Role.officer and regions:
        raise FieldError(["body", "regions"], "regions apply to officers only")
    try:
        return users.add(name, role, regions)
    except UserConflict as exc:
        existing = exc.existing or name
        raise ConflictError(f"name: {taken_message(name, existing)}") from exc


def revoke_account(users: UserStore, name: str, by: User) -> User:
    """Revoke ``name``'s token at once; an admin cannot revoke themself (another admin, or the
    CLI, can), nor a user twice (409); an unknown name is a `NotFoundError` (404)."""
    if name == by.name:
        raise ConflictError(
            "you cannot revoke your own token; another admin (or `riskcast users revoke`) can"
        )
    try:
        return users.revoke(name, once=True)
    except UserConflict as exc:
        raise ConflictError(str(exc)) from exc


__all__ = ["create_account", "revoke_account"]

"""`riskcast serve`, `riskcast users add|list|revoke`, `riskcast erase` and
`riskcast retention apply`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from riskcast.settings import HOME_HELP, use_home
from serving.evidence import cli as evidence_cli
from serving.users import Role, UserStore

if TYPE_CHECKING:
    import sqlalchemy as sa

    from fairness.ledger import Ledger
    from serving.access_log import AccessLog
    from serving.settings import ServingSettings

HOME: Path | None = typer.Option(None, "--home", help=HOME_HELP, callback=use_home)


@dataclass(frozen=True)
class _Records:
    settings: ServingSettings
    engine: sa.Engine
    access_log: AccessLog
    ledger: Ledger


@contextmanager
def _records() -> Iterator[_Records]:
    """The service's database, access log and ledger, as `riskcast serve` opens them."""
    from fairness.ledger import open_ledger
    from serving.access_log import open_access_log
    from serving.db import open_engine
    from serving.settings import load_serving_settings

    settings = load_serving_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings.effective_database_url)
    log = open_access_log(settings.store_settings(), chain=settings.chain)
    ledger = open_ledger(settings.store_settings(), chain=settings.chain)
    try:
        yield _Records(settings, engine, log, ledger)
    finally:
        ledger.dispose()
        log.dispose()
        engine.dispose()


def _store() -> UserStore:
    from serving.db import open_engine
    from serving.settings import load_serving_settings

    settings = load_serving_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings.effective_database_url)
    return UserStore(engine, settings.token_pepper.get_secret_value())


def check_database(url: str | None) -> None:
    """Before uvicorn starts: a service database that cannot be reached is one line
    (`riskcast.db.reach`), like every other command, not uvicorn's startup traceback. SQLite
    under the home needs no check (the service creates it)."""
    if url is None:
        return
    from riskcast.db import make_engine, reach

    engine = make_engine(url, what="service database")
    try:
        reach(engine, what="service database")
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str | None, typer.Option(help="default RISKCAST_HOST or 127.0.0.1")] = None,
        port: Annotated[
            int | None, typer.Option(help="default RISKCAST_PORT / PORT or 8000")
        ] = None,
        workers: Annotated[
            int | None, typer.Option(min=1, help="uvicorn worker processes; default 1")
        ] = None,
        home: Path | None = HOME,
    ) -> None:
        """Run the service (uvicorn with the app factory) on the `champion` model."""
        import uvicorn

        from serving.settings import load_serving_settings
        from serving.transport import NoDelayH11Protocol

        settings = load_serving_settings()  # refuses production with default secrets
        check_database(settings.database_url)
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers or settings.workers,
            proxy_headers=True,
            http=NoDelayH11Protocol,
        )

    users = typer.Typer(help="Service users and their bearer tokens.", no_args_is_help=True)

    @users.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="the user's name (unique)")],
        role: Annotated[Role, typer.Option(help="officer, data_scientist, auditor or admin")],
        region: Annotated[
            list[str] | None, typer.Option(help="an officer's region (repeat for several)")
        ] = None,
        home: Path | None = HOME,
    ) -> None:
        """Create a user and print their token (shown once; only its hash is stored)."""
        user, token = _store().add(name, role, region)
        regions = ",".join(user.regions) or "-"
        typer.echo(f"user {user.name} role={user.role.value} region={regions} token={token}")
        Console(stderr=True).print("[yellow]the token is shown only now; keep it safe[/]")

    @users.command("list")
    def list_users(home: Path | None = HOME) -> None:
        """Users, their roles, regions and whether they are revoked."""
        table = Table("name", "role", "regions", "created", "revoked")
        for u in _store().list():
            table.add_row(
                u.name,
                u.role.value,
                ",".join(u.regions),
                str(u.created_at),
                str(u.revoked_at or ""),
            )
        Console().print(table)

    @users.command("revoke")
    def revoke(
        name: Annotated[str, typer.Argument(help="the user to revoke")], home: Path | None = HOME
    ) -> None:
        """Revoke a user's token at once."""
        user = _store().revoke(name)
        typer.echo(f"user {user.name} revoked at {user.revoked_at}")

    app.add_typer(users, name="users")
    evidence_cli.register(app)  # `riskcast evidence-pack` (issue 13)

    @app.command("erase")
    def erase(
        person_id: Annotated[str, typer.Argument(help="the person to erase")],
        by: Annotated[str, typer.Option("--by", help="who erases (recorded in the ledger)")],
        reason: Annotated[
            str, typer.Option("--reason", help="why (recorded in the ledger; not the id)")
        ],
        role: Annotated[str, typer.Option("--role", help="the role of --by")] = "admin",
        home: Path | None = HOME,
    ) -> None:
        """Erase a person: offline-store tombstone, online vector, score book, decisions' text,
        access-log lookup; an `erasure` ledger entry without the id (serving/erasure.py)."""
        from features.online.store import open_online_store
        from serving.erasure import erase_person

        with _records() as r:
            online = open_online_store(r.settings.store_settings())
            try:
                done = erase_person(
                    person_id,
                    by=by,
                    role=role,
                    reason=reason,
                    home=r.settings.home,
                    engine=r.engine,
                    access_log=r.access_log,
                    ledger=r.ledger,
                    online=online,
                )
            finally:
                online.dispose()
        typer.echo(
            f"erased as {done.pseudonym}: tombstone "
            f"{'recorded' if done.tombstone_added else 'already there'}, "
            f"{done.online_vectors} online vector(s), {done.decisions_blanked} decision(s) "
            f"blanked, {done.lookup_rows} access-log lookup row(s); ledger seq "
            f"{done.ledger_seq} ({done.seconds:.2f} s)"
        )

    retention = typer.Typer(
        help="Retention of access-log detail and decisions (configs/retention.yaml).",
        no_args_is_help=True,
    )

    @retention.command("apply")
    def apply(
        by: Annotated[str, typer.Option("--by", help="who applies it (ledger)")] = "retention",
        config: Annotated[
            Path | None, typer.Option("--config", help="default configs/retention.yaml")
        ] = None,
        home: Path | None = HOME,
    ) -> None:
        """Seal and archive access-log entries older than the retention period (the log still
        verifies from the sealed head) and delete older decisions; one ledger entry."""
        from serving.retention import apply_retention, load_retention

        settings = load_retention(config)
        with _records() as r:
            done = apply_retention(
                settings,
                access_log=r.access_log,
                engine=r.engine,
                ledger=r.ledger,
                home=r.settings.home,
                by=by,
            )
        sealed = (
            "nothing sealed"
            if done.seal is None
            else f"sealed through seq {done.seal.through_seq} ({done.seal.entries} entries, "
            f"archive {done.seal.archive})"
        )
        typer.echo(
            f"retention applied: access log {sealed}; {done.decisions_deleted} decision(s) "
            f"deleted; ledger seq {done.ledger_seq} ({done.seconds:.2f} s)"
        )

    @retention.command("verify")
    def verify_archives(home: Path | None = HOME) -> None:
        """Verify the archived (sealed) access-log segments themselves: every entry's keyed
        hash and link, from the genesis to the newest seal; exit 1 naming each problem."""
        from riskcast.chain.seal import archive_problems
        from serving.access_log import archive_dir

        with _records() as r:
            checked, problems = archive_problems(r.access_log.chain, archive_dir(r.settings.home))
        if problems:
            for problem in problems:
                typer.echo(problem, err=True)
            raise typer.Exit(code=1)
        typer.echo(f"archived access log intact: {checked} entries")

    app.add_typer(retention, name="retention")

"""`riskcast serve` and `riskcast users add|list|revoke`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from riskcast.settings import HOME_HELP, use_home
from serving.users import Role, UserStore

HOME: Path | None = typer.Option(None, "--home", help=HOME_HELP, callback=use_home)


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

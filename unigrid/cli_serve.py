"""``unigrid serve`` (the web service) and ``unigrid users`` (accounts and tokens).

The lead registers them in ``unigrid/cli.py``::

    from unigrid.cli_serve import serve, users_app
    app.command()(serve)
    app.add_typer(users_app, name="users")
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)
users_app = typer.Typer(help="Service accounts: add users, issue API tokens, reset passwords.",
                        no_args_is_help=True)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, max=16,
                                help="Worker processes (each keeps its own master snapshot)."),
    cookie_secure: bool = typer.Option(False, "--cookie-secure",
                                       help="Mark the session cookie Secure (behind TLS)."),
) -> None:
    """Run the query API and the review / audit pages (uvicorn)."""
    import os

    import uvicorn

    if cookie_secure:
        os.environ["UNIGRID_COOKIE_SECURE"] = "1"
    uvicorn.run("unigrid.service.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, access_log=False, log_level="warning", proxy_headers=False)


def _db():  # noqa: ANN202
    from unigrid.settings import load_settings
    return load_settings().ensure_dirs().decisions_db


@users_app.command("add")
def add(
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(..., "--role", help="admin, steward, auditor or service."),
    department: str = typer.Option(None, "--department",
                                   help="A steward's department (code or name, e.g. 人社局)."),
) -> None:
    """Create a user; print its one-time password (people) or API token (service) once."""
    from unigrid.service.auth import AuthError, add_user, issue_token

    db = _db()
    try:
        password = add_user(db, username, role, department)
    except AuthError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2)
    if role == "service":
        console.print(f"API token for {username} (shown once, valid 90 days):")
        console.print(issue_token(db, username, "api", 90), soft_wrap=True)
    else:
        console.print(f"one-time password for {username} (shown once; to be changed at first "
                      "login):")
        console.print(password, soft_wrap=True)


@users_app.command("token")
def token(username: str, days: float = typer.Option(90, "--days", min=0.01, max=366)) -> None:
    """Issue an API token for a user (printed once; only its hash is stored)."""
    from unigrid.service.auth import AuthError, issue_token

    try:
        console.print(issue_token(_db(), username, "api", days), soft_wrap=True)
    except AuthError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2)


@users_app.command("reset-password")
def reset(username: str) -> None:
    """A new one-time password for a user."""
    from unigrid.service.auth import AuthError, reset_password

    try:
        console.print(reset_password(_db(), username), soft_wrap=True)
    except AuthError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2)


@users_app.command("disable")
def disable(username: str) -> None:
    """Disable a user and revoke its tokens and sessions."""
    from unigrid.service.auth import AuthError, disable_user

    try:
        disable_user(_db(), username)
    except AuthError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2)
    console.print(f"{username} disabled")


@users_app.command("list")
def list_() -> None:
    """Users with role and department (never passwords or tokens)."""
    from unigrid.service.auth import DEPARTMENTS, list_users

    t = Table(title="users")
    for c in ("user", "role", "department", "disabled", "created"):
        t.add_column(c)
    for user, role, dept, disabled, created in list_users(_db()):
        t.add_row(user, role, DEPARTMENTS.get(dept or "", dept or ""), str(disabled),
                  str(created)[:19])
    console.print(t)

from __future__ import annotations

import typer
from rich.table import Table

from contact_center.auth import service, sessions
from contact_center.clitools import command_session, console
from contact_center.settings import get_settings

users_app = typer.Typer(help="Operators: admins, supervisors and agents.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the REST API.", no_args_is_help=True)


def _ask_password(password: str | None) -> str:
    return password or typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def create(
    username: str,
    name: str = typer.Option("", help="Full name shown to other operators."),
    role: str = typer.Option("agent", help="agent, supervisor or admin."),
    password: str = typer.Option(None, help="Asked for when not given.", show_default=False),
):
    """Create an operator."""
    with command_session() as session:
        user = service.create_user(session, username=username, name=name, password=_ask_password(password), role=role,
                                   via="cli")
        console.print(f"Created {user.role} [bold]{user.username}[/] (id {user.id}).")


@users_app.command("list")
def list_users():
    """List operators."""
    with command_session() as session:
        table = Table("id", "username", "name", "role", "active", "last login")
        for user in service.list_users(session):
            table.add_row(str(user.id), user.username, user.name, user.role, "yes" if user.active else "no",
                          user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "never")
        console.print(table)


@users_app.command("set-password")
def set_password(username: str, password: str = typer.Option(None, show_default=False)):
    """Change an operator's password; it also ends their UI sessions."""
    with command_session() as session:
        user = service.get_user_by_username(session, username)
        service.update_user(session, user, password=_ask_password(password), via="cli",
                            data_dir=get_settings().data_dir)
    console.print(f"Password changed for [bold]{user.username}[/]; their UI sessions ended.")


@users_app.command("end-sessions")
def end_sessions(username: str):
    """Log an operator out everywhere: their UI sessions end (API tokens keep working)."""
    with command_session() as session:
        user = service.get_user_by_username(session, username)
        ended = sessions.end_all(session, user, "ended_by_admin", actor_id=None, via="cli")
    console.print(f"Ended {ended} UI session(s) of [bold]{user.username}[/].")


@tokens_app.command("create")
def create_token(username: str, name: str = typer.Option(..., help="What will use the token.")):
    """Create an API token for an operator; it is printed once."""
    with command_session() as session:
        user = service.get_user_by_username(session, username)
        token, clear = service.create_token(session, user, name)
        console.print(f"Token {token.id} for {user.username} ({name}). Store it now, it is not shown again:")
        console.print(clear, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def list_tokens(username: str = typer.Option(None, help="Only this operator's tokens.")):
    """List API tokens (never their values)."""
    with command_session() as session:
        user = service.get_user_by_username(session, username) if username else None
        table = Table("id", "user", "name", "prefix", "created", "last used", "revoked")
        for token in service.list_tokens(session, user):
            table.add_row(str(token.id), token.user.username, token.name, token.prefix + "…",
                          token.created_at.isoformat(timespec="minutes"),
                          token.last_used_at.isoformat(timespec="minutes") if token.last_used_at else "never",
                          token.revoked_at.isoformat(timespec="minutes") if token.revoked_at else "")
        console.print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: int):
    """Revoke an API token; requests using it get 401 from now on."""
    with command_session() as session:
        token = service.revoke_token(session, token_id)
        console.print(f"Token {token.id} ({token.name}) revoked.")

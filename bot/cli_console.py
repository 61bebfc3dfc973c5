"""`citizen-bot console …`: accounts of the web console (/console).

add-user --name NAME [--role coordinator] [--team NAME] [--password-stdin]
    a console-only account (no messenger); the password is asked twice, or read as one
    line from stdin with --password-stdin, never taken from the command line
grant ID [--password-stdin]
    give an existing volunteer (`volunteers list`) a console login, or a new password
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli_volunteers import KindName, RoleName, fail, opened_store

if TYPE_CHECKING:
    from bot.console_accounts import ConsoleAccounts

console_app = typer.Typer(
    help="Web console accounts, for coordinators.", no_args_is_help=True, add_completion=False
)

# Where a coordinator with no --team goes: the province's own team.
PROVINCE_TEAM = "Ban điều phối tỉnh"

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password as one line from stdin (for scripts)."
    ),
]


@contextmanager
def _accounts() -> Iterator[ConsoleAccounts]:
    from bot.console_accounts import ConsoleAccounts
    from bot.handoff import Handoff
    from bot.store import HandoffStore

    with opened_store() as store:
        yield ConsoleAccounts(store, Handoff(HandoffStore(store)))


def _password(from_stdin: bool) -> str:
    from bot.handoff import MIN_PASSWORD_CHARS

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    secret: str = typer.prompt(
        f"Password (at least {MIN_PASSWORD_CHARS} characters)",
        hide_input=True,
        confirmation_prompt=True,
    )
    return secret


@console_app.command("add-user")
def add_user(
    name: Annotated[str, typer.Option("--name", help="The name to sign in with.")],
    role: Annotated[RoleName, typer.Option(help="What the account may do.")] = "volunteer",
    team: Annotated[
        str | None,
        typer.Option(
            "--team", help=f'Team name; a coordinator without one joins "{PROVINCE_TEAM}".'
        ),
    ] = None,
    kind: Annotated[
        KindName, typer.Option(help="Kind of the team, if it has to be created.")
    ] = "commune",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console-only account (a coordinator at a desk, say)."""
    from bot.store import Role, TeamKind

    if team is None and role != "coordinator":
        raise fail("a volunteer needs --team")
    secret = _password(password_stdin)
    with _accounts() as accounts:
        handoff = accounts.handoff
        team_kind = TeamKind(kind) if team is not None else TeamKind.PROVINCE
        found = handoff.find_team(team or PROVINCE_TEAM)
        if found is None:
            found = handoff.create_team(team or PROVINCE_TEAM, kind=team_kind)
            typer.echo(f"Created team {found.id}: {found.name} ({found.kind.value})")
        try:
            user = accounts.add_user(name, password=secret, team_id=found.id, role=Role(role))
        except ValueError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"Created {user.role.value} {user.id}: {user.name} [{found.name}]")
        typer.echo(f'Sign in at /console with the name "{user.name}" (or the id {user.id}).')


@console_app.command()
def grant(
    volunteer_id: Annotated[int, typer.Argument(help="The volunteer's id.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Give an existing volunteer a console login (or a new password)."""
    with _accounts() as accounts:
        handoff = accounts.handoff
        volunteer = handoff.get_volunteer(volunteer_id)
        if volunteer is None:
            raise fail(f"no volunteer with id {volunteer_id}")
        secret = _password(password_stdin)
        try:
            updated = accounts.grant(volunteer_id, secret)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        assert updated is not None
        typer.echo(f"Console login set for {updated.id}: {updated.name}")
        typer.echo(f'Sign in at /console with the name "{updated.name}" (or the id {updated.id}).')

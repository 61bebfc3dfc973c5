"""`citizen-bot volunteers …`: coordinators invite volunteers and look after teams.

invite --team NAME [--role coordinator] [--days 7]   a one-time /join code
list [--team NAME]                                   volunteers
disable ID                                           lock a volunteer out
move ID --team NAME                                  to another team
languages ID LANG...                                 the languages they help in (vi en)
password ID                                          set a console password
teams                                                teams and their group chats
team-chat NAME CHAT_ID [--channel telegram]          where a team's tickets go
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal, get_args

import typer

from bot.config import get_settings
from bot.errors import CitizenBotError, FlowLoadError

if TYPE_CHECKING:
    from bot.handoff import Handoff
    from bot.helpdesk import HelpDesk
    from bot.store import Store, Team

# The values of bot.store.Role and TeamKind, written out so that `citizen-bot --help`
# does not load the database layer (tests check they agree).
RoleName = Literal["volunteer", "coordinator"]
KindName = Literal["commune", "mobile", "province"]
ROLES: tuple[str, ...] = get_args(RoleName)
TEAM_KINDS: tuple[str, ...] = get_args(KindName)

volunteers_app = typer.Typer(
    help="Volunteers and teams, for coordinators.", no_args_is_help=True, add_completion=False
)

TeamOption = Annotated[str, typer.Option("--team", help='Team name, e.g. "Đoàn phường Hạ Long".')]


@contextmanager
def opened_store() -> Iterator[Store]:
    """The database of the settings, tables ready; a store error (a bad URL, the server
    down, a refused change) ends the command with its one line and exit code 1."""
    from bot.store import Store

    try:
        store = Store(get_settings().database_url)
        store.create_all()
    except CitizenBotError as exc:
        raise fail(str(exc)) from exc
    try:
        yield store
    except CitizenBotError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.dispose()


@contextmanager
def _handoff() -> Iterator[Handoff]:
    from bot.handoff import Handoff
    from bot.store import HandoffStore

    with opened_store() as store:
        yield Handoff(HandoffStore(store))


@contextmanager
def _desk() -> Iterator[HelpDesk]:
    """The handoff desk, to queue what a change tells citizens and volunteer groups."""
    from bot.conversation import build_desk

    with opened_store() as store:
        yield build_desk(store, get_settings())


def fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=1)


def _team(handoff: Handoff, name: str) -> Team:
    team = handoff.find_team(name)
    if team is None:
        known = ", ".join(f'"{t.name}"' for t in handoff.list_teams()) or "none yet"
        raise fail(f'no team named "{name}" (teams: {known})')
    return team


def _local(when: datetime, handoff: Handoff) -> str:
    hours = handoff.policy.hours
    return f"{when.astimezone(hours.zone):%Y-%m-%d %H:%M} ({hours.tz})"


def _check_commune(commune: str) -> None:
    from bot.communes import COMMUNES_FILE, load_communes

    path = get_settings().knowledge_dir / COMMUNES_FILE
    try:
        communes = load_communes(path)
    except FlowLoadError:
        return  # no readable list to check against; `validate` reports that
    if communes.unit(commune) is None:
        raise fail(f"no commune with id '{commune}' in {path}")


@volunteers_app.command()
def invite(
    team: TeamOption,
    role: Annotated[RoleName, typer.Option(help="What the code makes its user.")] = "volunteer",
    days: Annotated[int, typer.Option(min=1, max=90, help="Days the code stays valid.")] = 7,
    kind: Annotated[
        KindName, typer.Option(help="Kind of the team, if it has to be created.")
    ] = "commune",
    commune: Annotated[
        str | None,
        typer.Option(help="Commune id (knowledge/communes.yaml) of a team to be created."),
    ] = None,
    by: Annotated[str, typer.Option(help="Who made the code, for the record.")] = "cli",
) -> None:
    """Make a one-time invite code; the team is created if it does not exist."""
    from bot.store import Role, TeamKind

    if commune is not None:
        _check_commune(commune)
    with _handoff() as handoff:
        found = handoff.find_team(team)
        if found is None:
            found = handoff.create_team(team, kind=TeamKind(kind), commune_id=commune)
            typer.echo(f"Created team {found.id}: {found.name} ({found.kind.value})")
        code = handoff.create_invite(
            found.id, role=Role(role), created_by=by, ttl=timedelta(days=days)
        )
        typer.echo(f"Invite code: {code.code}")
        until = _local(code.expires_at, handoff)
        typer.echo(f"Team: {found.name}. Role: {role}. Valid until {until}.")
        typer.echo("The volunteer sends this to the bot on Telegram:")
        typer.echo(f"/join {code.code}")


@volunteers_app.command("list")
def list_(
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
) -> None:
    """List volunteers: id, name, team, role, on duty, disabled, last seen."""
    with _handoff() as handoff:
        team_id = _team(handoff, team).id if team is not None else None
        names = {t.id: t.name for t in handoff.list_teams()}
        people = handoff.list_volunteers(team_id)
        if not people:
            typer.echo("No volunteers yet.")
            return
        for v in people:
            state = "disabled" if v.disabled else ("on" if v.available else "off")
            seen = _local(v.last_active_at, handoff) if v.last_active_at else "never"
            login = " console" if v.has_password else ""
            spoken = f"  speaks {','.join(v.languages)}" if v.languages else ""
            typer.echo(
                f"{v.id:>4}  {v.name}  [{names.get(v.team_id, v.team_id)}]  {v.role.value}  "
                f"{state}{login}  {v.channel}:{v.user_id}  last seen {seen}{spoken}"
            )


@volunteers_app.command()
def disable(volunteer_id: Annotated[int, typer.Argument(help="The volunteer's id.")]) -> None:
    """Lock a volunteer out; the citizen they were helping goes back to the queue (told
    so, and the ticket posted again, by the running server's outbox)."""
    with _desk() as desk:
        result, _ = desk.disable(volunteer_id)
        if result is None:
            raise fail(f"no volunteer with id {volunteer_id}")
        typer.echo(f"Disabled {result.volunteer.id}: {result.volunteer.name}")
        if result.returned is not None:
            typer.echo(f"Ticket #{result.returned.id} is waiting for another volunteer.")


@volunteers_app.command()
def languages(
    volunteer_id: Annotated[int, typer.Argument(help="The volunteer's id.")],
    codes: Annotated[list[str], typer.Argument(help="Language codes, e.g. vi en km.")],
) -> None:
    """Set the languages a volunteer can help in."""
    wanted = list(dict.fromkeys(code.strip().lower() for code in codes if code.strip()))
    if not wanted or not all(code.isalpha() and len(code) <= 8 for code in wanted):
        raise fail("give language codes such as: vi en")
    with _handoff() as handoff:
        updated = handoff.set_languages(volunteer_id, wanted)
        if updated is None:
            raise fail(f"no volunteer with id {volunteer_id}")
        typer.echo(f"{updated.id}: {updated.name} speaks {', '.join(updated.languages)}")


@volunteers_app.command()
def move(
    volunteer_id: Annotated[int, typer.Argument(help="The volunteer's id.")], team: TeamOption
) -> None:
    """Move a volunteer to another team."""
    with _handoff() as handoff:
        target = _team(handoff, team)
        moved = handoff.move(volunteer_id, target.id)
        if moved is None:
            raise fail(f"no volunteer with id {volunteer_id}")
        typer.echo(f"Moved {moved.id}: {moved.name} to {target.name}")


@volunteers_app.command()
def password(volunteer_id: Annotated[int, typer.Argument(help="The volunteer's id.")]) -> None:
    """Set a volunteer's password for the web console (asked twice, not shown)."""
    from bot.handoff import MIN_PASSWORD_CHARS

    with _handoff() as handoff:
        if handoff.get_volunteer(volunteer_id) is None:
            raise fail(f"no volunteer with id {volunteer_id}")
        secret = typer.prompt(
            f"New password (at least {MIN_PASSWORD_CHARS} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
        try:
            updated = handoff.set_password(volunteer_id, secret)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        assert updated is not None
        typer.echo(f"Password set for {updated.id}: {updated.name}")


@volunteers_app.command()
def teams() -> None:
    """List teams: id, name, kind, commune, group chat, volunteers."""
    with _handoff() as handoff:
        found = handoff.list_teams()
        if not found:
            typer.echo('No teams yet. `volunteers invite --team "…"` creates one.')
            return
        counts: dict[int, int] = {}
        for v in handoff.list_volunteers():
            if not v.disabled:
                counts[v.team_id] = counts.get(v.team_id, 0) + 1
        for t in found:
            chat = f"{t.chat_channel}:{t.chat_id}" if t.chat_id else "province group"
            typer.echo(
                f"{t.id:>4}  {t.name}  {t.kind.value}  commune {t.commune_id or '-'}  "
                f"chat {chat}  {counts.get(t.id, 0)} volunteer(s)"
            )


# Telegram group ids start with "-": read them as the argument, not as an unknown option.
@volunteers_app.command("team-chat", context_settings={"ignore_unknown_options": True})
def team_chat(
    name: Annotated[str, typer.Argument(help="The team's name.")],
    chat_id: Annotated[str, typer.Argument(help="The group chat id, e.g. -1001234567890.")],
    channel: Annotated[str, typer.Option(help="The messenger of the group.")] = "telegram",
) -> None:
    """Post this team's tickets to its own volunteer group chat."""
    with _handoff() as handoff:
        team = _team(handoff, name)
        updated = handoff.set_team_chat(team.id, channel=channel, chat_id=chat_id)
        assert updated is not None
        typer.echo(f"{updated.name}: tickets go to {channel}:{chat_id}")

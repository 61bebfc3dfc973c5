"""`citizen-bot console …`: accounts made from the command line sign in to the console."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.config import get_settings
from bot.console_accounts import ConsoleAccounts, SignInOutcome
from bot.handoff import Handoff
from bot.store import HandoffStore, Role, Store

runner = CliRunner()
SECRET = "một mật khẩu dài"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def accounts(database: str) -> Iterator[ConsoleAccounts]:
    store = Store(database)
    store.create_all()
    yield ConsoleAccounts(store, Handoff(HandoffStore(store)))
    store.dispose()


def test_add_user_asks_the_password_twice_and_the_account_signs_in(
    accounts: ConsoleAccounts,
) -> None:
    result = runner.invoke(
        cli_app,
        ["console", "add-user", "--role", "coordinator", "--name", "Chị Hoa"],
        input=f"{SECRET}\n{SECRET}\n",
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output  # hidden while typed
    assert "Created team 1: Ban điều phối tỉnh (province)" in result.output
    assert "Created coordinator" in result.output
    signed = accounts.sign_in("chị  hoa", SECRET)
    assert signed.outcome == SignInOutcome.OK and signed.volunteer is not None
    assert signed.volunteer.role == Role.COORDINATOR and signed.volunteer.channel == "console"
    assert accounts.sign_in("Chị Hoa", "wrong password").outcome == SignInOutcome.WRONG


def test_add_user_reads_stdin_refuses_short_passwords_and_duplicates(
    accounts: ConsoleAccounts,
) -> None:
    short = runner.invoke(
        cli_app,
        ["console", "add-user", "--name", "Nam", "--team", "Đoàn xã An Hòa", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    args = ["console", "add-user", "--name", "Nam", "--team", "Đoàn xã An Hòa", "--password-stdin"]
    made = runner.invoke(cli_app, args, input=f"{SECRET}\n")
    assert made.exit_code == 0, made.output
    again = runner.invoke(cli_app, args, input=f"{SECRET}\n")
    assert again.exit_code == 1 and "exists already" in again.output
    assert accounts.sign_in("Nam", SECRET).outcome == SignInOutcome.OK
    no_team = runner.invoke(cli_app, ["console", "add-user", "--name", "Mai"], input="x\n")
    assert no_team.exit_code == 1 and "needs --team" in no_team.output


def test_grant_gives_a_telegram_volunteer_a_console_login(accounts: ConsoleAccounts) -> None:
    handoff = accounts.handoff
    team = handoff.create_team("Đoàn xã An Hòa")
    invite = handoff.create_invite(team.id, created_by="test")
    joined = handoff.redeem_invite(invite.code, channel="telegram", user_id="42", name="Lan")
    assert joined.volunteer is not None
    assert accounts.sign_in("Lan", SECRET).outcome == SignInOutcome.WRONG  # no login yet
    result = runner.invoke(
        cli_app,
        ["console", "grant", str(joined.volunteer.id)],
        input=f"{SECRET}\n{SECRET}\n",
    )
    assert result.exit_code == 0, result.output
    assert accounts.sign_in("Lan", SECRET).outcome == SignInOutcome.OK
    missing = runner.invoke(cli_app, ["console", "grant", "999"], input=f"{SECRET}\n{SECRET}\n")
    assert missing.exit_code == 1 and "no volunteer with id 999" in missing.output

"""`citizen-bot volunteers …` as a coordinator runs it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli_volunteers import ROLES, TEAM_KINDS, volunteers_app
from bot.config import get_settings
from bot.handoff import Handoff, RedeemOutcome
from bot.store import HandoffStore, Role, Store, TeamKind, TicketStatus

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
HA_LONG = "Đoàn phường Hạ Long"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("KNOWLEDGE_DIR", str(ROOT / "knowledge"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def handoff(database: str) -> Iterator[Handoff]:
    store = Store(database)
    store.create_all()
    yield Handoff(HandoffStore(store))
    store.dispose()


def invite_code(*args: str) -> str:
    result = runner.invoke(volunteers_app, ["invite", *args])
    assert result.exit_code == 0, result.output
    found = re.search(r"^/join ([A-Z0-9]{10})$", result.output, re.MULTILINE)
    assert found is not None, result.output
    return found.group(1)


def test_invite_creates_the_team_and_a_working_code(handoff: Handoff) -> None:
    result = runner.invoke(
        volunteers_app, ["invite", "--team", HA_LONG, "--commune", "ha_long", "--days", "3"]
    )
    assert result.exit_code == 0, result.output
    assert f"Created team 1: {HA_LONG} (commune)" in result.output
    assert "Asia/Ho_Chi_Minh" in result.output
    code = re.search(r"/join (\S+)", result.output)
    assert code is not None
    team = handoff.find_team(HA_LONG)
    assert team is not None and team.commune_id == "ha_long" and team.kind == TeamKind.COMMUNE

    joined = handoff.redeem_invite(code.group(1), channel="telegram", user_id="7", name="Lan")
    assert joined.ok and joined.volunteer is not None and joined.volunteer.team_id == team.id

    # A second code for the same team (any case and spacing) reuses it.
    boss = invite_code("--team", "đoàn phường  hạ long", "--role", "coordinator")
    assert len(handoff.list_teams()) == 1
    promoted = handoff.redeem_invite(boss, channel="telegram", user_id="8", name="Minh")
    assert promoted.volunteer is not None and promoted.volunteer.role == Role.COORDINATOR
    used = handoff.redeem_invite(boss, channel="telegram", user_id="9", name="Hoa")
    assert used.outcome == RedeemOutcome.USED


def test_invite_refuses_an_unknown_commune(handoff: Handoff) -> None:
    result = runner.invoke(volunteers_app, ["invite", "--team", "X", "--commune", "atlantis"])
    assert result.exit_code == 1
    assert "no commune with id 'atlantis'" in result.output
    assert handoff.list_teams() == []


def test_list_disable_move_and_teams(handoff: Handoff) -> None:
    lan_code = invite_code("--team", HA_LONG)
    co_to_code = invite_code("--team", "Đội hình lưu động Cô Tô", "--kind", "mobile")
    lan = handoff.redeem_invite(lan_code, channel="telegram", user_id="7", name="Lan").volunteer
    hung = handoff.redeem_invite(co_to_code, channel="telegram", user_id="8", name="Hùng").volunteer
    assert lan is not None and hung is not None

    listed = runner.invoke(volunteers_app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert f"Lan  [{HA_LONG}]  volunteer  on" in listed.output and "Hùng" in listed.output
    only = runner.invoke(volunteers_app, ["list", "--team", HA_LONG])
    assert "Lan" in only.output and "Hùng" not in only.output

    moved = runner.invoke(volunteers_app, ["move", str(hung.id), "--team", HA_LONG])
    assert moved.exit_code == 0, moved.output
    assert [v.name for v in handoff.list_volunteers(lan.team_id)] == ["Lan", "Hùng"]
    unknown_team = runner.invoke(volunteers_app, ["move", str(hung.id), "--team", "Nowhere"])
    assert unknown_team.exit_code == 1 and 'no team named "Nowhere"' in unknown_team.output

    disabled = runner.invoke(volunteers_app, ["disable", str(lan.id)])
    assert disabled.exit_code == 0 and f"Disabled {lan.id}: Lan" in disabled.output
    again = handoff.get_volunteer(lan.id)
    assert again is not None and again.disabled
    assert "disabled" in runner.invoke(volunteers_app, ["list"]).output
    missing = runner.invoke(volunteers_app, ["disable", "999"])
    assert missing.exit_code == 1 and "no volunteer with id 999" in missing.output

    teams = runner.invoke(volunteers_app, ["teams"])
    assert teams.exit_code == 0, teams.output
    assert f"{HA_LONG}  commune" in teams.output and "1 volunteer(s)" in teams.output
    assert "Đội hình lưu động Cô Tô  mobile" in teams.output
    assert "province group" in teams.output


def test_team_chat_takes_a_negative_group_id(handoff: Handoff) -> None:
    invite_code("--team", HA_LONG)
    result = runner.invoke(volunteers_app, ["team-chat", HA_LONG, "-1001234567890"])
    assert result.exit_code == 0, result.output
    team = handoff.find_team(HA_LONG)
    assert team is not None and (team.chat_channel, team.chat_id) == ("telegram", "-1001234567890")
    assert "telegram:-1001234567890" in runner.invoke(volunteers_app, ["teams"]).output


def test_password_is_asked_twice_and_hidden(handoff: Handoff) -> None:
    code = invite_code("--team", HA_LONG, "--role", "coordinator")
    lan = handoff.redeem_invite(code, channel="telegram", user_id="7", name="Lan").volunteer
    assert lan is not None
    result = runner.invoke(
        volunteers_app, ["password", str(lan.id)], input="mật khẩu dài\nmật khẩu dài\n"
    )
    assert result.exit_code == 0, result.output
    assert "mật khẩu dài" not in result.output
    assert handoff.verify_password("Lan", "mật khẩu dài") is not None
    assert handoff.verify_password("Lan", "mật khẩu sai") is None

    short = runner.invoke(volunteers_app, ["password", str(lan.id)], input="ngắn\nngắn\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    missing = runner.invoke(volunteers_app, ["password", "999"])
    assert missing.exit_code == 1 and "no volunteer with id 999" in missing.output


def test_empty_lists(database: str) -> None:
    assert "No teams yet" in runner.invoke(volunteers_app, ["teams"]).output
    assert "No volunteers yet" in runner.invoke(volunteers_app, ["list"]).output


def test_the_choices_match_the_store() -> None:
    assert ROLES == tuple(r.value for r in Role)
    assert TEAM_KINDS == tuple(k.value for k in TeamKind)


def test_a_wrong_role_is_refused(database: str) -> None:
    result = runner.invoke(volunteers_app, ["invite", "--team", HA_LONG, "--role", "admin"])
    assert result.exit_code == 2 and "admin" in result.output


def test_registered_under_the_citizen_bot_command(database: str) -> None:
    from bot.cli import app

    result = runner.invoke(app, ["volunteers", "invite", "--team", HA_LONG])
    assert result.exit_code == 0, result.output
    assert re.search(r"^/join [A-Z0-9]{10}$", result.output, re.MULTILINE)


def test_disable_hands_the_held_citizen_back_to_the_queue(handoff: Handoff, database: str) -> None:
    lan = handoff.redeem_invite(
        invite_code("--team", HA_LONG), channel="telegram", user_id="7", name="Lan"
    ).volunteer
    assert lan is not None
    store = Store(database)
    with store.conversation(channel="telegram", chat_id="1001", user_id="1001") as tx:
        ticket, _ = handoff.open_ticket(tx.conversation_id, reason="asked_human", tx=tx)
    assert handoff.claim(ticket.id, volunteer_id=lan.id).ok

    disabled = runner.invoke(volunteers_app, ["disable", str(lan.id)])
    assert disabled.exit_code == 0, disabled.output
    assert f"Ticket #{ticket.id} is waiting for another volunteer." in disabled.output
    back = handoff.get_ticket(ticket.id)
    assert back is not None and back.status == TicketStatus.WAITING
    # Queued for the running server's sender: the citizen is told.
    told = [i.text for i in store.outbox_after(channel="telegram", chat_id="1001")]
    store.dispose()
    assert told == ["Bạn tình nguyện viên vừa phải dừng. Mình đang tìm bạn khác giúp bạn."]


def test_languages_are_set_and_listed(handoff: Handoff) -> None:
    lan = handoff.redeem_invite(
        invite_code("--team", HA_LONG), channel="telegram", user_id="7", name="Lan"
    ).volunteer
    assert lan is not None
    done = runner.invoke(volunteers_app, ["languages", str(lan.id), "vi", "EN", "vi"])
    assert done.exit_code == 0, done.output
    assert f"{lan.id}: Lan speaks vi, en" in done.output
    again = handoff.get_volunteer(lan.id)
    assert again is not None and again.languages == ("vi", "en")
    assert "speaks vi,en" in runner.invoke(volunteers_app, ["list"]).output
    bad = runner.invoke(volunteers_app, ["languages", str(lan.id), "v!"])
    assert bad.exit_code == 1 and "language codes" in bad.output
    missing = runner.invoke(volunteers_app, ["languages", "999", "vi"])
    assert missing.exit_code == 1 and "no volunteer with id 999" in missing.output

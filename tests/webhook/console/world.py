"""A small province for console tests: two teams, a coordinator, a volunteer in each
team (with console logins), and citizens with tickets, on a real Store."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from bot.console_accounts import ConsoleAccounts
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.handoff import HANDOFF_FILE, Handoff, load_handoff_texts
from bot.helpdesk import HelpDesk
from bot.messages import Incoming
from bot.store import HandoffStore, Role, Store, Team, Ticket, Volunteer

ROOT = Path(__file__).resolve().parents[3]
GROUP = -1005001
PASSWORD = "mật khẩu rất dài 1"
# What a citizen wrote before asking for help: personal data and markup.
PHONE = "0912345678"
HOSTILE = "<script>alert('x')</script><b>đậm</b>"
_chats = itertools.count(7001)
_messages = itertools.count(1)


def make_service(store: Store, library: ContentLibrary) -> ConversationService:
    texts = load_handoff_texts(ROOT / "knowledge" / HANDOFF_FILE)
    desk = HelpDesk(
        store=store,
        handoff=Handoff(HandoffStore(store)),
        texts=texts,
        province=("telegram", str(GROUP)),
    )
    return ConversationService(store=store, library=library, desk=desk)


def load_library() -> ContentLibrary:
    return ContentLibrary(flows_dir=ROOT / "flows", knowledge_dir=ROOT / "knowledge")


@dataclass
class World:
    store: Store
    handoff: Handoff
    accounts: ConsoleAccounts
    team_a: Team
    team_b: Team
    coordinator: Volunteer
    lan: Volunteer  # team A, on Telegram, with a console login
    binh: Volunteer  # team B

    @classmethod
    def build(cls, service: ConversationService) -> World:
        assert service.desk is not None
        handoff = service.desk.handoff
        accounts = ConsoleAccounts(service.store, handoff)
        team_a = handoff.create_team("Đoàn xã An Hòa", commune_id="an_hoa")
        team_b = handoff.create_team("Đoàn phường Bắc Sơn", commune_id="bac_son")
        coordinator = accounts.add_user(
            "Điều Phối", password=PASSWORD, team_id=team_a.id, role=Role.COORDINATOR
        )
        lan = _telegram_volunteer(handoff, accounts, team_a, "Lan", "2001")
        binh = _telegram_volunteer(handoff, accounts, team_b, "Bình", "2002")
        return cls(service.store, handoff, accounts, team_a, team_b, coordinator, lan, binh)

    def ticket(self, commune_id: str | None, *, chat_id: str | None = None) -> Ticket:
        """A Telegram citizen who wrote personal data and markup, then asked for help."""
        chat = chat_id or str(next(_chats))
        with self.store.conversation(channel="telegram", chat_id=chat, user_id=chat) as tx:
            for text in (f"số của tôi là {PHONE}", HOSTILE):
                tx.record_inbound(
                    Incoming(
                        channel="telegram",
                        chat_id=chat,
                        user_id=chat,
                        text=text,
                        message_id=str(next(_messages)),
                    )
                )
            ticket, _ = self.handoff.open_ticket(
                tx.conversation_id, reason="asked", commune_id=commune_id, tx=tx
            )
        return ticket


def _telegram_volunteer(
    handoff: Handoff, accounts: ConsoleAccounts, team: Team, name: str, user_id: str
) -> Volunteer:
    invite = handoff.create_invite(team.id, created_by="test")
    joined = handoff.redeem_invite(invite.code, channel="telegram", user_id=user_id, name=name)
    assert joined.volunteer is not None
    granted = accounts.grant(joined.volunteer.id, PASSWORD)
    assert granted is not None
    return granted


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)

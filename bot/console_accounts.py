"""Who may use the web console: accounts, sign-in, sessions.

A console account is a volunteer (bot/handoff.py) with a password: a Telegram volunteer
given a login (`grant`), or a console-only account (`add_user`: channel "console"),
such as a coordinator who works at a desk. Tickets, claims and notes stay with the
volunteer, whichever way they came in.

    ConsoleAccounts(store, handoff, policy=ConsolePolicy())
      add_user, grant            accounts (passwords: scrypt with a salt each, bot/handoff.py)
      sign_in → SignIn           a fresh session token, or why not (wrong, locked)
      user(token) → ConsoleUser  the signed-in volunteer, or None (expired, signed out,
                                 disabled)
      sign_out(token)

Tokens are 256 random bits; the database keeps only their SHA-256. Failed sign-ins are
counted per login name typed (known or not): `max_failures` within `failure_window`
lock that name for `lock_for`. They are also counted per client address (the one the
server sees: behind a reverse proxy, uvicorn takes it from X-Forwarded-For only when the
proxy is listed in FORWARDED_ALLOW_IPS): `max_failures_per_client` lock that address,
so one machine cannot try many names. A right password does not reset an address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.handoff import MIN_PASSWORD_CHARS, Handoff
from bot.store import Role, Store, Volunteer
from bot.store.console import ConsoleStore
from bot.store.types import utcnow
from bot.text import nfc

__all__ = [
    "CONSOLE_CHANNEL",
    "ConsoleAccounts",
    "ConsolePolicy",
    "ConsoleUser",
    "SignIn",
    "SignInOutcome",
]

# The channel of console-only accounts: no messenger behind them.
CONSOLE_CHANNEL = "console"


@dataclass(frozen=True)
class ConsolePolicy:
    session_ttl: timedelta = timedelta(hours=12)
    max_failures: int = 5
    failure_window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)
    max_failures_per_client: int = 20


class SignInOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # unknown name, wrong password, disabled, or no password set
    LOCKED = "locked"  # too many failures under this name; `locked_until`


@dataclass(frozen=True)
class SignIn:
    outcome: SignInOutcome
    token: str | None = None  # for the cookie; never stored
    volunteer: Volunteer | None = None
    expires_at: datetime | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class ConsoleUser:
    """The volunteer behind a live session, and the session's CSRF token."""

    volunteer: Volunteer
    csrf_token: str
    expires_at: datetime

    @property
    def is_coordinator(self) -> bool:
        return self.volunteer.is_coordinator


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _login_key(login: str) -> str:
    return " ".join(nfc(login).casefold().split())[:128]


def _client_key(client: str) -> str:
    # Two spaces: a name's key never has them, so no name can stand for an address.
    return f"ip  {client.strip()}"[:128]


class ConsoleAccounts:
    """Accounts and sessions of the web console."""

    def __init__(
        self, store: Store, handoff: Handoff, *, policy: ConsolePolicy | None = None
    ) -> None:
        self.handoff = handoff
        self.policy = policy or ConsolePolicy()
        self._db = ConsoleStore(store)

    # Accounts

    def add_user(
        self,
        name: str,
        *,
        password: str,
        team_id: int,
        role: Role = Role.VOLUNTEER,
        now: datetime | None = None,
    ) -> Volunteer:
        """A console-only account. ValueError when the password is short, the team is
        unknown, or a volunteer of that name exists (sign-in is by name)."""
        name = " ".join(nfc(name).split())
        if not name:
            raise ValueError("an account needs a name")
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
        if self.handoff.get_team(team_id) is None:
            raise ValueError(f"team {team_id} does not exist")
        key = _login_key(name)
        if any(_login_key(v.name) == key for v in self.handoff.list_volunteers()):
            raise ValueError(f'a volunteer named "{name}" exists already')
        now = now or utcnow()
        with self.handoff.store.begin() as h:
            volunteer, _ = h.join_volunteer(
                channel=CONSOLE_CHANNEL,
                user_id=key,
                name=name,
                team_id=team_id,
                role=role,
                now=now,
            )
        updated = self.handoff.set_password(volunteer.id, password)
        assert updated is not None
        return updated

    def grant(self, volunteer_id: int, password: str) -> Volunteer | None:
        """Give an existing volunteer a console login (or a new password); None when
        there is no such volunteer. ValueError when the password is short."""
        return self.handoff.set_password(volunteer_id, password)

    # Sessions

    def sign_in(
        self,
        login: str,
        password: str,
        *,
        client: str | None = None,
        now: datetime | None = None,
    ) -> SignIn:
        """Check the password (by name, or by id when two share a name) and open a
        session. A locked name, or a locked `client` address, is refused without
        looking at the password."""
        now = now or utcnow()
        key = _login_key(login)
        limits = [(key, self.policy.max_failures)]
        if client:
            limits.append((_client_key(client), self.policy.max_failures_per_client))
        for limited, _ in limits:
            locked = self._db.login_lock(limited, now=now)
            if locked is not None:
                return SignIn(SignInOutcome.LOCKED, locked_until=locked)
        volunteer = self.handoff.verify_password(login, password) if key else None
        if volunteer is None:
            policy = self.policy
            until = [
                self._db.record_failure(
                    limited,
                    now=now,
                    window=policy.failure_window,
                    max_failures=most,
                    lock_for=policy.lock_for,
                )
                for limited, most in limits
            ]
            locked = max((u for u in until if u is not None), default=None)
            if locked is not None:
                return SignIn(SignInOutcome.LOCKED, locked_until=locked)
            return SignIn(SignInOutcome.WRONG)
        self._db.clear_failures(key)
        self._db.delete_expired(now=now)
        token = secrets.token_urlsafe(32)
        expires_at = now + self.policy.session_ttl
        self._db.add_session(
            token_hash=_token_hash(token),
            volunteer_id=volunteer.id,
            csrf_token=secrets.token_urlsafe(32),
            now=now,
            expires_at=expires_at,
        )
        return SignIn(SignInOutcome.OK, token=token, volunteer=volunteer, expires_at=expires_at)

    def user(self, token: str, *, now: datetime | None = None) -> ConsoleUser | None:
        """The volunteer signed in with `token`, read afresh (a coordinator's changes,
        such as disabling them, count at once); None when there is none."""
        if not token:
            return None
        session = self._db.session(_token_hash(token), now=now or utcnow())
        if session is None:
            return None
        volunteer = self.handoff.get_volunteer(session.volunteer_id)
        if volunteer is None or volunteer.disabled or not volunteer.has_password:
            return None
        return ConsoleUser(volunteer, session.csrf_token, session.expires_at)

    def sign_out(self, token: str) -> None:
        if token:
            self._db.delete_session(_token_hash(token))

    # Reads for the pages

    def paired_conversations(self, volunteer_id: int) -> set[int]:
        return self._db.paired_conversations(volunteer_id)

    @property
    def store(self) -> ConsoleStore:
        return self._db
